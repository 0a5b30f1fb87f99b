#pragma once
/// drop_groups: mark chosen groups of every integration do_not_use in the group dq, so that
/// later steps (jump, ramp_fit) ignore them (ExoTiC-MIRI stage 1, DropGroupsStep; used against
/// detector effects such as the reset switch charge decay in the first groups and the last
/// frame effect).
#include <cstdint>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct DropGroupsParams {
  std::vector<std::int64_t> drop_groups;

  static Schema<DropGroupsParams> schema() {
    return tessera::schema<DropGroupsParams>(
        field(&DropGroupsParams::drop_groups, "drop_groups",
              "Zero-based indices of the groups to mark do_not_use in every integration; negative indices count "
              "from the last group as in Python (-1 is the last)",
              Required{}));
  }
};

/// The group indices `drop_groups` names in a ramp of `ng` groups, negative ones resolved,
/// sorted and without repeats. Throws StepError naming the parameter for an index outside
/// [-ng, ng).
std::vector<std::size_t> resolve_drop_groups(const std::vector<std::int64_t>& drop_groups, std::size_t ng);

struct DropGroups {
  static constexpr std::string_view name = "drop_groups";
  static constexpr std::string_view summary =
      "Mark chosen groups of every integration do_not_use in the group dq (ExoTiC-MIRI DropGroupsStep)";
  using Params = DropGroupsParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
