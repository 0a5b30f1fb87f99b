#pragma once
/// regroup: split integrations of m groups into m/n shorter integrations of n groups each
/// (ExoTiC-MIRI stage 1, ReggroupStep). m must be a multiple of n, as in ExoTiC-MIRI; any
/// other n is an error listing the valid ones (dropping the remainder would throw data away
/// without the user asking).
///
/// A resampling step: the engine rebuilds every cube on the new axes (group g' of new
/// integration k·(m/n) + j is group j·n + g' of old integration k; the pixel dq of old
/// integration k is copied to each of its pieces) and copies each per-frame vector from the
/// old integration. run() then gives each piece its own times, those of its groups:
///   time, int_mid_bjd:  old mid + (j·n + (n−1)/2 − (m−1)/2)·tgroup
///   int_start:          old start + j·n·tgroup
///   int_end:            old end − (m/n − 1 − j)·n·tgroup
/// (days; tgroup from the dataset attribute, in s), so the pieces tile the old integration,
/// and renumbers `integration` 1..nt. The attributes `ngroups` and `nints` become n and the
/// new integration count.
///
/// The time vectors are changed in place when present and are not declared as writes: the
/// engine resets declared vectors to zero after resampling (prepare_outputs), which would
/// lose the values the new times are derived from.
#include <cstdint>
#include <map>

#include "tessera/step.hpp"

namespace tessera::steps {

struct RegroupParams {
  std::int64_t n_groups = 0;

  static Schema<RegroupParams> schema() {
    return tessera::schema<RegroupParams>(field(
        &RegroupParams::n_groups, "n_groups",
        "Groups per integration after regrouping; must divide the groups per integration of the data",
        Range::at_least(1), Required{}));
  }
};

struct Regroup {
  static constexpr std::string_view name = "regroup";
  static constexpr std::string_view summary =
      "Split integrations of m groups into m/n integrations of n groups (ExoTiC-MIRI ReggroupStep)";
  using Params = RegroupParams;
  static Access access(const Params&) { return Access::Pixels; }
  static StepIO io(const Params&);
  /// Throws StepError naming n_groups when it does not divide the groups per integration.
  static Resampling resample(const Params& params, const CubeShape& shape,
                             const std::map<std::string, FrameVector>& vectors);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
