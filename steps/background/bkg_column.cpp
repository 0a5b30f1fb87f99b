#include "steps/background/bkg_column.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "steps/common/select.hpp"

namespace tessera::steps {

float clipped_estimate(std::span<float> values, double sigma, bool use_mean) {
  std::size_t kept = values.size();
  if (kept == 0) return std::numeric_limits<float>::quiet_NaN();
  for (int pass = 0; pass < 20; ++pass) {
    const std::span<float> current = values.first(kept);
    const float centre = median_of(current);  // reorders the kept values only
    double sum = 0;
    for (float v : current) sum += v;
    const double mean = sum / static_cast<double>(kept);
    double sum2 = 0;
    for (float v : current) sum2 += (v - mean) * (v - mean);
    const double limit = sigma * std::sqrt(sum2 / static_cast<double>(kept));
    // Move the values within the limit to the front; the others are dropped for good.
    std::size_t write = 0;
    for (std::size_t i = 0; i < kept; ++i)
      if (std::fabs(static_cast<double>(values[i]) - centre) <= limit) std::swap(values[write++], values[i]);
    if (write == kept || write == 0) break;
    kept = write;
  }
  const std::span<float> final_values = values.first(kept);
  if (!use_mean) return median_of(final_values);
  double sum = 0;
  for (float v : final_values) sum += v;
  return static_cast<float>(sum / static_cast<double>(kept));
}

namespace {

/// Fills background[x] for each column with at least `min_count` usable pixels (not excluded,
/// finite) and returns how many columns got one. Works on the column-major copies.
std::size_t estimate_columns(std::size_t ny, std::size_t nx, std::span<const std::uint8_t> excluded_t,
                             std::size_t min_count, const BkgColumnParams& params, BkgColumnScratch& scratch,
                             std::span<float> background, std::vector<bool>& have) {
  scratch.values.resize(ny);
  std::size_t columns = 0;
  const bool use_mean = params.estimator == "mean";
  for (std::size_t x = 0; x < nx; ++x) {
    const float* column = scratch.frame_t.data() + x * ny;
    const std::uint8_t* excluded = excluded_t.data() + x * ny;
    std::size_t n = 0;
    for (std::size_t y = 0; y < ny; ++y) {
      scratch.values[n] = column[y];
      n += !excluded[y] && std::isfinite(column[y]) ? 1 : 0;
    }
    if (n < min_count || n == 0) continue;
    background[x] = clipped_estimate(std::span<float>(scratch.values.data(), n), params.col_sigma, use_mean);
    have[x] = true;
    ++columns;
  }
  return columns;
}

/// Columns without a value take it from the nearest columns that have one: linear
/// interpolation between the nearest on either side, or the nearest one at the edges.
void fill_from_neighbours(std::span<float> background, const std::vector<bool>& have) {
  const std::size_t nx = background.size();
  std::size_t left = nx;  // nearest column with a value to the left (nx: none yet)
  for (std::size_t x = 0; x < nx; ++x) {
    if (have[x]) {
      left = x;
      continue;
    }
    std::size_t right = x + 1;
    while (right < nx && !have[right]) ++right;
    if (left < nx && right < nx) {
      const double w = static_cast<double>(x - left) / static_cast<double>(right - left);
      background[x] = static_cast<float>((1 - w) * background[left] + w * background[right]);
    } else if (left < nx) {
      background[x] = background[left];
    } else if (right < nx) {
      background[x] = background[right];
    }
  }
}

}  // namespace

void column_background(std::span<const float> frame, std::size_t ny, std::size_t nx, const BkgColumnParams& params,
                       BkgColumnScratch& scratch, std::span<float> background) {
  if (params.rows.empty()) throw StepError("bkg_column: rows: needs at least one row");
  scratch.row_selected.assign(ny, 0);
  for (std::int64_t r : params.rows) {
    if (r < 0 || static_cast<std::size_t>(r) >= ny)
      throw StepError("bkg_column: rows: row " + std::to_string(r) + " is outside the frame (rows 0 to " +
                      std::to_string(ny - 1) + ")");
    scratch.row_selected[static_cast<std::size_t>(r)] = 1;
  }
  const std::size_t pixels = ny * nx;
  scratch.frame_t.resize(pixels);
  transpose_blocked(frame.data(), ny, nx, scratch.frame_t.data());
  scratch.excluded_t.resize(pixels);
  scratch.source.assign(nx, ColumnSource::own);
  std::fill(background.begin(), background.end(), std::numeric_limits<float>::quiet_NaN());
  std::vector<bool> have(nx, false);

  auto exclude_all_but_rows = [&] {
    for (std::size_t x = 0; x < nx; ++x)
      for (std::size_t y = 0; y < ny; ++y) scratch.excluded_t[x * ny + y] = scratch.row_selected[y] ? 0 : 1;
  };

  if (!params.mask_trace) {
    exclude_all_but_rows();
    if (estimate_columns(ny, nx, scratch.excluded_t, 1, params, scratch, background, have) == 0)
      throw StepError("bkg_column: rows: no finite pixel in the chosen rows of any column");
    for (std::size_t x = 0; x < nx; ++x)
      if (!have[x]) scratch.source[x] = ColumnSource::neighbours;
    fill_from_neighbours(background, have);
    return;
  }

  SourceMaskOptions options;
  options.snr = params.trace_snr;
  options.grow_y = static_cast<std::size_t>(params.dist_from_trace);
  options.grow_x = static_cast<std::size_t>(params.trace_grow_x);
  find_sources(frame, ny, nx, options, scratch.sources, {});
  std::copy(scratch.sources.mask_t.begin(), scratch.sources.mask_t.end(), scratch.excluded_t.begin());
  const auto min_count = static_cast<std::size_t>(params.min_rows);
  if (estimate_columns(ny, nx, scratch.excluded_t, min_count, params, scratch, background, have) > 0) {
    for (std::size_t x = 0; x < nx; ++x)
      if (!have[x]) scratch.source[x] = ColumnSource::neighbours;
    fill_from_neighbours(background, have);
    return;
  }
  // The mask leaves too little anywhere (frame hardly taller than 2·dist_from_trace): use rows.
  exclude_all_but_rows();
  if (estimate_columns(ny, nx, scratch.excluded_t, 1, params, scratch, background, have) == 0)
    throw StepError("bkg_column: no column has min_rows pixels dist_from_trace away from the traces, and the "
                    "fallback rows hold no finite pixel");
  for (std::size_t x = 0; x < nx; ++x) scratch.source[x] = have[x] ? ColumnSource::rows : ColumnSource::neighbours;
  fill_from_neighbours(background, have);
}

StepIO BkgColumn::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}};
  DataOut values{DataKind::Image, {"bkg_column_value", "electron", "background subtracted from each column of each frame"}};
  values.image_ny = DataOut::frames;  // one row per frame: (time, x)
  values.dim_y = "time";
  values.dim_x = "x";
  io.writes = {{DataKind::Cube, {"data", "", ""}},
               values,
               {DataKind::FrameVector,
                {"bkg_column_median_before", "electron", "median of the background pixels before bkg_column"}},
               {DataKind::FrameVector,
                {"bkg_column_median_after", "electron", "median of the background pixels after bkg_column"}}};
  return io;
}

