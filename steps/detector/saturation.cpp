#include "steps/detector/saturation.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "steps/detector/dq_init.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

constexpr std::uint8_t kSat = jwst::dq::group(jwst::dq::saturated);
constexpr std::uint8_t kFloor = jwst::dq::group(jwst::dq::ad_floor | jwst::dq::do_not_use);
/// The 16-bit A/D converter's ceiling: where pixels without a calibrated level are flagged.
constexpr float kAtoDLimit = 65535.0f;

/// Grows the SATURATED bits of one group image over a (2n+1)² box: a separable dilation, along
/// x into `rows` for the rows that hold a saturated pixel (`row_has`, set by the caller), then
/// along y back into the image. Every pass is a plain byte loop the compiler vectorises.
void grow(std::uint8_t* q, std::size_t ny, std::size_t nx, std::size_t n, SaturationScratch& s) {
  std::uint8_t* const rows = s.rows.data();
  const std::uint8_t* const has = s.row_has.data();
  const std::size_t reach = std::min(n, nx - 1);
  for (std::size_t y = 0; y < ny; ++y) {
    if (!has[y]) continue;
    const std::uint8_t* __restrict in = q + y * nx;
    std::uint8_t* __restrict out = rows + y * nx;
    for (std::size_t x = 0; x < nx; ++x) out[x] = in[x] & kSat;
    for (std::size_t d = 1; d <= reach; ++d) {
      for (std::size_t x = d; x < nx; ++x) out[x] |= in[x - d] & kSat;
      for (std::size_t x = 0; x + d < nx; ++x) out[x] |= in[x + d] & kSat;
    }
  }
  for (std::size_t y = 0; y < ny; ++y) {
    const std::size_t y0 = y >= n ? y - n : 0, y1 = std::min(ny, y + n + 1);
    std::uint8_t* __restrict out = q + y * nx;
    for (std::size_t yy = y0; yy < y1; ++yy) {
      if (!has[yy]) continue;
      const std::uint8_t* __restrict src = rows + yy * nx;
      for (std::size_t x = 0; x < nx; ++x) out[x] |= src[x];
    }
  }
}

}  // namespace

std::size_t flag_saturation_integration(std::span<const float> ramp, std::span<std::uint8_t> groupdq,
                                        std::span<const float> level, std::size_t ng, std::size_t ny, std::size_t nx,
                                        std::size_t n_pix_grow_sat, bool ad_floor, SaturationScratch& scratch) {
  const std::size_t npix = ny * nx;
  scratch.reached.assign(npix, 0);
  if (n_pix_grow_sat > 0) {
    scratch.rows.resize(npix);
    scratch.row_has.resize(ny);
  }
  std::uint8_t* const reached = scratch.reached.data();
  const std::uint8_t floor_bits = ad_floor ? kFloor : 0;
  for (std::size_t g = 0; g < ng; ++g) {
    std::uint8_t any_row = 0;
    for (std::size_t y = 0; y < ny; ++y) {
      const std::size_t row = y * nx;
      const float* __restrict v = ramp.data() + g * npix + row;
      const float* __restrict lev = level.data() + row;
      std::uint8_t* __restrict r = reached + row;
      std::uint8_t* __restrict q = groupdq.data() + g * npix + row;
      std::uint8_t any = 0;
      for (std::size_t x = 0; x < nx; ++x) {
        // Saturation persists: once reached, every later group of the integration is flagged.
        const std::uint8_t now = r[x] | static_cast<std::uint8_t>(v[x] >= lev[x]);
        r[x] = now;
        const std::uint8_t low = static_cast<std::uint8_t>(v[x] <= 0.0f);
        const std::uint8_t bits = static_cast<std::uint8_t>(q[x] | (now * kSat) | (low * floor_bits));
        q[x] = bits;
        any |= bits;
      }
      if (n_pix_grow_sat > 0) scratch.row_has[y] = (any & kSat) != 0;
      any_row |= any;
    }
    if (n_pix_grow_sat > 0 && (any_row & kSat))
      grow(groupdq.data() + g * npix, ny, nx, n_pix_grow_sat, scratch);
  }
  std::size_t saturated = 0;
  const std::uint8_t* last = groupdq.data() + (ng - 1) * npix;  // saturation persists to the last group
  for (std::size_t i = 0; i < npix; ++i) saturated += (last[i] & kSat) != 0;
  return saturated;
}

StepIO Saturation::io(const Params& params) {
  StepIO io;
  io.reads.push_back({DataKind::Cube, "ramp", "the jwst_uncal input provides the ramps"});
  io.reads.push_back({DataKind::Cube, "groupdq", "the jwst_uncal input provides the group dq"});
  io.reads.push_back({DataKind::Cube, "dq", "the jwst_uncal input provides the pixel dq"});
  if (auto ref = jwst::reference_read(params.saturation, "saturation")) io.reads.push_back(*ref);
  DataOut groupdq{DataKind::Cube, {"groupdq", "1", "group data quality (JWST bits)"}, ElementType::UInt8};
  groupdq.grouped = true;
  io.writes.push_back(groupdq);
  io.writes.push_back({DataKind::Cube, {"dq", "1", "pixel data quality (JWST bits)"}, ElementType::UInt32});
  return io;
}

void Saturation::run(const Params& params, StepContext& context) {
  const std::size_t ny = context.shape().ny, nx = context.shape().nx, ng = context.shape().ng, npix = ny * nx;
  const jwst::ReferenceImage ref = jwst::load_reference_image(params.saturation, "saturation", context);
  if (!ref.scalar() && ref.values.size() != npix)
    throw StepError("saturation: saturation: '" + ref.source + "' holds " + std::to_string(ref.values.size()) +
                    " levels, the data have " + std::to_string(npix) + " pixels");
  if (!ref.dq.empty() && ref.dq.size() != npix)
    throw StepError("saturation: saturation: '" + ref.source + "' DQ holds " + std::to_string(ref.dq.size()) +
                    " values, the data have " + std::to_string(npix) + " pixels");
  // Levels with the reference's bits: NaN or NO_SAT_CHECK means no calibrated level, checked
  // only against the A/D ceiling, and the pixel dq says so.
  std::vector<float> level(npix);
  std::vector<std::uint32_t> pixel_bits(npix, 0);
  std::size_t unchecked = 0;
  for (std::size_t i = 0; i < npix; ++i) {
    float v = ref.at(i);
    std::uint32_t bits = ref.dq.empty() ? 0u : ref.dq[i];
    if (std::isnan(v)) bits |= jwst::dq::no_sat_check;
    if (bits & jwst::dq::no_sat_check) {
      v = kAtoDLimit;
      ++unchecked;
    }
    level[i] = v;
    pixel_bits[i] = bits;
  }

  auto ramp = context.frames<float>("ramp");
  auto groupdq = context.frames<std::uint8_t>("groupdq");
  auto dq = context.frames<std::uint32_t>("dq");
  SaturationScratch scratch;
  std::size_t saturated = 0;
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    saturated += flag_saturation_integration(ramp.frame(t), groupdq.frame(t), level, ng, ny, nx,
                                             static_cast<std::size_t>(params.n_pix_grow_sat), params.flag_ad_floor,
                                             scratch);
    or_mask_into(dq.frame(t), pixel_bits);
    context.advance(1);
  }
  context.log().info("  " + std::to_string(unchecked) + " pixels without a saturation level (NO_SAT_CHECK)");
  context.log().debug("  " + std::to_string(saturated) + " saturated pixel-integrations on this rank");
}

}  // namespace tessera::steps
