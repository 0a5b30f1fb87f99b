#pragma once
/// refpix_miri: the ExoTiC-MIRI ReferencePixelStep, a group-level reference-pixel correction
/// for the MIRI LRS slitless subarray (whose left edge, columns 0..3, are reference pixels
/// that the JWST pipeline ignores for subarrays). See docs/jwst-group-corrections.md.
///
/// Per integration, group 0 is the zero point: for every later group g and each reference
/// column a = 0..3 (one per amplifier; amplifier of column x is x % 4) the drift
/// d(y) = G_g(y, a) - G_0(y, a) is reduced to a correction, the median over all rows (even
/// and odd rows separately with odd_even_rows), or with smoothing_length = L the running
/// median over L rows (of the same parity), and subtracted from every pixel (y, x) with
/// x % 4 = a, reference columns included. Group 0 is left as it is.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct RefpixMiriParams {
  std::optional<std::int64_t> smoothing_length;
  bool odd_even_rows = true;

  static Schema<RefpixMiriParams> schema() {
    return tessera::schema<RefpixMiriParams>(
        field(&RefpixMiriParams::smoothing_length, "smoothing_length",
              "Running median of the reference values over this many rows (of the same parity with odd_even_rows; "
              "window index k-(L-1)/2 .. k+(L-1)/2, cut at the edges, as ExoTiC-MIRI); unset: one median over all "
              "rows",
              Range::at_least(1)),
        field(&RefpixMiriParams::odd_even_rows, "odd_even_rows",
              "Compute the correction separately for even and odd rows (ExoTiC-MIRI)"));
  }
};

/// Reusable buffers of the per-group kernel.
struct RefpixMiriScratch {
  std::vector<float> reference0;  ///< group 0's reference columns, ny*4 ([y][a])
  std::vector<float> drift;       ///< ny*4, NaN where unusable
  std::vector<float> correction;  ///< ny*4
  std::vector<float> values;
};

/// Corrects group `image` (ny*nx) in place given group 0's reference columns
/// (scratch.reference0, filled by the caller) and the integration's dq image.
void refpix_miri_group(std::span<float> image, std::span<const std::uint32_t> dq, std::size_t ny, std::size_t nx,
                       const RefpixMiriParams& params, RefpixMiriScratch& scratch);

struct RefpixMiri {
  static constexpr std::string_view name = "refpix_miri";
  static constexpr std::string_view summary =
      "ExoTiC-MIRI reference-pixel correction per group: drift of reference columns 0..3 since group 0, per "
      "amplifier (x % 4) and odd/even row, optionally median-smoothed along rows";
  using Params = RefpixMiriParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
