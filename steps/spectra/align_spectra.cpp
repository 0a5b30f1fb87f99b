#include "steps/spectra/align_spectra.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Keys (1981) cubic convolution weights (a = −1/2) of samples j−1, j, j+1, j+2 at j + f.
void keys_weights(double f, double w[4]) {
  const double f2 = f * f, f3 = f2 * f;
  w[0] = -0.5 * f3 + f2 - 0.5 * f;
  w[1] = 1.5 * f3 - 2.5 * f2 + 1.0;
  w[2] = -1.5 * f3 + 2.0 * f2 + 0.5 * f;
  w[3] = 0.5 * f3 - 0.5 * f2;
}

/// Cubic B-spline interpolation coefficients of `s` (mirror boundaries): the recursive
/// prefilter of Unser, Aldroubi & Eden (1991) / Unser (1999, "Splines: a perfect fit for
/// signal and image processing"), one causal and one anticausal pass with the pole
/// z = √3 − 2, so that Σ_j c_j β³(i − j) = s_i exactly at the samples.
void bspline_coefficients(std::span<const double> s, std::vector<double>& c) {
  const std::size_t n = s.size();
  c.assign(s.begin(), s.end());
  if (n < 2) return;
  const double z = std::sqrt(3.0) - 2.0;
  for (double& v : c) v *= 6.0;  // gain (1 − z)(1 − 1/z)
  // Causal initial value: the mirrored series summed with powers of z (|z|^28 < 1e-16).
  double sum = c[0], power = z;
  for (std::size_t k = 1; k < std::min<std::size_t>(n, 28); ++k, power *= z) sum += power * c[k];
  c[0] = sum;
  for (std::size_t k = 1; k < n; ++k) c[k] += z * c[k - 1];
  // Anticausal initial value for mirror boundaries.
  c[n - 1] = z / (z * z - 1.0) * (c[n - 1] + z * c[n - 2]);
  for (std::size_t k = n - 1; k-- > 0;) c[k] = z * (c[k + 1] - c[k]);
}

/// The spline with coefficients c at i + s for every i (mirror boundaries).
void bspline_shifted(const std::vector<double>& c, double s, std::vector<double>& out) {
  const auto n = static_cast<std::ptrdiff_t>(c.size());
  out.assign(c.size(), 0.0);
  if (n == 0) return;
  const double fl = std::floor(s), f = s - fl;
  const auto whole = static_cast<std::ptrdiff_t>(fl);
  // Cubic B-spline weights of coefficients j−1, j, j+1, j+2 at j + f.
  const double g = 1.0 - f;
  const double w[4] = {g * g * g / 6.0, (4.0 - 6.0 * f * f + 3.0 * f * f * f) / 6.0,
                       (1.0 + 3.0 * f + 3.0 * f * f - 3.0 * f * f * f) / 6.0, f * f * f / 6.0};
  auto mirror = [n](std::ptrdiff_t k) {
    if (n == 1) return std::ptrdiff_t{0};
    const std::ptrdiff_t period = 2 * (n - 1);
    k %= period;
    if (k < 0) k += period;
    return k < n ? k : period - k;
  };
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::ptrdiff_t j = i + whole;
    double v = 0;
    for (std::ptrdiff_t k = 0; k < 4; ++k) v += w[k] * c[static_cast<std::size_t>(mirror(j + k - 1))];
    out[static_cast<std::size_t>(i)] = v;
  }
}

/// Σ_i a(i) b(i + k) over the overlap.
double correlation(std::span<const double> a, std::span<const double> b, std::ptrdiff_t k) {
  const auto n = static_cast<std::ptrdiff_t>(a.size());
  const std::ptrdiff_t lo = std::max<std::ptrdiff_t>(0, -k), hi = std::min(n, n - k);
  double sum = 0;
  for (std::ptrdiff_t i = lo; i < hi; ++i) sum += a[static_cast<std::size_t>(i)] * b[static_cast<std::size_t>(i + k)];
  return sum;
}

/// Vertex of the parabola through (−1, lo), (0, mid), (1, hi); 0 when that is not a maximum.
double parabola_peak(double lo, double mid, double hi) {
  const double curvature = lo - 2.0 * mid + hi;
  if (!(curvature < 0)) return 0.0;
  return std::clamp(0.5 * (lo - hi) / curvature, -1.0, 1.0);
}

