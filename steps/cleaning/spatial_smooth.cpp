#include "steps/cleaning/spatial_smooth.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"

namespace tessera::steps {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::size_t kMaxPolyfitPasses = 20;
/// Largest polynomial degree (the schema's range): fixed-size normal equations, no heap.
constexpr int kMaxTerms = 16;

std::string list_text(const std::vector<double>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    char number[32];
    std::snprintf(number, sizeof number, "%g", values[i]);
    text += (i ? ", " : "") + std::string(number);
  }
  return text + "]";
}

std::string list_text(const std::vector<std::int64_t>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
  return text + "]";
}

/// Median of a sorted, non-empty window; an even count averages the middle two (as median_of).
float sorted_median(const std::vector<float>& sorted) {
  const std::size_t n = sorted.size();
  if (n == 0) return kNaN;
  if (n % 2 == 1) return sorted[n / 2];
  return 0.5f * (sorted[n / 2 - 1] + sorted[n / 2]);
}

void insert_sorted(std::vector<float>& sorted, float value) {
  sorted.insert(std::upper_bound(sorted.begin(), sorted.end(), value), value);
}

void erase_sorted(std::vector<float>& sorted, float value) {
  // The value was inserted earlier, so an equal element is present.
  sorted.erase(std::lower_bound(sorted.begin(), sorted.end(), value));
}

/// Replaces `out` (present) by `in` and restores the order by sliding `in` to its place:
/// one search and at most one shift of the elements between the two values, the usual
/// sliding-window median update (Hodges & Lehmann's running median; cf. Huang, Yang & Tang
/// 1979 for the 2D window).
void replace_sorted(std::vector<float>& sorted, float out, float in) {
  float* w = sorted.data();
  const std::size_t n = sorted.size();
  std::size_t i = static_cast<std::size_t>(std::lower_bound(w, w + n, out) - w);
  if (in > out) {
    for (; i + 1 < n && w[i + 1] < in; ++i) w[i] = w[i + 1];
  } else {
    for (; i > 0 && w[i - 1] > in; --i) w[i] = w[i - 1];
  }
  w[i] = in;
}

/// One step of a sliding window: `out` leaves and `in` enters; either may be non-finite
/// (not held).
void slide(std::vector<float>& sorted, float out, float in) {
  const bool has_out = std::isfinite(out), has_in = std::isfinite(in);
  if (has_out && has_in)
    replace_sorted(sorted, out, in);
  else if (has_out)
    erase_sorted(sorted, out);
  else if (has_in)
    insert_sorted(sorted, in);
}

}  // namespace

void validate_boxes(const std::optional<std::vector<std::vector<double>>>& bounds, std::string_view parameter) {
  if (!bounds) return;
  if (bounds->empty())
    throw ConfigError(std::string(parameter) + ": give at least one box [r1, r2, c1, c2], or leave it unset for the "
                                               "whole frame");
  for (std::size_t i = 0; i < bounds->size(); ++i) {
    const std::vector<double>& box = (*bounds)[i];
    const std::string which = std::string(parameter) + ": box " + std::to_string(i + 1) + " " + list_text(box);
    if (box.size() != 4) throw ConfigError(which + " must have four numbers [r1, r2, c1, c2]");
    for (double v : box)
      if (!std::isfinite(v) || v < 0 || v != std::floor(v))
        throw ConfigError(which + " must hold whole, non-negative pixel indices");
    if (!(box[0] < box[1])) throw ConfigError(which + " is empty or inverted: needs r1 < r2");
    if (!(box[2] < box[3])) throw ConfigError(which + " is empty or inverted: needs c1 < c2");
  }
}

