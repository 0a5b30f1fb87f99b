#pragma once
/// Finds the light of the star (0th order, spectral traces) in one frame from the frame
/// alone, so that background steps can exclude it. Shared by bkg_column and bkg_sky.
///
/// Detection, per frame of ny × nx (row-major):
///  1. a running median of 5 pixels along x (rows): isolated hot pixels and cosmic rays,
///     which are 1–3 pixels wide, vanish, while the traces (long along x) and the 0th
///     order (a few pixels across) stay;
///  2. per column: the level (median) and noise σ (1.4826 × median absolute deviation) of
///     that filtered column, then a running mean of 5 rows minus the level: S(y, x);
///  3. a pixel is a source when S > snr · σ / √(rows averaged) and, if peak_fraction > 0,
///     also S > peak_fraction × (largest S in the frame);
///  4. the detections are grown by grow_y rows and grow_x columns on each side.
/// Everything depends only on the frame given, so the mask is the same on any rank.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "steps/common/select.hpp"

namespace tessera::steps {

struct SourceMaskOptions {
  double snr = 5;             ///< detection threshold, in σ of the 5-row mean of the filtered column
  double peak_fraction = 0;   ///< also require S > this × the frame's largest S (0: no such condition)
  std::size_t grow_y = 0;     ///< rows masked on each side of a detected pixel
  std::size_t grow_x = 0;     ///< columns masked on each side of a detected pixel
};

/// Buffers reused from frame to frame so that the per-pixel loops never allocate. After
/// find_sources, `mask_t` holds the mask column-major (mask_t[x*ny + y]).
struct SourceMaskScratch {
  std::vector<float> filtered;    // ny*nx row-major: the x-median image
  std::vector<float> filtered_t;  // nx*ny column-major: the same, then S in place
  std::vector<float> pad;         // nx+4: one row with reflected edges
  std::vector<float> deviation;   // ny
  std::vector<float> sigma;       // nx: noise of the filtered column
  std::vector<std::uint8_t> detected, grown, mask_t;  // nx*ny column-major
  std::vector<std::uint32_t> prefix, count;
};

/// out[c*rows + r] = in[r*cols + c]: a blocked transpose, so that both sides stay in cache.
template <class T>
void transpose_blocked(const T* in, std::size_t rows, std::size_t cols, T* out) {
  constexpr std::size_t kBlock = 32;
  for (std::size_t r0 = 0; r0 < rows; r0 += kBlock)
    for (std::size_t c0 = 0; c0 < cols; c0 += kBlock) {
      const std::size_t r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
      for (std::size_t r = r0; r < r1; ++r)
        for (std::size_t c = c0; c < c1; ++c) out[c * rows + r] = in[r * cols + c];
    }
}

/// Median of five values with min/max only (a sorting network), so that a loop over a row
/// vectorises.
inline float median_of_five(float a, float b, float c, float d, float e) {
  const float f = std::max(std::min(a, b), std::min(c, d));
  const float g = std::min(std::max(a, b), std::max(c, d));
  return std::max(std::min(e, f), std::min(std::max(e, f), g));
}

/// Finds the sources of `image` (ny*nx, row-major; see the file comment) into
/// scratch.mask_t (column-major, 1 = source or within the grown margin of one) and, when
/// `mask` is not empty, into mask (row-major). Non-finite pixels count as 0 for detection.
/// Returns the number of detected pixels before growing.
inline std::size_t find_sources(std::span<const float> image, std::size_t ny, std::size_t nx,
                                const SourceMaskOptions& options, SourceMaskScratch& s, std::span<std::uint8_t> mask) {
  constexpr std::size_t kHalfRows = 2;  // the running mean along y covers 2·2+1 rows
  const std::size_t pixels = ny * nx;
  s.filtered.resize(pixels);
  s.filtered_t.resize(pixels);
  s.pad.resize(nx + 4);
  s.deviation.resize(ny);
  s.sigma.resize(nx);
  s.detected.resize(pixels);
  s.grown.resize(pixels);
  s.mask_t.resize(pixels);
  s.prefix.resize(ny + 1);
  s.count.resize(ny);

  // 1. Median of 5 along each row; the row's ends are reflected (x = -1 -> 1, -2 -> 2).
  auto reflect = [nx](long i) {
    const long n = static_cast<long>(nx);
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return static_cast<std::size_t>(std::clamp(i, 0L, n - 1));
  };
  const std::size_t left[2] = {reflect(-2), reflect(-1)};
  const std::size_t right[2] = {reflect(static_cast<long>(nx)), reflect(static_cast<long>(nx) + 1)};
  float* pad = s.pad.data();
  for (std::size_t y = 0; y < ny; ++y) {
    const float* row = image.data() + y * nx;
    for (std::size_t x = 0; x < nx; ++x) pad[x + 2] = std::isfinite(row[x]) ? row[x] : 0.0f;
    pad[0] = pad[left[0] + 2];
    pad[1] = pad[left[1] + 2];
    pad[nx + 2] = pad[right[0] + 2];
    pad[nx + 3] = pad[right[1] + 2];
    float* out = s.filtered.data() + y * nx;
    for (std::size_t x = 0; x < nx; ++x) out[x] = median_of_five(pad[x], pad[x + 1], pad[x + 2], pad[x + 3], pad[x + 4]);
  }
  transpose_blocked(s.filtered.data(), ny, nx, s.filtered_t.data());
  // 1/(rows averaged) and √(rows averaged): the window has 5 rows except within 2 of an edge.
  float inverse[2 * kHalfRows + 2] = {}, root[2 * kHalfRows + 2] = {};
  for (std::size_t k = 1; k < 2 * kHalfRows + 2; ++k) {
    inverse[k] = 1.0f / static_cast<float>(k);
    root[k] = std::sqrt(static_cast<float>(k));
  }

  // 2. Per column: level, noise, and the running mean along y minus the level (in place).
  float peak = 0;
  for (std::size_t x = 0; x < nx; ++x) {
    float* column = s.filtered_t.data() + x * ny;
    std::copy(column, column + ny, s.deviation.begin());
    const float level = median_of(std::span<float>(s.deviation));
    for (std::size_t y = 0; y < ny; ++y) s.deviation[y] = std::fabs(column[y] - level);
    // A floor far below any real noise, so that a noise-free column (σ = 0) does not turn
    // rounding errors into detections.
    s.sigma[x] = std::max(1.4826f * median_of(std::span<float>(s.deviation)), 1e-5f * std::max(std::fabs(level), 1.0f));
    for (std::size_t y = 0; y < ny; ++y) s.deviation[y] = column[y] - level;
    for (std::size_t y = 0; y < ny; ++y) {
      const std::size_t lo = y >= kHalfRows ? y - kHalfRows : 0, hi = std::min(ny, y + kHalfRows + 1);
      float sum = 0;
      for (std::size_t k = lo; k < hi; ++k) sum += s.deviation[k];
      column[y] = sum * inverse[hi - lo];
      peak = std::max(peak, column[y]);
    }
  }

  // 3. Detection, then 4a. growth along y (within each column) with a prefix count.
  const float floor_from_peak = options.peak_fraction > 0 ? static_cast<float>(options.peak_fraction) * peak : 0.0f;
  std::size_t detected = 0;
  for (std::size_t x = 0; x < nx; ++x) {
    const float* smooth = s.filtered_t.data() + x * ny;
    std::uint8_t* d = s.detected.data() + x * ny;
    const float noise = static_cast<float>(options.snr) * s.sigma[x];
    std::size_t in_column = 0;
    for (std::size_t y = 0; y < ny; ++y) {
      const std::size_t lo = y >= kHalfRows ? y - kHalfRows : 0, hi = std::min(ny, y + kHalfRows + 1);
      const bool is_source = smooth[y] > floor_from_peak && smooth[y] * root[hi - lo] > noise;
      d[y] = is_source ? 1 : 0;
      in_column += is_source ? 1 : 0;
    }
    detected += in_column;
    std::uint8_t* g = s.grown.data() + x * ny;
    if (in_column == 0) {
      std::fill(g, g + ny, std::uint8_t{0});
      continue;
    }
    s.prefix[0] = 0;
    for (std::size_t y = 0; y < ny; ++y) s.prefix[y + 1] = s.prefix[y] + d[y];
    for (std::size_t y = 0; y < ny; ++y) {
      const std::size_t lo = y >= options.grow_y ? y - options.grow_y : 0;
      const std::size_t hi = std::min(ny, y + options.grow_y + 1);
      g[y] = s.prefix[hi] - s.prefix[lo] > 0 ? 1 : 0;
    }
  }

  // 4b. Growth along x with a running count per row over columns [x - grow_x, x + grow_x].
  std::fill(s.count.begin(), s.count.end(), 0u);
  auto add_column = [&](std::size_t x) {
    const std::uint8_t* g = s.grown.data() + x * ny;
    for (std::size_t y = 0; y < ny; ++y) s.count[y] += g[y];
  };
  auto remove_column = [&](std::size_t x) {
    const std::uint8_t* g = s.grown.data() + x * ny;
    for (std::size_t y = 0; y < ny; ++y) s.count[y] -= g[y];
  };
  for (std::size_t x = 0; x < std::min(nx, options.grow_x + 1); ++x) add_column(x);
  for (std::size_t x = 0; x < nx; ++x) {
    std::uint8_t* m = s.mask_t.data() + x * ny;
    for (std::size_t y = 0; y < ny; ++y) m[y] = s.count[y] > 0 ? 1 : 0;
    if (x + options.grow_x + 1 < nx) add_column(x + options.grow_x + 1);
    if (x >= options.grow_x) remove_column(x - options.grow_x);
  }
  if (!mask.empty()) transpose_blocked(s.mask_t.data(), nx, ny, mask.data());
  return detected;
}

}  // namespace tessera::steps
