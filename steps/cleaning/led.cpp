#include "steps/cleaning/led.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

// Laplacian edge detection after van Dokkum (2001, PASP 113, 1420). What differs from the
// literal recipe is only how it is computed, never what:
//  * L+ is evaluated in closed form at the original resolution instead of building the
//    f x f subsampled image (see laplacian_plus), so nothing of f^2 times the frame's size
//    is ever allocated;
//  * the noise model, the 5x5 median of S and the fine-structure image are needed only
//    around pixels whose L+ could reach the threshold. A pixel can only be flagged if
//    S' > led_threshold, and since S >= 0 its 5x5 median is >= 0, so S > led_threshold and
//    L+ > led_threshold * f * N >= led_threshold * f * N_min, where N_min is a lower bound
//    of the noise model over the frame (the read noise, or the smallest err). Only pixels
//    past that screen are examined, with exact medians, and the neighbours' S in med5(S) are
//    first bounded by L+ / (f N_min) (see above_local); the result is the same as filtering
//    the whole frame, at a few per cent of the cost.
namespace tessera::steps {

namespace {

constexpr float kNoiseFloor = 1e-3f;      // electrons: a noise model of 0 would make S infinite
constexpr float kFineFloor = 0.01f;       // F floored at 0.01 N, as in L.A.Cosmic
constexpr std::size_t kMaxReplaceRadius = 5;  // widest neighbourhood searched for unflagged pixels
constexpr std::size_t kScreenChunk = 32;      // pixels of a row screened at once

inline void sort2(float& a, float& b) {
  const float lo = std::min(a, b), hi = std::max(a, b);
  a = lo;
  b = hi;
}

inline void sort3(float& a, float& b, float& c) {
  sort2(a, b);
  sort2(b, c);
  sort2(a, b);
}

/// Exact median of nine values. Sort the three columns; the median is the median of (the
/// largest of the column minima, the median of the column medians, the smallest of the column
/// maxima): every other value has at least five values on one side of it.
inline float median9(float a0, float a1, float a2, float b0, float b1, float b2, float c0, float c1, float c2) {
  sort3(a0, a1, a2);
  sort3(b0, b1, b2);
  sort3(c0, c1, c2);
  float lo = std::max(std::max(a0, b0), c0);
  float mid = b1;
  float hi = std::min(std::min(a2, b2), c2);
  float m0 = a1, m2 = c1;
  sort3(m0, mid, m2);  // median of the column medians
  sort3(lo, mid, hi);
  return mid;
}

}  // namespace

namespace led {

float window_median(const float* image, std::size_t ny, std::size_t nx, std::size_t y, std::size_t x,
                    std::size_t radius, float* buffer) {
  const std::size_t y0 = y >= radius ? y - radius : 0, y1 = std::min(ny - 1, y + radius);
  const std::size_t x0 = x >= radius ? x - radius : 0, x1 = std::min(nx - 1, x + radius);
  if (radius == 1 && y1 - y0 == 2 && x1 - x0 == 2) {
    const float* a = image + y0 * nx + x0;
    const float* b = a + nx;
    const float* c = b + nx;
    return median9(a[0], b[0], c[0], a[1], b[1], c[1], a[2], b[2], c[2]);
  }
  std::size_t n = 0;
  for (std::size_t yy = y0; yy <= y1; ++yy) {
    const float* row = image + yy * nx;
    for (std::size_t xx = x0; xx <= x1; ++xx) buffer[n++] = row[xx];
  }
  return median_of(std::span<float>(buffer, n));
}

// Closed form of van Dokkum's L+ (his eqs. 1-4: subsample by f, convolve with the Laplacian,
// clip at 0, block-average). In the f x f block of a pixel of value c with neighbours u, d,
// l, r (up, down, left, right), every subpixel has the value c, so the Laplacian
// 4c - (sum of the four neighbours) of a subpixel is 0 inside the block and picks up c - n
// for each side of the block it touches: c - u on the top edge, 2c - u - l in the top-left
// corner, and so on. The block average of the positive parts is therefore
//   L+ = [ sum over the 4 corners of max(2c - n1 - n2, 0)
//          + (f - 2) * sum over the 4 sides of max(c - n, 0) ] / f^2.
// For a lone spike of height A on a flat background, L+ = 2A whatever f, so S = A / N.
void laplacian_plus(const float* image, std::size_t ny, std::size_t nx, std::size_t factor, float* out) {
  const float f = static_cast<float>(factor);
  const float w_corner = 1.0f / (f * f), w_side = (f - 2.0f) / (f * f);
  auto value = [w_corner, w_side](float c, float u, float d, float l, float r) {
    const float cu = c - u, cd = c - d, cl = c - l, cr = c - r;
    const float corners = std::max(cu + cl, 0.0f) + std::max(cu + cr, 0.0f) + std::max(cd + cl, 0.0f) +
                          std::max(cd + cr, 0.0f);
    const float sides = std::max(cu, 0.0f) + std::max(cd, 0.0f) + std::max(cl, 0.0f) + std::max(cr, 0.0f);
    return w_corner * corners + w_side * sides;
  };
  for (std::size_t y = 0; y < ny; ++y) {
    // Outside the frame the image is extended by repetition: a border pixel is its own neighbour.
    const float* mid = image + y * nx;
    const float* up = y > 0 ? mid - nx : mid;
    const float* down = y + 1 < ny ? mid + nx : mid;
    float* o = out + y * nx;
    if (nx == 1) {
      o[0] = value(mid[0], up[0], down[0], mid[0], mid[0]);
      continue;
    }
    o[0] = value(mid[0], up[0], down[0], mid[0], mid[1]);
    for (std::size_t x = 1; x + 1 < nx; ++x) o[x] = value(mid[x], up[x], down[x], mid[x - 1], mid[x + 1]);
    o[nx - 1] = value(mid[nx - 1], up[nx - 1], down[nx - 1], mid[nx - 2], mid[nx - 1]);
  }
}

}  // namespace led

namespace {

/// Number of NaN and infinite values (a plain counting loop, which the compiler vectorises).
std::size_t count_non_finite(std::span<const float> values) {
  std::size_t bad = 0;
  for (float v : values) bad += !(std::fabs(v) <= FLT_MAX) ? 1 : 0;
  return bad;
}

/// One frame's detection state; the methods are the pieces of a pass.
struct FrameLed {
  float* image;
  std::span<const float> err;
  std::size_t ny, nx;
  const LedParams& params;
  LedScratch& s;
  float f;

