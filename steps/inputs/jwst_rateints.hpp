#pragma once
/// jwst_rateints: the per-integration count rates of one JWST exposure, as the jwst pipeline's
/// Detector1 writes them (`calwebb_detector1`, ramp_fit's "rateints" product) and MAST
/// delivers them — one or more segment files `<root>-seg001_<detector>_rateints.fits`, ...,
/// read as one time series of integrations (docs/spectra-inputs.md):
///
///     primary HDU   INSTRUME, DETECTOR, EXP_TYPE, READPATT, SUBARRAY, NINTS, NGROUPS, NFRAMES,
///                   GROUPGAP, TFRAME, TGROUP, EXSEGNUM, EXSEGTOT, INTSTART, INTEND, SUBSTRT1/2
///     SCI           float32 (NAXIS1 = x, NAXIS2 = y, NAXIS3 = integrations of this segment);
///                   BUNIT gives the units (DN/s, or MJy/sr after photom)
///     ERR           float32, same shape: total 1σ uncertainty
///     DQ            uint32, same shape: JWST pixel DQ bits per integration (a 2D DQ is the
///                   same for every integration)
///     VAR_POISSON, VAR_RNOISE   optional float32, same shape (read when every segment has them)
///     INT_TIMES     binary table, as in the uncal files
///
/// A frame of the dataset is one integration; cubes `data`, `err`, `dq` (+ `var_poisson`,
/// `var_rnoise`). Frame vectors and attributes are those of jwst_uncal (time, int_start,
/// int_end, int_mid_bjd, integration, segment; instrument, detector, ..., tgroup). Segments
/// must form one contiguous run of integrations of one exposure.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/input.hpp"

namespace tessera {

struct JwstRateintsParams {
  std::string path;
  std::vector<std::string> segments;
  std::string missing_int_times = "error";

  static Schema<JwstRateintsParams> schema();
};

struct JwstRateints {
  static constexpr std::string_view name = "jwst_rateints";
  static constexpr std::string_view summary =
      "JWST rateints exposure: *_rateints.fits segments (SCI, ERR, DQ, VAR_POISSON/VAR_RNOISE, INT_TIMES) read as "
      "one series of integrations";
  using Params = JwstRateintsParams;

  /// Meaning of UnitHeader::values for this input (one unit = one segment file).
  static constexpr std::size_t intstart_index = 0;  ///< INTSTART: first integration of the segment (1-based)
  static constexpr std::size_t intend_index = 1;    ///< INTEND: last integration (inclusive)
  static constexpr std::size_t exsegnum_index = 2;  ///< EXSEGNUM: segment number (1 when absent)
  static constexpr std::size_t nints_index = 3;     ///< NINTS: integrations in the whole exposure (0 when absent)
  static constexpr std::size_t extensions_index = 4;  ///< bit 0: VAR_POISSON present, bit 1: VAR_RNOISE present
  static constexpr std::size_t dq_depth_index = 5;  ///< 3: DQ per integration; 2: one DQ image for all

  /// Returns the source without touching the file system (workflow validation calls it).
  static std::unique_ptr<FrameSource> open(const Params& params);
};

}  // namespace tessera
