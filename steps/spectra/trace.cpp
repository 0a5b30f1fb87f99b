#include "steps/spectra/trace.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

#include "steps/common/jwst_dq.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

namespace dq = tessera::jwst::dq;

/// Frames with dispersion along x are transposed so that each column is contiguous (reading a
/// column straight from a row-major image strides by whole rows and thrashes the cache), in
/// tiles of kBand rows × kTile columns.
constexpr std::size_t kBand = 32, kTile = 32;
/// scipy.ndimage's default truncation of the Gaussian kernel, in sigma.
constexpr double kTruncate = 4.0;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
/// Re-centred centroids: the smoothed line is computed kMargin pixels beyond the window on each
/// side, so the window may move that far before it is smoothed again (at most kMaxRecentres
/// times); iterations stop when the centre moves less than kConverged pixels.
constexpr double kMargin = 2.0;
constexpr int kMaxRecentres = 8;
constexpr int kMaxIterations = 40;
constexpr double kConverged = 1e-6;

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

std::string list_text(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

/// scipy.ndimage's "reflect" boundary (d c b a | a b c d | d c b a): index i of a line of n.
inline std::size_t reflect(std::ptrdiff_t i, std::size_t n) {
  const auto period = static_cast<std::ptrdiff_t>(2 * n);
  std::ptrdiff_t m = i % period;
  if (m < 0) m += period;
  return m < static_cast<std::ptrdiff_t>(n) ? static_cast<std::size_t>(m) : static_cast<std::size_t>(period - 1 - m);
}

inline void sort2(float& a, float& b) {
  const float lo = std::min(a, b), hi = std::max(a, b);
  a = lo;
  b = hi;
}

/// Median of five finite values by a seven-exchange network (Paeth's; the form of Devillard
/// 1998, "Fast median search: an ANSI C implementation"), branch-free.
inline float median5(float a, float b, float c, float d, float e) {
  sort2(a, b);
  sort2(d, e);
  sort2(a, d);
  sort2(b, e);
  sort2(b, c);
  sort2(c, d);
  sort2(b, c);
  return c;
}

/// Median of the finite values among v[0..count) (count <= 5; an even count averages the two
/// middle ones, like numpy); NaN when none is finite.
inline float median_finite(const float* v, std::size_t count) {
  float s[5];
  std::size_t m = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (std::isfinite(v[i])) {
      std::size_t j = m++;
      for (; j > 0 && v[i] < s[j - 1]; --j) s[j] = s[j - 1];
      s[j] = v[i];
    }
  if (m == 0) return kNaN;
  return m % 2 == 1 ? s[m / 2] : 0.5f * (s[m / 2 - 1] + s[m / 2]);
}

/// How many of v[0..n) lie below lo, and how many within [lo, hi] (SSE2 compare masks, each
/// true lane counting −1).
inline void bracket_counts(const float* v, std::size_t n, float lo, float hi, std::size_t& below, std::size_t& inside) {
  std::size_t i = 0, b = 0, in = 0;
#if defined(__SSE2__)
  const __m128 l = _mm_set1_ps(lo), h = _mm_set1_ps(hi);
  __m128i cb = _mm_setzero_si128(), ci = _mm_setzero_si128();
  for (; i + 4 <= n; i += 4) {
    const __m128 x = _mm_loadu_ps(v + i);
    cb = _mm_sub_epi32(cb, _mm_castps_si128(_mm_cmplt_ps(x, l)));
    ci = _mm_sub_epi32(ci, _mm_castps_si128(_mm_and_ps(_mm_cmpge_ps(x, l), _mm_cmple_ps(x, h))));
  }
  alignas(16) std::int32_t lanes_b[4], lanes_i[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes_b), cb);
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes_i), ci);
  for (int k = 0; k < 4; ++k) {
    b += static_cast<std::size_t>(lanes_b[k]);
    in += static_cast<std::size_t>(lanes_i[k]);
  }
#endif
  for (; i < n; ++i) {
    b += v[i] < lo ? 1 : 0;
    in += (v[i] >= lo && v[i] <= hi) ? 1 : 0;
  }
  below = b;
  inside = in;
}

/// How many of v[0..n) are more than `bound` away from `centre`.
inline std::size_t count_beyond(const float* v, std::size_t n, float centre, float bound) {
  std::size_t i = 0, count = 0;
#if defined(__SSE2__)
  const __m128 c = _mm_set1_ps(centre), b = _mm_set1_ps(bound), sign = _mm_set1_ps(-0.0f);
  __m128i acc = _mm_setzero_si128();
  for (; i + 4 <= n; i += 4) {
    const __m128 d = _mm_andnot_ps(sign, _mm_sub_ps(_mm_loadu_ps(v + i), c));
    acc = _mm_sub_epi32(acc, _mm_castps_si128(_mm_cmpgt_ps(d, b)));
  }
  alignas(16) std::int32_t lanes[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes), acc);
  for (int k = 0; k < 4; ++k) count += static_cast<std::size_t>(lanes[k]);
#endif
  for (; i < n; ++i) count += std::fabs(v[i] - centre) > bound ? 1 : 0;
  return count;
}

/// Names become variable names in the output: letters, digits and underscores.
bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

