#include "steps/tracking/track_0th.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>

#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

float pixel(const FrameView& image, long x, long y) {
  return image.values[static_cast<std::size_t>(y) * image.nx + static_cast<std::size_t>(x)];
}

std::uint32_t flags(const FrameView& image, long x, long y) {
  return image.dq.empty() ? 0u : image.dq[static_cast<std::size_t>(y) * image.nx + static_cast<std::size_t>(x)];
}

/// [lo, hi] ∩ [0, n − 1]; empty when lo > hi afterwards.
std::pair<long, long> clip_range(long lo, long hi, std::size_t n) {
  return {std::max(lo, 0L), std::min(hi, static_cast<long>(n) - 1)};
}

float median_in_place(std::vector<float>& v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  float m = *mid;
  if (v.size() % 2 == 0) m = 0.5f * (m + *std::max_element(v.begin(), mid));
  return m;
}

/// Overlap of pixel columns (or rows) with the window [lo, hi] in continuous coordinates
/// (pixel i spans [i − ½, i + ½]): the fraction inside and where that part's centre is.
struct Coverage {
  long first = 0;
  std::vector<double> fraction, centre;
};

void cover(double lo, double hi, std::size_t n, Coverage& c) {
  const auto [a, b] = clip_range(static_cast<long>(std::floor(lo + 0.5)), static_cast<long>(std::ceil(hi - 0.5)), n);
  c.first = a;
  c.fraction.clear();
  c.centre.clear();
  for (long i = a; i <= b; ++i) {
    const double left = std::max(lo, static_cast<double>(i) - 0.5), right = std::min(hi, static_cast<double>(i) + 0.5);
    c.fraction.push_back(std::max(0.0, right - left));
    c.centre.push_back(0.5 * (left + right));
  }
}

std::string where(double x, double y) {
  char text[64];
  std::snprintf(text, sizeof text, "(%.2f, %.2f)", x, y);
  return text;
}

}  // namespace

LocalBackground annulus_background(const FrameView& image, long cx, long cy, long inner, long outer,
                                   std::vector<float>& scratch) {
  scratch.clear();
  const auto [y0, y1] = clip_range(cy - outer, cy + outer, image.ny);
  const auto [x0, x1] = clip_range(cx - outer, cx + outer, image.nx);
  for (long y = y0; y <= y1; ++y)
    for (long x = x0; x <= x1; ++x) {
      if (std::max(std::labs(x - cx), std::labs(y - cy)) <= inner) continue;
      const float v = pixel(image, x, y);
      if (std::isfinite(v)) scratch.push_back(v);
    }
  LocalBackground b;
  b.pixels = scratch.size();
  if (scratch.empty()) return b;
  b.level = median_in_place(scratch);
  for (float& v : scratch) v = std::fabs(v - static_cast<float>(b.level));
  b.noise = 1.4826 * median_in_place(scratch);
  return b;
}

std::optional<std::pair<long, long>> brightest_pixel(const FrameView& image, double gx, double gy, long half_width) {
  const long cx = std::lround(gx), cy = std::lround(gy);
  const auto [y0, y1] = clip_range(cy - half_width, cy + half_width, image.ny);
  const auto [x0, x1] = clip_range(cx - half_width, cx + half_width, image.nx);
  std::optional<std::pair<long, long>> best;
  double best_mean = -std::numeric_limits<double>::infinity();
  for (long y = y0; y <= y1; ++y)
    for (long x = x0; x <= x1; ++x) {
      double sum = 0;
      int n = 0;
      for (long v = std::max(y - 1, 0L); v <= std::min(y + 1, static_cast<long>(image.ny) - 1); ++v)
        for (long u = std::max(x - 1, 0L); u <= std::min(x + 1, static_cast<long>(image.nx) - 1); ++u) {
          const float value = pixel(image, u, v);
          if (std::isfinite(value)) {
            sum += value;
            ++n;
          }
        }
      if (n > 0 && sum / n > best_mean) {
        best_mean = sum / n;
        best = std::pair{x, y};
      }
    }
  return best;
}