  /// Noise model at pixel i, computed once per pass (cached in s.noise).
  float noise_at(std::size_t i) {
    float& cached = s.noise[i];
    if (cached >= 0) return cached;
    const std::size_t y = i / nx, x = i % nx;
    float buffer[25];
    float n = -1;
    if (!err.empty()) {
      // Median of the err cube's 5x5 window (finite values only): the err of the pixel
      // itself may carry its own outlier's shot noise, its neighbours' do not.
      const std::size_t y0 = y >= 2 ? y - 2 : 0, y1 = std::min(ny - 1, y + 2);
      const std::size_t x0 = x >= 2 ? x - 2 : 0, x1 = std::min(nx - 1, x + 2);
      std::size_t count = 0;
      for (std::size_t yy = y0; yy <= y1; ++yy)
        for (std::size_t xx = x0; xx <= x1; ++xx) {
          const float e = err[yy * nx + xx];
          if (std::isfinite(e)) buffer[count++] = e;
        }
      if (count > 0) n = median_of(std::span<float>(buffer, count));
    }
    if (n < 0) {
      const float m = led::window_median(image, ny, nx, y, x, 2, buffer);
      const float rn = static_cast<float>(params.read_noise);
      n = std::sqrt(std::max(m, 0.0f) + rn * rn);
    }
    cached = std::max(n, kNoiseFloor);
    s.noise_set.push_back(i);
    return cached;
  }

  float significance(std::size_t i) {
    const float l = s.lap[i];
    return l > 0 ? l / (f * noise_at(i)) : 0.0f;
  }

  /// Whether S - med5(S) > threshold at (y, x), where S = s_here. The median is first
  /// bounded from above with S <= L+ / (f N_min) wherever the noise model is not yet known;
  /// only when that bound does not settle the question are the exact values computed. Both
  /// routes give the same answer (the median is monotone in each value).
  bool above_local(std::size_t y, std::size_t x, float s_here, float threshold, float noise_min) {
    float buffer[25];
    const std::size_t y0 = y >= 2 ? y - 2 : 0, y1 = std::min(ny - 1, y + 2);
    const std::size_t x0 = x >= 2 ? x - 2 : 0, x1 = std::min(nx - 1, x + 2);
    const float lowest_scale = f * noise_min;
    std::size_t count = 0;
    for (std::size_t yy = y0; yy <= y1; ++yy)
      for (std::size_t xx = x0; xx <= x1; ++xx) {
        const std::size_t q = yy * nx + xx;
        const float l = s.lap[q];
        buffer[count++] = l > 0 ? l / (s.noise[q] >= 0 ? f * s.noise[q] : lowest_scale) : 0.0f;
      }
    if (s_here - median_of(std::span<float>(buffer, count)) > threshold) return true;
    count = 0;
    for (std::size_t yy = y0; yy <= y1; ++yy)
      for (std::size_t xx = x0; xx <= x1; ++xx) buffer[count++] = significance(yy * nx + xx);
    return s_here - median_of(std::span<float>(buffer, count)) > threshold;
  }