/// Interior knots of the notebook: lo + j (hi − lo) / nknots for j = 1 .. nknots − 1
/// (np.arange(xend, xstart, (xstart − xend) / nknots)[1:]).
std::vector<double> notebook_knots(std::size_t lo, std::size_t hi, std::int64_t nknots) {
  const double step = static_cast<double>(hi - lo) / static_cast<double>(nknots);
  std::vector<double> knots;
  for (std::int64_t j = 1; j < nknots; ++j) knots.push_back(static_cast<double>(lo) + static_cast<double>(j) * step);
  return knots;
}

bspline::LeastSquaresFit traced_range_fit(std::size_t lo, std::size_t hi, std::int64_t nknots,
                                          const std::string& order) {
  std::vector<double> x(hi - lo + 1);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(lo + i);
  try {
    return bspline::LeastSquaresFit(std::move(x), notebook_knots(lo, hi, nknots));
  } catch (const std::invalid_argument& e) {
    throw ConfigError("trace: nknots: " + std::to_string(nknots) + " knots do not fit order '" + order +
                      "' traced over " + std::to_string(hi - lo + 1) + " lines (" + e.what() + ")");
  }
}

std::string image_name(const std::string& prefix, const std::string& order) { return prefix + order; }

}  // namespace

std::vector<TraceOrder> trace_orders(const TraceParams& p) {
  const std::size_t n = p.orders.size();
  if (n == 0) throw ConfigError("trace: orders: give at least one order name");
  std::set<std::string> seen;
  for (const auto& name : p.orders) {
    if (!valid_name(name))
      throw ConfigError("trace: orders: '" + name + "' is not a valid name (letters, digits and underscores)");
    if (!seen.insert(name).second) throw ConfigError("trace: orders: '" + name + "' is given twice");
  }
  auto check_length = [&](const char* parameter, std::size_t size) {
    if (size != n)
      throw ConfigError(std::string("trace: ") + parameter + ": expected one entry per order (" + std::to_string(n) +
                        (n == 1 ? " order: " : " orders: ") + list_text(p.orders) + "), got " + std::to_string(size));
  };
  check_length("start", p.start.size());
  check_length("start_position", p.start_position.size());
  check_length("end", p.end.size());
  check_length("spatial_min", p.spatial_min.size());
  if (p.spatial_max) check_length("spatial_max", p.spatial_max->size());

  std::vector<TraceOrder> orders(n);
  for (std::size_t i = 0; i < n; ++i) {
    TraceOrder& o = orders[i];
    o.name = p.orders[i];
    if (p.start[i] < 0 || p.end[i] < 0 || p.spatial_min[i] < 0)
      throw ConfigError("trace: start, end and spatial_min must be >= 0 (order '" + o.name + "')");
    o.start = static_cast<std::size_t>(p.start[i]);
    o.end = static_cast<std::size_t>(p.end[i]);
    o.start_position = p.start_position[i];
    o.spatial_min = static_cast<std::size_t>(p.spatial_min[i]);
    if (p.spatial_max) {
      const std::int64_t smax = (*p.spatial_max)[i];
      if (smax <= p.spatial_min[i])
        throw ConfigError("trace: spatial_max: " + std::to_string(smax) + " for order '" + o.name +
                          "' must be above its spatial_min " + std::to_string(p.spatial_min[i]));
      o.spatial_max = static_cast<std::size_t>(smax);
    }
    if (o.start_position < static_cast<double>(o.spatial_min) ||
        (o.spatial_max && o.start_position >= static_cast<double>(*o.spatial_max)))
      throw ConfigError("trace: start_position: " + number(o.start_position) + " for order '" + o.name +
                        "' lies outside its spatial range [spatial_min, spatial_max) = [" +
                        std::to_string(o.spatial_min) + ", " +
                        (o.spatial_max ? std::to_string(*o.spatial_max) : std::string("end of line")) + ")");
    if (o.start == o.end)
      throw ConfigError("trace: start and end are both " + std::to_string(o.start) + " for order '" + o.name +
                        "': nothing to trace");
    traced_range_fit(std::min(o.start, o.end), std::max(o.start, o.end), p.nknots, o.name);  // knots fit the range
  }
  return orders;
}

