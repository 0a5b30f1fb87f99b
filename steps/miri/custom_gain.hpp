#pragma once
/// custom_gain: one gain value for every pixel, as an image `gain` (electron/DN) that later
/// steps use with the reference spec "@gain" (jump, ramp_fit, gain_scale), in place of the
/// default reference gain (ExoTiC-MIRI SetCustomGain, whose default value is 3.1).
#include "tessera/step.hpp"

namespace tessera::steps {

struct CustomGainParams {
  double gain_value = 3.1;

  static Schema<CustomGainParams> schema() {
    return tessera::schema<CustomGainParams>(field(&CustomGainParams::gain_value, "gain_value",
                                                   "Gain of every pixel in electron/DN, written as the image 'gain'",
                                                   Range::above(0)));
  }
};

struct CustomGain {
  static constexpr std::string_view name = "custom_gain";
  static constexpr std::string_view summary =
      "Write a uniform gain image 'gain' (electron/DN) for later steps to use as \"@gain\" (ExoTiC-MIRI SetCustomGain)";
  using Params = CustomGainParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