/// Median of the finite values in `v` (reordered); NaN if none.
double median_of_finite(std::vector<double>& v) {
  const auto end = std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); });
  const auto n = static_cast<std::size_t>(end - v.begin());
  if (n == 0) return kNaN;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(v.begin(), mid, end);
  if (n % 2) return *mid;
  return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

struct Names {
  std::string flux, flux_error, x_shift, y_shift, profile;
  explicit Names(const std::string& s)
      : flux("flux" + s), flux_error("flux_error" + s), x_shift("x_shift" + s), y_shift("y_shift" + s),
        profile("align_profile" + s) {}
};

/// A [first, last) pair of a parameter, checked against the axis length.
std::pair<std::size_t, std::size_t> index_range(const std::optional<std::vector<std::int64_t>>& range,
                                                std::size_t n, const char* name) {
  if (!range) return {0, n};
  if (range->size() != 2 || (*range)[0] >= (*range)[1] || (*range)[1] > static_cast<std::int64_t>(n))
    throw ConfigError(std::string("align_spectra: ") + name + ": expected [first, last) with 0 <= first < last <= " +
                      std::to_string(n) + ", got " +
                      (range->size() == 2 ? "[" + std::to_string((*range)[0]) + ", " + std::to_string((*range)[1]) + "]"
                                          : std::to_string(range->size()) + " numbers"));
  return {static_cast<std::size_t>((*range)[0]), static_cast<std::size_t>((*range)[1])};
}

const Image& find_image(StepContext& context, const std::string& name, const char* hint) {
  auto& images = context.data().images();
  auto it = images.find(name);
  if (it == images.end()) throw StepError("align_spectra: there is no image '" + name + "'; " + hint);
  return it->second;
}

/// Dispersion indices summed into the profile: the parameter's, or where flux is finite in
/// some integration (the same on every rank: flux is replicated).
std::vector<char> dispersion_mask(const AlignSpectraParams& params, const Image& flux, std::size_t n_wave) {
  std::vector<char> use(n_wave, 0);
  if (params.dispersion_range) {
    auto [lo, hi] = index_range(params.dispersion_range, n_wave, "dispersion_range");
    std::fill(use.begin() + static_cast<std::ptrdiff_t>(lo), use.begin() + static_cast<std::ptrdiff_t>(hi), 1);
    return use;
  }
  if (flux.nx != n_wave)
    throw StepError("align_spectra: image '" + flux.info.name + "' has " + std::to_string(flux.nx) +
                    " wavelengths but the frames have " + std::to_string(n_wave) +
                    " dispersion indices: is dispersion_axis right?");
  for (std::size_t t = 0; t < flux.ny; ++t)
    for (std::size_t w = 0; w < n_wave; ++w)
      if (std::isfinite(flux.values[t * flux.nx + w])) use[w] = 1;
  return use;
}