void validate(const SpatialSmoothParams& p) {
  validate_boxes(p.smth_bounds, "smth_bounds");
  if (!(p.smth_threshold > 0)) throw ConfigError("smth_threshold: must be > 0");
  if (p.polyfit_order < 0 || p.polyfit_order >= kMaxTerms)
    throw ConfigError("polyfit_order: must be in [0, " + std::to_string(kMaxTerms - 1) + "]");
  if (p.smth_type == "polyfit") return;  // no kernel
  const std::size_t want = p.smth_type == "1D_smooth" ? 1 : p.smth_type == "2D_smooth" ? 2 : 0;
  if (want == 0) throw ConfigError("smth_type: expected one of 1D_smooth, 2D_smooth, polyfit, got '" + p.smth_type + "'");
  if (p.smth_kernel.size() != want)
    throw ConfigError("smth_kernel: " + p.smth_type + " needs " +
                      (want == 1 ? std::string("one odd window size [k]") : std::string("two odd sizes [ky, kx]")) +
                      ", got " + list_text(p.smth_kernel));
  for (std::int64_t k : p.smth_kernel)
    if (k < 1 || k % 2 == 0)
      throw ConfigError("smth_kernel: window sizes must be odd and positive, got " + list_text(p.smth_kernel));
}

std::vector<PixelBox> clip_boxes(const std::optional<std::vector<std::vector<double>>>& bounds, std::size_t ny,
                                 std::size_t nx, std::string_view parameter) {
  if (!bounds) return {PixelBox{0, nx, 0, ny}};
  validate_boxes(bounds, parameter);
  std::vector<PixelBox> boxes;
  for (std::size_t i = 0; i < bounds->size(); ++i) {
    const std::vector<double>& b = (*bounds)[i];
    auto clip = [](double v, std::size_t limit) { return std::min(static_cast<std::size_t>(v), limit); };
    // Rows first, as the reference tools slice image[r1:r2, c1:c2] (their comments say
    // "[x1, x2, y1, y2]" with x the first array axis; the template's defaults fit only this way).
    PixelBox box{clip(b[2], nx), clip(b[3], nx), clip(b[0], ny), clip(b[1], ny)};
    if (box.x0 >= box.x1 || box.y0 >= box.y1)
      throw StepError(std::string(parameter) + ": box " + std::to_string(i + 1) + " " + list_text(b) +
                      " lies outside the frame of " + std::to_string(nx) + " columns (x) by " + std::to_string(ny) +
                      " rows (y)");
    boxes.push_back(box);
  }
  return boxes;
}

std::vector<RowSegment> row_segments(const std::vector<PixelBox>& boxes, std::size_t ny) {
  std::vector<RowSegment> segments;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (std::size_t y = 0; y < ny; ++y) {
    spans.clear();
    for (const PixelBox& b : boxes)
      if (y >= b.y0 && y < b.y1) spans.emplace_back(b.x0, b.x1);
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 0; i < spans.size();) {
      std::size_t x0 = spans[i].first, x1 = spans[i].second;
      for (++i; i < spans.size() && spans[i].first <= x1; ++i) x1 = std::max(x1, spans[i].second);
      segments.push_back({y, x0, x1});
    }
  }
  return segments;
}

void running_median_row(std::span<const float> row, std::size_t x0, std::size_t x1, std::size_t k,
                        std::span<float> model, std::vector<float>& window) {
  const std::size_t n = row.size(), h = k / 2;
  if (x0 >= x1) return;
  window.clear();
  window.reserve(k);
  const std::size_t lo = x0 >= h ? x0 - h : 0, hi = std::min(n - 1, x0 + h);
  for (std::size_t j = lo; j <= hi; ++j)
    if (std::isfinite(row[j])) insert_sorted(window, row[j]);
  model[0] = sorted_median(window);
  for (std::size_t x = x0 + 1; x < x1; ++x) {
    // Slide from x − 1 to x: column x − 1 − h leaves, column x + h enters.
    const float out = x - 1 >= h ? row[x - 1 - h] : kNaN;
    const float in = x + h < n ? row[x + h] : kNaN;
    slide(window, out, in);
    model[x - x0] = sorted_median(window);
  }
}

