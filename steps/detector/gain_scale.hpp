#pragma once
/// gain_scale: rates and their errors from DN/s to electron/s with the per-pixel gain, the
/// variances with its square. See docs/jwst-detector1.md for how this differs from the JWST
/// pipeline's GainScaleStep (a scalar GAINFACT).
#include <cstdint>
#include <span>
#include <string>

#include "tessera/step.hpp"

namespace tessera::steps {

struct GainScaleParams {
  std::string gain;  // reference spec
  bool scale_variances = true;

  static Schema<GainScaleParams> schema() {
    return tessera::schema<GainScaleParams>(
        field(&GainScaleParams::gain, "gain",
              "Gain in electron/DN (JWST GAIN reference): a FITS file ('SCI'), a number or '@name' (e.g. '@gain' "
              "from custom_gain); pixels with a gain that is not a positive number become NaN, flagged "
              "NO_GAIN_VALUE and DO_NOT_USE",
              Required{}),
        field(&GainScaleParams::scale_variances, "scale_variances",
              "Also multiply var_poisson and var_rnoise (as ramp_fit writes them) by gain^2; false when the "
              "workflow has no such cubes"));
  }
};

/// One integration's rates: values *= gain, and each variance *= gain². `gain` holds ny*nx values
/// (NaN where there is none, which turns the outputs NaN). Variance spans may be empty.
void scale_by_gain(std::span<float> data, std::span<float> err, std::span<float> var_poisson,
                   std::span<float> var_rnoise, std::span<const float> gain);

struct GainScale {
  static constexpr std::string_view name = "gain_scale";
  static constexpr std::string_view summary =
      "Convert rates, errors and variances from DN/s to electron/s with the per-pixel gain";
  using Params = GainScaleParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
