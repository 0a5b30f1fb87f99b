#pragma once
/// dark_current: subtract the dark reference's cumulative dark from each group (JWST detector1
/// DarkCurrentStep, stcal dark_sub), the dark's frames averaged into groups like the science
/// readout (NFRAMES, GROUPGAP). See docs/jwst-detector1.md.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct DarkCurrentParams {
  std::string dark;  // reference spec

  static Schema<DarkCurrentParams> schema() {
    return tessera::schema<DarkCurrentParams>(field(
        &DarkCurrentParams::dark, "dark",
        "Dark reference (JWST DARK): a FITS file whose 'SCI' holds the cumulative dark in DN of each frame "
        "(nframes_dark, ny, nx; read with NFRAMES=1, GROUPGAP=0) with optional 'DQ' bits, a number or '@name'; "
        "NaN values are not subtracted and flagged UNRELIABLE_DARK",
        Required{}));
  }
};

/// The dark of each of `ng` science groups from a frame-resolved dark (`frames` planes of npix,
/// plane-major): group g is the mean of dark frames g·(nframes+groupgap) + [0, nframes), as the
/// science readout averages its frames. NaN frames make the group's value NaN. Throws StepError
/// when the dark has too few frames.
std::vector<float> dark_for_groups(std::span<const float> dark, std::size_t frames, std::size_t npix,
                                   std::size_t ng, std::size_t nframes, std::size_t groupgap,
                                   const std::string& source);

/// Subtracts dark plane g (ng planes of npix) from group g of one integration.
void subtract_dark_integration(std::span<float> ramp, std::span<const float> dark, std::size_t ng, std::size_t npix);

struct DarkCurrent {
  static constexpr std::string_view name = "dark_current";
  static constexpr std::string_view summary =
      "Subtract the dark reference's cumulative dark from each group (JWST dark_current)";
  using Params = DarkCurrentParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
