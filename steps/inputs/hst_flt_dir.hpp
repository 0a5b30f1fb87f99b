#pragma once
/// hst_flt_dir: a visit directory of HST WFC3 calibrated exposures, as HUSTLE-tools and
/// ExoTiC-UVIS stage 0 leave it:
///
///     visit/specimages/*_flt.fits     one grism exposure each (SCI, ERR, DQ extensions)
///     visit/directimages/*_flt.fits   optional direct images (the earliest one is read)
///
/// Frames are put in time order (EXPSTART), split into HST orbits at gaps longer than
/// `orbit_gap_minutes`, and optionally thinned with `skip_first_or` / `skip_first_fm`.
#include <memory>
#include <string>
#include <string_view>

#include "tessera/input.hpp"

namespace tessera {

struct HstFltDirParams {
  std::string path;
  bool skip_first_fm = false;
  bool skip_first_or = false;
  double orbit_gap_minutes = 10.0;

  static Schema<HstFltDirParams> schema();
};

struct HstFltDir {
  static constexpr std::string_view name = "hst_flt_dir";
  static constexpr std::string_view summary =
      "HST WFC3 visit directory: specimages/*_flt.fits (SCI, ERR, DQ) in time order, optional directimages/";
  using Params = HstFltDirParams;

  /// Meaning of UnitHeader::values for this input.
  static constexpr std::size_t expstart_index = 0;  ///< EXPSTART (MJD)
  static constexpr std::size_t expend_index = 1;    ///< EXPEND (MJD)
  static constexpr std::size_t exptime_index = 2;   ///< EXPTIME (s)

  /// Returns the source without touching the file system (workflow validation calls it).
  static std::unique_ptr<FrameSource> open(const Params& params);
};

}  // namespace tessera
