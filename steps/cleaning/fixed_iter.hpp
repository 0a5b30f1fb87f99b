#pragma once
/// fixed_iter: a fixed number of sigma-clipping passes along each pixel's time series
/// (ExoTiC-UVIS / HUSTLE-tools stage 1, "fixed iteration rejection").
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct FixedIterParams {
  std::vector<double> fixed_sigmas = {10.0, 10.0};
  std::optional<std::int64_t> replacement;  // unset: median of the whole series
  std::string estimator = "mad";

  static Schema<FixedIterParams> schema() {
    return tessera::schema<FixedIterParams>(
        field(&FixedIterParams::fixed_sigmas, "fixed_sigmas",
              "Clip threshold of each pass in units of the series' spread; one pass per entry (template: fixed_sigmas)",
              Range::above(0)),
        field(&FixedIterParams::replacement, "replacement",
              "Replace an outlier by the median of frames within ±this many of it; unset: median of the whole series",
              Range::at_least(1)),
        field(&FixedIterParams::estimator, "estimator",
              "Spread estimate: 'std' (the template's; includes the outlier itself) or 'mad' (1.4826 × median "
              "absolute deviation, robust)",
              Choices{{"std", "mad"}}));
  }
};

/// Reusable buffers so the per-pixel kernel never allocates.
struct FixedIterScratch {
  std::vector<float> sorted, original, deviations;
};

/// Cleans one pixel's time series in place. For each sigma: centre = median, spread =
/// std or 1.4826·MAD of the series as it stands at the start of the pass; every sample
/// with |v − centre| > sigma·spread is replaced by the centre or, with `replacement` = r,
/// by the median of the pass-start samples in [i−r, i+r] clipped to the series ends.
/// Non-finite samples are always replaced (and flagged non_finite). A zero spread flags
/// nothing. Replaced samples get dq::temporal_outlier; `replaced_in_frame[t]` is
/// incremented once per replaced frame. Returns the number of samples replaced.
///
/// Most series have nothing beyond the tightest threshold; that is proven by counting,
/// without selecting a median or MAD (see nothing_beyond in fixed_iter.cpp), and the series
/// is then returned untouched after three vectorised passes.
std::size_t fixed_iter_series(std::span<float> series, std::span<std::uint32_t> dq, const FixedIterParams& params,
                              std::span<double> replaced_in_frame, FixedIterScratch& scratch);

struct FixedIter {
  static constexpr std::string_view name = "fixed_iter";
  static constexpr std::string_view summary =
      "Sigma-clip each pixel's time series a fixed number of times; replace outliers by a (running) median";
  using Params = FixedIterParams;
  static Access access(const Params&) { return Access::Pixels; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