std::pair<long, long> brightest_smoothed_peak(const FrameView& image) {
  // Median of 9 by Paeth's exchange network (Graphics Gems, 1990): 19 min/max pairs.
  auto median9 = [](float p[9]) {
    auto sort2 = [](float& a, float& b) {
      const float lo = std::min(a, b);
      b = std::max(a, b);
      a = lo;
    };
    sort2(p[1], p[2]); sort2(p[4], p[5]); sort2(p[7], p[8]); sort2(p[0], p[1]); sort2(p[3], p[4]);
    sort2(p[6], p[7]); sort2(p[1], p[2]); sort2(p[4], p[5]); sort2(p[7], p[8]); sort2(p[0], p[3]);
    sort2(p[5], p[8]); sort2(p[4], p[7]); sort2(p[3], p[6]); sort2(p[1], p[4]); sort2(p[2], p[5]);
    sort2(p[4], p[7]); sort2(p[4], p[2]); sort2(p[6], p[4]); sort2(p[4], p[2]);
    return p[4];
  };
  const long ny = static_cast<long>(image.ny), nx = static_cast<long>(image.nx);
  auto value = [&](long x, long y) {
    const float v = pixel(image, x, y);
    return std::isfinite(v) ? v : -std::numeric_limits<float>::infinity();
  };
  std::pair<long, long> best{0, 0};
  float best_value = -std::numeric_limits<float>::infinity();
  if (ny < 3 || nx < 3) {  // too small to smooth
    for (long y = 0; y < ny; ++y)
      for (long x = 0; x < nx; ++x)
        if (value(x, y) > best_value) {
          best_value = value(x, y);
          best = {x, y};
        }
    return best;
  }
  float window[9];
  for (long y = 1; y + 1 < ny; ++y)
    for (long x = 1; x + 1 < nx; ++x) {
      int n = 0;
      for (long v = y - 1; v <= y + 1; ++v)
        for (long u = x - 1; u <= x + 1; ++u) window[n++] = value(u, v);
      const float m = median9(window);
      if (m > best_value) {
        best_value = m;
        best = {x, y};
      }
    }
  return best;
}

Position windowed_centroid(const FrameView& image, double gx, double gy, const PositionSettings& s,
                           std::vector<float>& scratch) {
  Position p;
  const double h = static_cast<double>(s.half_width);
  double cx = gx, cy = gy;
  long bx = std::lround(cx), by = std::lround(cy);
  LocalBackground background = annulus_background(image, bx, by, s.half_width, s.half_width + s.annulus, scratch);
  Coverage cover_x, cover_y;
  for (int iteration = 1; iteration <= s.max_iterations; ++iteration) {
    if (std::lround(cx) != bx || std::lround(cy) != by) {
      bx = std::lround(cx);
      by = std::lround(cy);
      background = annulus_background(image, bx, by, s.half_width, s.half_width + s.annulus, scratch);
    }
    cover(cx - h - 0.5, cx + h + 0.5, image.nx, cover_x);
    cover(cy - h - 0.5, cy + h + 0.5, image.ny, cover_y);
    if (cover_x.fraction.empty() || cover_y.fraction.empty()) {
      p.why = "the window around " + where(cx, cy) + " lies outside the image";
      return p;
    }
    double sum = 0, sum_x = 0, sum_y = 0;
    for (std::size_t j = 0; j < cover_y.fraction.size(); ++j) {
      const long y = cover_y.first + static_cast<long>(j);
      double row = 0, row_x = 0;
      for (std::size_t i = 0; i < cover_x.fraction.size(); ++i) {
        const float value = pixel(image, cover_x.first + static_cast<long>(i), y);
        if (!std::isfinite(value)) continue;
        const double light = cover_x.fraction[i] * (value - background.level);
        row += light;
        row_x += light * cover_x.centre[i];
      }
      sum += cover_y.fraction[j] * row;
      sum_x += cover_y.fraction[j] * row_x;
      sum_y += cover_y.fraction[j] * row * cover_y.centre[j];
    }
    if (!(sum > 0)) {
      p.why = "no light above the local background in the window around " + where(cx, cy);
      return p;
    }
    const double nx = sum_x / sum, ny = sum_y / sum;
    const double step = std::max(std::fabs(nx - cx), std::fabs(ny - cy));
    cx = nx;
    cy = ny;
    p.iterations = iteration;
    p.flux = sum;
    if (step < s.tolerance) {
      p.x = cx;
      p.y = cy;
      p.background = background.level;
      p.ok = true;
      return p;
    }
  }
  p.why = "the windowed centroid did not settle within " + std::to_string(s.max_iterations) + " iterations (last " +
          where(cx, cy) + ")";
  return p;
}