FrameTracer::FrameTracer(const TraceParams& params, const TraceOrder& order, std::size_t ny, std::size_t nx)
    : dispersion_(spectra::parse_dispersion(params.dispersion_axis)),
      ny_(ny),
      nx_(nx),
      n_wave_(dispersion_ == spectra::Dispersion::x ? nx : ny),
      n_spatial_(dispersion_ == spectra::Dispersion::x ? ny : nx),
      start_(order.start),
      end_(order.end),
      lo_(std::min(order.start, order.end)),
      hi_(std::max(order.start, order.end)),
      start_position_(order.start_position),
      s0_(order.spatial_min),
      s1_(order.spatial_max.value_or(n_spatial_)),
      radius_(params.profile_radius),
      nsigma_(params.nsigma),
      tolerance_(params.y_tolerance),
      recentre_(params.recentre),
      kernel_radius_(static_cast<std::size_t>(kTruncate * params.gauss_filter_width + 0.5)),
      spline_(traced_range_fit(lo_, hi_, params.nknots, order.name)) {
  const std::string where = " for order '" + order.name + "'";
  const std::string wave_axis = dispersion_ == spectra::Dispersion::x ? "columns" : "rows";
  const std::string spatial_axis = dispersion_ == spectra::Dispersion::x ? "rows" : "columns";
  if (hi_ >= n_wave_)
    throw StepError(std::string("trace: ") + (start_ >= n_wave_ ? "start" : "end") + ": " +
                    std::to_string(start_ >= n_wave_ ? start_ : end_) + where + " is outside the frame's " +
                    std::to_string(n_wave_) + " " + wave_axis + " (dispersion_axis " + params.dispersion_axis + ")");
  if (s1_ > n_spatial_)
    throw StepError("trace: spatial_max: " + std::to_string(s1_) + where + " is beyond the frame's " +
                    std::to_string(n_spatial_) + " " + spatial_axis);
  if (s0_ >= n_spatial_)
    throw StepError("trace: spatial_min: " + std::to_string(s0_) + where + " is beyond the frame's " +
                    std::to_string(n_spatial_) + " " + spatial_axis);
  if (start_position_ >= static_cast<double>(s1_))
    throw StepError("trace: start_position: " + number(start_position_) + where + " is beyond the frame's " +
                    std::to_string(s1_) + " " + spatial_axis);

  // Gaussian kernel as scipy's gaussian_filter1d: exp(−x²/2σ²) on x = −r..r, r = int(4σ + 0.5),
  // normalised to sum 1 (σ = 0: the identity).
  const double sigma = params.gauss_filter_width;
  kernel_.resize(2 * kernel_radius_ + 1);
  double sum = 0;
  std::vector<double> weights(kernel_.size());
  for (std::size_t j = 0; j < weights.size(); ++j) {
    const double x = static_cast<double>(j) - static_cast<double>(kernel_radius_);
    weights[j] = sigma > 0 ? std::exp(-0.5 * x * x / (sigma * sigma)) : 1.0;
    sum += weights[j];
  }
  for (std::size_t j = 0; j < weights.size(); ++j) kernel_[j] = static_cast<float>(weights[j] / sum);

  const std::size_t n = s1_ - s0_;
  scratch_.resize(n);
  values_.resize(n);
  // Smoothed range [lo, hi]: at most 2·(radius + margin) + 2 pixels; the filter needs r more on each side.
  const std::size_t window = std::min(n, static_cast<std::size_t>(2.0 * (radius_ + kMargin)) + 3);
  filtered_.resize(n);
  cleaned_.resize(n);
  extended_.resize(window + 2 * kernel_radius_);
  smoothed_.resize(window);
  sum0_.assign(window + 1, 0.0);
  sum1_.assign(window + 1, 0.0);
  walk_.resize(hi_ - lo_ + 1);
  ascending_.resize(walk_.size());
  fitted_.resize(walk_.size());
  coefficients_.resize(spline_.coefficients());
}

void FrameLines::load(std::span<const float> data, std::span<const std::uint32_t> dq, std::size_t ny, std::size_t nx,
                      spectra::Dispersion dispersion) {
  if (data.size() != ny * nx || (!dq.empty() && dq.size() != ny * nx))
    throw InternalError("trace: frame sizes do not match");
  const bool along_x = dispersion == spectra::Dispersion::x;
  n_wave_ = along_x ? nx : ny;
  n_spatial_ = along_x ? ny : nx;
  stride_ = n_spatial_ + (n_spatial_ % 16 == 0 ? 4 : 0);  // no power-of-two stride between lines
  values_.resize(n_wave_ * stride_);
  finite_.assign(n_wave_, 0.0f);
  const std::uint32_t* flags = dq.empty() ? nullptr : dq.data();
  if (!along_x) {
    for (std::size_t y = 0; y < ny; ++y) {
      const float* row = data.data() + y * nx;
      float* out = values_.data() + y * stride_;
      float lanes[8] = {};
      for (std::size_t x = 0; x < nx; ++x) {
        const float v = (flags && (flags[y * nx + x] & dq::do_not_use)) ? kNaN : row[x];
        out[x] = v;
        lanes[x % 8] += 0.0f * v;
      }
      for (float l : lanes) finite_[y] += l;
    }
    return;
  }
  // Transpose in tiles of kBand rows × kTile columns: the rows of a band are read left to right
  // (a few sequential streams the prefetcher follows), 4 × 4 blocks turned in SSE registers.
  auto masked = [&](std::size_t y, std::size_t x) {
    const float v = data[y * nx + x];
    return (flags && (flags[y * nx + x] & dq::do_not_use)) ? kNaN : v;
  };
  for (std::size_t y0 = 0; y0 < ny; y0 += kBand) {
    const std::size_t y1 = std::min(ny, y0 + kBand);
    for (std::size_t x0 = 0; x0 < nx; x0 += kTile) {
      const std::size_t x1 = std::min(nx, x0 + kTile);
      std::size_t y = y0;
#if defined(__SSE2__)
      for (; y + 4 <= y1; y += 4) {
        std::size_t x = x0;
        for (; x + 4 <= x1; x += 4) {
          __m128 r[4];
          __m128 probe = _mm_setzero_ps();
          for (std::size_t k = 0; k < 4; ++k) {
            r[k] = _mm_loadu_ps(data.data() + (y + k) * nx + x);
            if (flags) {
              const __m128i f = _mm_loadu_si128(reinterpret_cast<const __m128i*>(flags + (y + k) * nx + x));
              const __m128 bad =
                  _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_and_si128(f, _mm_set1_epi32(static_cast<int>(dq::do_not_use))),
                                                   _mm_set1_epi32(static_cast<int>(dq::do_not_use))));
              r[k] = _mm_or_ps(_mm_and_ps(bad, _mm_set1_ps(kNaN)), _mm_andnot_ps(bad, r[k]));
            }
            probe = _mm_add_ps(probe, _mm_mul_ps(_mm_setzero_ps(), r[k]));
          }
          _mm_storeu_ps(finite_.data() + x, _mm_add_ps(_mm_loadu_ps(finite_.data() + x), probe));
          _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]);
          for (std::size_t k = 0; k < 4; ++k) _mm_storeu_ps(values_.data() + (x + k) * stride_ + y, r[k]);
        }
        for (; x < x1; ++x)
          for (std::size_t k = 0; k < 4; ++k) {
            const float v = masked(y + k, x);
            values_[x * stride_ + y + k] = v;
            finite_[x] += 0.0f * v;
          }
      }
