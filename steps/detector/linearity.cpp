#include "steps/detector/linearity.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "steps/detector/dq_init.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

constexpr std::uint8_t kSat = jwst::dq::group(jwst::dq::saturated);
constexpr std::size_t kBlock = 512;

/// c_k + F·(c_{k+1} + F·(...)) for pixel i: Horner's scheme unrolled at compile time.
template <std::size_t k, std::size_t K>
inline float horner(const float* const* c, std::size_t i, float f) {
  if constexpr (k + 1 == K)
    return c[k][i];
  else
    return c[k][i] + f * horner<k + 1, K>(c, i, f);
}

/// One block of n pixels of one group with K coefficients known at compile time, so that the
/// polynomial stays in registers; `keep` is all ones where the group is saturated (raw value
/// kept, by a bit blend so the loop has no branch), zero elsewhere.
template <std::size_t K>
void horner_block(float* __restrict v, const std::uint32_t* __restrict keep, const float* const* coeffs,
                  std::size_t n) {
  const float* c[K];
  for (std::size_t k = 0; k < K; ++k) c[k] = coeffs[k];
  for (std::size_t i = 0; i < n; ++i) {
    const float f = v[i];
    const float a = horner<0, K>(c, i, f);
    const std::uint32_t m = keep[i];
    v[i] = std::bit_cast<float>((std::bit_cast<std::uint32_t>(f) & m) | (std::bit_cast<std::uint32_t>(a) & ~m));
  }
}

/// The same for any number of coefficients, through a block accumulator.
void horner_block_any(float* __restrict v, const std::uint32_t* __restrict keep, const float* const* c, std::size_t k_count,
                      std::size_t n) {
  alignas(64) float acc[kBlock];
  const float* __restrict top = c[k_count - 1];
  for (std::size_t i = 0; i < n; ++i) acc[i] = top[i];
  for (std::size_t k = k_count - 1; k-- > 0;) {
    const float* __restrict ck = c[k];
    for (std::size_t i = 0; i < n; ++i) acc[i] = acc[i] * v[i] + ck[i];
  }
  for (std::size_t i = 0; i < n; ++i) v[i] = keep[i] ? v[i] : acc[i];
}

}  // namespace

void linearize_integration(std::span<float> ramp, std::span<const std::uint8_t> groupdq,
                           std::span<const float> coeffs, std::size_t ncoeffs, std::size_t ng, std::size_t npix) {
  // Blocks of pixels through all groups, so that the block's K coefficient rows stay in cache
  // while every group is corrected with them.
  alignas(64) std::uint32_t keep[kBlock];
  std::vector<const float*> c(ncoeffs);
  for (std::size_t i0 = 0; i0 < npix; i0 += kBlock) {
    const std::size_t n = std::min(kBlock, npix - i0);
    for (std::size_t k = 0; k < ncoeffs; ++k) c[k] = coeffs.data() + k * npix + i0;
    for (std::size_t g = 0; g < ng; ++g) {
      float* v = ramp.data() + g * npix + i0;
      const std::uint8_t* __restrict q = groupdq.data() + g * npix + i0;
      // Saturated groups keep their raw value, as in the JWST pipeline (the flags are widened
      // to 32-bit masks first, so that the polynomial loop vectorises).
      for (std::size_t i = 0; i < n; ++i) keep[i] = 0u - static_cast<std::uint32_t>((q[i] & kSat) != 0);
      switch (ncoeffs) {
        case 2: horner_block<2>(v, keep, c.data(), n); break;
        case 3: horner_block<3>(v, keep, c.data(), n); break;
        case 4: horner_block<4>(v, keep, c.data(), n); break;
        case 5: horner_block<5>(v, keep, c.data(), n); break;
        case 6: horner_block<6>(v, keep, c.data(), n); break;
        case 7: horner_block<7>(v, keep, c.data(), n); break;
        default: horner_block_any(v, keep, c.data(), ncoeffs, n); break;
      }
    }
  }
}

StepIO Linearity::io(const Params& params) {
  StepIO io;
  io.reads.push_back({DataKind::Cube, "ramp", "the jwst_uncal input provides the ramps"});
  io.reads.push_back({DataKind::Cube, "groupdq", "the jwst_uncal input provides the group dq"});
  io.reads.push_back({DataKind::Cube, "dq", "the jwst_uncal input provides the pixel dq"});
  if (auto ref = jwst::reference_read(params.linearity, "linearity")) io.reads.push_back(*ref);
  DataOut ramp{DataKind::Cube, {"ramp", "DN", "up-the-ramp reads"}, ElementType::Float32};
  ramp.grouped = true;
  io.writes.push_back(ramp);
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