void running_median_2d(std::span<const float> frame, std::size_t ny, std::size_t nx, std::size_t y, std::size_t x0,
                       std::size_t x1, std::size_t ky, std::size_t kx, std::span<float> model,
                       std::vector<float>& window) {
  if (x0 >= x1) return;
  const std::size_t hy = ky / 2, hx = kx / 2;
  const std::size_t r0 = y >= hy ? y - hy : 0, r1 = std::min(ny - 1, y + hy);
  window.clear();
  window.reserve(ky * kx);
  const std::size_t c0 = x0 >= hx ? x0 - hx : 0, c1 = std::min(nx - 1, x0 + hx);
  for (std::size_t r = r0; r <= r1; ++r)
    for (std::size_t c = c0; c <= c1; ++c)
      if (std::isfinite(frame[r * nx + c])) window.push_back(frame[r * nx + c]);
  std::sort(window.begin(), window.end());
  model[0] = sorted_median(window);
  for (std::size_t x = x0 + 1; x < x1; ++x) {
    // Slide from x − 1 to x: in each row, column x − 1 − hx leaves and column x + hx enters.
    const bool leaves = x - 1 >= hx, enters = x + hx < nx;
    for (std::size_t r = r0; r <= r1; ++r) {
      const float* line = frame.data() + r * nx;
      slide(window, leaves ? line[x - 1 - hx] : kNaN, enters ? line[x + hx] : kNaN);
    }
    model[x - x0] = sorted_median(window);
  }
}

void polyfit_row(std::span<const float> row, std::span<const float> err, std::size_t x0, std::size_t x1,
                 std::size_t order, double threshold, std::span<float> model, SpatialSmoothScratch& scratch) {
  using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxTerms, kMaxTerms>;
  using Vector = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxTerms, 1>;
  const std::size_t n = x1 - x0;
  if (n == 0) return;
  const std::size_t terms = std::min<std::size_t>(order + 1, kMaxTerms);

  // Legendre polynomials P_0..P_{terms-1} of u in [-1, 1]: a well-conditioned basis even for
  // high degrees, unlike powers of x.
  std::vector<double>& basis = scratch.basis;
  basis.resize(n * terms);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = n > 1 ? (2.0 * static_cast<double>(i) - static_cast<double>(n - 1)) / static_cast<double>(n - 1) : 0.0;
    double* p = basis.data() + i * terms;
    p[0] = 1.0;
    if (terms > 1) p[1] = u;
    for (std::size_t j = 1; j + 1 < terms; ++j)
      p[j + 1] = ((2.0 * static_cast<double>(j) + 1.0) * u * p[j] - static_cast<double>(j) * p[j - 1]) /
                 static_cast<double>(j + 1);
  }

  std::vector<unsigned char>& kept = scratch.kept;
  kept.resize(n);
  std::size_t n_kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    kept[i] = std::isfinite(row[x0 + i]) ? 1 : 0;
    n_kept += kept[i];
  }
  if (n_kept == 0) {
    std::fill(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n), kNaN);
    return;
  }

  Matrix normal;
  Vector rhs, coefficients;
  for (std::size_t pass = 0; pass < kMaxPolyfitPasses && n_kept > 0; ++pass) {
    const auto m = static_cast<Eigen::Index>(std::min(terms, n_kept));
    normal.setZero(m, m);
    rhs.setZero(m);
    for (std::size_t i = 0; i < n; ++i) {
      if (!kept[i]) continue;
      const double* p = basis.data() + i * terms;
      const double v = row[x0 + i];
      for (Eigen::Index a = 0; a < m; ++a) {
        rhs(a) += p[a] * v;
        for (Eigen::Index b = 0; b <= a; ++b) normal(a, b) += p[a] * p[b];
      }
    }
    coefficients = normal.selfadjointView<Eigen::Lower>().ldlt().solve(rhs);

    // Keep every finite pixel the fit agrees with; stop when that set no longer changes.
    bool changed = false;
    std::size_t now_kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = row[x0 + i];
      double fit = 0;
      const double* p = basis.data() + i * terms;
      for (Eigen::Index a = 0; a < m; ++a) fit += coefficients(a) * p[a];
      model[i] = static_cast<float>(fit);
      unsigned char keep = 0;
      if (std::isfinite(v)) {
        const double e = err[x0 + i];
        keep = (std::isfinite(e) && e > 0) ? (std::fabs(v - fit) <= threshold * e ? 1 : 0) : 1;
      }
      changed = changed || keep != kept[i];
      kept[i] = keep;
      now_kept += keep;
    }
    if (!changed) break;
    n_kept = now_kept;
  }
}

