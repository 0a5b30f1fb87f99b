#include "steps/miri/custom_gain.hpp"

#include <algorithm>

namespace tessera::steps {

StepIO CustomGain::io(const Params&) {
  StepIO io;
  DataOut gain{DataKind::Image, {"gain", "electron/DN", "detector gain (custom_gain)"}};
  gain.combine = Combine::Identical;  // the same value on every rank, not a sum of contributions
  io.writes = {gain};
  return io;
}

void CustomGain::run(const Params& params, StepContext& context) {
  Image& gain = context.image("gain");
  std::fill(gain.values.begin(), gain.values.end(), static_cast<float>(params.gain_value));
}

}  // namespace tessera::steps
