#pragma once
/// superbias: subtract the per-pixel bias from every group of every integration (JWST detector1
/// SuperBiasStep). See docs/jwst-detector1.md.
#include <cstdint>
#include <span>
#include <string>

#include "tessera/step.hpp"

namespace tessera::steps {

struct SuperbiasParams {
  std::string superbias;  // reference spec

  static Schema<SuperbiasParams> schema() {
    return tessera::schema<SuperbiasParams>(field(
        &SuperbiasParams::superbias, "superbias",
        "Superbias in DN (JWST SUPERBIAS reference): a FITS file ('SCI' bias, optional 'DQ' bits such as "
        "UNRELIABLE_BIAS), a number or '@name'; NaN pixels are left uncorrected and flagged UNRELIABLE_BIAS",
        Required{}));
  }
};

/// Subtracts `bias` (ny*nx) from each of the ng group images of one integration.
void subtract_from_groups(std::span<float> ramp, std::span<const float> bias, std::size_t ng);

struct Superbias {
  static constexpr std::string_view name = "superbias";
  static constexpr std::string_view summary =
      "Subtract the superbias image from every group (JWST superbias); OR its DQ into the pixel dq";
  using Params = SuperbiasParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
