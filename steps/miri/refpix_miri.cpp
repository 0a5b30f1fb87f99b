#include "steps/miri/refpix_miri.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/running_median.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"

namespace tessera::steps {

namespace {
constexpr std::size_t amps = 4;  // MIRI: four outputs interleaved by column, reference columns 0..3

}  // namespace

void refpix_miri_group(std::span<float> image, std::span<const std::uint32_t> dqimg, std::size_t ny, std::size_t nx,
                       const RefpixMiriParams& params, RefpixMiriScratch& s) {
  s.drift.resize(ny * amps);
  s.correction.assign(ny * amps, 0.0f);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t a = 0; a < amps; ++a) {
      const float d = image[y * nx + a] - s.reference0[y * amps + a];
      s.drift[y * amps + a] = (dqimg[y * nx + a] & jwst::dq::bad_ref_pixel) || !std::isfinite(d) ? NAN : d;
    }
  // Rows of one class are y = first, first + stride, ...; index k along the class.
  const std::size_t stride = params.odd_even_rows ? 2 : 1;
  for (std::size_t first = 0; first < stride && first < ny; ++first) {
    const std::size_t n = (ny - first + stride - 1) / stride;
    for (std::size_t a = 0; a < amps; ++a) {
      auto gather = [&](std::size_t k0, std::size_t k1) {
        s.values.clear();
        for (std::size_t k = k0; k < k1; ++k) {
          const float d = s.drift[(first + k * stride) * amps + a];
          if (!std::isnan(d)) s.values.push_back(d);
        }
        const float m = median_of(s.values);
        return std::isnan(m) ? 0.0f : m;  // no usable reference pixel: no correction
      };
      if (!params.smoothing_length) {
        const float m = gather(0, n);
        for (std::size_t k = 0; k < n; ++k) s.correction[(first + k * stride) * amps + a] = m;
      } else {
        const std::size_t radius = static_cast<std::size_t>((*params.smoothing_length - 1) / 2);
        running_median(
            n, [&](std::size_t k) { return s.drift[(first + k * stride) * amps + a]; },
            [&](std::size_t k, float m) { s.correction[(first + k * stride) * amps + a] = std::isnan(m) ? 0.0f : m; },
            radius, s.values);
      }
    }
  }
  for (std::size_t y = 0; y < ny; ++y) {
    float* row = image.data() + y * nx;
    const float* c = s.correction.data() + y * amps;
    const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    std::size_t x = 0;
    for (; x + 4 <= nx; x += 4) {
      row[x] -= c0;
      row[x + 1] -= c1;
      row[x + 2] -= c2;
      row[x + 3] -= c3;
    }
    for (; x < nx; ++x) row[x] -= c[x % amps];
  }
}

StepIO RefpixMiri::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "ramp", "refpix_miri works on the ramps (input jwst_uncal)"},
              {DataKind::Cube, "dq", "pixel dq of the jwst_uncal input"}};
  DataOut ramp{DataKind::Cube, {"ramp", "", ""}, ElementType::Float32};
  ramp.grouped = true;
  io.writes = {ramp};
  return io;
}

void RefpixMiri::run(const Params& params, StepContext& context) {
  auto ramp = context.frames<float>("ramp");
  auto dqc = context.frames<std::uint32_t>("dq");
  const std::size_t ny = ramp.ny, nx = ramp.nx;
  if (nx < amps)
    throw StepError("refpix_miri: the data have " + std::to_string(nx) +
                    " columns; the MIRI reference pixels are columns 0..3");
  RefpixMiriScratch scratch;
  scratch.reference0.resize(ny * amps);
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    const auto g0 = ramp.group(t, 0);
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t a = 0; a < amps; ++a) scratch.reference0[y * amps + a] = g0[y * nx + a];
    for (std::size_t g = 1; g < ramp.groups; ++g)
      refpix_miri_group(ramp.group(t, g), dqc.frame(t), ny, nx, params, scratch);
    context.advance(1);
  }
}

}  // namespace tessera::steps
