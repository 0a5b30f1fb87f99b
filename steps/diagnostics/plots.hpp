#pragma once
/// plots: diagnostic PNG files drawn from whatever products the workflow made (ExoTiC-UVIS /
/// HUSTLE-tools stage 1 write the same kind of figures when save_plots ≥ 1).
///
/// Phase 0 (frames): counts, for every pixel, the frames in which each of Tessera's cleaning
/// steps flagged it (dq bits temporal_outlier, led_outlier, smooth_outlier, hst_flagged); the
/// counts are kept as images outlier_map_temporal, outlier_map_led, outlier_map_smooth and
/// outlier_map_hst (a map whose step did not run and which is all zero is dropped).
/// Phase 1 (frames): on the one rank that writes files, draws
///   level 1: CR_location.png, LED_location_of_all_corrected_pixels.png, outliers_per_frame.png,
///            bkg_values_<method>.png and bkg_correction_<method>.png for each background method
///            that ran (uniform, column, sky), displacements.png;
///   level 2: smooth_location.png, HST_DQ_location.png, outlier_count_histogram.png,
///            zeroth_order_position.png, white_light.png (from quicklook).
/// A figure whose products are absent is skipped.
#include <cstdint>
#include <span>

#include "tessera/step.hpp"

namespace tessera::steps {

struct PlotsParams {
  std::int64_t width = 1000;
  std::int64_t height = 650;

  static Schema<PlotsParams> schema() {
    return tessera::schema<PlotsParams>(
        field(&PlotsParams::width, "width", "Width of each PNG figure in pixels", Range::closed(300, 5000)),
        field(&PlotsParams::height, "height", "Height of each PNG figure in pixels (figures with several panels "
                                              "grow taller)",
              Range::closed(200, 5000)));
  }
};

/// Adds 1 to map[i] for every pixel i of one frame's dq that has a bit of `mask` set.
void count_flags(std::span<const std::uint32_t> dq, std::uint32_t mask, std::span<float> map);

struct Plots {
  static constexpr std::string_view name = "plots";
  static constexpr std::string_view summary =
      "Diagnostic PNG plots: outlier locations, outliers per frame, backgrounds, displacements";
  using Params = PlotsParams;
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Frames}; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
