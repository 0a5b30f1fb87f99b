#include "steps/detector/superbias.hpp"

#include <cmath>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "steps/detector/dq_init.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

void subtract_from_groups(std::span<float> ramp, std::span<const float> bias, std::size_t ng) {
  const std::size_t npix = bias.size();
  const float* __restrict b = bias.data();
  for (std::size_t g = 0; g < ng; ++g) {
    float* __restrict v = ramp.data() + g * npix;
    for (std::size_t i = 0; i < npix; ++i) v[i] -= b[i];
  }
}

StepIO Superbias::io(const Params& params) {
  StepIO io;
  io.reads.push_back({DataKind::Cube, "ramp", "the jwst_uncal input provides the ramps"});
  io.reads.push_back({DataKind::Cube, "dq", "the jwst_uncal input provides the pixel dq"});
  if (auto ref = jwst::reference_read(params.superbias, "superbias")) io.reads.push_back(*ref);
  DataOut ramp{DataKind::Cube, {"ramp", "DN", "up-the-ramp reads"}, ElementType::Float32};
  ramp.grouped = true;
  io.writes.push_back(ramp);
  io.writes.push_back({DataKind::Cube, {"dq", "1", "pixel data quality (JWST bits)"}, ElementType::UInt32});
  return io;
}

void Superbias::run(const Params& params, StepContext& context) {
  const std::size_t npix = context.shape().ny * context.shape().nx, ng = context.shape().ng;
  const jwst::ReferenceImage ref = jwst::load_reference_image(params.superbias, "superbias", context);
  if (!ref.scalar() && ref.values.size() != npix)
    throw StepError("superbias: superbias: '" + ref.source + "' holds " + std::to_string(ref.values.size()) +
                    " values, the data have " + std::to_string(npix) + " pixels");
  if (!ref.dq.empty() && ref.dq.size() != npix)
    throw StepError("superbias: superbias: '" + ref.source + "' DQ holds " + std::to_string(ref.dq.size()) +
                    " values, the data have " + std::to_string(npix) + " pixels");
  // As the JWST pipeline: a NaN bias is no correction (0); we also flag it UNRELIABLE_BIAS.
  std::vector<float> bias(npix);
  std::vector<std::uint32_t> bits(npix, 0);
  std::size_t missing = 0;
  for (std::size_t i = 0; i < npix; ++i) {
    const float b = ref.at(i);
    bits[i] = ref.dq.empty() ? 0u : ref.dq[i];
    if (std::isnan(b)) {
      bias[i] = 0.0f;
      bits[i] |= jwst::dq::unreliable_bias;
      ++missing;
    } else {
      bias[i] = b;
    }
  }
  auto ramp = context.frames<float>("ramp");
  auto dq = context.frames<std::uint32_t>("dq");
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    subtract_from_groups(ramp.frame(t), bias, ng);
    or_mask_into(dq.frame(t), bits);
    context.advance(1);
  }
  if (missing) context.log().info("  " + std::to_string(missing) + " pixels with a NaN bias left uncorrected");
}

}  // namespace tessera::steps
