#include "steps/detector/one_over_f.hpp"

#include <cmath>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

namespace dq = tessera::jwst::dq;

/// Usable rows of every column of one integration, column-major: column x's rows are
/// rows[begin[x] .. begin[x] + count[x]).
struct ColumnRows {
  std::vector<std::uint32_t> begin, count, rows;
};

/// Columns are read in blocks of this many, transposed into a column-major buffer: reading a
/// column straight from a row-major image strides by whole rows, which for 2048-column images
/// maps every sample onto the same few cache sets.
constexpr std::size_t kBlock = 64;

/// Copies rows [y0, y1) of columns [x0, x0 + w) of `a` (minus `b` when given) into `block`,
/// column k at block[k * ld + y]; samples flagged `bad` in `gd` (when given) become NaN.
void load_block(const float* a, const float* b, const std::uint8_t* gd, std::uint8_t bad, std::size_t nx,
                std::size_t y0, std::size_t y1, std::size_t x0, std::size_t w, std::size_t ld, float* block) {
  for (std::size_t y = y0; y < y1; ++y) {
    const float* ra = a + y * nx + x0;
    if (b) {
      const float* rb = b + y * nx + x0;
      for (std::size_t k = 0; k < w; ++k) block[k * ld + y] = ra[k] - rb[k];
    } else {
      for (std::size_t k = 0; k < w; ++k) block[k * ld + y] = ra[k];
    }
    if (gd) {
      const std::uint8_t* rg = gd + y * nx + x0;
      for (std::size_t k = 0; k < w; ++k)
        if (rg[k] & bad) block[k * ld + y] = NAN;
    }
  }
}

/// The finite values of `column` at the usable rows `rows[0..n)`, into `values`.
void gather(const float* column, const std::uint32_t* rows, std::uint32_t n, std::vector<float>& values) {
  values.clear();
  for (std::uint32_t k = 0; k < n; ++k) {
    const float v = column[rows[k]];
    if (std::isfinite(v)) values.push_back(v);
  }
}

/// Moves the finite values of `column` at the usable rows `rows[0..n)` to column[0..m) in
/// place and returns m: rows ascend, so every value moves down or stays (branch-free).
std::size_t compact(float* column, const std::uint32_t* rows, std::uint32_t n) {
  std::size_t m = 0;
  for (std::uint32_t k = 0; k < n; ++k) {
    const float v = column[rows[k]];
    column[m] = v;
    m += std::isfinite(v) ? 1 : 0;
  }
  return m;
}

}  // namespace

StepIO OneOverF::io(const Params& params) {
  StepIO io;
  const bool group = params.mode == "group";
  const std::string cube = group ? "ramp" : "data";
  io.reads = {{DataKind::Cube, cube,
               group ? "mode = \"group\" works on the ramps (input jwst_uncal), before ramp_fit"
                     : "mode = \"integration\" works on the rate images of ramp_fit"},
              {DataKind::Cube, "dq", "pixel dq (input jwst_uncal; dq_init flags reference pixels)"}};
  if (group)
    io.reads.push_back({DataKind::Cube, "groupdq", "group dq of the jwst_uncal input"});
  if (params.mask)
    if (auto read = jwst::reference_read(*params.mask, "mask")) io.reads.push_back(*read);
  DataOut out{DataKind::Cube, {cube, "", ""}, ElementType::Float32};
  out.grouped = group;
  io.writes = {out};
  if (group) {
    // The rate each column's correction took away (sky included), per integration: ramp_fit
    // adds it back to its Poisson variance (parameter sky_rate).
    DataOut rate{DataKind::Image, {std::string(kRemovedRate), "DN/s",
                                   "rate removed from each column by one_over_f, per integration"}};
    rate.image_ny = DataOut::frames;
    rate.dim_y = "time";
    io.writes.push_back(rate);
  }
  return io;
}

