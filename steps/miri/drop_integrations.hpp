#pragma once
/// drop_integrations: remove chosen integrations from the data (ExoTiC-MIRI stage 1,
/// DropIntegrationsStep), e.g. ones too affected by systematics to be worth processing, or to
/// test a workflow on a subset. A resampling step: the engine rebuilds every cube and
/// per-frame vector without those integrations (see Resampling in tessera/step.hpp). The
/// per-frame vectors keep their values, so `integration` still gives each one's number in the
/// exposure.
#include <cstdint>
#include <map>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct DropIntegrationsParams {
  std::vector<std::int64_t> drop_integrations;

  static Schema<DropIntegrationsParams> schema() {
    return tessera::schema<DropIntegrationsParams>(
        field(&DropIntegrationsParams::drop_integrations, "drop_integrations",
              "Zero-based indices (in the data as read, all segments in time order) of the integrations to remove; "
              "negative indices count from the last as in Python",
              Required{}));
  }
};

struct DropIntegrations {
  static constexpr std::string_view name = "drop_integrations";
  static constexpr std::string_view summary =
      "Remove chosen integrations from every cube and per-frame vector (ExoTiC-MIRI DropIntegrationsStep)";
  using Params = DropIntegrationsParams;
  static Access access(const Params&) { return Access::Pixels; }
  static StepIO io(const Params&);
  /// The integrations kept, in order, each with all its groups. Throws StepError naming the
  /// parameter for an index out of range or when nothing would be left.
  static Resampling resample(const Params& params, const CubeShape& shape,
                             const std::map<std::string, FrameVector>& vectors);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
