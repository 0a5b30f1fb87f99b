#pragma once
/// hst_dq: correct the pixels that calwf3's data-quality array flags (ExoTiC-UVIS /
/// HUSTLE-tools stage 1, "do_hst_flags").
///
/// Every sample whose HST DQ (the low 16 bits of the dq cube) carries one of `hst_flags`
/// gets dq::hst_flagged. With `hst_replace`, its value is replaced:
/// - flags below 4096 describe the detector (hot, bad, saturated, ... pixels): by the median
///   of the frame's neighbours that carry none of the chosen flags, in a 3×3 box, growing to
///   5×5 and 7×7 while none is usable (phase 1, whole frames);
/// - flags 4096 and above vary from frame to frame (cosmic rays found by calwf3 and
///   AstroDrizzle, ghosts): by the median of the pixel's frames that carry none of the chosen
///   flags (phase 2, pixel time series).
/// A sample carrying both kinds is replaced spatially: its pixel is bad in every frame, so
/// its own time series has nothing good to offer. A sample with no usable neighbour (or no
/// usable frame) keeps its value and its flag. Without `hst_replace` (or with no flag >= 4096)
/// the step runs in one Frames phase.
///
/// WFC3 DQ bits (WFC3 Data Handbook, table "UVIS data quality flags"): 1 Reed-Solomon error,
/// 2 data replaced by fill, 4 bad detector pixel, 8 deviant bias, 16 hot pixel, 32 CTE tail,
/// 64 warm pixel, 128 bad column, 256 full-well saturation, 512 bad flat, 1024 charge trap,
/// 2048 A-to-D saturation, 4096 cosmic ray (AstroDrizzle), 8192 cosmic ray (calwf3),
/// 16384 ghost or crosstalk. The default [16, 4096] leaves saturated pixels (256, the 0th
/// order's core) as they are.
#include <cstdint>
#include <span>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct HstDqParams {
  std::vector<std::int64_t> hst_flags = {16, 4096};
  bool hst_replace = true;

  static Schema<HstDqParams> schema() {
    return tessera::schema<HstDqParams>(
        field(&HstDqParams::hst_flags, "hst_flags",
              "HST DQ flags to correct, each a single bit (16 hot pixel, 256 saturated, 4096 cosmic ray, ...); "
              "flagged samples get dq bit hst_flagged",
              Range::closed(1, 32768)),
        field(&HstDqParams::hst_replace, "hst_replace",
              "Replace flagged values: flags < 4096 by the median of unflagged neighbours (3x3, growing to 7x7), "
              "flags >= 4096 by the median of the pixel's unflagged frames; false: only record them in dq"));
  }
};

/// The chosen flags split by how they are repaired. Throws ConfigError naming hst_flags for
/// an entry that is not a single bit of the 16-bit HST DQ.
struct HstDqMasks {
  std::uint32_t any = 0;       ///< every chosen flag
  std::uint32_t spatial = 0;   ///< chosen flags below 4096
  std::uint32_t temporal = 0;  ///< chosen flags 4096 and above
  explicit HstDqMasks(const std::vector<std::int64_t>& flags);
};

/// Phase 1 on one frame (ny × nx, row-major): sets dq::hst_flagged on every sample with a
/// chosen flag and, if `replace`, replaces those with a spatial flag by the median of their
/// usable neighbours. `data` is not touched (and may be empty) without `replace`.
/// Returns how many values it replaced.
std::size_t hst_dq_frame(std::span<float> data, std::span<std::uint32_t> dq, std::size_t ny, std::size_t nx,
                         const HstDqMasks& masks, bool replace);

/// Phase 2 on one pixel's time series: replaces the samples with a temporal (and no
/// spatial) chosen flag by the median of the samples with no chosen flag; increments
/// `replaced_in_frame[t]` for each. `scratch` is a reusable buffer. Returns how many it replaced.
std::size_t hst_dq_series(std::span<float> series, std::span<const std::uint32_t> dq, const HstDqMasks& masks,
                          std::span<double> replaced_in_frame, std::vector<float>& scratch);

struct HstDq {
  static constexpr std::string_view name = "hst_dq";
  static constexpr std::string_view summary =
      "Flag the chosen HST DQ flags in our dq and replace them by a spatial or temporal median";
  using Params = HstDqParams;
  static std::vector<Access> access(const Params& params);
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
