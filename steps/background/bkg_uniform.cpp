#include "steps/background/bkg_uniform.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "steps/common/select.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

constexpr std::size_t kMaxWindowPasses = 50;
constexpr std::size_t kMaxNewtonSteps = 100;

std::string number_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

void gather(std::span<const float> frame, std::span<const std::uint32_t> dq, std::size_t nx,
            const std::vector<RowSegment>& region, bool exclude_dq, std::vector<float>& out) {
  out.clear();
  for (const RowSegment& s : region) {
    const float* row = frame.data() + s.y * nx;
    const std::uint32_t* flags = dq.data() + s.y * nx;
    for (std::size_t x = s.x0; x < s.x1; ++x)
      if (std::isfinite(row[x]) && !(exclude_dq && flags[x] != 0)) out.push_back(row[x]);
  }
}

/// Poisson maximum-likelihood fit of counts h_i ≈ exp(Σ_j β_j u_i^j) over the bins [b0, b1],
/// u_i = (centre_i − centre) / sigma. The negative log-likelihood Σ (m_i − h_i η_i) is convex
/// in β, so Newton's method with step halving converges from any start.
template <class Vector>
bool poisson_log_polynomial_fit(const Histogram& h, std::size_t b0, std::size_t b1, double centre, double sigma,
                                Eigen::Index terms, Vector& beta) {
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 4, 4>;
  auto features = [&](std::size_t bin, double* x) {
    const double u = (h.centre(bin) - centre) / sigma;
    x[0] = 1;
    for (Eigen::Index j = 1; j < terms; ++j) x[j] = x[j - 1] * u;
  };
  auto objective = [&](const Vector& b) {
    double sum = 0, x[4];
    for (std::size_t i = b0; i <= b1; ++i) {
      features(i, x);
      double eta = 0;
      for (Eigen::Index j = 0; j < terms; ++j) eta += b(j) * x[j];
      sum += std::exp(eta) - h.counts[i] * eta;
    }
    return sum;
  };
  double peak = 1;
  for (std::size_t i = b0; i <= b1; ++i) peak = std::max(peak, h.counts[i]);
  beta.setZero(terms);
  beta(0) = std::log(peak);
  beta(2) = -0.5;
  double current = objective(beta);
  Matrix hessian(terms, terms);
  Vector gradient(terms), trial(terms);
  for (std::size_t step = 0; step < kMaxNewtonSteps; ++step) {
    hessian.setZero();
    gradient.setZero();
    double x[4];
    for (std::size_t i = b0; i <= b1; ++i) {
      features(i, x);
      double eta = 0;
      for (Eigen::Index j = 0; j < terms; ++j) eta += beta(j) * x[j];
      const double m = std::exp(eta);
      for (Eigen::Index a = 0; a < terms; ++a) {
        gradient(a) += (m - h.counts[i]) * x[a];
        for (Eigen::Index b = 0; b <= a; ++b) hessian(a, b) += m * x[a] * x[b];
      }
    }
    const Vector delta = hessian.template selfadjointView<Eigen::Lower>().ldlt().solve(gradient);
    if (!delta.allFinite()) return false;
    double scale = 1;
    for (int halving = 0; halving < 40; ++halving, scale *= 0.5) {
      trial = beta - scale * delta;
      const double value = objective(trial);
      if (std::isfinite(value) && value <= current) {
        current = value;
        break;
      }
    }
    const double change = (scale * delta).cwiseAbs().maxCoeff();
    beta = trial;
    if (change < 1e-10) return true;
  }
  return true;  // converged to within rounding: the last steps only shuffle the last digits
}

}  // namespace

void validate(const BkgUniformParams& p) {
  validate_boxes(p.bounds, "bounds");
  if (p.hist_min && p.hist_max && !(*p.hist_min < *p.hist_max))
    throw ConfigError("hist_min: must be below hist_max, got hist_min = " + number_text(*p.hist_min) +
                      " and hist_max = " + number_text(*p.hist_max));
  if (p.hist_bins < 1) throw ConfigError("hist_bins: must be at least 1");
  if (p.fit && *p.fit != "Gaussian" && *p.fit != "median")
    throw ConfigError("fit: expected unset (the mode), 'Gaussian' or 'median', got '" + *p.fit + "'");
  if (!(p.gauss_window >= 1 && p.gauss_window <= 10)) throw ConfigError("gauss_window: must be in [1, 10]");
}

void fill_histogram(std::span<const float> values, double lo, double hi, std::size_t bins, Histogram& histogram) {
  histogram.lo = lo;
  histogram.hi = hi;
  histogram.counts.assign(bins, 0.0);
  const double scale = hi > lo ? static_cast<double>(bins) / (hi - lo) : 0.0;
  for (float v : values) {
    if (!(v >= lo && v <= hi)) continue;
    const auto bin = static_cast<std::size_t>((v - lo) * scale);
    histogram.counts[std::min(bin, bins - 1)] += 1;
  }
}

double histogram_mode(const Histogram& histogram) {
  const auto fullest = std::max_element(histogram.counts.begin(), histogram.counts.end());
  return histogram.centre(static_cast<std::size_t>(fullest - histogram.counts.begin()));
}

