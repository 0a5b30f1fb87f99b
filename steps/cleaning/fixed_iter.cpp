#include "steps/cleaning/fixed_iter.hpp"

#include <algorithm>
#include <cmath>

#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"

namespace tessera::steps {
namespace {

/// What the per-pixel loop needs from the parameters, worked out once per step.
struct Resolved {
  bool use_std = false;
  float smallest_sigma = 0;  // the tightest pass decides whether any pass can act
  explicit Resolved(const FixedIterParams& p) : use_std(p.estimator == "std") {
    smallest_sigma = p.fixed_sigmas.empty() ? 0.0f : static_cast<float>(p.fixed_sigmas.front());
    for (double s : p.fixed_sigmas) smallest_sigma = std::min(smallest_sigma, static_cast<float>(s));
  }
};

/// Proves, without selecting a median, that no pass can flag anything in a finite series:
/// every sample lies within smallest_sigma × spread of the median. Statistics stay those of
/// the series until a pass replaces something, so if the tightest pass has nothing to do,
/// none has. A false return only means "not proven" (the exact path then decides).
///
/// - std: with s the series' std, at least n/2 + 1 samples >= max − σs puts the median
///   there too (both middle order statistics), and likewise for the minimum.
/// - mad: first bracket the median, a <= median <= b, by the same counting, around the mean
///   (|mean − median| <= std always; the bracket is tried narrow, then wider). Then no sample
///   is further than M = max(max − a, b − min) from it, and the MAD is at least D = M/(1.4826σ)
///   when fewer than half the samples lie within D of the median, which holds for every
///   median in [a, b] if at most (n − 1)/2 samples lie in (a − D, b + D).
/// The limits carry a 1e-4 margin so that float rounding can only send a borderline series to
/// the exact path.
bool nothing_beyond(std::span<const float> series, const Moments& m, const Resolved& r) {
  if (m.max == m.min) return true;  // constant: zero spread flags nothing
  const float sigma = r.smallest_sigma;
  if (r.use_std) {
    const float limit = sigma * m.std * (1.0f - 1e-4f);
    return median_between(series, m.max - limit, m.min + limit);
  }
  const std::size_t half = (series.size() - 1) / 2;
  for (float k : {0.25f, 0.6f}) {
    const float a = m.mean - k * m.std, b = m.mean + k * m.std;
    if (!median_between(series, a, b)) continue;
    const float reach = std::max(m.max - a, b - m.min) * (1.0f + 1e-4f);
    const float needed_mad = reach / (1.4826f * sigma) * (1.0f + 1e-4f);
    if (count_between(series, a - needed_mad, b + needed_mad) <= half) return true;
  }
  return false;
}

std::size_t clean_series(std::span<float> series, std::span<std::uint32_t> dq, const FixedIterParams& params,
                         const Resolved& resolved, std::span<double> replaced_in_frame, FixedIterScratch& scratch) {
  const std::size_t nt = series.size();
  if (nt == 0 || params.fixed_sigmas.empty()) return 0;
  // Most series have nothing beyond the threshold (about 95% of the pixels of a visit).
  const Moments moments = moments_of(series);
  if (moments.finite && nothing_beyond(series, moments, resolved)) return 0;

  std::size_t replaced = 0;
  auto mark = [&](std::size_t t, float value, std::uint32_t bit) {
    if (!(dq[t] & dq::temporal_outlier)) replaced_in_frame[t] += 1;
    dq[t] |= bit | dq::temporal_outlier;
    series[t] = value;
    ++replaced;
  };

  const bool use_std = resolved.use_std;
  float centre = 0;
  double spread = 0, largest_deviation = 0;
  std::size_t non_finite = 0;
  bool stats_current = false;  // the statistics describe the series as it stands
  for (double sigma : params.fixed_sigmas) {
    if (!stats_current) {
      // Statistics over the finite samples as they stand at the start of the pass.
      scratch.sorted.resize(nt);
      std::size_t finite = 0;
      for (float v : series)
        if (std::isfinite(v)) scratch.sorted[finite++] = v;
      if (finite == 0) return replaced;  // nothing to estimate from
      non_finite = nt - finite;
      const std::span<float> values(scratch.sorted.data(), finite);
      centre = median_of(values);
      scratch.deviations.resize(finite);
      largest_deviation = 0;
      for (std::size_t i = 0; i < finite; ++i) {
        const float d = std::fabs(values[i] - centre);
        scratch.deviations[i] = d;
        largest_deviation = d > largest_deviation ? d : largest_deviation;
      }
      if (use_std) {
        // The template's estimate: population std of the whole series, outliers included.
        double sum = 0, sum2 = 0;
        for (float v : values) sum += v;
        const double mean = sum / static_cast<double>(finite);
        for (float v : values) sum2 += (v - mean) * (v - mean);
        spread = std::sqrt(sum2 / static_cast<double>(finite));
      } else {
        spread = 1.4826 * median_of(scratch.deviations);
      }
      stats_current = true;
    }
    // Most series have nothing beyond the threshold: then this pass changes nothing.
    if (non_finite == 0 && (spread == 0 || largest_deviation <= sigma * spread)) continue;
    scratch.original.assign(series.begin(), series.end());
    const std::size_t replaced_before = replaced;

    const double limit = sigma * spread;
    for (std::size_t t = 0; t < nt; ++t) {
      const float v = scratch.original[t];
      const bool finite = std::isfinite(v);
      if (finite && (spread == 0 || std::fabs(v - centre) <= limit)) continue;
      float value = centre;
      if (params.replacement) {
        const std::size_t r = static_cast<std::size_t>(*params.replacement);
        const std::size_t lo = t >= r ? t - r : 0, hi = std::min(nt - 1, t + r);
        scratch.deviations.clear();  // reused as the window buffer
        for (std::size_t k = lo; k <= hi; ++k)
          if (std::isfinite(scratch.original[k])) scratch.deviations.push_back(scratch.original[k]);
        if (!scratch.deviations.empty()) value = median_of(scratch.deviations);
      }
      mark(t, value, finite ? 0u : dq::non_finite);
    }
    // A pass that replaced nothing leaves the statistics as they were: the next pass only
    // needs its own threshold (most pixels take this path).
    stats_current = replaced == replaced_before;
  }
  return replaced;
}

}  // namespace

std::size_t fixed_iter_series(std::span<float> series, std::span<std::uint32_t> dq, const FixedIterParams& params,
                              std::span<double> replaced_in_frame, FixedIterScratch& scratch) {
  return clean_series(series, dq, params, Resolved(params), replaced_in_frame, scratch);
}

StepIO FixedIter::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "dq"}};
  io.writes = {{DataKind::Cube, {"data", "", ""}},
               {DataKind::Cube, {"dq", "", ""}, ElementType::UInt32},
               {DataKind::FrameVector, {"fixed_iter_outliers", "1", "pixels replaced by fixed_iter in each frame"},
                ElementType::Float32, true}};
  return io;
}

void FixedIter::run(const Params& params, StepContext& context) {
  auto data_tiles = context.tiles<float>("data");
  auto dq_tiles = context.tiles<std::uint32_t>("dq");
  std::vector<double>& counts = context.frame_vector("fixed_iter_outliers").values;
  FixedIterScratch scratch;
  const Resolved resolved(params);
  for (std::size_t k = 0; k < data_tiles.size(); ++k) {
    for (std::size_t i = 0; i < data_tiles[k].pixels(); ++i)
      clean_series(data_tiles[k].series(i), dq_tiles[k].series(i), params, resolved, counts, scratch);
    context.advance(data_tiles[k].pixels());
  }
}

}  // namespace tessera::steps