#endif
      for (; y < y1; ++y)
        for (std::size_t x = x0; x < x1; ++x) {
          const float v = masked(y, x);
          values_[x * stride_ + y] = v;
          finite_[x] += 0.0f * v;
        }
    }
  }
}

bool BracketedMedian::brackets(const float* v, std::size_t n) const {
  if (!primed || !(halfwidth > 0)) return false;
  const std::size_t k_hi = n / 2, k_lo = n % 2 == 1 ? k_hi : k_hi - 1;
  std::size_t below = 0, inside = 0;
  bracket_counts(v, n, centre - halfwidth, centre + halfwidth, below, inside);
  return below <= k_lo && k_hi < below + inside;
}

float BracketedMedian::operator()(const float* v, std::size_t n, float* scratch) {
  // Ranks of the middle value(s): k_hi, and k_lo = k_hi − 1 for an even count (numpy's mean of
  // the two middle values).
  const std::size_t k_hi = n / 2, k_lo = n % 2 == 1 ? k_hi : k_hi - 1;
  if (primed && halfwidth > 0) {
    float lo = centre - halfwidth, hi = centre + halfwidth;
    for (int attempt = 0; attempt < 8; ++attempt) {
      std::size_t below = 0, m = 0;
      bracket_counts(v, n, lo, hi, below, m);
      if (below <= k_lo && k_hi < below + m) {  // both middle values lie in [lo, hi]
        std::size_t j = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const float x = v[i];
          scratch[j] = x;
          j += static_cast<std::size_t>((x >= lo) & (x <= hi));  // no branch: & not &&
        }
        std::span<float> inside(scratch, m);
        const float upper = select_kth(inside, k_hi - below);
        float result = upper;
        if (n % 2 == 0) {  // the largest of the values before the upper middle one
          float lower = scratch[0];
          for (std::size_t i = 1; i < k_hi - below; ++i) lower = std::max(lower, scratch[i]);
          result = 0.5f * (lower + upper);
        }
        if (attempt > 0)
          halfwidth *= 1.5f;  // it took several tries: widen for the next line
        else if (16 * m > n)
          halfwidth *= 0.8f;  // more than a sixteenth inside: narrow
        centre = result;
        return result;
      }
      // Missed: the counts say on which side; look next to the bracket, twice as far each time.
      const float step = halfwidth * static_cast<float>(2 << attempt);
      if (below > k_lo) {
        hi = lo;
        lo -= step;
      } else {
        lo = hi;
        hi += step;
      }
    }
    halfwidth *= 2.0f;
  }
  std::copy(v, v + n, scratch);
  const float result = median_of(std::span<float>(scratch, n));
  if (!primed) {
    // First bracket: a tenth of the spread between the quartiles (partially ordered by now).
    const float q1 = select_kth(std::span<float>(scratch, n), n / 4);
    const float q3 = select_kth(std::span<float>(scratch, n), (3 * n) / 4);
    halfwidth = 0.1f * (q3 - q1);
    primed = true;
  }
  if (!(halfwidth > 0)) halfwidth = std::max(1e-6f, 1e-3f * std::fabs(result));
  centre = result;
  return result;
}

