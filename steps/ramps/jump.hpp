#pragma once
/// jump: cosmic-ray jump detection in up-the-ramp reads by two-point differences
/// (Anderson & Gordon 2011, "Optimal Cosmic-Ray Detection for Nondestructive Read Ramps"),
/// following the conventions of the JWST pipeline's jump step (stcal twopoint_difference).
///
/// Per integration and pixel: the first differences of consecutive usable groups (a group
/// flagged do_not_use or saturated in `groupdq`, or not finite, takes out both differences it
/// belongs to), their median m, the noise of one difference σ = sqrt(2·rn² + |m|/gain) (DN; rn
/// is the read noise of one group read, gain in electron/DN) and ratio = |d − m| / σ. The
/// difference with the largest ratio above the threshold is flagged JUMP_DET at its later
/// group, left out, and the median, σ and ratios recomputed, until none is above. See
/// docs/jwst-ramps.md ("## jump") for the details and what differs from the JWST pipeline.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct JumpParams {
  std::string gain;
  std::string read_noise;
  double rejection_threshold = 4.0;
  double three_group_rejection_threshold = 6.0;
  double four_group_rejection_threshold = 5.0;
  std::int64_t minimum_groups = 3;
  bool flag_4_neighbors = true;
  double max_jump_to_flag_neighbors = 1000.0;
  double min_jump_to_flag_neighbors = 10.0;
  double after_jump_flag_dn1 = 0.0;
  double after_jump_flag_time1 = 0.0;
  double after_jump_flag_dn2 = 0.0;
  double after_jump_flag_time2 = 0.0;

  static Schema<JumpParams> schema() {
    return tessera::schema<JumpParams>(
        field(&JumpParams::gain, "gain",
              "Gain (electron/DN) reference: a number, a FITS file (SCI extension) or @image", Required{}),
        field(&JumpParams::read_noise, "read_noise",
              "Read noise of one group read (DN) reference: a number, a FITS file (SCI extension) or @image",
              Required{}),
        field(&JumpParams::rejection_threshold, "rejection_threshold",
              "Flag a first difference this many sigma from the median (4 or more usable differences)",
              Range::above(0)),
        field(&JumpParams::three_group_rejection_threshold, "three_group_rejection_threshold",
              "Threshold in sigma when only 2 usable differences (3 groups) remain", Range::above(0)),
        field(&JumpParams::four_group_rejection_threshold, "four_group_rejection_threshold",
              "Threshold in sigma when only 3 usable differences (4 groups) remain", Range::above(0)),
        field(&JumpParams::minimum_groups, "minimum_groups",
              "Skip the step when integrations have fewer groups, and a pixel with fewer usable groups",
              Range::at_least(3)),
        field(&JumpParams::flag_4_neighbors, "flag_4_neighbors",
              "Also flag the 4 adjacent pixels (same group) of jumps between the min and max sizes below"),
        field(&JumpParams::max_jump_to_flag_neighbors, "max_jump_to_flag_neighbors",
              "Neighbours are flagged only for jumps below this many sigma", Range::at_least(0)),
        field(&JumpParams::min_jump_to_flag_neighbors, "min_jump_to_flag_neighbors",
              "Neighbours are flagged only for jumps above this many sigma", Range::at_least(0)),
        field(&JumpParams::after_jump_flag_dn1, "after_jump_flag_dn1",
              "Jumps of at least this many DN also flag the groups within after_jump_flag_time1 after them",
              Range::at_least(0)),
        field(&JumpParams::after_jump_flag_time1, "after_jump_flag_time1",
              "Seconds after a jump >= after_jump_flag_dn1 to flag (whole groups of tgroup; 0: off)",
              Range::at_least(0)),
        field(&JumpParams::after_jump_flag_dn2, "after_jump_flag_dn2",
              "Jumps of at least this many DN also flag the groups within after_jump_flag_time2 after them",
              Range::at_least(0)),
        field(&JumpParams::after_jump_flag_time2, "after_jump_flag_time2",
              "Seconds after a jump >= after_jump_flag_dn2 to flag (whole groups of tgroup; 0: off)",
              Range::at_least(0)));
  }
};

/// What the per-pixel kernel needs, resolved once per step.
struct JumpSettings {
  float threshold = 4.0f;             ///< 4 or more usable differences
  float four_group_threshold = 5.0f;  ///< 3 usable differences
  float three_group_threshold = 6.0f; ///< 2 usable differences
  std::size_t minimum_groups = 3;
  bool flag_neighbors = true;
  float min_neighbor_ratio = 10.0f, max_neighbor_ratio = 1000.0f;
  /// After-jump flagging: a jump of at least after_dn[k] DN (d − median) flags the next
  /// after_groups[k] groups too; 0 groups is off.
  float after_dn[2] = {0.0f, 0.0f};
  std::size_t after_groups[2] = {0, 0};
  /// Prove most pixels clean by a vectorised bracket of their median before any exact test
  /// (the flags are the same either way; off only to check that).
  bool screen = true;
};

/// Buffers reused across pixels and integrations, so the kernel does not allocate per pixel.
struct JumpScratch {
  std::vector<float> block;               ///< ng × block width ramp samples
  std::vector<std::uint8_t> block_dq;     ///< ng × block width group dq
  std::vector<float> diffs, work;         ///< one pixel's usable differences; selection scratch
  std::vector<std::uint16_t> diff_group;  ///< group (later of the pair) of each difference
  std::vector<std::pair<std::uint32_t, std::uint32_t>> neighbors;  ///< (group, pixel) to dilate
};

/// Detects jumps in one integration: `ramp` and `groupdq` hold ng·ny·nx values ([g][y][x]);
/// JUMP_DET is ORed into `groupdq`. `diff_read_var` is the read variance of one difference
/// (2·rn², DN²) and `inv_gain` 1/gain (DN/electron) per pixel (ny·nx); a pixel where either
/// is not finite, or whose σ is 0, is left alone. Returns the number of primary jumps found
/// (differences flagged; neighbour and after-jump flags not counted).
std::size_t detect_jumps(std::span<const float> ramp, std::span<std::uint8_t> groupdq, std::size_t ng,
                         std::size_t ny, std::size_t nx, std::span<const float> diff_read_var,
                         std::span<const float> inv_gain, const JumpSettings& settings, JumpScratch& scratch);

struct Jump {
  static constexpr std::string_view name = "jump";
  static constexpr std::string_view summary =
      "Flag cosmic-ray jumps in the ramps by two-point differences (JWST jump step)";
  using Params = JumpParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