/// Phase 0: each own integration's spatial profile, summed along the dispersion.
void measure_profiles(const AlignSpectraParams& params, StepContext& context, const Names& names) {
  const spectra::Dispersion d = spectra::parse_dispersion(params.dispersion_axis);
  const Image& flux = find_image(context, names.flux, "run an extraction step with the same suffix first");
  auto slab = context.frames<float>("data");
  const std::size_t ny = slab.ny, nx = slab.nx;
  const std::size_t n_wave = d == spectra::Dispersion::x ? nx : ny;
  const std::size_t n_spatial = d == spectra::Dispersion::x ? ny : nx;
  const auto [s_lo, s_hi] = index_range(params.spatial_range, n_spatial, "spatial_range");
  const std::vector<char> use = dispersion_mask(params, flux, n_wave);
  const auto used = static_cast<double>(std::count(use.begin(), use.end(), 1));
  if (used == 0) throw StepError("align_spectra: no dispersion index to sum the profile over: " + names.flux +
                                 " is nowhere finite (or dispersion_range is empty)");
  Image& profile = context.image(names.profile);
  std::vector<double> sum(n_spatial), count(n_spatial);
  const bool along_x = d == spectra::Dispersion::x;
  for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(count.begin(), count.end(), 0.0);
    const std::span<float> frame = slab.frame(t);
    // Row by row in memory order; (y, x) is (spatial, wave) or (wave, spatial).
    // Branch-free inner loops: along x, four independent partial sums per row (the adds of one
    // accumulator would wait on each other); along y, one accumulator per spatial index.
    for (std::size_t y = 0; y < ny; ++y) {
      const float* row = frame.data() + y * nx;
      if (along_x) {
        if (y < s_lo || y >= s_hi) continue;
        double part[4] = {0, 0, 0, 0}, seen[4] = {0, 0, 0, 0};
        std::size_t x = 0;
        for (; x + 4 <= nx; x += 4)
          for (std::size_t l = 0; l < 4; ++l) {
            const float v = row[x + l];
            const bool ok = use[x + l] && std::isfinite(v);
            part[l] += ok ? v : 0.0f;
            seen[l] += ok ? 1.0 : 0.0;
          }
        for (; x < nx; ++x) {
          const bool ok = use[x] && std::isfinite(row[x]);
          part[0] += ok ? row[x] : 0.0f;
          seen[0] += ok ? 1.0 : 0.0;
        }
        sum[y] = (part[0] + part[1]) + (part[2] + part[3]);
        count[y] = (seen[0] + seen[1]) + (seen[2] + seen[3]);
      } else {
        if (!use[y]) continue;
        for (std::size_t x = s_lo; x < s_hi; ++x) {
          const bool ok = std::isfinite(row[x]);
          sum[x] += ok ? row[x] : 0.0f;
          count[x] += ok ? 1.0 : 0.0;
        }
      }
    }
    // Missing pixels are made up for by scaling, so a bad pixel does not dent the profile.
    float* out = profile.values.data() + t * profile.nx;
    for (std::size_t k = s_lo; k < s_hi; ++k)
      out[k] = count[k] > 0 ? static_cast<float>(sum[k] * used / count[k]) : std::numeric_limits<float>::quiet_NaN();
    context.advance(1);
  }
}

/// Time median of the rows of an nt × n image over columns [lo, hi), NaN where no row is finite.
std::vector<float> time_median(const Image& image, std::size_t lo, std::size_t hi) {
  std::vector<float> out(image.nx, std::numeric_limits<float>::quiet_NaN());
  std::vector<double> column(image.ny);
  for (std::size_t k = lo; k < hi; ++k) {
    for (std::size_t t = 0; t < image.ny; ++t) column[t] = image.values[t * image.nx + k];
    out[k] = static_cast<float>(median_of_finite(column));
  }
  return out;
}

/// Per-row shift of an nt × n image against its time median over columns [lo, hi).
std::vector<double> row_shifts(const Image& image, std::size_t lo, std::size_t hi, std::size_t highpass_width,
                               double max_shift) {
  const std::vector<float> median = time_median(image, lo, hi);
  std::vector<double> reference, signal, shifts(image.ny, kNaN);
  highpass(std::span<const float>(median).subspan(lo, hi - lo), highpass_width, reference);
  ShiftScratch scratch;
  for (std::size_t t = 0; t < image.ny; ++t) {
    highpass(std::span<const float>(image.values).subspan(t * image.nx + lo, hi - lo), highpass_width, signal);
    shifts[t] = cross_correlation_shift(reference, signal, max_shift, scratch);
  }
  return shifts;
}

std::string summary_of(const std::vector<double>& v) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  std::size_t bad = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    } else {
      ++bad;
    }
  char text[160];
  if (bad == v.size())
    std::snprintf(text, sizeof text, "not measured");
  else
    std::snprintf(text, sizeof text, "%+.4f to %+.4f px%s", lo, hi,
                  bad ? (" (" + std::to_string(bad) + " integrations not measured)").c_str() : "");
  return text;
}