void FrameTracer::clean_line(const float* line, bool finite, float median) {
  const auto n = static_cast<std::ptrdiff_t>(s1_ - s0_);
  // Size-5 median filter of the whole line (reflecting at its ends, like scipy's median_filter).
  const std::ptrdiff_t u0 = 0, u1 = n - 1;
  float* filtered = filtered_.data();
  auto edge = [&](std::ptrdiff_t i) {
    float v[5];
    for (std::ptrdiff_t j = 0; j < 5; ++j) v[j] = line[reflect(i - 2 + j, static_cast<std::size_t>(n))];
    filtered[i] = median_finite(v, 5);
  };
  const std::ptrdiff_t i0 = std::max<std::ptrdiff_t>(u0, 2), i1 = std::min<std::ptrdiff_t>(u1, n - 3);
  for (std::ptrdiff_t i = u0; i < std::min(i0, u1 + 1); ++i) edge(i);
  std::ptrdiff_t i = i0;
  if (finite) {
#if defined(__SSE2__)
    // Four positions at once: the same exchange network on SSE lanes (min/max of finite values).
    for (; i + 3 <= i1; i += 4) {
      __m128 a = _mm_loadu_ps(line + i - 2), b = _mm_loadu_ps(line + i - 1), c = _mm_loadu_ps(line + i),
             d = _mm_loadu_ps(line + i + 1), e = _mm_loadu_ps(line + i + 2);
      auto exchange = [](__m128& x, __m128& y) {
        const __m128 low = _mm_min_ps(x, y);
        y = _mm_max_ps(x, y);
        x = low;
      };
      exchange(a, b);
      exchange(d, e);
      exchange(a, d);
      exchange(b, e);
      exchange(b, c);
      exchange(c, d);
      exchange(b, c);
      _mm_storeu_ps(filtered + i, c);
    }
#endif
    for (; i <= i1; ++i) filtered[i] = median5(line[i - 2], line[i - 1], line[i], line[i + 1], line[i + 2]);
  } else {
    for (; i <= i1; ++i) {
      const float* v = line + i - 2;
      if (std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]) && std::isfinite(v[3]) &&
          std::isfinite(v[4]))
        filtered[i] = median5(v[0], v[1], v[2], v[3], v[4]);
      else
        filtered[i] = median_finite(v, 5);
    }
  }
  for (std::ptrdiff_t k = std::max(i1 + 1, u0); k <= u1; ++k) edge(k);

  // MAD sigma of the residuals r = filter − pixel (the notebook's get_mad_sigma); pixels with
  // |r| >= nsigma·sigma are outliers. When even the largest |r| stays below nsigma times a
  // lower bound of sigma, no pixel is an outlier and the MAD itself is not needed: the MAD
  // exceeds L as soon as more than half the deviations |r − median(r)| exceed L.
  std::size_t m = 0;
  // `largest`: the largest |r| among the pixels the guard below would let be outliers (|r| at
  // least half their height above the median); only those can ever be replaced.
  float largest = 0;
  if (finite) {  // every residual is finite
    m = static_cast<std::size_t>(u1 - u0 + 1);
    std::ptrdiff_t k = u0;
#if defined(__SSE2__)
    const __m128 sign = _mm_set1_ps(-0.0f), half = _mm_set1_ps(0.5f), level = _mm_set1_ps(median);
    __m128 top = _mm_setzero_ps();
    for (; k + 4 <= u1 + 1; k += 4) {
      const __m128 v = _mm_loadu_ps(line + k);
      const __m128 d = _mm_sub_ps(_mm_loadu_ps(filtered + k), v);
      _mm_storeu_ps(values_.data() + (k - u0), d);
      const __m128 r = _mm_andnot_ps(sign, d);
      const __m128 guard = _mm_cmpge_ps(r, _mm_mul_ps(half, _mm_andnot_ps(sign, _mm_sub_ps(v, level))));
      top = _mm_max_ps(top, _mm_and_ps(guard, r));
    }
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, top);
    for (float l : lanes) largest = std::max(largest, l);
#endif
    for (; k <= u1; ++k) {
      const float d = filtered[k] - line[k];
      values_[static_cast<std::size_t>(k - u0)] = d;
      const float r = std::fabs(d);
      if (r >= 0.5f * std::fabs(line[k] - median)) largest = std::max(largest, r);
    }
  } else {
    for (std::ptrdiff_t k = u0; k <= u1; ++k) {
      const float d = filtered[k] - line[k];
      values_[m] = d;
      const bool ok = std::isfinite(d);
      m += ok ? 1 : 0;
      const float r = std::fabs(d);
      if (ok && r >= 0.5f * std::fabs(line[k] - median)) largest = std::max(largest, r);
    }
  }
  float threshold = 0;  // 0: no outlier rejection (no residuals, or a MAD of zero)
  if (m > 0) {
    std::span<float> residuals(values_.data(), m);
    // With more than half the deviations |r − median(r)| beyond `bound`, sigma > 1.4826·bound
    // >= largest/nsigma (bound rounded up a little, so the float threshold below would exceed
    // every |r| too): nothing is an outlier. Cheapest proof first, by counting alone: the
    // median of r is bracketed near the previous line's and most residuals lie beyond.
    const auto bound = static_cast<float>(static_cast<double>(largest) / (1.4826 * nsigma_) * (1.0 + 1e-6));
    // The median is within h of the previous line's (the bracket holds it) and more than half
    // the |r − previous| exceed bound + h: then more than half the |r − median| exceed bound.
    if (bound > 0 && residual_median_.brackets(values_.data(), m) &&
        count_beyond(values_.data(), m, residual_median_.centre, bound + residual_median_.halfwidth) > m / 2) {
      threshold = std::numeric_limits<float>::infinity();
    } else if (const float centre = residual_median_(values_.data(), m, scratch_.data());
               count_beyond(values_.data(), m, centre, bound) > m / 2) {
      threshold = std::numeric_limits<float>::infinity();
    } else {
      for (float& d : residuals) d = std::fabs(d - centre);
      const double sigma = 1.4826 * static_cast<double>(median_of(residuals));
      if (sigma > 0) threshold = static_cast<float>(nsigma_ * sigma);
    }
  }

  // Cleaned line minus its median: flagged, non-finite and outlying pixels take the filter's
  // value (or the median itself when the filter has nothing either). An outlier must also
  // differ from the filter by at least half its own height above the line's median: a cosmic
  // ray does (it is most of the pixel's value), the peak of a bright, sharp profile does not
  // (a size-5 median filter cuts a horn of σ = 2.5 px by 8 % of its height, which for a trace
  // 1000 times brighter than the noise is already beyond 100 MAD sigma).
  float* cleaned = cleaned_.data();
  if (finite && threshold == std::numeric_limits<float>::infinity()) {
    for (std::ptrdiff_t k = u0; k <= u1; ++k) cleaned[k] = line[k] - median;
  } else {
    for (std::ptrdiff_t k = u0; k <= u1; ++k) {
      const float v = line[k], f = filtered[k];
      const float r = std::fabs(f - v);
      const bool outlier = threshold > 0 && !(r < threshold) && r >= 0.5f * std::fabs(v - median);
      const bool good = std::isfinite(v) && !outlier;
      cleaned[k] = (good ? v : (std::isfinite(f) ? f : median)) - median;
    }
  }
}