Position gaussian_fit(const FrameView& image, const Position& start, const PositionSettings& s) {
  using Vector6 = Eigen::Matrix<double, 6, 1>;
  using Matrix6 = Eigen::Matrix<double, 6, 6>;
  Position out;
  out.x = start.x;
  out.y = start.y;

  // The pixels of the window the fit may use.
  struct Sample {
    double x, y, value, weight;
  };
  std::vector<Sample> samples;
  const long cx = std::lround(start.x), cy = std::lround(start.y);
  const auto [y0, y1] = clip_range(cy - s.half_width, cy + s.half_width, image.ny);
  const auto [x0, x1] = clip_range(cx - s.half_width, cx + s.half_width, image.nx);
  std::vector<float> scratch;
  const LocalBackground local = annulus_background(image, cx, cy, s.half_width, s.half_width + s.annulus, scratch);
  const double noise2 = std::max(local.noise * local.noise, 1.0);  // electrons: at least 1 e- rms
  for (long y = y0; y <= y1; ++y)
    for (long x = x0; x <= x1; ++x) {
      const float v = pixel(image, x, y);
      if (!std::isfinite(v) || (flags(image, x, y) & s.fit_mask)) continue;
      // Poisson variance of the source from the data for the first fit; the model's after.
      const double variance = std::max(static_cast<double>(v) - start.background, 0.0) + noise2;
      samples.push_back({static_cast<double>(x), static_cast<double>(y), static_cast<double>(v), 1.0 / variance});
    }
  if (samples.size() < 12) {
    out.why = "too few usable pixels for a Gaussian fit";
    return out;
  }

  // Start: second moments of the light above the background, amplitude by linear least squares.
  double m0 = 0, mxx = 0, myy = 0;
  for (const Sample& p : samples) {
    const double light = std::max(p.value - start.background, 0.0);
    m0 += light;
    mxx += light * (p.x - start.x) * (p.x - start.x);
    myy += light * (p.y - start.y) * (p.y - start.y);
  }
  const double max_sigma = static_cast<double>(s.half_width);
  auto clamp_sigma = [&](double v) { return std::clamp(v, 0.5, 0.5 * max_sigma); };
  Vector6 params;  // A, x0, y0, sx, sy, B
  params << 0, start.x, start.y, clamp_sigma(m0 > 0 ? std::sqrt(mxx / m0) : 1.5),
      clamp_sigma(m0 > 0 ? std::sqrt(myy / m0) : 1.5), start.background;
  {
    double num = 0, den = 0;
    for (const Sample& p : samples) {
      const double u = (p.x - params[1]) / params[3], v = (p.y - params[2]) / params[4];
      const double g = std::exp(-0.5 * (u * u + v * v));
      num += p.weight * g * (p.value - params[5]);
      den += p.weight * g * g;
    }
    params[0] = den > 0 ? std::max(num / den, 1e-3) : 1.0;
  }

  // chi², and optionally the normal equations, at `q`. The Gaussian is separable: one exp per
  // column and per row of the window instead of one per pixel.
  std::vector<double> gx(static_cast<std::size_t>(x1 - x0 + 1)), gy(static_cast<std::size_t>(y1 - y0 + 1));
  auto evaluate = [&](const Vector6& q, Matrix6* normal, Vector6* gradient) {
    for (std::size_t i = 0; i < gx.size(); ++i) {
      const double u = (static_cast<double>(x0) + static_cast<double>(i) - q[1]) / q[3];
      gx[i] = std::exp(-0.5 * u * u);
    }
    for (std::size_t i = 0; i < gy.size(); ++i) {
      const double v = (static_cast<double>(y0) + static_cast<double>(i) - q[2]) / q[4];
      gy[i] = std::exp(-0.5 * v * v);
    }
    double chi2 = 0, h[21] = {}, g[6] = {};
    for (const Sample& p : samples) {
      if (p.weight == 0) continue;
      const double e = gx[static_cast<std::size_t>(p.x) - static_cast<std::size_t>(x0)] *
                       gy[static_cast<std::size_t>(p.y) - static_cast<std::size_t>(y0)];
      const double r = p.value - (q[5] + q[0] * e);
      chi2 += p.weight * r * r;
      if (!normal) continue;
      const double u = (p.x - q[1]) / q[3], v = (p.y - q[2]) / q[4], ae = q[0] * e;
      const double j[6] = {e, ae * u / q[3], ae * v / q[4], ae * u * u / q[3], ae * v * v / q[4], 1.0};
      int k = 0;
      for (int a = 0; a < 6; ++a) {
        const double wa = p.weight * j[a];
        g[a] += wa * r;
        for (int b = 0; b <= a; ++b) h[k++] += wa * j[b];
      }
    }
    if (normal) {
      int k = 0;
      for (int a = 0; a < 6; ++a) {
        (*gradient)[a] = g[a];
        for (int b = 0; b <= a; ++b) (*normal)(a, b) = (*normal)(b, a) = h[k++];
      }
    }
    return chi2;
  };

  // Levenberg–Marquardt (Marquardt 1963, with the diagonal scaling) to convergence.
  auto fit = [&](Vector6& q) -> bool {
    Matrix6 normal;
    Vector6 gradient;
    double chi2 = evaluate(q, &normal, &gradient);
    double lambda = 1e-3;
    for (int iteration = 0; iteration < 200; ++iteration) {
      Matrix6 damped = normal;
      damped.diagonal() *= 1.0 + lambda;
      const Vector6 delta = damped.ldlt().solve(gradient);
      if (!delta.allFinite()) return false;
      Vector6 trial = q + delta;
      if (trial[0] > 0 && trial[3] > 0.2 && trial[4] > 0.2 && trial[3] < max_sigma && trial[4] < max_sigma) {
        const double trial_chi2 = evaluate(trial, nullptr, nullptr);
        if (trial_chi2 <= chi2) {
          q = trial;
          const bool small = std::max(std::fabs(delta[1]), std::fabs(delta[2])) < s.tolerance &&
                             chi2 - trial_chi2 <= 1e-6 * chi2;
          chi2 = evaluate(q, &normal, &gradient);
          lambda = std::max(lambda / 10, 1e-12);
          if (small) return true;
          continue;
        }
      }
      lambda *= 10;
      if (lambda > 1e12) return true;  // no step lowers chi² any more: at the minimum within rounding
    }
    return false;
  };

  if (!fit(params)) {
    out.why = "the Gaussian fit did not converge";
    return out;
  }
  // Weights from the model, `clip`-sigma outliers (cosmic rays, hot pixels) out, and refit.
  for (Sample& p : samples) {
    const double u = (p.x - params[1]) / params[3], v = (p.y - params[2]) / params[4];
    const double source = params[0] * std::exp(-0.5 * (u * u + v * v));
    const double variance = std::max(source, 0.0) + noise2;
    const double r = p.value - (params[5] + source);
    p.weight = r * r > s.clip * s.clip * variance ? 0.0 : 1.0 / variance;
  }
  if (!fit(params)) {
    out.why = "the Gaussian fit did not converge after clipping";
    return out;
  }
  if (std::max(std::fabs(params[1] - start.x), std::fabs(params[2] - start.y)) > 2.0) {
    out.why = "the Gaussian fit landed more than 2 px from the centroid";
    return out;
  }
  out.x = params[1];
  out.y = params[2];
  out.sigma_x = params[3];
  out.sigma_y = params[4];
  out.background = params[5];
  out.flux = 2 * std::numbers::pi * params[0] * params[3] * params[4];
  out.iterations = start.iterations;
  out.fitted = true;
  out.ok = true;
  return out;
}

