#pragma once
/// saturation: flag groups at or above the saturation level (and all later groups of the
/// integration), grow the flags into neighbouring pixels for charge spilling, and flag groups at
/// the A/D floor (JWST detector1 SaturationStep, stcal flag_saturated_pixels). See
/// docs/jwst-detector1.md.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct SaturationParams {
  std::string saturation;  // reference spec
  std::int64_t n_pix_grow_sat = 1;
  bool flag_ad_floor = true;

  static Schema<SaturationParams> schema() {
    return tessera::schema<SaturationParams>(
        field(&SaturationParams::saturation, "saturation",
              "Saturation levels in DN (JWST SATURATION reference): a FITS file ('SCI' levels, optional 'DQ' with "
              "NO_SAT_CHECK), a number or '@name'; NaN or NO_SAT_CHECK pixels are never flagged",
              Required{}),
        field(&SaturationParams::n_pix_grow_sat, "n_pix_grow_sat",
              "Also flag the pixels within this many pixels of a saturated one (a (2n+1) x (2n+1) box), for charge "
              "spilling (JWST n_pix_grow_sat); 0 grows nothing",
              Range::at_least(0)),
        field(&SaturationParams::flag_ad_floor, "flag_ad_floor",
              "Flag groups at or below 0 DN as AD_FLOOR and DO_NOT_USE, as the JWST pipeline always does"));
  }
};

/// Per-integration scratch so the kernel never allocates once sized.
struct SaturationScratch {
  std::vector<std::uint8_t> reached;  // ny*nx: the pixel has reached its level in this or an earlier group
  std::vector<std::uint8_t> rows;     // ny*nx: saturated bits of one group dilated along x
  std::vector<std::uint8_t> row_has;  // ny: the row holds a saturated pixel
};

/// The JWST saturation flagging of one integration. `ramp` is ng images of ny × nx ([g][y][x]),
/// `groupdq` the matching group bits, `level` ny*nx thresholds (+inf where never checked).
/// For each group g in order: groups with ramp >= level get SATURATED in g and every later group;
/// groups <= 0 DN get AD_FLOOR | DO_NOT_USE in g alone (when `ad_floor`); then every SATURATED bit
/// of group g (new or already there) is grown over a (2n+1)² box. Returns the number of pixels
/// with a SATURATED group.
std::size_t flag_saturation_integration(std::span<const float> ramp, std::span<std::uint8_t> groupdq,
                                        std::span<const float> level, std::size_t ng, std::size_t ny, std::size_t nx,
                                        std::size_t n_pix_grow_sat, bool ad_floor, SaturationScratch& scratch);

struct Saturation {
  static constexpr std::string_view name = "saturation";
  static constexpr std::string_view summary =
      "Flag saturated groups (and later groups, and neighbours within n_pix_grow_sat) and A/D-floor groups "
      "(JWST saturation)";
  using Params = SaturationParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
