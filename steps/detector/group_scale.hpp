#pragma once
/// group_scale: undo the on-board frame averaging's divisor when it was not the number of
/// frames averaged (JWST detector1 GroupScaleStep: NFRAMES not a power of 2). See
/// docs/jwst-detector1.md.
#include <span>

#include "tessera/step.hpp"

namespace tessera::steps {

struct GroupScaleParams {
  static Schema<GroupScaleParams> schema() { return tessera::schema<GroupScaleParams>(); }
};

/// Multiplies every value by `factor` (FRMDIVSR / NFRAMES).
void scale_values(std::span<float> values, float factor);

struct GroupScale {
  static constexpr std::string_view name = "group_scale";
  static constexpr std::string_view summary =
      "Rescale the ramps by FRMDIVSR/NFRAMES when on-board averaging divided by the wrong power of 2 "
      "(JWST group_scale); otherwise nothing";
  using Params = GroupScaleParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
