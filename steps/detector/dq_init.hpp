#pragma once
/// dq_init: the static bad-pixel mask into the pixel dq of every integration (JWST detector1
/// DQInitStep). See docs/jwst-detector1.md.
#include <cstdint>
#include <span>
#include <string>

#include "tessera/step.hpp"

namespace tessera::steps {

struct DqInitParams {
  std::string mask;  // reference spec: FITS file with a DQ extension, a number (bits), or "@name"

  static Schema<DqInitParams> schema() {
    return tessera::schema<DqInitParams>(field(
        &DqInitParams::mask, "mask",
        "Bad-pixel mask reference (JWST MASK): a FITS file whose 'DQ' extension holds JWST pixel bits, a number "
        "(the same bits for every pixel) or '@name' (an image of bits written by an upstream step)",
        Required{}));
  }
};

/// ORs `mask` (ny*nx JWST pixel bits) into one integration's pixel dq image.
void or_mask_into(std::span<std::uint32_t> dq, std::span<const std::uint32_t> mask);

struct DqInit {
  static constexpr std::string_view name = "dq_init";
  static constexpr std::string_view summary =
      "OR the bad-pixel mask reference's DQ bits into the pixel dq of every integration (JWST dq_init)";
  using Params = DqInitParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