void FrameTracer::smooth_range(std::ptrdiff_t lo, std::ptrdiff_t hi) {
  const auto n = static_cast<std::ptrdiff_t>(s1_ - s0_);
  const auto r = static_cast<std::ptrdiff_t>(kernel_radius_);
  const float* cleaned = cleaned_.data();
  // Gaussian smoothing: smoothed[s] = Σ_j w_j e[s + j], s = 0 .. hi − lo, with e[k] the cleaned
  // line at lo − r + k. Beyond the ends of the line e is 0 (the line's median: background),
  // or with recentre = false the line reflected as scipy's gaussian_filter1d does — which
  // mirrors the trace's own light back when it runs near an end and pulls the centroid away
  // from that end. The kernel is symmetric (w_j = w_{2r−j}), so pairs share a product.
  const auto width = static_cast<std::size_t>(hi - lo + 1);
  const std::ptrdiff_t p0 = lo - r;
  const float* e = cleaned + p0;  // inside the line: no padding needed
  if (p0 < 0 || hi + r > n - 1) {
    const std::size_t span = width + 2 * kernel_radius_;
    for (std::size_t k = 0; k < span; ++k) {
      const std::ptrdiff_t p = p0 + static_cast<std::ptrdiff_t>(k);
      if (p >= 0 && p < n)
        extended_[k] = cleaned[p];
      else
        extended_[k] = recentre_ ? 0.0f : cleaned[static_cast<std::ptrdiff_t>(reflect(p, static_cast<std::size_t>(n)))];
    }
    e = extended_.data();
  }
  const std::size_t R = kernel_radius_;
  const float* w = kernel_.data();
  float* smoothed = smoothed_.data();
  std::size_t s = 0;
#if defined(__SSE2__)
  for (; s + 16 <= width; s += 16) {  // four accumulators in registers
    const float* b = e + s;
    const __m128 centre = _mm_set1_ps(w[R]);
    __m128 a0 = _mm_mul_ps(centre, _mm_loadu_ps(b + R)), a1 = _mm_mul_ps(centre, _mm_loadu_ps(b + R + 4)),
           a2 = _mm_mul_ps(centre, _mm_loadu_ps(b + R + 8)), a3 = _mm_mul_ps(centre, _mm_loadu_ps(b + R + 12));
    for (std::size_t j = 0; j < R; ++j) {
      const __m128 wj = _mm_set1_ps(w[j]);
      const float* lo_tap = b + j;
      const float* hi_tap = b + 2 * R - j;
      a0 = _mm_add_ps(a0, _mm_mul_ps(wj, _mm_add_ps(_mm_loadu_ps(lo_tap), _mm_loadu_ps(hi_tap))));
      a1 = _mm_add_ps(a1, _mm_mul_ps(wj, _mm_add_ps(_mm_loadu_ps(lo_tap + 4), _mm_loadu_ps(hi_tap + 4))));
      a2 = _mm_add_ps(a2, _mm_mul_ps(wj, _mm_add_ps(_mm_loadu_ps(lo_tap + 8), _mm_loadu_ps(hi_tap + 8))));
      a3 = _mm_add_ps(a3, _mm_mul_ps(wj, _mm_add_ps(_mm_loadu_ps(lo_tap + 12), _mm_loadu_ps(hi_tap + 12))));
    }
    _mm_storeu_ps(smoothed + s, a0);
    _mm_storeu_ps(smoothed + s + 4, a1);
    _mm_storeu_ps(smoothed + s + 8, a2);
    _mm_storeu_ps(smoothed + s + 12, a3);
  }
  for (; s + 4 <= width; s += 4) {
    const float* b = e + s;
    __m128 a0 = _mm_mul_ps(_mm_set1_ps(w[R]), _mm_loadu_ps(b + R));
    for (std::size_t j = 0; j < R; ++j)
      a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_set1_ps(w[j]), _mm_add_ps(_mm_loadu_ps(b + j), _mm_loadu_ps(b + 2 * R - j))));
    _mm_storeu_ps(smoothed + s, a0);
  }
#endif
  for (; s < width; ++s) {
    const float* b = e + s;
    float a = w[R] * b[R];
    for (std::size_t j = 0; j < R; ++j) a += w[j] * (b[j] + b[2 * R - j]);
    smoothed[s] = a;
  }
}

