#include "steps/detector/refpix.hpp"

#include <cmath>
#include <string>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

namespace dq = tessera::jwst::dq;

/// Iterative k-sigma clipped mean, as scipy.stats.sigmaclip does it for the pipeline: keep
/// the values within [mean - k·std, mean + k·std] of the current set (population std) until
/// no value leaves. `v` is reordered. NaN when empty.
double clipped_mean(std::vector<float>& v, double k) {
  std::size_t n = v.size();
  if (n == 0) return std::nan("");
  while (true) {
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) sum += v[i];
    const double mean = sum / static_cast<double>(n);
    double ss = 0.0;
    for (std::size_t i = 0; i < n; ++i) ss += (v[i] - mean) * (v[i] - mean);
    const double spread = k * std::sqrt(ss / static_cast<double>(n));
    const double lo = mean - spread, hi = mean + spread;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (v[i] >= lo && v[i] <= hi) v[kept++] = v[i];
    if (kept == n || kept == 0) return mean;
    n = kept;
  }
}

/// Median of the usable side reference pixels of rows [y0, y1) in `columns`, after the
/// column offsets; NaN when there are none.
float side_median(std::span<const float> image, std::span<const std::uint32_t> dqimg, std::size_t nx,
                  const std::vector<std::size_t>& columns, std::size_t y0, std::size_t y1,
                  std::span<const float> column_offset, std::vector<float>& buffer) {
  buffer.clear();
  for (std::size_t y = y0; y < y1; ++y)
    for (std::size_t x : columns) {
      const std::size_t i = y * nx + x;
      if (dqimg[i] & dq::bad_ref_pixel) continue;
      const float v = image[i] - column_offset[x];
      if (std::isfinite(v)) buffer.push_back(v);
    }
  return median_of(buffer);
}

}  // namespace

RefpixGeometry refpix_geometry(std::span<const std::uint32_t> dqimg, std::size_t ny, std::size_t nx,
                               const RefpixParams& params) {
  RefpixGeometry g;
  g.ny = ny;
  g.nx = nx;
  g.amplifiers = static_cast<std::size_t>(params.amplifiers);
  g.odd_even = params.odd_even_columns;
  std::vector<std::size_t> per_row(ny, 0), per_column(nx, 0);
  std::size_t total = 0;
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x)
      if (dqimg[y * nx + x] & dq::reference_pixel) {
        ++per_row[y];
        ++per_column[x];
        ++total;
      }
  if (total == 0)
    throw StepError(
        "refpix: no pixel is flagged reference_pixel in dq; run dq_init first with a mask (parameter 'mask') that "
        "flags the reference pixels");

  const std::size_t width = nx / g.amplifiers;
  const std::size_t classes = g.amplifiers * 2 * 2;
  auto class_of = [&](std::size_t y, std::size_t x) {
    const std::size_t amp = x / width;
    const std::size_t parity = g.odd_even ? x % 2 : 0;
    const std::size_t top = y >= ny / 2 ? 1 : 0;
    return (amp * 2 + parity) * 2 + top;
  };
  // JWST masks flag every reference pixel DO_NOT_USE as well (it carries no light); a bad one
  // is BAD_REF_PIXEL.
  auto usable = [&](std::size_t i) { return (dqimg[i] & dq::reference_pixel) && !(dqimg[i] & dq::bad_ref_pixel); };
  // Counting sort of the usable pixels of the reference rows into their classes.
  g.class_begin.assign(classes + 1, 0);
  for (std::size_t y = 0; y < ny; ++y) {
    if (2 * per_row[y] <= nx) continue;
    for (std::size_t x = 0; x < nx; ++x)
      if (usable(y * nx + x)) ++g.class_begin[class_of(y, x) + 1];
  }
  for (std::size_t c = 0; c < classes; ++c) g.class_begin[c + 1] += g.class_begin[c];
  g.class_pixels.resize(g.class_begin[classes]);
  g.has_rows = !g.class_pixels.empty();
  std::vector<std::size_t> fill(g.class_begin.begin(), g.class_begin.end() - 1);
  for (std::size_t y = 0; y < ny; ++y) {
    if (2 * per_row[y] <= nx) continue;
    for (std::size_t x = 0; x < nx; ++x)
      if (usable(y * nx + x)) g.class_pixels[fill[class_of(y, x)]++] = y * nx + x;
  }
  for (std::size_t x = 0; x < nx; ++x)
    if (2 * per_column[x] > ny) (x < nx / 2 ? g.left_columns : g.right_columns).push_back(x);

  const bool sides = params.use_side_ref_pixels && !(g.left_columns.empty() && g.right_columns.empty());
  if (!g.has_rows && !sides)
    throw StepError("refpix: the pixels flagged reference_pixel in dq form no usable reference rows" +
                    std::string(params.use_side_ref_pixels ? " or columns" : "") +
                    " (a reference row or column has more than half its pixels flagged, and bad_ref_pixel ones are "
                    "left out); check the mask given to dq_init");
  return g;
}

