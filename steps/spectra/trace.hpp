#pragma once
/// trace: where the spectrum of each order lies, per integration and dispersion index — the
/// JWST TSO notebook's `trace_spectrum` (section 5.1) followed by its B-spline smoothing.
///
/// For each integration and order, the step walks from `start` toward `end` along the
/// dispersion axis. On each spatial line (a column for dispersion_axis "x") it
///   1. replaces do_not_use and non-finite pixels, and outliers whose residual from a size-5
///      median filter exceeds `nsigma` MAD sigma (and half their height above the line's
///      median, which spares the peaks of bright, sharp profiles), by the median-filter value;
///   2. subtracts the line's median and smooths it with a Gaussian of σ = `gauss_filter_width`
///      pixels (scipy's gaussian_filter1d truncated at 4σ; the line padded with its median, or
///      reflected as scipy does with recentre = false), which turns the two-horned NIRISS/SOSS
///      profile into one peak;
///   3. takes the flux-weighted centroid of the smoothed line over the pixels within
///      `profile_radius` of the previous line's centroid (`start_position` on the first) and,
///      with `recentre` (default), moves that window onto the centroid until it converges;
///   4. keeps the previous centroid when the new one moved more than `y_tolerance`, or when the
///      line has no usable pixel or no positive smoothed flux.
/// A least-squares cubic B-spline with `nknots` (the notebook's knot placement; de Boor 1978,
/// Dierckx 1993) through the centroids gives the trace. A second phase measures each order's
/// shift per integration: the B-spline at the middle of the traced range minus its median over
/// all integrations. See docs/spectra-tracing.md.
///
/// Products per order o: images trace_{o} and trace_centroid_{o} (time, x|y; pixel; NaN outside
/// the traced range) and vector trace_shift_{o} (pixel).
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steps/common/bspline.hpp"
#include "steps/common/spectral_geometry.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct TraceParams {
  std::vector<std::string> orders{"order1"};
  std::vector<std::int64_t> start{2043};
  std::vector<double> start_position{70.0};
  std::vector<std::int64_t> end{4};
  std::vector<std::int64_t> spatial_min{0};
  std::optional<std::vector<std::int64_t>> spatial_max;
  double profile_radius = 20.0;
  double nsigma = 100.0;
  double gauss_filter_width = 10.0;
  double y_tolerance = 5.0;
  std::int64_t nknots = 11;
  bool recentre = true;
  std::string dispersion_axis = "x";

  static Schema<TraceParams> schema() {
    return tessera::schema<TraceParams>(
        field(&TraceParams::orders, "orders",
              "Names of the traced orders (products trace_{name}, trace_centroid_{name}, trace_shift_{name}); "
              "the lists start, start_position, end, spatial_min and spatial_max hold one entry per order"),
        field(&TraceParams::start, "start",
              "Dispersion index (column for dispersion_axis x) where tracing starts, one per order (notebook xstart)",
              Range::at_least(0)),
        field(&TraceParams::start_position, "start_position",
              "Spatial position (row for dispersion_axis x) of the trace at `start`, a guess within a few pixels, "
              "one per order (notebook ystart, in full-frame pixels)",
              Range::at_least(0)),
        field(&TraceParams::end, "end",
              "Dispersion index where tracing ends (inclusive), one per order (notebook xend)", Range::at_least(0)),
        field(&TraceParams::spatial_min, "spatial_min",
              "Spatial pixels below this index are ignored, one per order (the notebook cuts rows below 70 to trace "
              "order 2)",
              Range::at_least(0)),
        field(&TraceParams::spatial_max, "spatial_max",
              "Spatial pixels at or above this index are ignored, one per order; unset: the whole line",
              Range::at_least(1)),
        field(&TraceParams::profile_radius, "profile_radius",
              "Centroid window half-width: pixels closer than this to the previous line's centroid (with recentre, "
              "then to the centroid itself)",
              Range::above(0)),
        field(&TraceParams::nsigma, "nsigma",
              "Pixels further than this many MAD sigma from a size-5 median filter of their line (and by at least "
              "half their height above the line's median) are replaced by the filter value",
              Range::above(0)),
        field(&TraceParams::gauss_filter_width, "gauss_filter_width",
              "Sigma (pixels) of the Gaussian smoothing of each line before centroiding (truncated at 4 sigma); 0: "
              "no smoothing",
              Range::at_least(0)),
        field(&TraceParams::y_tolerance, "y_tolerance",
              "A centroid further than this (pixels) from the previous line's is replaced by the previous one",
              Range::above(0)),
        field(&TraceParams::nknots, "nknots",
              "B-spline knots: interior knots at lo + j (hi - lo) / nknots, j = 1 .. nknots - 1, over the traced "
              "range [lo, hi], as in the notebook",
              Range::at_least(1)),
        field(&TraceParams::recentre, "recentre",
              "Centre the centroid window on the centroid itself (iterated to convergence, fractional pixels at its "
              "edges; the line is padded with its median beyond its ends); false: the notebook's centroid, one pass "
              "over the whole pixels within profile_radius of the previous line's centroid and a reflecting boundary "
              "(biased toward that centroid's pixel and away from the ends of the line)"),
        field(&TraceParams::dispersion_axis, std::string(spectra::dispersion_param),
              std::string(spectra::dispersion_doc), Choices{{"x", "y"}}));
  }
};