GaussianFit fit_gaussian(const Histogram& histogram, double start_centre, double start_sigma, double window,
                         bool skew) {
  using Vector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, 4, 1>;
  GaussianFit result;
  const std::size_t bins = histogram.counts.size();
  const double width = histogram.width();
  const Eigen::Index terms = skew ? 4 : 3;
  if (!(width > 0) || !(start_sigma > 0)) {
    result.why = "the histogram has no width";
    return result;
  }
  double centre = start_centre, sigma = start_sigma;
  Vector beta;
  for (std::size_t pass = 0; pass < kMaxWindowPasses; ++pass) {
    // Bins whose centres lie within ±window·σ of the centre.
    const double first = std::ceil((centre - window * sigma - histogram.lo) / width - 0.5);
    const double last = std::floor((centre + window * sigma - histogram.lo) / width - 0.5);
    const std::size_t b0 = static_cast<std::size_t>(std::clamp(first, 0.0, static_cast<double>(bins - 1)));
    const std::size_t b1 = static_cast<std::size_t>(std::clamp(last, 0.0, static_cast<double>(bins - 1)));
    double total = 0;
    for (std::size_t i = b0; i <= b1; ++i) total += histogram.counts[i];
    if (last < first || b1 + 1 < b0 + static_cast<std::size_t>(terms) + 2) {
      result.why = "fewer than " + std::to_string(terms + 2) + " bins within " + number_text(window) +
                   " sigma of the peak (use more hist_bins)";
      return result;
    }
    if (total < 10.0 * static_cast<double>(terms)) {
      result.why = "too few pixels near the peak (" + number_text(total) + ")";
      return result;
    }
    if (!poisson_log_polynomial_fit(histogram, b0, b1, centre, sigma, terms, beta)) {
      result.why = "the fit did not converge";
      return result;
    }
    // Coefficients of log-counts in s = x − centre.
    const double a1 = beta(1) / sigma, a2 = beta(2) / (sigma * sigma);
    const double a3 = skew ? beta(3) / (sigma * sigma * sigma) : 0.0;
    if (!(a2 < 0)) {
      result.why = "the histogram has no peak near " + number_text(centre);
      return result;
    }
    // Offset of the new centre: the peak −a1 / (2 a2), or with skew the Gram–Charlier mean μ'
    // solving a2 + 3 a3 μ' = −1 / (2σ²) and a1 + 2 a2 μ' + 3 a3 μ'² = −3 a3 σ² (Newton from
    // the peak; a3 is small, so a few steps do).
    double offset = -a1 / (2 * a2);
    if (skew) {
      bool solved = false;
      for (int step = 0; step < 50; ++step) {
        const double q = a2 + 3 * a3 * offset;
        if (!(q < 0)) break;
        const double f = a1 + 2 * a2 * offset + 3 * a3 * offset * offset - 3 * a3 / (2 * q);
        const double df = 2 * a2 + 6 * a3 * offset + 9 * a3 * a3 / (2 * q * q);
        const double next = offset - f / df;
        if (!std::isfinite(next)) break;
        const bool done = std::fabs(next - offset) < 1e-12 * (1 + std::fabs(offset)) + 1e-9 * sigma;
        offset = next;
        if (done) {
          solved = a2 + 3 * a3 * offset < 0;
          break;
        }
      }
      if (!solved) {
        result.why = "the skewed fit has no mean near " + number_text(centre);
        return result;
      }
    }
    const double q = a2 + 3 * a3 * offset;
    const double new_sigma = std::sqrt(-1 / (2 * q));
    const double new_centre = centre + offset;
    if (!(new_centre >= histogram.lo && new_centre <= histogram.hi)) {
      result.why = "the fitted centre " + number_text(new_centre) + " lies outside the histogram";
      return result;
    }
    const bool settled = std::fabs(new_centre - centre) < 1e-6 * new_sigma && std::fabs(new_sigma - sigma) < 1e-6 * sigma;
    centre = new_centre;
    sigma = new_sigma;
    if (settled) break;
    // A window edge that flips one bin in and out can keep it from settling exactly; the
    // last pass is then as good as any.
  }
  result.centre = centre;
  result.sigma = sigma;
  result.ok = true;
  return result;
}

double median_after(const FrameBackground& estimate) {
  const float low = subtract_background(estimate.middle_low, estimate.value);
  const float high = subtract_background(estimate.middle_high, estimate.value);
  return estimate.middle_low == estimate.middle_high ? high : 0.5f * (low + high);
}

