#include "steps/detector/dq_init.hpp"

#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

/// The mask as ny*nx bits: the file's DQ extension, a scalar spec's bits for every pixel, or an
/// "@name" image of bits (the loader checks that values are whole numbers of bits).
std::vector<std::uint32_t> mask_bits(const DqInitParams& params, StepContext& context) {
  const std::size_t npix = context.shape().ny * context.shape().nx;
  jwst::ReferenceImage ref = jwst::load_reference_image(params.mask, "mask", context, "DQ");
  if (ref.dq.size() != npix)
    throw StepError("dq_init: mask: '" + ref.source + "' holds " + std::to_string(ref.dq.size()) +
                    " DQ values, the data have " + std::to_string(npix) + " pixels");
  return std::move(ref.dq);
}

}  // namespace

void or_mask_into(std::span<std::uint32_t> dq, std::span<const std::uint32_t> mask) {
  std::uint32_t* __restrict out = dq.data();
  const std::uint32_t* __restrict m = mask.data();
  const std::size_t n = dq.size();
  for (std::size_t i = 0; i < n; ++i) out[i] |= m[i];
}

StepIO DqInit::io(const Params& params) {
  StepIO io;
  io.reads.push_back({DataKind::Cube, "dq", "the jwst_uncal input provides the pixel dq"});
  if (auto ref = jwst::reference_read(params.mask, "mask")) io.reads.push_back(*ref);
  io.writes.push_back({DataKind::Cube, {"dq", "1", "pixel data quality (JWST bits)"}, ElementType::UInt32});
  return io;
}

void DqInit::run(const Params& params, StepContext& context) {
  const std::vector<std::uint32_t> mask = mask_bits(params, context);
  auto dq = context.frames<std::uint32_t>("dq");
  for (std::size_t t = dq.t_begin; t < dq.t_end; ++t) {
    or_mask_into(dq.frame(t), mask);
    context.advance(1);
  }
  std::size_t flagged = 0, do_not_use = 0;
  for (std::uint32_t b : mask) {
    flagged += b != 0;
    do_not_use += (b & jwst::dq::do_not_use) != 0;
  }
  context.log().info("  mask: " + std::to_string(flagged) + " pixels flagged, " + std::to_string(do_not_use) +
                     " of them do_not_use");
}

}  // namespace tessera::steps