Position measure_position(const FrameView& image, double gx, double gy, const PositionSettings& settings,
                          std::vector<float>& scratch) {
  const auto peak = brightest_pixel(image, gx, gy, static_cast<long>(settings.half_width));
  if (!peak) {
    Position p;
    p.why = "the window around " + where(gx, gy) + " lies outside the " + std::to_string(image.nx) + " x " +
            std::to_string(image.ny) + " image";
    return p;
  }
  Position centroid = windowed_centroid(image, static_cast<double>(peak->first), static_cast<double>(peak->second),
                                        settings, scratch);
  if (!centroid.ok || !settings.fit) return centroid;
  Position fitted = gaussian_fit(image, centroid, settings);
  if (fitted.ok) return fitted;
  centroid.why = fitted.why;  // ok, but from the centroid
  return centroid;
}

StepIO Track0th::io(const Params& params) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "dq"}};
  const std::string hint = "give track_0th a location [x, y], or enable locate before it";
  if (!params.location) io.reads.push_back({DataKind::Attribute, "target_x", hint});
  if (!params.location) io.reads.push_back({DataKind::Attribute, "target_y", hint});
  auto vector = [](std::string name, std::string long_name) {
    return DataOut{DataKind::FrameVector, {std::move(name), "pixel", std::move(long_name)}};
  };
  io.writes = {vector("track_0th_x", "0th-order centre column (x) in each frame"),
               vector("track_0th_y", "0th-order centre row (y) in each frame"),
               vector("track_0th_x_shift", "0th-order x minus its value in the first frame"),
               vector("track_0th_y_shift", "0th-order y minus its value in the first frame")};
  return io;
}

