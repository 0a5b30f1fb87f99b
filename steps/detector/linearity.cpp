#include "steps/detector/linearity.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "steps/detector/dq_init.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

void linearize_integration(std::span<float> ramp, std::span<const std::uint8_t> groupdq,
                           std::span<const float> coeffs, std::size_t ncoeffs, std::size_t ng, std::size_t npix) {
  constexpr std::uint8_t kSat = jwst::dq::group(jwst::dq::saturated);
  // Blocks of pixels through all groups, so that the block's K coefficient rows stay in cache
  // while every group is corrected with them.
  constexpr std::size_t kBlock = 512;
  alignas(64) float acc[kBlock];
  for (std::size_t i0 = 0; i0 < npix; i0 += kBlock) {
    const std::size_t n = std::min(kBlock, npix - i0);
    for (std::size_t g = 0; g < ng; ++g) {
      float* __restrict v = ramp.data() + g * npix + i0;
      const std::uint8_t* __restrict q = groupdq.data() + g * npix + i0;
      const float* __restrict top = coeffs.data() + (ncoeffs - 1) * npix + i0;
      for (std::size_t i = 0; i < n; ++i) acc[i] = top[i];
      for (std::size_t k = ncoeffs - 1; k-- > 0;) {
        const float* __restrict c = coeffs.data() + k * npix + i0;
        for (std::size_t i = 0; i < n; ++i) acc[i] = acc[i] * v[i] + c[i];
      }
      // Saturated groups keep their raw value, as in the JWST pipeline.
      for (std::size_t i = 0; i < n; ++i) v[i] = (q[i] & kSat) ? v[i] : acc[i];
    }
  }
}

StepIO Linearity::io(const Params& params) {
  StepIO io;
  io.reads.push_back({DataKind::Cube, "ramp", "the jwst_uncal input provides the ramps"});
  io.reads.push_back({DataKind::Cube, "groupdq", "the jwst_uncal input provides the group dq"});
  io.reads.push_back({DataKind::Cube, "dq", "the jwst_uncal input provides the pixel dq"});
  if (auto ref = jwst::reference_read(params.linearity, "linearity")) io.reads.push_back(*ref);
  io.writes.push_back({DataKind::Cube, {"ramp", "DN", "up-the-ramp reads"}, ElementType::Float32, true});
  io.writes.push_back({DataKind::Cube, {"dq", "1", "pixel data quality (JWST bits)"}, ElementType::UInt32});
  return io;
}

void Linearity::run(const Params& params, StepContext& context) {
  const std::size_t npix = context.shape().ny * context.shape().nx, ng = context.shape().ng;
  jwst::ReferenceCube ref = jwst::load_reference_cube(params.linearity, "linearity", context, "COEFFS");
  const std::size_t k = ref.planes;
  if (k < 2)
    throw StepError("linearity: linearity: '" + ref.source + "' has " + std::to_string(k) +
                    " coefficient plane(s); at least 2 (c_0 and c_1) are needed");
  if (ref.values.size() != k * npix)
    throw StepError("linearity: linearity: '" + ref.source + "' holds " + std::to_string(ref.values.size()) +
                    " coefficients, expected " + std::to_string(k) + " planes of the data's " + std::to_string(npix) +
                    " pixels");
  if (!ref.dq.empty() && ref.dq.size() != npix)
    throw StepError("linearity: linearity: '" + ref.source + "' DQ holds " + std::to_string(ref.dq.size()) +
                    " values, the data have " + std::to_string(npix) + " pixels");

  // As stcal's prepare_coefficients: pixels flagged NO_LIN_CORR in the reference, with a NaN
  // coefficient or with c_1 = 0 get the identity polynomial (c_1 = 1, others 0), and the
  // latter two are flagged NO_LIN_CORR; the reference's DQ is ORed into the pixel dq.
  std::vector<std::uint32_t> bits(npix, 0);
  std::size_t uncorrected = 0;
  for (std::size_t i = 0; i < npix; ++i) {
    std::uint32_t b = ref.dq.empty() ? 0u : ref.dq[i];
    bool identity = (b & jwst::dq::no_lin_corr) != 0;
    bool bad = ref.values[npix + i] == 0.0f;
    for (std::size_t c = 0; c < k; ++c) bad = bad || std::isnan(ref.values[c * npix + i]);
    if (bad) b |= jwst::dq::no_lin_corr;
    if (identity || bad) {
      for (std::size_t c = 0; c < k; ++c) ref.values[c * npix + i] = c == 1 ? 1.0f : 0.0f;
      ++uncorrected;
    }
    bits[i] = b;
  }

  auto ramp = context.frames<float>("ramp");
  auto groupdq = context.frames<std::uint8_t>("groupdq");
  auto dq = context.frames<std::uint32_t>("dq");
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    linearize_integration(ramp.frame(t), groupdq.frame(t), ref.values, k, ng, npix);
    or_mask_into(dq.frame(t), bits);
    context.advance(1);
  }
  context.log().info("  " + std::to_string(k - 1) + "-order polynomial; " + std::to_string(uncorrected) +
                     " pixels left uncorrected (NO_LIN_CORR)");
}

}  // namespace tessera::steps