bool FrameTracer::centroid_line(const float* line, bool finite, double guess, double& centroid) {
  const auto n = static_cast<std::ptrdiff_t>(s1_ - s0_);
  if (!std::isfinite(guess)) return false;
  const double g = guess - static_cast<double>(s0_);  // in line indices

  // The line's median (its usable pixels), removed before smoothing.
  const float* usable = line;
  std::size_t m = static_cast<std::size_t>(n);
  if (!finite) {
    m = 0;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      values_[m] = line[i];
      m += std::isfinite(line[i]) ? 1 : 0;
    }
    usable = values_.data();
  }
  if (m == 0) return false;
  const float median = line_median_(usable, m, scratch_.data());
  clean_line(line, finite, median);

  if (!recentre_) {
    // The notebook: one pass over the whole pixels s with |s − guess| < profile_radius.
    const std::ptrdiff_t lo = std::max<std::ptrdiff_t>(0, static_cast<std::ptrdiff_t>(std::floor(g - radius_)) + 1);
    const std::ptrdiff_t hi = std::min<std::ptrdiff_t>(n - 1, static_cast<std::ptrdiff_t>(std::ceil(g + radius_)) - 1);
    if (lo > hi) return false;
    smooth_range(lo, hi);
    double num = 0, den = 0;
    for (std::ptrdiff_t s = lo; s <= hi; ++s) {
      const double f = smoothed_[static_cast<std::size_t>(s - lo)];
      num += static_cast<double>(s) * f;
      den += f;
    }
    if (!(den > 0) || !std::isfinite(num)) return false;
    centroid = num / den + static_cast<double>(s0_);
    return true;
  }

  // Re-centred window: the pixels' overlaps with [c − R, c + R] weight them (fractional pixels
  // at the edges, so the window is symmetric about c), and c moves to the centroid until it
  // stops moving. The smoothed line is computed over [c0 − R − M, c0 + R + M] and again around
  // the new centre when c leaves that reach.
  double c = g;
  for (int reach = 0; reach < kMaxRecentres; ++reach) {
    const double c0 = c;
    const std::ptrdiff_t lo =
        std::max<std::ptrdiff_t>(0, static_cast<std::ptrdiff_t>(std::ceil(c0 - radius_ - kMargin - 0.5)));
    const std::ptrdiff_t hi =
        std::min<std::ptrdiff_t>(n - 1, static_cast<std::ptrdiff_t>(std::floor(c0 + radius_ + kMargin + 0.5)));
    if (lo > hi) return false;
    smooth_range(lo, hi);
    // Prefix sums of f and s·f: the whole pixels of any window cost O(1).
    const auto width = static_cast<std::size_t>(hi - lo + 1);
    for (std::size_t k = 0; k < width; ++k) {
      const double f = smoothed_[k];
      sum0_[k + 1] = sum0_[k] + f;
      sum1_[k + 1] = sum1_[k] + static_cast<double>(lo + static_cast<std::ptrdiff_t>(k)) * f;
    }
    auto add_pixel = [&](std::ptrdiff_t s, double weight, double& num, double& den) {
      if (s < lo || s > hi || !(weight > 0)) return;
      const double f = std::min(weight, 1.0) * smoothed_[static_cast<std::size_t>(s - lo)];
      num += static_cast<double>(s) * f;
      den += f;
    };
    for (int iteration = 0; iteration < kMaxIterations; ++iteration) {
      const double a = c - radius_, b = c + radius_;
      double num = 0, den = 0;
      // Pixel s spans [s − 1/2, s + 1/2]: whole pixels run from ceil(a + 1/2) to floor(b − 1/2),
      // the one before and the one after are cut by the window's edges.
      const auto full0 = static_cast<std::ptrdiff_t>(std::ceil(a + 0.5));
      const auto full1 = static_cast<std::ptrdiff_t>(std::floor(b - 0.5));
      if (full0 <= full1) {
        const std::ptrdiff_t f0 = std::max(full0, lo), f1 = std::min(full1, hi);
        if (f0 <= f1) {
          den = sum0_[static_cast<std::size_t>(f1 - lo + 1)] - sum0_[static_cast<std::size_t>(f0 - lo)];
          num = sum1_[static_cast<std::size_t>(f1 - lo + 1)] - sum1_[static_cast<std::size_t>(f0 - lo)];
        }
        add_pixel(full0 - 1, static_cast<double>(full0) - 0.5 - a, num, den);
        add_pixel(full1 + 1, b - (static_cast<double>(full1) + 0.5), num, den);
      } else {  // a window narrower than two pixels
        for (auto s = static_cast<std::ptrdiff_t>(std::floor(a)); s <= static_cast<std::ptrdiff_t>(std::ceil(b)); ++s)
          add_pixel(s, std::min(static_cast<double>(s) + 0.5, b) - std::max(static_cast<double>(s) - 0.5, a), num, den);
      }
      if (!(den > 0) || !std::isfinite(num)) return false;
      const double next = num / den;
      const bool converged = std::fabs(next - c) < kConverged;
      c = next;
      if (converged) {
        centroid = c + static_cast<double>(s0_);
        return true;
      }
      if (std::fabs(c - c0) > kMargin) break;  // beyond the smoothed reach: smooth again around c
    }
    if (std::fabs(c - c0) <= kMargin) break;  // out of iterations within reach
  }
  // Not converged (a line with little signal): keep the last position.
  centroid = c + static_cast<double>(s0_);
  return std::isfinite(centroid);
}