/// Phase 1: shifts from the replicated spectra and profiles; re-alignment.
void measure_shifts(const AlignSpectraParams& params, StepContext& context, const Names& names) {
  const spectra::Dispersion d = spectra::parse_dispersion(params.dispersion_axis);
  auto& images = context.data().images();
  Image& flux = images.at(names.flux);
  const std::size_t nt = context.shape().nt;
  if (flux.ny != nt)
    throw StepError("align_spectra: image '" + names.flux + "' has " + std::to_string(flux.ny) + " rows, not one per " +
                    "integration (" + std::to_string(nt) + ")");

  // Dispersion direction: the spectra themselves, high-passed.
  const std::vector<double> dispersion_shift =
      row_shifts(flux, 0, flux.nx, static_cast<std::size_t>(params.highpass_width), params.max_shift);

  // Cross-dispersion: the profiles of phase 0 (not high-passed: a compact peak), then erased.
  const Image& profile = images.at(names.profile);
  const std::size_t n_spatial = profile.nx;
  const auto [s_lo, s_hi] = index_range(params.spatial_range, n_spatial, "spatial_range");
  const std::vector<double> spatial_shift = row_shifts(profile, s_lo, s_hi, 1, params.max_shift);
  images.erase(names.profile);

  const bool along_x = d == spectra::Dispersion::x;
  auto& xs = context.frame_vector(names.x_shift).values;
  auto& ys = context.frame_vector(names.y_shift).values;
  for (std::size_t t = 0; t < nt; ++t) {
    xs[t] = along_x ? dispersion_shift[t] : spatial_shift[t];
    ys[t] = along_x ? spatial_shift[t] : dispersion_shift[t];
  }
  context.log().info("  dispersion shift " + summary_of(dispersion_shift) + "; cross-dispersion shift " +
                     summary_of(spatial_shift));

  if (!params.align_spectra) return;
  auto found_error = images.find(names.flux_error);
  if (found_error == images.end())
    throw StepError("align_spectra: there is no image '" + names.flux_error + "' to re-align with " + names.flux);
  Image& error = found_error->second;
  if (error.ny != flux.ny || error.nx != flux.nx)
    throw StepError("align_spectra: '" + names.flux_error + "' and '" + names.flux + "' differ in shape");
  const Interpolation how = params.interpolation == "cubic" ? Interpolation::cubic : Interpolation::linear;
  std::vector<float> row(flux.nx);
  std::size_t skipped = 0;
  for (std::size_t t = 0; t < nt; ++t) {
    if (!std::isfinite(dispersion_shift[t])) {
      ++skipped;
      continue;
    }
    for (Image* image : {&flux, &error}) {
      std::span<float> values(image->values.data() + t * image->nx, image->nx);
      std::copy(values.begin(), values.end(), row.begin());
      shift_series(row, dispersion_shift[t], how, values);
    }
  }
  if (skipped)
    context.log().warn("align_spectra: " + std::to_string(skipped) +
                       " integrations have no dispersion shift (no correlation peak within max_shift); they are "
                       "left as they were");
}

}  // namespace

void highpass(std::span<const float> in, std::size_t width, std::vector<double>& out) {
  const std::size_t n = in.size();
  out.assign(n, 0.0);
  const std::size_t half = width / 2;
  // Prefix sums of the finite values and of their count.
  std::vector<double> sum(n + 1, 0.0), count(n + 1, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const bool ok = std::isfinite(in[i]);
    sum[i + 1] = sum[i] + (ok ? in[i] : 0.0);
    count[i + 1] = count[i] + (ok ? 1.0 : 0.0);
  }
  double total = 0, finite = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(in[i])) continue;
    double v = in[i];
    if (width > 1) {
      const std::size_t lo = i >= half ? i - half : 0, hi = std::min(n, i + half + 1);
      v -= (sum[hi] - sum[lo]) / (count[hi] - count[lo]);
    }
    out[i] = v;
    total += v;
    finite += 1;
  }
  if (finite == 0) return;
  const double mean = total / finite;
  for (std::size_t i = 0; i < n; ++i)
    if (std::isfinite(in[i])) out[i] -= mean;
}