void OneOverF::run(const Params& params, StepContext& context) {
  const bool group_mode = params.mode == "group";
  auto cube = context.frames<float>(group_mode ? "ramp" : "data");
  auto dqc = context.frames<std::uint32_t>("dq");
  const bool have_groupdq = group_mode && context.data().has_cube("groupdq");
  FrameSlab<std::uint8_t> gdq;
  if (have_groupdq) gdq = context.frames<std::uint8_t>("groupdq");
  const std::size_t ny = cube.ny, nx = cube.nx, ng = cube.groups;

  std::size_t row0 = 0, row1 = ny;
  if (params.rows) {
    const auto& r = *params.rows;
    if (r.size() != 2 || r[0] < 0 || r[0] >= r[1] || r[1] > static_cast<std::int64_t>(ny))
      throw StepError("one_over_f: rows must be [first, end) with 0 <= first < end <= " + std::to_string(ny) +
                      " (end exclusive)");
    row0 = static_cast<std::size_t>(r[0]);
    row1 = static_cast<std::size_t>(r[1]);
  }
  std::vector<std::uint8_t> illuminated;
  if (params.mask) {
    const jwst::ReferenceImage mask = jwst::load_reference_image(*params.mask, "mask", context);
    illuminated.resize(ny * nx);
    for (std::size_t i = 0; i < ny * nx; ++i) illuminated[i] = mask.at(i) != 0.0f ? 1 : 0;
  }
  const auto min_pixels = static_cast<std::size_t>(params.min_pixels);
  const std::uint32_t bad_pixel = dq::reference_pixel | dq::do_not_use;
  const std::uint8_t bad_group = dq::group(dq::do_not_use) | dq::group(dq::saturated);

  // Per-integration removed rate (group mode; needs the group time).
  Image* removed_rate = group_mode ? &context.image(std::string(kRemovedRate)) : nullptr;
  double tgroup = 0;
  if (removed_rate) {
    auto it = context.data().attributes().find("tgroup");
    if (it != context.data().attributes().end() && std::holds_alternative<double>(it->second))
      tgroup = std::get<double>(it->second);
    if (!(tgroup > 0)) {
      context.log().warn("one_over_f: no group time (attribute tgroup) in the data; " + std::string(kRemovedRate) +
                         " is left at zero");
      removed_rate = nullptr;
    }
  }
  std::vector<double> removed(nx, 0.0);
  ColumnRows columns;
  columns.begin.resize(nx + 1);
  columns.count.resize(nx);
  std::vector<float> values, correction(nx), deviations;
  const std::size_t ld = ny + 3;  // column stride of the block: no power of two
  std::vector<float> block(kBlock * ld);
  std::size_t uncorrected = 0;
  for (std::size_t t = cube.t_begin; t < cube.t_end; ++t) {
    // Usable rows of each column, from dq, rows and the mask (counting pass, then fill).
    const auto dqimg = dqc.frame(t);
    std::fill(columns.count.begin(), columns.count.end(), 0u);
    auto usable = [&](std::size_t i) { return !(dqimg[i] & bad_pixel) && (illuminated.empty() || !illuminated[i]); };
    for (std::size_t y = row0; y < row1; ++y)
      for (std::size_t x = 0; x < nx; ++x) columns.count[x] += usable(y * nx + x) ? 1u : 0u;
    columns.begin[0] = 0;
    for (std::size_t x = 0; x < nx; ++x) columns.begin[x + 1] = columns.begin[x] + columns.count[x];
    columns.rows.resize(columns.begin[nx]);
    std::fill(columns.count.begin(), columns.count.end(), 0u);
    for (std::size_t y = row0; y < row1; ++y)
      for (std::size_t x = 0; x < nx; ++x)
        if (usable(y * nx + x)) columns.rows[columns.begin[x] + columns.count[x]++] = static_cast<std::uint32_t>(y);

    if (params.threshold) {
      // Signal of the integration: what each pixel collected (last minus first group), or the rate.
      const float* first = group_mode ? cube.group(t, 0).data() : cube.frame(t).data();
      const float* last = group_mode && ng > 1 ? cube.group(t, ng - 1).data() : nullptr;
      for (std::size_t x0 = 0; x0 < nx; x0 += kBlock) {
        const std::size_t w = std::min(kBlock, nx - x0);
        load_block(last ? last : first, last ? first : nullptr, nullptr, 0, nx, row0, row1, x0, w, ld, block.data());
        for (std::size_t k = 0; k < w; ++k) {
          const std::size_t x = x0 + k;
          const float* column = block.data() + k * ld;
          std::uint32_t* r = columns.rows.data() + columns.begin[x];
          gather(column, r, columns.count[x], values);
          if (values.empty()) continue;
          deviations.assign(values.begin(), values.end());
          const float centre = median_of(values);
          for (float& d : deviations) d = std::fabs(d - centre);
          const double level = centre + *params.threshold * 1.4826 * median_of(deviations);
          std::uint32_t kept = 0;
          for (std::uint32_t i = 0; i < columns.count[x]; ++i)
            if (column[r[i]] <= level) r[kept++] = r[i];  // a NaN signal fails too
          columns.count[x] = kept;
        }
      }
    }

    std::fill(removed.begin(), removed.end(), 0.0);
    for (std::size_t g = 0; g < ng; ++g) {
      const std::span<float> image = group_mode ? cube.group(t, g) : cube.frame(t);
      const std::uint8_t* gd = have_groupdq ? gdq.group(t, g).data() : nullptr;
      for (std::size_t x0 = 0; x0 < nx; x0 += kBlock) {
        const std::size_t w = std::min(kBlock, nx - x0);
        load_block(image.data(), nullptr, gd, bad_group, nx, row0, row1, x0, w, ld, block.data());
        for (std::size_t k = 0; k < w; ++k) {
          const std::size_t x = x0 + k;
          float* column = block.data() + k * ld;
          const std::size_t m = compact(column, columns.rows.data() + columns.begin[x], columns.count[x]);
          if (m < min_pixels) {
            ++uncorrected;
            correction[x] = 0.0f;
          } else {
            correction[x] = median_of(std::span<float>(column, m));
          }
        }
      }
      for (std::size_t y = 0; y < ny; ++y) {
        float* row = image.data() + y * nx;
        for (std::size_t x = 0; x < nx; ++x) row[x] -= correction[x];
      }
      // Least-squares slope of the corrections over the groups: Σ (g − ḡ) c_g / Σ (g − ḡ)².
      const double weight = static_cast<double>(g) - 0.5 * static_cast<double>(ng - 1);
      for (std::size_t x = 0; x < nx; ++x) removed[x] += weight * static_cast<double>(correction[x]);
    }
    if (removed_rate && ng > 1) {
      double spread = 0;
      for (std::size_t g = 0; g < ng; ++g) {
        const double d = static_cast<double>(g) - 0.5 * static_cast<double>(ng - 1);
        spread += d * d;
      }
      float* out = removed_rate->values.data() + t * nx;
      for (std::size_t x = 0; x < nx; ++x) out[x] = static_cast<float>(removed[x] / (spread * tgroup));
    }
    context.advance(1);
  }
  if (uncorrected > 0)
    context.log().debug("one_over_f: " + std::to_string(uncorrected) + " column images had fewer than " +
                        std::to_string(min_pixels) + " usable pixels and were left uncorrected on this rank");
}

}  // namespace tessera::steps