std::size_t FrameTracer::trace(const FrameLines& lines, std::span<float> centroids, std::span<float> trace) {
  if (lines.n_wave() != n_wave_ || lines.n_spatial() != n_spatial_ || centroids.size() != n_wave_ ||
      trace.size() != n_wave_)
    throw InternalError("trace: frame or output sizes do not match the tracer");
  const std::size_t count = hi_ - lo_ + 1;
  const bool down = start_ > end_;
  double previous = start_position_;
  std::size_t fallbacks = 0;
  for (std::size_t w = 0; w < count; ++w) {
    const std::size_t d = down ? start_ - w : start_ + w;
    double centre = 0;
    bool ok = centroid_line(lines.line(d) + s0_, lines.finite(d), previous, centre);
    if (ok && w > 0 && std::fabs(centre - previous) > tolerance_) ok = false;
    if (!ok) {
      centre = previous;
      ++fallbacks;
    }
    walk_[w] = centre;
    previous = centre;
  }
  for (std::size_t w = 0; w < count; ++w) ascending_[(down ? start_ - w : start_ + w) - lo_] = walk_[w];
  spline_.fit(ascending_, coefficients_);
  spline_.values_at_data(coefficients_, fitted_);
  std::fill(centroids.begin(), centroids.end(), kNaN);
  std::fill(trace.begin(), trace.end(), kNaN);
  for (std::size_t i = 0; i < count; ++i) {
    centroids[lo_ + i] = static_cast<float>(ascending_[i]);
    trace[lo_ + i] = static_cast<float>(fitted_[i]);
  }
  return fallbacks;
}

StepIO Trace::io(const Params& params) {
  const auto orders = trace_orders(params);
  const spectra::Dispersion d = spectra::parse_dispersion(params.dispersion_axis);
  StepIO io;
  io.reads = {{DataKind::Cube, "data", "rate images (ramp_fit, or the tessera_h5 / jwst_rateints inputs)"},
              {DataKind::Cube, "dq", "pixel dq of the rate images"}};
  for (const auto& o : orders) {
    for (const auto& [prefix, long_name] :
         {std::pair<std::string, std::string>{"trace_", "spatial centre of the trace (B-spline) of " + o.name},
          {"trace_centroid_", "line centroids of the trace of " + o.name}}) {
      DataOut image{DataKind::Image, {image_name(prefix, o.name), "pixel", long_name}};
      image.image_ny = DataOut::frames;
      image.image_nx = spectra::dispersion_size(d);
      image.dim_y = "time";
      image.dim_x = spectra::dispersion_dim(d);
      io.writes.push_back(image);
    }
    DataOut shift{DataKind::FrameVector,
                  {image_name("trace_shift_", o.name), "pixel",
                   "trace position at the middle of the traced range minus its median over integrations, " + o.name},
                  ElementType::Float32};
    shift.combine = Combine::Identical;
    io.writes.push_back(shift);
  }
  return io;
}

void Trace::run(const Params& params, StepContext& context) {
  const auto orders = trace_orders(params);
  if (context.phase() == 0) {
    auto data = context.frames<float>("data");
    auto dqc = context.frames<std::uint32_t>("dq");
    std::vector<FrameTracer> tracers;
    std::vector<Image*> traces, centroids;
    for (const auto& o : orders) {
      tracers.emplace_back(params, o, data.ny, data.nx);
      traces.push_back(&context.image(image_name("trace_", o.name)));
      centroids.push_back(&context.image(image_name("trace_centroid_", o.name)));
    }
    const std::size_t n_wave = params.dispersion_axis == "x" ? data.nx : data.ny;
    for (Image* image : traces)
      if (image->nx != n_wave) throw InternalError("trace: image " + image->info.name + " has the wrong width");
    std::vector<std::size_t> fallbacks(orders.size(), 0);
    FrameLines lines;
    const spectra::Dispersion dispersion = spectra::parse_dispersion(params.dispersion_axis);
    for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
      lines.load(data.frame(t), dqc.frame(t), data.ny, data.nx, dispersion);
      for (std::size_t k = 0; k < orders.size(); ++k)
        fallbacks[k] += tracers[k].trace(lines, std::span<float>(centroids[k]->values.data() + t * n_wave, n_wave),
                                         std::span<float>(traces[k]->values.data() + t * n_wave, n_wave));
      context.advance(1);
    }
    for (std::size_t k = 0; k < orders.size(); ++k)
      if (fallbacks[k] > 0)
        context.log().debug("trace: order '" + orders[k].name + "': " + std::to_string(fallbacks[k]) +
                            " lines on this rank kept the previous line's centroid");
    return;
  }

  // Phase 1 (every rank, on the combined images): the shift of each order per integration.
  for (const auto& o : orders) {
    const Image& image = context.image(image_name("trace_", o.name));
    const std::size_t middle = std::min(o.start, o.end) + (std::max(o.start, o.end) - std::min(o.start, o.end) + 1) / 2;
    FrameVector& shift = context.frame_vector(image_name("trace_shift_", o.name));
    const std::size_t nt = image.ny;
    std::vector<double> position(nt), finite;
    for (std::size_t t = 0; t < nt; ++t) {
      position[t] = image.values[t * image.nx + middle];
      if (std::isfinite(position[t])) finite.push_back(position[t]);
    }
    double median = std::numeric_limits<double>::quiet_NaN();
    if (!finite.empty()) {
      const std::size_t half = finite.size() / 2;
      std::nth_element(finite.begin(), finite.begin() + static_cast<std::ptrdiff_t>(half), finite.end());
      median = finite[half];
      if (finite.size() % 2 == 0)
        median = 0.5 * (median + *std::max_element(finite.begin(), finite.begin() + static_cast<std::ptrdiff_t>(half)));
    }
    shift.values.assign(nt, 0.0);
    for (std::size_t t = 0; t < nt; ++t) shift.values[t] = position[t] - median;
  }
}

}  // namespace tessera::steps