namespace {

std::pair<double, double> guess_of(const Track0thParams& params, const Dataset& data) {
  if (params.location) {
    if (params.location->size() != 2)
      throw ConfigError("track_0th: location: expected [x, y], got " + std::to_string(params.location->size()) +
                        " numbers");
    return {(*params.location)[0], (*params.location)[1]};
  }
  const auto& attributes = data.attributes();
  const auto x = attributes.find("target_x"), y = attributes.find("target_y");
  if (x == attributes.end() || y == attributes.end() || !std::holds_alternative<double>(x->second) ||
      !std::holds_alternative<double>(y->second))
    throw ConfigError("track_0th: location is unset and no target_x/target_y attributes exist: run the locate step "
                      "before track_0th, or give location = [x, y]");
  return {std::get<double>(x->second), std::get<double>(y->second)};
}

}  // namespace

void Track0th::run(const Params& params, StepContext& context) {
  auto data = context.frames<float>("data");
  std::vector<double>& xs = context.frame_vector("track_0th_x").values;
  std::vector<double>& ys = context.frame_vector("track_0th_y").values;
  if (context.phase() == 1) {
    // Every frame's position is known on every rank now.
    std::vector<double>& dx = context.frame_vector("track_0th_x_shift").values;
    std::vector<double>& dy = context.frame_vector("track_0th_y_shift").values;
    for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
      dx[t] = xs[t] - xs.front();
      dy[t] = ys[t] - ys.front();
    }
    context.advance(data.t_end - data.t_begin);
    return;
  }

  const auto [gx, gy] = guess_of(params, context.data());
  const auto& shape = context.shape();
  if (!(gx >= -0.5 && gy >= -0.5 && gx < static_cast<double>(shape.nx) - 0.5 &&
        gy < static_cast<double>(shape.ny) - 0.5))
    throw ConfigError("track_0th: location " + where(gx, gy) + " is outside the " + std::to_string(shape.nx) + " x " +
                      std::to_string(shape.ny) + " frames (x, y); give location = [x, y] of the 0th order" +
                      (params.location ? ", or unset it to use the locate step's target_x/target_y" : ""));
  if (data.t_begin == 0)
    context.log().info(std::string("track_0th: starting from ") + where(gx, gy) +
                       (params.location ? " (location)" : " (target_x/target_y from locate)"));

  auto dq = context.frames<std::uint32_t>("dq");
  PositionSettings settings;
  settings.half_width = params.window;
  settings.annulus = params.annulus;
  settings.fit = params.method == "gaussian";
  std::vector<float> scratch;
  std::size_t fallbacks = 0;
  std::string fallback_why;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    const FrameView frame{data.frame(t), dq.frame(t), shape.ny, shape.nx};
    const Position p = measure_position(frame, gx, gy, settings, scratch);
    if (!p.ok)
      throw StepError("track_0th: frame " + std::to_string(t) + ": " + p.why + " (location " + where(gx, gy) +
                      ", window " + std::to_string(params.window) + ")");
    if (settings.fit && !p.fitted) {
      ++fallbacks;
      fallback_why = p.why;
    }
    xs[t] = p.x;
    ys[t] = p.y;
    context.advance(1);
  }
  if (fallbacks > 0)
    context.log().warn("track_0th: " + std::to_string(fallbacks) + " frame(s) on this rank use the centroid: " +
                       fallback_why);
}

}  // namespace tessera::steps
