#pragma once
/// one_over_f: column-by-column removal of 1/f (readout) noise, the correction used by the
/// NIRISS/SOSS time-series pipelines: in each image the median of the column's unilluminated
/// pixels is taken as that column's 1/f offset and subtracted from the whole column (the
/// simple column median of the JWST TSO notebook; the unilluminated-pixel form of
/// supreme-SPOON, Radica et al. 2023, and of Coulombe et al. 2023 for SOSS). See
/// docs/jwst-group-corrections.md.
///
/// mode "group" corrects every group image of the ramps (each group is an independent read
/// with its own 1/f realisation); mode "integration" corrects the per-integration rate
/// images (`data`) after ramp_fit.
///
/// Pixels used for a column's median: not flagged reference_pixel or do_not_use in dq (in
/// group mode also not saturated / do_not_use in that group's groupdq), finite, inside
/// `rows` when given, not illuminated by `mask` (nonzero) and, with `threshold` = k, not above
/// the column's median + k·1.4826·MAD of the integration's signal image (last minus first
/// group, or the rate image in integration mode). A column with fewer than min_pixels such
/// pixels is left as it is.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

/// Image one_over_f writes in group mode: for each integration (row) and column, the rate the
/// column's corrections removed (the sky along with the 1/f noise), in DN/s.
inline constexpr std::string_view kRemovedRate = "one_over_f_rate";

struct OneOverFParams {
  std::string mode = "group";
  std::optional<std::string> mask;
  std::optional<double> threshold;
  std::optional<std::vector<std::int64_t>> rows;
  std::int64_t min_pixels = 5;

  static Schema<OneOverFParams> schema() {
    return tessera::schema<OneOverFParams>(
        field(&OneOverFParams::mode, "mode",
              "group: correct every group image of the ramps (before ramp_fit); integration: correct the rate image "
              "of every integration (`data`, after ramp_fit)",
              Choices{{"group", "integration"}}),
        field(&OneOverFParams::mask, "mask",
              "Trace mask: reference spec (FITS file, '@image') whose nonzero pixels are illuminated and left out of "
              "the column medians; unset: no mask"),
        field(&OneOverFParams::threshold, "threshold",
              "Also leave out pixels whose signal (last minus first group; the rate in integration mode) exceeds "
              "the column's median by this many robust sigma (1.4826 MAD); unset: no thresholding",
              Range::above(0)),
        field(&OneOverFParams::rows, "rows",
              "[first, end) rows (end exclusive, like a Python slice) used for the column medians; the correction "
              "still applies to the whole column; unset: all rows"),
        field(&OneOverFParams::min_pixels, "min_pixels",
              "A column with fewer usable pixels than this is left uncorrected", Range::at_least(1)));
  }
};

struct OneOverF {
  static constexpr std::string_view name = "one_over_f";
  static constexpr std::string_view summary =
      "Column-by-column 1/f noise removal: subtract the median of each column's unilluminated pixels, per group "
      "or per integration";
  using Params = OneOverFParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
