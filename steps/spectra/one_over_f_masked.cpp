#include "steps/spectra/one_over_f_masked.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>

#include "steps/common/jwst_dq.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

namespace dq = tessera::jwst::dq;

/// Columns are read in blocks of this many and transposed (as in one_over_f): a column read
/// straight from a row-major image strides by whole rows.
constexpr std::size_t kBlock = 64;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void check_orders(const std::vector<std::string>& orders) {
  if (orders.empty()) throw ConfigError("one_over_f_masked: orders: give at least one traced order");
  std::set<std::string> seen;
  for (const auto& name : orders) {
    bool valid = !name.empty();
    for (char c : name) valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!valid)
      throw ConfigError("one_over_f_masked: orders: '" + name +
                        "' is not a valid order name (letters, digits and "
                        "underscores)");
    if (!seen.insert(name).second) throw ConfigError("one_over_f_masked: orders: '" + name + "' is given twice");
  }
}

}  // namespace

float masked_line_median(const float* line, std::size_t n_spatial,
                         std::vector<std::pair<std::int64_t, std::int64_t>>& masks, float* values, float* scratch,
                         BracketedMedian& median, std::size_t& count) {
  // Walk the line in the gaps between the (sorted, merged on the fly) masked intervals.
  std::size_t m = 0;
  std::int64_t next = 0;  // first spatial index not yet visited
  const auto n = static_cast<std::int64_t>(n_spatial);
  auto take = [&](std::int64_t from, std::int64_t to) {
    for (std::int64_t s = std::max<std::int64_t>(from, 0); s < std::min(to, n); ++s) {
      const float v = line[s];
      values[m] = v;
      m += std::isfinite(v) ? 1 : 0;
    }
  };
  std::sort(masks.begin(), masks.end());
  for (const auto& [begin, end] : masks) {
    if (end <= begin) continue;
    take(next, begin);
    next = std::max(next, end);
  }
  take(next, n);
  count = m;
  return m == 0 ? kNaN : median(values, m, scratch);
}

StepIO OneOverFMasked::io(const Params& params) {
  check_orders(params.orders);
  const spectra::Dispersion d = spectra::parse_dispersion(params.dispersion_axis);
  StepIO io;
  io.reads = {{DataKind::Cube, params.cube, "rate images (ramp_fit, or the tessera_h5 / jwst_rateints inputs)"},
              {DataKind::Cube, "dq", "pixel dq of the rate images"}};
  for (const auto& o : params.orders)
    io.reads.push_back({DataKind::Image, "trace_" + o,
                        "run the trace step first with '" + o + "' among its orders (or set orders here)"});
  io.writes.push_back(DataOut{DataKind::Cube, {params.cube, "", ""}, ElementType::Float32});
  DataOut level{DataKind::Image,
                {"one_over_f_masked_level", "", "median removed from each spatial line by one_over_f_masked"}};
  level.image_ny = DataOut::frames;
  level.image_nx = spectra::dispersion_size(d);
  level.dim_y = "time";
  level.dim_x = spectra::dispersion_dim(d);
  io.writes.push_back(level);
  return io;
}

void OneOverFMasked::run(const Params& params, StepContext& context) {
  check_orders(params.orders);
  const spectra::Dispersion dispersion = spectra::parse_dispersion(params.dispersion_axis);
  auto cube = context.frames<float>(params.cube);
  auto dqc = context.frames<std::uint32_t>("dq");
  const std::size_t ny = cube.ny, nx = cube.nx;
  const bool along_x = dispersion == spectra::Dispersion::x;
  const std::size_t n_wave = along_x ? nx : ny, n_spatial = along_x ? ny : nx;
  const std::size_t nt = context.shape().nt;

  std::vector<const Image*> traces;
  for (const auto& o : params.orders) {
    const Image& image = context.image("trace_" + o);
    if (image.nx != n_wave || image.ny != nt)
      throw StepError("one_over_f_masked: orders: image trace_" + o + " is " + std::to_string(image.ny) + " x " +
                      std::to_string(image.nx) + ", but the data have " + std::to_string(nt) + " integrations of " +
                      std::to_string(n_wave) + (along_x ? " columns" : " rows") +
                      " along the dispersion (was trace run with the same dispersion_axis?)");
    traces.push_back(&image);
  }
  Image& level = context.image("one_over_f_masked_level");
  level.info.units = context.data().cube(params.cube).info.units;

  const std::uint32_t bad = dq::do_not_use | (params.skip_reference_pixels ? dq::reference_pixel : 0u);
  const std::int64_t aperture = params.mask_aperture;
  const auto min_pixels = static_cast<std::size_t>(params.min_pixels);
  std::vector<std::pair<std::int64_t, std::int64_t>> masks;
  masks.reserve(traces.size());
  std::vector<float> values(n_spatial), scratch(n_spatial), correction(n_wave);
  BracketedMedian bracketed;
  const std::size_t ld = n_spatial + 3;  // block stride: no power of two
  std::vector<float> block(along_x ? kBlock * ld : n_spatial);
  std::size_t left_alone = 0;

  for (std::size_t t = cube.t_begin; t < cube.t_end; ++t) {
    const std::span<float> image = cube.frame(t);
    const std::span<std::uint32_t> flags = dqc.frame(t);
    float* out = level.values.data() + t * n_wave;
    // The median of line d, whose usable pixels (NaN for the others) are in `line`.
    auto line_median = [&](std::size_t d, const float* line) {
      masks.clear();
      for (const Image* trace : traces) {
        const float centre = trace->values[t * n_wave + d];
        if (!std::isfinite(centre)) continue;
        const auto row = static_cast<std::int64_t>(centre);  // Python int(): truncation
        masks.emplace_back(row - aperture, row + aperture);
      }
      std::size_t used = 0;
      const float median = masked_line_median(line, n_spatial, masks, values.data(), scratch.data(), bracketed, used);
      if (used < min_pixels) {
        ++left_alone;
        correction[d] = 0.0f;
        out[d] = kNaN;
      } else {
        correction[d] = median;
        out[d] = median;
      }
    };
    if (along_x) {
      for (std::size_t x0 = 0; x0 < nx; x0 += kBlock) {
        const std::size_t w = std::min(kBlock, nx - x0);
        for (std::size_t y = 0; y < ny; ++y) {
          const float* row = image.data() + y * nx + x0;
          const std::uint32_t* f = flags.data() + y * nx + x0;
          for (std::size_t k = 0; k < w; ++k) block[k * ld + y] = (f[k] & bad) ? kNaN : row[k];
        }
        for (std::size_t k = 0; k < w; ++k) line_median(x0 + k, block.data() + k * ld);
      }
      for (std::size_t y = 0; y < ny; ++y) {
        float* row = image.data() + y * nx;
        for (std::size_t x = 0; x < nx; ++x) row[x] -= correction[x];
      }
    } else {
      for (std::size_t y = 0; y < ny; ++y) {
        float* row = image.data() + y * nx;
        const std::uint32_t* f = flags.data() + y * nx;
        for (std::size_t x = 0; x < nx; ++x) block[x] = (f[x] & bad) ? kNaN : row[x];
        line_median(y, block.data());
        for (std::size_t x = 0; x < nx; ++x) row[x] -= correction[y];
      }
    }
    context.advance(1);
  }
  if (left_alone > 0)
    context.log().warn("one_over_f_masked: " + std::to_string(left_alone) + " lines (of " +
                       std::to_string(n_wave * (cube.t_end - cube.t_begin)) + " on this rank) had fewer than " +
                       std::to_string(min_pixels) + " usable pixels outside the traces and were left uncorrected");
}

}  // namespace tessera::steps