void BkgColumn::run(const Params& params, StepContext& context) {
  const CubeShape& shape = context.shape();
  const std::size_t ny = shape.ny, nx = shape.nx;
  auto slab = context.frames<float>("data");
  // One row per frame: (time, x). Each rank fills its own frames' rows; the engine sums.
  Image& image = context.image("bkg_column_value");
  std::vector<double>& before = context.frame_vector("bkg_column_median_before").values;
  std::vector<double>& after = context.frame_vector("bkg_column_median_after").values;

  BkgColumnScratch scratch;
  std::vector<float> background(nx), used_before, used_after;
  // The medians use at most about 2^18 evenly spaced background pixels.
  const std::size_t stride = std::max<std::size_t>(1, (ny * nx) >> 18);
  for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
    const std::span<float> frame = slab.frame(t);
    column_background(frame, ny, nx, params, scratch, background);

    // Medians of the background pixels of the columns that had their own estimate.
    used_before.clear();
    used_after.clear();
    for (std::size_t i = 0; i < ny * nx; i += stride) {
      const std::size_t x = i / ny;
      const float v = scratch.frame_t[i];
      if (scratch.excluded_t[i] || scratch.source[x] != ColumnSource::own || !std::isfinite(v)) continue;
      used_before.push_back(v);
      used_after.push_back(v - background[x]);
    }
    before[t] = median_of(used_before);
    after[t] = median_of(used_after);

    for (std::size_t y = 0; y < ny; ++y) {
      float* row = frame.data() + y * nx;
      for (std::size_t x = 0; x < nx; ++x) row[x] -= background[x];
    }
    std::copy(background.begin(), background.end(), image.values.begin() + static_cast<std::ptrdiff_t>(t * nx));
    context.advance(1);
  }
}

}  // namespace tessera::steps
