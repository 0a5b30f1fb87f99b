#include "steps/miri/drop_integrations.hpp"

#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

StepIO DropIntegrations::io(const Params&) {
  StepIO io;
  // Every cube and vector is resampled by the engine; nothing else changes. The attribute
  // `nints` keeps describing the exposure as observed.
  return io;
}

Resampling DropIntegrations::resample(const Params& params, const CubeShape& shape,
                                      const std::map<std::string, FrameVector>&) {
  const auto nt = static_cast<std::int64_t>(shape.nt);
  std::vector<bool> dropped(shape.nt, false);
  for (std::int64_t index : params.drop_integrations) {
    if (index < -nt || index >= nt)
      throw StepError("drop_integrations: integration index " + std::to_string(index) + " is outside the " +
                      std::to_string(nt) + " integrations of the data (valid: " + std::to_string(-nt) + " to " +
                      std::to_string(nt - 1) + ")");
    dropped[static_cast<std::size_t>(index < 0 ? index + nt : index)] = true;
  }
  Resampling r;
  r.ng = shape.ng;
  for (std::size_t t = 0; t < shape.nt; ++t) {
    if (dropped[t]) continue;
    for (std::size_t g = 0; g < shape.ng; ++g) {
      r.source_frame.push_back(t);
      r.source_group.push_back(g);
    }
    ++r.nt;
  }
  if (r.nt == 0)
    throw StepError("drop_integrations: every one of the " + std::to_string(nt) +
                    " integrations would be dropped; nothing would be left to process");
  return r;
}

void DropIntegrations::run(const Params&, StepContext& context) {
  // The engine has already rebuilt the cubes and vectors on the new axes (phase 0 runs on
  // them); all that is left is to say what happened.
  context.log().info("  " + std::to_string(context.shape().nt) + " integrations left");
}

}  // namespace tessera::steps
