#pragma once
/// bkg_uniform: subtract one background value per frame, taken from the histogram of the
/// pixels inside `bounds` (ExoTiC-UVIS / HUSTLE-tools stage 1, "uniform value background
/// subtraction", step 4a).
///
/// The value is the mode (centre of the fullest of hist_bins bins over [hist_min, hist_max]),
/// the centre of a Gaussian fitted to the histogram around its peak (fit = "Gaussian"), or
/// the median of the pixels in [hist_min, hist_max] (fit = "median").
///
/// The Gaussian fit is a Poisson maximum-likelihood fit of exp(polynomial) to the bin counts
/// within ±gauss_window σ of the current centre, repeated until the window stops moving. A
/// sky of a few tens of electrons is Poisson-distributed, hence skewed: its peak lies about
/// κ3 / (2 κ2) below its mean (≈ 0.3 e⁻ for 15 e⁻ of sky and 3 e⁻ of read noise), more than
/// the 0.1 e⁻ a transit light curve tolerates. With gauss_skew the fitted log-density has a
/// cubic term, read as the first skewness term of a Gram–Charlier (type A) series about a
/// Gaussian, whose centre is the distribution's mean rather than its peak (Kendall & Stuart,
/// "The Advanced Theory of Statistics", vol. 1, ch. 6, series expansions of frequency
/// functions). Without it the fit is a plain Gaussian, whose centre lands between the peak
/// and the mean depending on the window: on the simulator's 15 e⁻ sky, 0.21 e⁻ low at
/// ±1.5σ and 0.016 e⁻ low at ±3σ (tests/mpi/uniform_background_accuracy_test.cpp).
///
/// With exclude_dq, pixels with any dq bit set (HST's own flags as read, and those of
/// Tessera's cleaning steps) are left out of the estimate: hot, warm or saturated pixels
/// would bias it, and pixels a cleaning step replaced are at random places, so leaving them
/// out costs nothing. Every pixel of the frame is still subtracted.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "steps/cleaning/spatial_smooth.hpp"  // RowSegment, clip_boxes, row_segments, validate_boxes
#include "tessera/step.hpp"

namespace tessera::steps {

struct BkgUniformParams {
  std::optional<std::string> fit;  // unset: the mode
  std::optional<std::vector<std::vector<double>>> bounds = std::vector<std::vector<double>>{{0, 150, 0, 400},
                                                                                            {440, 590, 0, 400}};
  std::optional<double> hist_min = -20.0;
  std::optional<double> hist_max = 50.0;
  std::int64_t hist_bins = 1000;
  double gauss_window = 3.0;
  bool gauss_skew = true;
  bool exclude_dq = true;

