#pragma once
/// refpix: the JWST reference-pixel correction for the near-infrared (HgCdTe, SIDECAR-read)
/// detectors, group by group (jwst.refpix, "NIR detector data" algorithm; see
/// docs/jwst-group-corrections.md for where we differ).
///
/// For every integration and group: the 3-sigma clipped mean of the top and of the bottom
/// reference rows of each amplifier (separately for even and odd columns with
/// odd_even_columns) is averaged over top/bottom and subtracted from every pixel of that
/// amplifier and column parity; then, with use_side_ref_pixels, the running median over
/// side_smoothing_length rows of the left and of the right reference columns (after that
/// first correction), averaged over the two sides and multiplied by side_gain, is subtracted
/// row by row from the whole group. Reference pixels are the pixels of `dq` carrying the
/// reference_pixel bit (dq_init ORs them in from the mask).
#include <cstdint>
#include <span>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct RefpixParams {
  bool odd_even_columns = true;
  bool use_side_ref_pixels = true;
  std::int64_t side_smoothing_length = 11;
  double side_gain = 1.0;
  std::int64_t amplifiers = 4;
  double clip_sigma = 3.0;

  static Schema<RefpixParams> schema() {
    return tessera::schema<RefpixParams>(
        field(&RefpixParams::odd_even_columns, "odd_even_columns",
              "Compute and subtract the top/bottom reference signal separately for even and odd columns (jwst "
              "refpix)"),
        field(&RefpixParams::use_side_ref_pixels, "use_side_ref_pixels",
              "Also subtract a row-by-row signal from the side reference columns (jwst refpix)"),
        field(&RefpixParams::side_smoothing_length, "side_smoothing_length",
              "Height in rows of the running median of the side reference pixels; rows y-L/2 .. y+L/2 (integer "
              "division), cut at the edges (jwst refpix)",
              Range::at_least(1)),
        field(&RefpixParams::side_gain, "side_gain",
              "Factor applied to the side reference signal before it is subtracted (jwst refpix)",
              Range::at_least(0)),
        field(&RefpixParams::amplifiers, "amplifiers",
              "Readout outputs, equal strips along x (the JWST NOUTPUTS keyword): 4 for full frames and NIRISS "
              "SUBSTRIP256, 1 for single-output subarrays; must divide the number of columns",
              Range::at_least(1)),
        field(&RefpixParams::clip_sigma, "clip_sigma",
              "Rejection threshold of the iterative clipped mean of the top/bottom reference pixels, in standard "
              "deviations (the pipeline's scipy.stats.sigmaclip with 3)",
              Range::above(0)));
  }
};

/// Where the reference pixels of one integration are, from its dq image.
struct RefpixGeometry {
  std::size_t ny = 0, nx = 0, amplifiers = 1;
  bool odd_even = true;
  /// Pixel indices (y*nx + x) of usable top/bottom reference pixels for class
  /// c = (amplifier*2 + parity)*2 + (0 bottom, 1 top), in class_begin[c] .. class_begin[c+1].
  std::vector<std::size_t> class_begin, class_pixels;
  /// Side reference columns (left: x < nx/2, right: the others).
  std::vector<std::size_t> left_columns, right_columns;
  bool has_rows = false;
};

/// Reusable buffers of the per-group kernel.
struct RefpixScratch {
  std::vector<float> values;
  std::vector<float> column_offset;  // nx
  std::vector<float> row_signal;     // ny
};

/// Finds the reference rows (more than half their pixels flagged reference_pixel) and the
/// reference columns (likewise) of an integration's dq image; pixels flagged do_not_use
/// are left out of every estimate. Throws StepError when nothing is flagged.
RefpixGeometry refpix_geometry(std::span<const std::uint32_t> dq, std::size_t ny, std::size_t nx,
                               const RefpixParams& params);

/// Corrects one group image (ny*nx) in place.
void refpix_group(std::span<float> image, std::span<const std::uint32_t> dq, const RefpixGeometry& geometry,
                  const RefpixParams& params, RefpixScratch& scratch);

struct Refpix {
  static constexpr std::string_view name = "refpix";
  static constexpr std::string_view summary =
      "JWST NIR reference-pixel correction per group: amplifier (odd/even column) offsets from the top/bottom "
      "reference rows, then a smoothed row signal from the side reference columns";
  using Params = RefpixParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
