#pragma once
/// jwst_uncal: the uncalibrated ramps of one JWST exposure, as MAST delivers them — one or more
/// segment files `<root>_seg001_<detector>_uncal.fits`, `..._seg002_...`, read as one time series
/// of integrations (docs/jwst-data-model.md):
///
///     primary HDU   INSTRUME, DETECTOR, EXP_TYPE, READPATT, SUBARRAY, NINTS, NGROUPS, NFRAMES,
///                   GROUPGAP, TFRAME, TGROUP, EXSEGNUM, EXSEGTOT, INTSTART, INTEND, SUBSTRT1/2, EXPSTART
///     SCI           4D image (NAXIS1 = x, NAXIS2 = y, NAXIS3 = groups, NAXIS4 = integrations of
///                   this segment), uint16 stored as BITPIX 16 with BZERO 32768
///     INT_TIMES     binary table: integration_number, int_{start,mid,end}_MJD_UTC, ..._BJD_TDB
///
/// A frame of the dataset is one integration: the grouped cube `ramp` holds its NGROUPS group
/// images; `groupdq` and `dq` start at zero (dq_init and later steps set bits). Segments are put
/// in order by EXSEGNUM and INTSTART and must form one contiguous run of integrations of one
/// exposure (same shape and readout); part of an exposure (say segments 2 and 3 of 5) may be
/// read, but not one with a hole.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/input.hpp"

namespace tessera {

struct JwstUncalParams {
  std::string path;
  std::vector<std::string> segments;
  std::string missing_int_times = "error";

  static Schema<JwstUncalParams> schema();
};

struct JwstUncal {
  static constexpr std::string_view name = "jwst_uncal";
  static constexpr std::string_view summary =
      "JWST uncal exposure: *_uncal.fits segments (SCI ramps, INT_TIMES) read as one series of integrations";
  using Params = JwstUncalParams;

  /// Meaning of UnitHeader::values for this input (one unit = one segment file).
  static constexpr std::size_t intstart_index = 0;  ///< INTSTART: first integration of the segment (1-based)
  static constexpr std::size_t intend_index = 1;    ///< INTEND: last integration (inclusive)
  static constexpr std::size_t ngroups_index = 2;   ///< groups per integration (NAXIS3 of SCI = NGROUPS)
  static constexpr std::size_t exsegnum_index = 3;  ///< EXSEGNUM: segment number (1 when absent)
  static constexpr std::size_t nints_index = 4;     ///< NINTS: integrations in the whole exposure
  static constexpr std::size_t tgroup_index = 5;    ///< TGROUP (s); 0 when absent

  /// Returns the source without touching the file system (workflow validation calls it).
  static std::unique_ptr<FrameSource> open(const Params& params);
};

}  // namespace tessera