  /// F = med3(I) - med7(med3(I)) at (y, x) (van Dokkum 2001, eq. 9).
  float fine_structure(std::size_t y, std::size_t x) {
    float medians[49], buffer[9];
    const std::size_t y0 = y >= 3 ? y - 3 : 0, y1 = std::min(ny - 1, y + 3);
    const std::size_t x0 = x >= 3 ? x - 3 : 0, x1 = std::min(nx - 1, x + 3);
    std::size_t count = 0;
    for (std::size_t yy = y0; yy <= y1; ++yy)
      for (std::size_t xx = x0; xx <= x1; ++xx) medians[count++] = led::window_median(image, ny, nx, yy, xx, 1, buffer);
    const float m3 = led::window_median(image, ny, nx, y, x, 1, buffer);
    return m3 - median_of(std::span<float>(medians, count));
  }

  /// Replaces every pixel of s.found by the median of the unflagged pixels around it.
  void replace_found(std::uint32_t bits, std::span<std::uint32_t> dq, LedFrameResult& result) {
    for (std::size_t i : s.found) {
      if (!s.flagged[i]) {
        s.flagged[i] = 1;
        s.all.push_back(i);
        ++result.flagged;
      }
      dq[i] |= bits;
    }
    s.values.resize(s.found.size());
    float buffer[(2 * kMaxReplaceRadius + 1) * (2 * kMaxReplaceRadius + 1)];
    for (std::size_t k = 0; k < s.found.size(); ++k) {
      const std::size_t i = s.found[k], y = i / nx, x = i % nx;
      float value = image[i];  // kept only if no unflagged pixel lies within kMaxReplaceRadius
      for (std::size_t r = 2; r <= kMaxReplaceRadius; ++r) {
        const std::size_t y0 = y >= r ? y - r : 0, y1 = std::min(ny - 1, y + r);
        const std::size_t x0 = x >= r ? x - r : 0, x1 = std::min(nx - 1, x + r);
        std::size_t count = 0;
        for (std::size_t yy = y0; yy <= y1; ++yy)
          for (std::size_t xx = x0; xx <= x1; ++xx)
            if (!s.flagged[yy * nx + xx]) buffer[count++] = image[yy * nx + xx];
        if (count > 0) {
          value = median_of(std::span<float>(buffer, count));
          break;
        }
      }
      s.values[k] = value;
    }
    // Written only now, so that every replacement is computed from the same image.
    for (std::size_t k = 0; k < s.found.size(); ++k) image[s.found[k]] = s.values[k];
  }
};

}  // namespace

LedFrameResult led_frame(std::span<float> image, std::span<const float> err, std::span<std::uint32_t> dq,
                         std::size_t ny, std::size_t nx, const LedParams& params, LedScratch& scratch) {
  const std::size_t n = ny * nx;
  if (image.size() != n || dq.size() != n || (!err.empty() && err.size() != n))
    throw InternalError("led_frame: buffers do not match the frame's shape");
  const bool use_err = params.noise_model == "err";
  if (use_err && err.empty()) throw InternalError("led_frame: noise_model 'err' needs the err frame");
  LedFrameResult result;
  if (n == 0) return result;

  LedScratch& s = scratch;
  if (s.flagged.size() < n) s.flagged.resize(n, 0);  // stays all 0 between frames
  s.lap.resize(n);
  if (s.noise.size() < n) s.noise.resize(n, -1.0f);  // stays all -1 between passes
  s.all.clear();
  FrameLed frame{image.data(), use_err ? err : std::span<const float>{}, ny, nx, params, s,
                 static_cast<float>(params.led_factor)};

  // Non-finite values would poison every median around them: replace them first.
  if (count_non_finite(image) > 0) {
    s.found.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (!std::isfinite(image[i])) s.found.push_back(i);
    result.non_finite = s.found.size();
    frame.replace_found(dq::led_outlier | dq::non_finite, dq, result);
    // A non-finite value with no finite pixel within reach stays as it is; zero keeps the
    // medians below well defined.
    for (std::size_t i : s.found)
      if (!std::isfinite(image[i])) image[i] = 0.0f;
  }

  // Lower bound of the noise model over the frame (see the note at the top), computed the
  // way noise_at computes it for a 5x5 median of 0, so that it is a bound in floating point too.
  const float rn = static_cast<float>(params.read_noise);
  float noise_min = std::sqrt(0.0f + rn * rn);
  if (use_err) {
    float lowest = FLT_MAX;
    for (float e : err) lowest = std::min(lowest, std::isfinite(e) ? e : FLT_MAX);
    noise_min = std::min(noise_min, std::max(lowest, 0.0f));  // pixels with no finite err fall back to the image
  }
  noise_min = std::max(noise_min, kNoiseFloor);
  const float f = frame.f;
  const float threshold = static_cast<float>(params.led_threshold);
  const float contrast = static_cast<float>(params.contrast_factor);
  // L+ <= screen implies S <= threshold; the margin keeps that true through rounding.
  const float screen = threshold * f * noise_min * (1.0f - 1e-5f);

  const std::int64_t passes = params.led_n ? *params.led_n : params.max_passes;
  for (std::int64_t pass = 0; pass < passes; ++pass) {
    led::laplacian_plus(image.data(), ny, nx, static_cast<std::size_t>(params.led_factor), s.lap.data());
    s.found.clear();
    for (std::size_t y = 0; y < ny; ++y) {
      const float* lap_row = s.lap.data() + y * nx;
      for (std::size_t x0 = 0; x0 < nx; x0 += kScreenChunk) {
        // Most of a frame is far below the screen: test a chunk at once (vectorised).
        const std::size_t x1 = std::min(nx, x0 + kScreenChunk);
        unsigned above = 0;
        for (std::size_t x = x0; x < x1; ++x) above += lap_row[x] > screen ? 1u : 0u;
        if (above == 0) continue;
        for (std::size_t x = x0; x < x1; ++x) {
          const float l = lap_row[x];
          if (!(l > screen)) continue;
          const std::size_t i = y * nx + x;
          const float noise = frame.noise_at(i);
          const float sig = l / (f * noise);
          if (!(sig > threshold)) continue;
          if (!frame.above_local(y, x, sig, threshold, noise_min)) continue;
          if (params.fine_structure) {
            const float fine = std::max(frame.fine_structure(y, x), kFineFloor * noise);
            if (!(l / (f * fine) > contrast)) continue;
          }
          s.found.push_back(i);
        }
      }
    }
    for (std::size_t i : s.noise_set) s.noise[i] = -1.0f;
    s.noise_set.clear();
    ++result.passes;
    if (s.found.empty()) break;
    frame.replace_found(dq::led_outlier, dq, result);
  }

  for (std::size_t i : s.all) s.flagged[i] = 0;
  return result;
}

StepIO Led::io(const Params& params) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "dq"}};
  if (params.noise_model == "err") io.reads.push_back({DataKind::Cube, "err"});
  io.writes = {{DataKind::Cube, {"data", "", ""}},
               {DataKind::Cube, {"dq", "", ""}, ElementType::UInt32},
               {DataKind::FrameVector, {"led_outliers", "1", "pixels replaced by led (Laplacian edge detection) in each frame"},
                ElementType::Float32, true}};
  return io;
}

void Led::run(const Params& params, StepContext& context) {
  auto data = context.frames<float>("data");
  auto dq = context.frames<std::uint32_t>("dq");
  const bool use_err = params.noise_model == "err";
  FrameSlab<float> err;
  if (use_err) err = context.frames<float>("err");
  std::vector<double>& counts = context.frame_vector("led_outliers").values;
  LedScratch scratch;
  std::size_t total = 0, non_finite = 0;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    const LedFrameResult r = led_frame(data.frame(t), use_err ? err.frame(t) : std::span<const float>{}, dq.frame(t),
                                       data.ny, data.nx, params, scratch);
    counts[t] = static_cast<double>(r.flagged);
    total += r.flagged;
    non_finite += r.non_finite;
    context.advance(1);
  }
  char line[160];
  std::snprintf(line, sizeof line, "%zu pixels replaced in %zu frames (%zu not finite)", total,
                data.t_end - data.t_begin, non_finite);
  context.log().debug(line);
}

}  // namespace tessera::steps