/// One order's tracing setup, validated (indices in pixels of the full frame).
struct TraceOrder {
  std::string name;
  std::size_t start = 0, end = 0;
  double start_position = 0;
  std::size_t spatial_min = 0;
  std::optional<std::size_t> spatial_max;  ///< unset: the whole line
};

/// The orders of `params`, checked against each other (list lengths, names, enough range for
/// the knots); throws ConfigError naming the parameter.
std::vector<TraceOrder> trace_orders(const TraceParams& params);

/// Exact median of finite values that first looks among those within a bracket around the
/// previous call's median (neighbouring spatial lines have similar medians): one counting pass
/// and a selection among the few bracketed values instead of a selection among all of them.
/// A miss steps the bracket outward (counting again) before falling back on a full selection.
/// The result never depends on the state, only the time it takes.
struct BracketedMedian {
  float centre = 0, halfwidth = 0;
  bool primed = false;
  /// Median of v[0..n) (n > 0, all finite; an even count averages the middle two), using
  /// scratch[0..n).
  float operator()(const float* v, std::size_t n, float* scratch);
  /// Whether the median of v[0..n) lies within halfwidth of centre (counting only).
  bool brackets(const float* v, std::size_t n) const;
};

/// One frame's spatial lines, each contiguous (a column for dispersion along x, transposed
/// in cache-sized tiles; a row for dispersion along y), with do_not_use pixels set to NaN.
/// Built once per frame and shared by every order's tracer.
class FrameLines {
 public:
  /// `dq` may be empty (no flags).
  void load(std::span<const float> data, std::span<const std::uint32_t> dq, std::size_t ny, std::size_t nx,
            spectra::Dispersion dispersion);
  std::size_t n_wave() const { return n_wave_; }
  std::size_t n_spatial() const { return n_spatial_; }
  const float* line(std::size_t d) const { return values_.data() + d * stride_; }
  /// Every value of line d is finite.
  bool finite(std::size_t d) const { return finite_[d] == 0.0f; }

 private:
  std::size_t n_wave_ = 0, n_spatial_ = 0, stride_ = 0;
  std::vector<float> values_;
  std::vector<float> finite_;  ///< 0·v summed over each line: 0, or NaN when a value is not finite
};

/// Traces one order on frames of ny × nx. Holds the Gaussian kernel, the factored B-spline fit
/// and all scratch space, so tracing a frame allocates nothing.
class FrameTracer {
 public:
  /// Throws StepError naming the parameter when the order does not fit in the frame.
  FrameTracer(const TraceParams& params, const TraceOrder& order, std::size_t ny, std::size_t nx);

  /// Traces one frame. Writes n_wave values into each of `centroids` (the line centroids) and
  /// `trace` (the B-spline), NaN outside the traced range. Returns the number of lines whose
  /// centroid fell back on the previous one.
  std::size_t trace(const FrameLines& lines, std::span<float> centroids, std::span<float> trace);

  std::size_t first() const { return lo_; }  ///< lowest traced dispersion index
  std::size_t last() const { return hi_; }   ///< highest traced dispersion index
  /// The dispersion index whose B-spline value measures the shift (the notebook's middle pixel).
  std::size_t middle() const { return lo_ + (hi_ - lo_ + 1) / 2; }
  /// The B-spline fit over [first(), last()] (its knots, for checks).
  const bspline::LeastSquaresFit& spline() const { return spline_; }

 private:
  /// Centroid of one line (`finite`: it has no NaN); false when it has none.
  bool centroid_line(const float* line, bool finite, double guess, double& centroid);
  /// The line with flagged, non-finite and outlying pixels replaced, minus `median`, into cleaned_.
  void clean_line(const float* line, bool finite, float median);
  /// The cleaned line smoothed by the Gaussian at pixels [lo, hi] into smoothed_.
  void smooth_range(std::ptrdiff_t lo, std::ptrdiff_t hi);

  spectra::Dispersion dispersion_;
  std::size_t ny_, nx_, n_wave_, n_spatial_;
  std::size_t start_, end_, lo_, hi_;
  double start_position_;
  std::size_t s0_, s1_;  ///< spatial range [s0, s1) used
  double radius_, nsigma_, tolerance_;
  bool recentre_;
  std::size_t kernel_radius_;
  std::vector<float> kernel_;
  bspline::LeastSquaresFit spline_;
  BracketedMedian line_median_, residual_median_;
  // Scratch.
  std::vector<float> values_, scratch_, filtered_, cleaned_, extended_, smoothed_;
  std::vector<double> sum0_, sum1_, walk_, ascending_, coefficients_, fitted_;
};

struct Trace {
  static constexpr std::string_view name = "trace";
  static constexpr std::string_view summary =
      "Trace spectral orders per integration: line-by-line centroids of the Gaussian-smoothed profile (JWST TSO "
      "notebook) smoothed by a least-squares B-spline; per-integration trace shift";
  using Params = TraceParams;
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Reduce}; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
