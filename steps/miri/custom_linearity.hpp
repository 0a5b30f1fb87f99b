#pragma once
/// custom_linearity: a self-calibrated non-linearity correction per amplifier, derived from the
/// ramps themselves and applied to them (ExoTiC-MIRI SetCustomLinearity, which derives the
/// coefficients and hands them to the JWST linearity step; here one step does both).
///
/// Phase 0 (frames): for each integration, amplifier (column x % 4) and group, sums over the
/// usable pixels of rows [row_idx_start_used, row_idx_end_used] (pixels without do_not_use or
/// reference_pixel in dq, groups not saturated in groupdq; groups only marked do_not_use, e.g.
/// by drop_groups, are still measurements and count): the count and
/// sum of group 0, and the count and sum of (group g − group 0). They go in one row per
/// integration of a scratch image, so that every number is made by exactly one rank and the
/// combined image does not depend on the partition.
///
/// Phase 1 (frames): every rank adds the rows up in the same order, giving each amplifier's
/// mean ramp R(g), and fits, in double precision with Eigen:
///   method "exotic" (ExoTiC-MIRI): a line L(g) = a + b·g to R over groups
///     [group_idx_start_fit, group_idx_end_fit], then L − R = Σ_{k=2..p} c_k R^k over groups
///     [group_idx_start_derive, group_idx_end_derive];
///   method "joint": R + Σ_{k=2..p} c_k R^k = a + b·g over the derive groups, line and
///     polynomial together. When the fit groups are themselves non-linear, "exotic" takes
///     their curvature as the truth and its corrected ramps keep a bias; "joint" recovers an
///     exact polynomial non-linearity (docs/miri-stage1.md).
/// Both keep the constant and linear coefficients at 0 and 1 (JWST's linearity convention:
/// corrected = Σ_k c_k raw^k). Every group of every pixel is then corrected, except groups
/// flagged saturated and reference pixels. The coefficients are written as the image
/// `custom_linearity_coeffs` (amplifier × coefficient, c_0..c_p). Run it after superbias and
/// refpix, so that 0 DN is no charge.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct CustomLinearityParams {
  std::int64_t group_idx_start_fit = 10;
  std::int64_t group_idx_end_fit = 40;
  std::int64_t group_idx_start_derive = 10;
  std::int64_t group_idx_end_derive = -1;
  std::int64_t row_idx_start_used = 350;
  std::int64_t row_idx_end_used = 386;
  bool draw_corrections = false;
  std::int64_t poly_order = 3;
  std::string method = "exotic";

  static Schema<CustomLinearityParams> schema();
};

/// Group and row ranges with negative indices resolved (inclusive).
struct LinearityRanges {
  std::size_t fit_begin = 0, fit_end = 0, derive_begin = 0, derive_end = 0, row_begin = 0, row_end = 0;
};
/// Throws StepError naming the parameter for an index out of range or an empty/short range.
LinearityRanges resolve_linearity_ranges(const CustomLinearityParams& params, std::size_t ng, std::size_t ny);

/// Coefficients c_0..c_p (c_0 = 0, c_1 = 1) that make a mean ramp linear, and that line.
struct LinearityFit {
  std::vector<double> coeffs;
  double intercept = 0, slope = 0;  ///< the line a + b·g (DN, DN per group)
  double apply(double raw) const;   ///< Σ_k c_k raw^k
};
/// Fits `ramp` (a mean ramp, one value per group) as `params.method` says. Throws StepError
/// when the fit is impossible (e.g. a constant ramp).
LinearityFit fit_linearity(std::span<const double> ramp, const LinearityRanges& ranges,
                           const CustomLinearityParams& params);

struct CustomLinearity {
  static constexpr std::string_view name = "custom_linearity";
  static constexpr std::string_view summary =
      "Derive a per-amplifier non-linearity polynomial from the ramps themselves and apply it "
      "(ExoTiC-MIRI SetCustomLinearity)";
  using Params = CustomLinearityParams;
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Frames}; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
  static constexpr std::size_t amplifiers = 4;
};

}  // namespace tessera::steps
