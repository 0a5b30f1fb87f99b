#pragma once
/// led: Laplacian edge detection of hot pixels and cosmic-ray hits in each frame, after
/// van Dokkum (2001, PASP 113, 1420, "Cosmic-ray rejection by Laplacian edge detection",
/// L.A.Cosmic); the template's step 3a (do_led).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct LedParams {
  double led_threshold = 10.0;
  std::int64_t led_factor = 2;
  std::optional<std::int64_t> led_n = 2;  // unset: repeat until a pass finds nothing (at most max_passes)
  bool fine_structure = true;
  double contrast_factor = 5.0;
  double read_noise = 3.0;
  std::string noise_model = "image";
  std::int64_t max_passes = 10;

  static Schema<LedParams> schema() {
    return tessera::schema<LedParams>(
        field(&LedParams::led_threshold, "led_threshold",
              "Flag a pixel whose Laplacian significance, with large-scale structure removed, exceeds this many "
              "sigma (van Dokkum 2001 sigma_lim; template: led_threshold)",
              Range::above(0)),
        field(&LedParams::led_factor, "led_factor",
              "Subsampling factor before the Laplacian (each pixel becomes f x f); at least 2", Range::at_least(2)),
        field(&LedParams::led_n, "led_n",
              "Detection passes per frame, each on the frame cleaned by the previous one; \"none\": until a pass "
              "finds nothing (at most max_passes)",
              Range::at_least(1)),
        field(&LedParams::fine_structure, "fine_structure",
              "Keep only candidates sharper than the fine-structure image (3x3 median minus its 7x7 median), "
              "which protects the traces and the 0th order"),
        field(&LedParams::contrast_factor, "contrast_factor",
              "With fine_structure: least contrast L+ / (led_factor x F) of a flagged pixel (van Dokkum 2001 f_lim)",
              Range::above(0)),
        field(&LedParams::read_noise, "read_noise",
              "Read noise (electrons rms) of the noise model sqrt(5x5 median + read_noise^2); data in electrons",
              Range::at_least(0)),
        field(&LedParams::noise_model, "noise_model",
              "'image': sqrt(5x5 median of the frame + read_noise^2) (van Dokkum 2001); 'err': 5x5 median of the "
              "err cube (use after background subtraction)",
              Choices{{"image", "err"}}),
        field(&LedParams::max_passes, "max_passes", "Most passes per frame when led_n is \"none\"",
              Range::at_least(1)));
  }
};

namespace led {

/// Median of the (2r+1) x (2r+1) window centred on (y, x) of a row-major ny x nx image,
/// clipped to the image (an even count averages the two middle values). `buffer` holds at
/// least (2r+1)^2 floats. Values must not be NaN.
float window_median(const float* image, std::size_t ny, std::size_t nx, std::size_t y, std::size_t x,
                    std::size_t radius, float* buffer);

/// L+ of van Dokkum (2001) for the whole image: the image subsampled by `factor` (each pixel
/// repeated f x f), convolved with the 2D Laplacian kernel [[0,-1,0],[-1,4,-1],[0,-1,0]],
/// negative values set to 0, and averaged back over each f x f block; the border is
/// extended by repetition. Computed in closed form (see led.cpp), equal to doing it literally.
void laplacian_plus(const float* image, std::size_t ny, std::size_t nx, std::size_t factor, float* out);

}  // namespace led

/// Buffers reused from frame to frame so that a frame allocates nothing once they have grown.
struct LedScratch {
  std::vector<float> lap;             ///< L+ of the current pass
  std::vector<float> noise;           ///< noise model, computed only where needed; -1 where not (yet)
  std::vector<std::size_t> noise_set; ///< where `noise` was computed in this pass (reset to -1 after it)
  std::vector<std::uint8_t> flagged;  ///< 1 where this frame has a flagged pixel; all 0 between frames
  std::vector<std::size_t> found;     ///< pixels found in the current pass
  std::vector<std::size_t> all;       ///< pixels flagged in this frame (to clear `flagged` after it)
  std::vector<float> values;          ///< replacement values of the current pass
};

struct LedFrameResult {
  std::size_t flagged = 0;     ///< distinct pixels replaced (non-finite ones included)
  std::size_t non_finite = 0;  ///< of which not finite on input
  std::size_t passes = 0;      ///< passes that ran (the last finds nothing unless the limit stopped it)
};

/// Cleans one ny x nx frame in place. Each pass (van Dokkum 2001, section 3):
///   L+ = laplacian_plus(I, f); N = sqrt(max(med5(I), 0) + read_noise^2) (or med5(err));
///   S = L+ / (f N); S' = S - med5(S); candidate where S' > led_threshold;
///   with fine_structure, F = med3(I) - med7(med3(I)) and a candidate is kept only where
///   L+ / (f max(F, 0.01 N)) > contrast_factor (as L.A.Cosmic compares S with F / N);
///   every pixel found is replaced by the median of the unflagged pixels of its 5x5
///   neighbourhood (wider if all are flagged) and gets dq::led_outlier.
/// Non-finite input values are replaced first the same way (dq::non_finite as well).
/// `err` may be empty unless params.noise_model is "err".
LedFrameResult led_frame(std::span<float> image, std::span<const float> err, std::span<std::uint32_t> dq,
                         std::size_t ny, std::size_t nx, const LedParams& params, LedScratch& scratch);

struct Led {
  static constexpr std::string_view name = "led";
  static constexpr std::string_view summary =
      "Laplacian edge detection (van Dokkum 2001) of hot pixels and cosmic rays in each frame; replace from "
      "neighbours";
  using Params = LedParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