std::size_t smooth_frame(std::span<float> data, std::span<const float> err, std::span<std::uint32_t> dq,
                         std::size_t ny, std::size_t nx, const std::vector<RowSegment>& segments,
                         const SpatialSmoothParams& params, SpatialSmoothScratch& scratch) {
  std::size_t total = 0;
  for (const RowSegment& s : segments) total += s.x1 - s.x0;
  scratch.model.resize(total);

  // 1. The model of every segment pixel, from the frame as it came in.
  std::size_t offset = 0;
  for (const RowSegment& s : segments) {
    const std::size_t n = s.x1 - s.x0;
    const std::span<float> model(scratch.model.data() + offset, n);
    const std::span<const float> row(data.data() + s.y * nx, nx);
    if (params.smth_type == "1D_smooth") {
      running_median_row(row, s.x0, s.x1, static_cast<std::size_t>(params.smth_kernel[0]), model, scratch.window);
    } else if (params.smth_type == "2D_smooth") {
      running_median_2d(data, ny, nx, s.y, s.x0, s.x1, static_cast<std::size_t>(params.smth_kernel[0]),
                        static_cast<std::size_t>(params.smth_kernel[1]), model, scratch.window);
    } else {
      polyfit_row(row, err.subspan(s.y * nx, nx), s.x0, s.x1, static_cast<std::size_t>(params.polyfit_order),
                  params.smth_threshold, model, scratch);
    }
    offset += n;
  }

  // 2. Replace what deviates from it.
  std::size_t replaced = 0;
  offset = 0;
  for (const RowSegment& s : segments) {
    for (std::size_t x = s.x0; x < s.x1; ++x) {
      const float m = scratch.model[offset + (x - s.x0)];
      if (!std::isfinite(m)) continue;
      const std::size_t i = s.y * nx + x;
      const float v = data[i];
      std::uint32_t bits = 0;
      if (!std::isfinite(v)) {
        bits = dq::smooth_outlier | dq::non_finite;
      } else {
        const float e = err[i];
        if (std::isfinite(e) && e > 0 && std::fabs(static_cast<double>(v) - m) > params.smth_threshold * e)
          bits = dq::smooth_outlier;
      }
      if (bits == 0) continue;
      data[i] = m;
      dq[i] |= bits;
      ++replaced;
    }
    offset += s.x1 - s.x0;
  }
  return replaced;
}

namespace {
/// validate() with the step kind in front of the message, for errors raised while planning.
void validate_step(const SpatialSmoothParams& params) {
  try {
    validate(params);
  } catch (const ConfigError& e) {
    throw ConfigError("spatial_smooth: " + std::string(e.what()));
  }
}
}  // namespace

StepIO SpatialSmooth::io(const Params& params) {
  validate_step(params);
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "err"}, {DataKind::Cube, "dq"}};
  io.writes = {{DataKind::Cube, {"data", "", ""}},
               {DataKind::Cube, {"dq", "", ""}, ElementType::UInt32},
               {DataKind::FrameVector,
                {"spatial_smooth_outliers", "1", "pixels replaced by spatial_smooth in each frame"},
                ElementType::Float32,
                true}};
  return io;
}

void SpatialSmooth::run(const Params& params, StepContext& context) {
  validate_step(params);
  auto data = context.frames<float>("data");
  auto err = context.frames<float>("err");
  auto dq = context.frames<std::uint32_t>("dq");
  const std::size_t ny = data.ny, nx = data.nx;
  const std::vector<RowSegment> segments = row_segments(clip_boxes(params.smth_bounds, ny, nx, "smth_bounds"), ny);
  std::vector<double>& counts = context.frame_vector("spatial_smooth_outliers").values;
  SpatialSmoothScratch scratch;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    counts[t] = static_cast<double>(smooth_frame(data.frame(t), err.frame(t), dq.frame(t), ny, nx, segments, params, scratch));
    context.advance(1);
  }
}

}  // namespace tessera::steps
