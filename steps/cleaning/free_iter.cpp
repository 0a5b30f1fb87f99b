#include "steps/cleaning/free_iter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"

namespace tessera::steps {
namespace {

/// The parameters as the per-pixel loop wants them (no string compares per pixel).
struct Resolved {
  float sigma = 3.5f;
  bool both_sides = false;
  bool template_std = false;
  bool noise_floor = true;
  explicit Resolved(const FreeIterParams& p)
      : sigma(static_cast<float>(p.free_sigma)),
        both_sides(p.sides == "both"),
        template_std(p.estimator == "std"),
        noise_floor(p.noise_floor) {}
};

constexpr unsigned char kOutlier = 1, kNonFinite = 2;

/// Median of the finite, positive err values: the pixel's typical predicted noise. Robust
/// to the few samples whose err a cosmic ray inflated (calwf3 derives ERR from the data).
float noise_floor_of(std::span<const float> err, std::vector<float>& buffer) {
  buffer.resize(err.size());
  std::size_t k = 0;
  for (float e : err)
    if (std::isfinite(e) && e > 0) buffer[k++] = e;
  return k == 0 ? 0.0f : median_of(std::span<float>(buffer.data(), k));
}

/// Nothing lies beyond the threshold of the first pass: see free_iter_series' comment.
/// s is the whole series' std, a lower bound of the first pass's spread (max(floor, std));
/// it is shaved by 1e-4 so that float rounding can only send a borderline series to the
/// full path, never skip one.
bool nothing_to_clip(std::span<const float> series, const Moments& m, const Resolved& r) {
  if (m.max == m.min) return true;  // constant: no sample deviates at all
  const float limit = r.sigma * m.std * (1.0f - 1e-4f);
  if (r.both_sides) return median_between(series, m.max - limit, m.min + limit);
  return median_at_least(series, m.max - limit);
}

std::size_t clean_series(std::span<float> series, std::span<const float> err, std::span<std::uint32_t> dq,
                         const Resolved& r, std::span<double> replaced_in_frame, FreeIterScratch& scratch) {
  const std::size_t nt = series.size();
  if (nt == 0) return 0;
  const Moments moments = moments_of(series);
  if (moments.finite && nothing_to_clip(series, moments, r)) return 0;

  // Full path: iterate over the kept samples.
  std::vector<unsigned char>& flagged = scratch.flagged;
  flagged.assign(nt, 0);
  std::size_t non_finite = 0;
  for (std::size_t t = 0; t < nt; ++t)
    if (!std::isfinite(series[t])) {
      flagged[t] = kNonFinite;
      ++non_finite;
    }
  const float floor = r.noise_floor && !err.empty() ? noise_floor_of(err, scratch.values) : 0.0f;
  scratch.values.resize(nt);

  float centre = std::numeric_limits<float>::quiet_NaN();
  for (;;) {
    std::size_t kept = 0;
    double sum = 0;
    for (std::size_t t = 0; t < nt; ++t)
      if (!flagged[t]) {
        scratch.values[kept++] = series[t];
        sum += series[t];
      }
    if (kept == 0) break;  // every sample non-finite: nothing to estimate from
    const double mean = sum / static_cast<double>(kept);
    double sum2 = 0;
    for (std::size_t i = 0; i < kept; ++i) sum2 += (scratch.values[i] - mean) * (scratch.values[i] - mean);
    const double kept_var = sum2 / static_cast<double>(kept);
    centre = median_of(std::span<float>(scratch.values.data(), kept));

    double spread = std::sqrt(kept_var);
    if (r.template_std) {
      // The reference's std: earlier outliers were set to the median and stay in the series.
      const double earlier = static_cast<double>(nt - non_finite - kept), all = static_cast<double>(kept) + earlier;
      const double mean_all = (static_cast<double>(kept) * mean + earlier * centre) / all;
      const double var_all = (static_cast<double>(kept) * (kept_var + (mean - mean_all) * (mean - mean_all)) +
                              earlier * (centre - mean_all) * (centre - mean_all)) /
                             all;
      spread = std::sqrt(var_all);
    }
    spread = std::max(spread, static_cast<double>(floor));
    if (!(spread > 0)) break;  // constant kept samples and no floor: nothing deviates

    const double limit = r.sigma * spread;
    std::size_t found = 0;
    for (std::size_t t = 0; t < nt; ++t) {
      if (flagged[t]) continue;
      const double d = static_cast<double>(series[t]) - centre;
      if (d > limit || (r.both_sides && -d > limit)) {
        flagged[t] = kOutlier;
        ++found;
      }
    }
    if (found == 0) break;
  }

  std::size_t replaced = 0;
  for (std::size_t t = 0; t < nt; ++t) {
    if (!flagged[t]) continue;
    if (flagged[t] == kNonFinite) dq[t] |= dq::non_finite;
    if (std::isnan(centre)) continue;  // no finite sample to replace it with
    series[t] = centre;
    dq[t] |= dq::temporal_outlier;
    replaced_in_frame[t] += 1;
    ++replaced;
  }
  return replaced;
}

}  // namespace

std::size_t free_iter_series(std::span<float> series, std::span<const float> err, std::span<std::uint32_t> dq,
                             const FreeIterParams& params, std::span<double> replaced_in_frame,
                             FreeIterScratch& scratch) {
  return clean_series(series, err, dq, Resolved(params), replaced_in_frame, scratch);
}

StepIO FreeIter::io(const Params& params) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "dq"}};
  if (params.noise_floor) io.reads.push_back({DataKind::Cube, "err"});
  io.writes = {{DataKind::Cube, {"data", "", ""}},
               {DataKind::Cube, {"dq", "", ""}, ElementType::UInt32},
               {DataKind::FrameVector, {"free_iter_outliers", "1", "pixels replaced by free_iter in each frame"},
                ElementType::Float32, true}};
  return io;
}

void FreeIter::run(const Params& params, StepContext& context) {
  const Resolved resolved(params);
  auto data_tiles = context.tiles<float>("data");
  auto dq_tiles = context.tiles<std::uint32_t>("dq");
  std::vector<TileBlock<float>> err_tiles;
  if (params.noise_floor) err_tiles = context.tiles<float>("err");
  std::vector<double>& counts = context.frame_vector("free_iter_outliers").values;
  FreeIterScratch scratch;
  for (std::size_t k = 0; k < data_tiles.size(); ++k) {
    for (std::size_t i = 0; i < data_tiles[k].pixels(); ++i) {
      const std::span<const float> err = err_tiles.empty() ? std::span<const float>() : err_tiles[k].series(i);
      clean_series(data_tiles[k].series(i), err, dq_tiles[k].series(i), resolved, counts, scratch);
    }
    context.advance(data_tiles[k].pixels());
  }
}

}  // namespace tessera::steps