void refpix_group(std::span<float> image, std::span<const std::uint32_t> dqimg, const RefpixGeometry& g,
                  const RefpixParams& params, RefpixScratch& s) {
  const std::size_t ny = g.ny, nx = g.nx;
  const std::size_t width = nx / g.amplifiers;
  s.column_offset.assign(nx, 0.0f);
  s.row_signal.assign(ny, 0.0f);

  // Top/bottom: one offset per amplifier and column parity, the mean of the clipped top and
  // bottom means (either alone when the other has no usable pixel; none: no offset).
  if (g.has_rows) {
    for (std::size_t amp = 0; amp < g.amplifiers; ++amp)
      for (std::size_t parity = 0; parity < (g.odd_even ? 2u : 1u); ++parity) {
        double sum = 0.0;
        int count = 0;
        for (std::size_t top = 0; top < 2; ++top) {
          const std::size_t c = (amp * 2 + parity) * 2 + top;
          s.values.clear();
          for (std::size_t k = g.class_begin[c]; k < g.class_begin[c + 1]; ++k) {
            const float v = image[g.class_pixels[k]];
            if (std::isfinite(v)) s.values.push_back(v);
          }
          const double m = clipped_mean(s.values, params.clip_sigma);
          if (std::isfinite(m)) {
            sum += m;
            ++count;
          }
        }
        if (count == 0) continue;
        const float offset = static_cast<float>(sum / count);
        for (std::size_t x = amp * width; x < (amp + 1) * width; ++x)
          if (!g.odd_even || x % 2 == parity) s.column_offset[x] = offset;
      }
  }

  // Side columns: running median of each side over the window of rows, after the
  // top/bottom correction, averaged over the sides that have usable pixels.
  if (params.use_side_ref_pixels && !(g.left_columns.empty() && g.right_columns.empty())) {
    const std::size_t half = static_cast<std::size_t>(params.side_smoothing_length) / 2;
    const float gain = static_cast<float>(params.side_gain);
    for (std::size_t y = 0; y < ny; ++y) {
      const std::size_t y0 = y >= half ? y - half : 0;
      const std::size_t y1 = std::min(ny, y + half + 1);
      const float left = side_median(image, dqimg, nx, g.left_columns, y0, y1, s.column_offset, s.values);
      const float right = side_median(image, dqimg, nx, g.right_columns, y0, y1, s.column_offset, s.values);
      float signal = 0.0f;
      if (std::isfinite(left) && std::isfinite(right))
        signal = 0.5f * (left + right);
      else if (std::isfinite(left))
        signal = left;
      else if (std::isfinite(right))
        signal = right;
      s.row_signal[y] = gain * signal;
    }
  }

  // One pass over the group.
  const float* offset = s.column_offset.data();
  for (std::size_t y = 0; y < ny; ++y) {
    float* row = image.data() + y * nx;
    const float r = s.row_signal[y];
    for (std::size_t x = 0; x < nx; ++x) row[x] = (row[x] - offset[x]) - r;
  }
}

StepIO Refpix::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "ramp", "refpix works on the ramps (input jwst_uncal)"},
              {DataKind::Cube, "dq", "run dq_init first: refpix finds the reference pixels in dq"}};
  DataOut ramp{DataKind::Cube, {"ramp", "", ""}, ElementType::Float32};
  ramp.grouped = true;
  io.writes = {ramp};
  return io;
}

void Refpix::run(const Params& params, StepContext& context) {
  auto ramp = context.frames<float>("ramp");
  auto dqc = context.frames<std::uint32_t>("dq");
  const std::size_t ny = ramp.ny, nx = ramp.nx;
  if (nx % static_cast<std::size_t>(params.amplifiers) != 0)
    throw StepError("refpix: amplifiers = " + std::to_string(params.amplifiers) + " does not divide the " +
                    std::to_string(nx) + " columns into equal strips");
  RefpixScratch scratch;
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    const auto dqimg = dqc.frame(t);
    RefpixGeometry geometry;
    try {
      geometry = refpix_geometry(dqimg, ny, nx, params);
    } catch (const StepError& e) {
      throw StepError(std::string(e.what()) + " (integration " + std::to_string(t) + ")");
    }
    for (std::size_t g = 0; g < ramp.groups; ++g) refpix_group(ramp.group(t, g), dqimg, geometry, params, scratch);
    context.advance(1);
  }
}

}  // namespace tessera::steps
