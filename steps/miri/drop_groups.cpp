#include "steps/miri/drop_groups.hpp"

#include <algorithm>

#include "steps/common/jwst_dq.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

std::vector<std::size_t> resolve_drop_groups(const std::vector<std::int64_t>& drop_groups, std::size_t ng) {
  const auto n = static_cast<std::int64_t>(ng);
  std::vector<std::size_t> out;
  out.reserve(drop_groups.size());
  for (std::int64_t index : drop_groups) {
    if (index < -n || index >= n)
      throw StepError("drop_groups: group index " + std::to_string(index) + " is outside a ramp of " +
                      std::to_string(ng) + " groups (valid: " + std::to_string(-n) + " to " + std::to_string(n - 1) +
                      ")");
    out.push_back(static_cast<std::size_t>(index < 0 ? index + n : index));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

StepIO DropGroups::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "groupdq", "the group dq of the ramps (input jwst_uncal)"}};
  DataOut groupdq{DataKind::Cube, {"groupdq", "", ""}, ElementType::UInt8};
  groupdq.grouped = true;
  io.writes = {groupdq};
  return io;
}

void DropGroups::run(const Params& params, StepContext& context) {
  auto groupdq = context.frames<std::uint8_t>("groupdq");
  const std::vector<std::size_t> groups = resolve_drop_groups(params.drop_groups, groupdq.groups);
  if (groups.empty()) context.log().info("  drop_groups is empty: no group marked");
  constexpr std::uint8_t flag = jwst::dq::group(jwst::dq::do_not_use);
  for (std::size_t t = groupdq.t_begin; t < groupdq.t_end; ++t) {
    for (std::size_t g : groups)
      for (std::uint8_t& bits : groupdq.group(t, g)) bits |= flag;
    context.advance(1);
  }
}

}  // namespace tessera::steps
