#pragma once
/// one_over_f_masked: 1/f noise removal with the traced orders masked — the JWST TSO notebook's
/// `correct_one_over_f_with_mask` (section 5.2). For every integration and spatial line (a
/// column for dispersion_axis "x"), the median of the line's pixels farther than
/// `mask_aperture` from every traced order is subtracted from the whole line. Each order o
/// masks spatial pixels [row − mask_aperture, row + mask_aperture) with row = int(trace_{o})
/// at that dispersion index and integration (the notebook's mask); orders with no trace there
/// (NaN) mask nothing. Non-finite and do_not_use pixels, and reference pixels when
/// `skip_reference_pixels`, never enter the median. A line with fewer than `min_pixels` usable
/// pixels is left as it is (NaN in the level image) and counted in a warning.
///
/// Product: image one_over_f_masked_level (time, x|y; units of the cube): the median removed
/// from each line. See docs/spectra-tracing.md.
#include <cstdint>
#include <string>
#include <vector>

#include "steps/common/spectral_geometry.hpp"
#include "steps/spectra/trace.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct OneOverFMaskedParams {
  std::vector<std::string> orders{"order1"};
  std::int64_t mask_aperture = 30;
  bool skip_reference_pixels = true;
  std::string cube = "data";
  std::int64_t min_pixels = 10;
  std::string dispersion_axis = "x";

  static Schema<OneOverFMaskedParams> schema() {
    return tessera::schema<OneOverFMaskedParams>(
        field(&OneOverFMaskedParams::orders, "orders",
              "Traced orders to mask (names given to the trace step; reads images trace_{name})"),
        field(&OneOverFMaskedParams::mask_aperture, "mask_aperture",
              "Pixels [row - mask_aperture, row + mask_aperture) around each order's trace row (int of the "
              "trace) are left out of the line medians",
              Range::at_least(0)),
        field(&OneOverFMaskedParams::skip_reference_pixels, "skip_reference_pixels",
              "Leave pixels flagged reference_pixel in dq out of the medians"),
        field(&OneOverFMaskedParams::cube, "cube", "Float cube corrected in place (rate images)"),
        field(&OneOverFMaskedParams::min_pixels, "min_pixels",
              "A line with fewer usable unmasked pixels than this is left uncorrected", Range::at_least(1)),
        field(&OneOverFMaskedParams::dispersion_axis, std::string(spectra::dispersion_param),
              std::string(spectra::dispersion_doc), Choices{{"x", "y"}}));
  }
};

/// Median of the usable pixels of one spatial line outside the masked intervals. `line` holds
/// n_spatial values with NaN for unusable pixels; `masks` are [begin, end) spatial intervals
/// (clipped here, sorted in place, may overlap); `values` and `scratch` have room for
/// n_spatial values; `median` carries its bracket from line to line. Returns the median (NaN
/// when no pixel is usable) and sets `count` to the number of pixels it used.
float masked_line_median(const float* line, std::size_t n_spatial,
                         std::vector<std::pair<std::int64_t, std::int64_t>>& masks, float* values, float* scratch,
                         BracketedMedian& median, std::size_t& count);

struct OneOverFMasked {
  static constexpr std::string_view name = "one_over_f_masked";
  static constexpr std::string_view summary =
      "1/f noise removal per spatial line from the median of the pixels outside every traced order (JWST TSO "
      "notebook)";
  using Params = OneOverFMaskedParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