  static Schema<BkgUniformParams> schema() {
    return tessera::schema<BkgUniformParams>(
        field(&BkgUniformParams::fit, "fit",
              "Value taken from the histogram: unset = the mode (centre of the fullest bin), 'Gaussian' = centre of "
              "a Gaussian fitted around the peak, 'median' = median of the pixels in [hist_min, hist_max]",
              Choices{{"Gaussian", "median"}}),
        field(&BkgUniformParams::bounds, "bounds",
              "Boxes [r1, r2, c1, c2] (rows [r1, r2), columns [c1, c2), as the reference slices image[r1:r2, c1:c2]; clipped to the frame) whose pixels make the "
              "histogram; unset: the whole frame",
              Range::at_least(0)),
        field(&BkgUniformParams::hist_min, "hist_min",
              "Lowest pixel value in the histogram (e-); unset: the smallest value inside bounds"),
        field(&BkgUniformParams::hist_max, "hist_max",
              "Highest pixel value in the histogram (e-); unset: the largest value inside bounds"),
        field(&BkgUniformParams::hist_bins, "hist_bins", "Number of histogram bins over [hist_min, hist_max]",
              Range::at_least(1)),
        field(&BkgUniformParams::gauss_window, "gauss_window",
              "Gaussian fit: use the bins within this many sigma of the centre, refitting until the window stops "
              "moving (ours)",
              Range::closed(1, 10)),
        field(&BkgUniformParams::gauss_skew, "gauss_skew",
              "Gaussian fit: add a skewness (Gram-Charlier) term so the value is the sky's mean, not the peak of "
              "its Poisson-skewed histogram, which lies ~0.3 e- lower at 15 e- (ours)"),
        field(&BkgUniformParams::exclude_dq, "exclude_dq",
              "Leave pixels with any dq bit set (HST's flags or a Tessera cleaning step's) out of the estimate; "
              "they are still subtracted (ours)"));
  }
};

/// Throws ConfigError naming the parameter for malformed bounds or hist_min >= hist_max.
void validate(const BkgUniformParams& params);

/// Counts of values in `bins` equal bins over [lo, hi]; the last bin includes hi (as numpy).
struct Histogram {
  double lo = 0, hi = 0;
  std::vector<double> counts;
  double width() const { return (hi - lo) / static_cast<double>(counts.size()); }
  double centre(std::size_t bin) const { return lo + (static_cast<double>(bin) + 0.5) * width(); }
};

/// Fills `histogram` (reusing its storage) with the values in [lo, hi]; others are ignored.
void fill_histogram(std::span<const float> values, double lo, double hi, std::size_t bins, Histogram& histogram);

/// Centre of the fullest bin (the first of equals, as numpy.argmax).
double histogram_mode(const Histogram& histogram);

/// Result of fit_gaussian: `centre` is the mean (with skew) or the peak (without), `sigma`
/// the Gaussian width; `ok` false with `why` when the histogram has no usable peak.
struct GaussianFit {
  double centre = 0, sigma = 0;
  bool ok = false;
  std::string why;
};

/// Fits the histogram's counts within ±window·σ of the centre by Poisson maximum likelihood
/// with log-counts = polynomial in (x − centre)/σ of degree 2 (a Gaussian) or 3 (with skew),
/// recentring the window on each result until it settles. Starts from start_centre and
/// start_sigma (e.g. a smoothed mode and 1.4826 × the median absolute deviation).
GaussianFit fit_gaussian(const Histogram& histogram, double start_centre, double start_sigma, double window, bool skew);

/// What one frame's background estimate found.
struct FrameBackground {
  double value = 0;          ///< the value to subtract
  double median_before = 0;  ///< median of the usable pixels inside bounds (all values)
  /// The two middle values of those pixels (equal for an odd count), from which the median
  /// after subtraction follows exactly: subtracting one value keeps their order.
  float middle_low = 0, middle_high = 0;
  std::size_t pixels = 0;    ///< usable pixels inside bounds and in [hist_min, hist_max]
  bool fit_failed = false;   ///< the Gaussian fit failed and the median was used instead
  std::string why;           ///< why it failed
};

/// Buffers reused from frame to frame.
struct BkgUniformScratch {
  std::vector<float> values, work;
  Histogram histogram;
};

/// Gathers the frame's usable pixels (finite, inside `region`, no dq bit set if
/// exclude_dq; a pixel in two boxes counts once) and estimates its background as `params`
/// asks. Throws StepError if no pixel is usable or none lies in [hist_min, hist_max].
FrameBackground estimate_uniform_background(std::span<const float> frame, std::span<const std::uint32_t> dq,
                                            std::size_t nx, const std::vector<RowSegment>& region,
                                            const BkgUniformParams& params, BkgUniformScratch& scratch);

/// The frame's value after subtracting `value`, as the step writes it.
inline float subtract_background(float v, double value) { return static_cast<float>(v - value); }

/// Median of the usable pixels after subtracting estimate.value: rounding is monotonic, so
/// the middle pixels stay the middle ones and no second selection is needed.
double median_after(const FrameBackground& estimate);

struct BkgUniform {
  static constexpr std::string_view name = "bkg_uniform";
  static constexpr std::string_view summary =
      "Subtract one background value per frame: the mode, a Gaussian fit or the median of the histogram of the "
      "pixels inside bounds";
  using Params = BkgUniformParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