FrameBackground estimate_uniform_background(std::span<const float> frame, std::span<const std::uint32_t> dq,
                                            std::size_t nx, const std::vector<RowSegment>& region,
                                            const BkgUniformParams& params, BkgUniformScratch& scratch) {
  FrameBackground out;
  std::vector<float>& values = scratch.values;
  std::vector<float>& work = scratch.work;
  gather(frame, dq, nx, region, params.exclude_dq, values);
  if (values.empty())
    throw StepError("no usable pixel inside bounds" +
                    std::string(params.exclude_dq ? " (finite and without dq flags; see exclude_dq)" : " (finite)"));
  work.assign(values.begin(), values.end());
  // The median as median_of takes it, keeping the middle pair for median_after.
  const std::size_t n = work.size();
  out.middle_high = select_kth(work, n / 2);
  out.middle_low = out.middle_high;
  if (n % 2 == 0) out.middle_low = *std::max_element(work.begin(), work.begin() + static_cast<std::ptrdiff_t>(n / 2));
  out.median_before = n % 2 == 1 ? out.middle_high : 0.5f * (out.middle_low + out.middle_high);

  const auto [smallest, largest] = std::minmax_element(values.begin(), values.end());
  const double lo = params.hist_min ? *params.hist_min : *smallest;
  const double hi = params.hist_max ? *params.hist_max : *largest;
  work.clear();
  for (float v : values)
    if (v >= lo && v <= hi) work.push_back(v);
  out.pixels = work.size();
  if (work.empty())
    throw StepError("no usable pixel inside bounds lies in [hist_min, hist_max] = [" + number_text(lo) + ", " +
                    number_text(hi) + "]");
  if (!(hi > lo)) {  // every value is the same
    out.value = lo;
    return out;
  }
  const std::span<float> in_range(work.data(), work.size());

  if (params.fit && *params.fit == "median") {
    out.value = median_of(in_range);
    return out;
  }
  fill_histogram(in_range, lo, hi, static_cast<std::size_t>(params.hist_bins), scratch.histogram);
  const Histogram& histogram = scratch.histogram;
  if (!params.fit) {
    out.value = histogram_mode(histogram);
    return out;
  }

  // Gaussian: start from a robust width (1.4826 × MAD) and the mode of the histogram
  // smoothed over about half that width, which the noise of single bins cannot pull far.
  const float median = median_of(in_range);
  for (float& v : in_range) v = std::fabs(v - median);
  const double sigma0 = std::max(1.4826 * static_cast<double>(median_of(in_range)), histogram.width());
  const auto half = static_cast<std::size_t>(0.5 * sigma0 / histogram.width());
  const std::size_t bins = histogram.counts.size();
  double best = -1, running = 0;
  std::size_t best_bin = 0;
  for (std::size_t i = 0; i < std::min(half, bins); ++i) running += histogram.counts[i];
  for (std::size_t i = 0; i < bins; ++i) {
    if (i + half < bins) running += histogram.counts[i + half];  // window [i − half, i + half]
    if (i > half) running -= histogram.counts[i - half - 1];
    if (running > best) {
      best = running;
      best_bin = i;
    }
  }
  const GaussianFit fit = fit_gaussian(histogram, histogram.centre(best_bin), sigma0, params.gauss_window,
                                       params.gauss_skew);
  if (fit.ok) {
    out.value = fit.centre;
  } else {
    out.fit_failed = true;
    out.why = fit.why;
    out.value = median;
  }
  return out;
}

namespace {
/// validate() with the step kind in front of the message, for errors raised while planning.
void validate_step(const BkgUniformParams& params) {
  try {
    validate(params);
  } catch (const ConfigError& e) {
    throw ConfigError("bkg_uniform: " + std::string(e.what()));
  }
}
}  // namespace

StepIO BkgUniform::io(const Params& params) {
  validate_step(params);
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "dq"}};
  io.writes = {
      {DataKind::Cube, {"data", "", ""}},
      {DataKind::FrameVector, {"bkg_uniform_value", "electron", "uniform background subtracted from each frame"}},
      {DataKind::FrameVector,
       {"bkg_uniform_median_before", "electron", "median of the bkg_uniform bounds pixels before subtraction"}},
      {DataKind::FrameVector,
       {"bkg_uniform_median_after", "electron", "median of the bkg_uniform bounds pixels after subtraction"}}};
  return io;
}

void BkgUniform::run(const Params& params, StepContext& context) {
  validate_step(params);
  auto data = context.frames<float>("data");
  auto dq = context.frames<std::uint32_t>("dq");
  const std::vector<RowSegment> region = row_segments(clip_boxes(params.bounds, data.ny, data.nx, "bounds"), data.ny);
  std::vector<double>& values = context.frame_vector("bkg_uniform_value").values;
  std::vector<double>& before = context.frame_vector("bkg_uniform_median_before").values;
  std::vector<double>& after = context.frame_vector("bkg_uniform_median_after").values;
  BkgUniformScratch scratch;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    const std::span<float> frame = data.frame(t);
    FrameBackground estimate;
    try {
      estimate = estimate_uniform_background(frame, dq.frame(t), data.nx, region, params, scratch);
    } catch (const StepError& e) {
      throw StepError("frame " + std::to_string(t) + ": " + e.what());
    }
    if (estimate.fit_failed)
      context.log().warn("frame " + std::to_string(t) + ": Gaussian fit failed (" + estimate.why +
                         "); used the median of the pixels in range instead");
    for (float& v : frame) v = subtract_background(v, estimate.value);
    values[t] = estimate.value;
    before[t] = estimate.median_before;
    after[t] = median_after(estimate);
    context.advance(1);
  }
}

}  // namespace tessera::steps