double cross_correlation_shift(std::span<const double> reference, std::span<const double> signal, double max_shift,
                               ShiftScratch& scratch) {
  const std::size_t n = std::min(reference.size(), signal.size());
  if (n < 3 || !(max_shift > 0)) return kNaN;
  reference = reference.first(n);
  signal = signal.first(n);
  const auto reach = static_cast<std::ptrdiff_t>(std::min<double>(std::floor(max_shift) + 1, static_cast<double>(n - 2)));
  // Whole-sample lag of the largest correlation.
  std::ptrdiff_t best = 0;
  double best_value = -std::numeric_limits<double>::infinity();
  for (std::ptrdiff_t k = -reach; k <= reach; ++k) {
    const double c = correlation(reference, signal, k);
    if (c > best_value) {
      best_value = c;
      best = k;
    }
  }
  if (!(best_value > 0) || best == reach || best == -reach) return kNaN;
  double s = static_cast<double>(best) +
             parabola_peak(correlation(reference, signal, best - 1), best_value, correlation(reference, signal, best + 1));
  // Refine: align the signal by the estimate (cubic B-spline interpolation) and measure what
  // is left, over the same interior samples for the three lags, away from the ends where the
  // interpolation uses mirrored samples.
  bspline_coefficients(signal, scratch.coefficients);
  for (int iteration = 0; iteration < 6; ++iteration) {
    if (!(std::fabs(s) <= max_shift)) return kNaN;
    bspline_shifted(scratch.coefficients, s, scratch.shifted);
    const auto margin = static_cast<std::size_t>(std::ceil(std::fabs(s))) + 3;
    if (2 * margin + 3 > n) break;
    double c[3] = {0, 0, 0};
    for (std::size_t i = margin; i < n - margin; ++i)
      for (int k = 0; k < 3; ++k) c[k] += reference[i] * scratch.shifted[i + static_cast<std::size_t>(k) - 1];
    const double step = parabola_peak(c[0], c[1], c[2]);
    s += step;
    if (std::fabs(step) < 1e-6) break;
  }
  if (!(std::fabs(s) <= max_shift)) return kNaN;
  return s;
}

void shift_series(std::span<const float> in, double s, Interpolation how, std::span<float> out) {
  const auto n = static_cast<std::ptrdiff_t>(in.size());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const double fl = std::floor(s);
  const auto whole = static_cast<std::ptrdiff_t>(fl);
  const double f = s - fl;
  double w[4];
  keys_weights(f, w);
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const std::ptrdiff_t j = i + whole;  // out[i] lies between in[j] and in[j + 1], at fraction f
    float value = nan;
    if (j >= 0 && j < n && (f == 0.0 || j + 1 < n)) {
      const double a = in[static_cast<std::size_t>(j)];
      const double b = f == 0.0 ? a : in[static_cast<std::size_t>(j + 1)];
      if (how == Interpolation::cubic && f != 0.0 && j >= 1 && j + 2 < n) {
        const double p = in[static_cast<std::size_t>(j - 1)], q = in[static_cast<std::size_t>(j + 2)];
        value = static_cast<float>(w[0] * p + w[1] * a + w[2] * b + w[3] * q);  // NaN if any is
      } else {
        // Linear (and cubic's fallback at the two ends).
        value = static_cast<float>((1.0 - f) * a + f * b);
      }
    }
    out[static_cast<std::size_t>(i)] = value;
  }
}

StepIO AlignSpectra::io(const Params& params) {
  const spectra::Dispersion d = spectra::parse_dispersion(params.dispersion_axis);
  const Names names(params.suffix);
  StepIO io;
  io.reads = {{DataKind::Cube, "data", ""},
              {DataKind::Image, names.flux, "run extract_box or extract_optimal with the same suffix first"}};
  if (params.align_spectra)
    io.reads.push_back({DataKind::Image, names.flux_error, "run extract_box or extract_optimal with the same suffix first"});
  // flux{s} and flux_error{s} are re-aligned in place in the Reduce phase, identically on every
  // rank; they are not declared as writes because declared images start the step as zeros.
  DataOut x{DataKind::FrameVector, {names.x_shift, "pixel", "shift of the spectrum along detector x (align_spectra)"}};
  DataOut y{DataKind::FrameVector, {names.y_shift, "pixel", "shift of the spectrum along detector y (align_spectra)"}};
  x.combine = y.combine = Combine::Identical;
  // Between the phases only: each integration's spatial profile (erased in the Reduce phase).
  DataOut profile{DataKind::Image, {names.profile, "1", "spatial profile summed along the dispersion (align_spectra)"}};
  profile.image_ny = DataOut::frames;
  profile.image_nx = spectra::spatial_size(d);
  profile.dim_y = "time";
  profile.dim_x = spectra::spatial_dim(d);
  io.writes = {x, y, profile};
  return io;
}

void AlignSpectra::run(const Params& params, StepContext& context) {
  const Names names(params.suffix);
  if (context.phase() == 0)
    measure_profiles(params, context, names);
  else
    measure_shifts(params, context, names);
}

}  // namespace tessera::steps
