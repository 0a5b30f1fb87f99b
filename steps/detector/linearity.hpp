#pragma once
/// linearity: the classic per-pixel polynomial non-linearity correction of every unsaturated
/// group (JWST detector1 LinearityStep, stcal linearity_correction). See docs/jwst-detector1.md.
#include <cstdint>
#include <span>
#include <string>

#include "tessera/step.hpp"

namespace tessera::steps {

struct LinearityParams {
  std::string linearity;  // reference spec

  static Schema<LinearityParams> schema() {
    return tessera::schema<LinearityParams>(field(
        &LinearityParams::linearity, "linearity",
        "Linearity coefficients (JWST LINEARITY reference): a FITS file whose 'COEFFS' extension holds planes "
        "c_0..c_n (ncoeffs, ny, nx), corrected = sum_k c_k raw^k, with optional 'DQ' bits; or '@name'",
        Required{}));
  }
};

/// Corrects one integration in place: every group value F whose group dq lacks SATURATED becomes
/// c_0 + c_1 F + ... + c_{K-1} F^{K-1} (Horner), with `coeffs` K planes of npix values (plane-major).
void linearize_integration(std::span<float> ramp, std::span<const std::uint8_t> groupdq,
                           std::span<const float> coeffs, std::size_t ncoeffs, std::size_t ng, std::size_t npix);

struct Linearity {
  static constexpr std::string_view name = "linearity";
  static constexpr std::string_view summary =
      "Correct unsaturated groups for non-linearity with each pixel's polynomial (JWST linearity)";
  using Params = LinearityParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
