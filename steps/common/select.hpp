#pragma once
/// Order statistics of short series (a pixel's time series, a window), the inner loop of
/// the temporal cleaning steps, and the cheap passes that let those steps skip them.
///
/// Fast paths: most pixel series have nothing beyond a clipping threshold, and proving that
/// does not need the median itself. Counting how many samples lie above a level L is one
/// vectorised pass, and "at least half the samples are >= L" already implies median >= L.
/// The helpers below write their loops over 8 independent lanes so that the compiler turns
/// them into SIMD code without reassociating floating-point sums (no -ffast-math needed);
/// the lane order is fixed, so results do not depend on the machine or the data layout.
#include <cmath>
#include <cstddef>
#include <span>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tessera::steps {

/// The k-th smallest (0-based) of `v`, which it reorders so that v[0..k) <= v[k] <= v[k+1..).
/// Values must not be NaN. Quickselect (Hoare 1961) with median-of-three pivots and a
/// branch-free Lomuto partition (swap, then advance when smaller): on short random series
/// it avoids the branch mispredictions that dominate std::nth_element. Runs of values equal
/// to the pivot are stepped over in one pass, so constant series stay linear.
inline float select_kth(std::span<float> v, std::size_t k) {
  std::size_t lo = 0, hi = v.size() - 1;
  while (hi - lo >= 16) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (v[mid] < v[lo]) std::swap(v[mid], v[lo]);
    if (v[hi] < v[lo]) std::swap(v[hi], v[lo]);
    if (v[mid] < v[hi]) std::swap(v[mid], v[hi]);  // v[lo] <= v[hi] <= v[mid]: pivot in v[hi]
    const float pivot = v[hi];
    std::size_t store = lo;
    for (std::size_t i = lo; i < hi; ++i) {
      const float x = v[i];
      v[i] = v[store];
      v[store] = x;
      store += x < pivot ? 1 : 0;
    }
    std::swap(v[store], v[hi]);
    if (k == store) return v[k];
    if (k < store) {
      hi = store - 1;
      continue;
    }
    // Gather the values equal to the pivot right after it, then skip them.
    std::size_t equal_end = store + 1;
    for (std::size_t i = store + 1; i <= hi; ++i) {
      const float x = v[i];
      v[i] = v[equal_end];
      v[equal_end] = x;
      equal_end += x == pivot ? 1 : 0;
    }
    if (k < equal_end) return pivot;
    lo = equal_end;
  }
  for (std::size_t i = lo + 1; i <= hi; ++i) {  // insertion sort of the last few
    const float x = v[i];
    std::size_t j = i;
    for (; j > lo && x < v[j - 1]; --j) v[j] = v[j - 1];
    v[j] = x;
  }
  return v[k];
}

/// Median of `v` (reordered); an even count averages the two middle values. NaN when empty.
inline float median_of(std::span<float> v) {
  const std::size_t n = v.size();
  if (n == 0) return __builtin_nanf("");
  const float upper = select_kth(v, n / 2);
  if (n % 2 == 1) return upper;
  float lower = v[0];
  for (std::size_t i = 1; i < n / 2; ++i) lower = v[i] > lower ? v[i] : lower;
  return 0.5f * (lower + upper);
}

/// Mean, population standard deviation, largest and smallest of a series, in float
/// (two passes: the squared deviations are taken about the mean, so there is no
/// cancellation). `finite` is false when any sample is NaN or infinite; the other fields
/// are then meaningless. Empty series: all zero, finite.
struct Moments {
  float mean = 0, std = 0, max = 0, min = 0;
  bool finite = true;
};

inline Moments moments_of(std::span<const float> v) {
  Moments m;
  const std::size_t n = v.size();
  if (n == 0) return m;
  constexpr std::size_t L = 8;
  float sum[L] = {}, hi[L], lo[L];
  for (std::size_t j = 0; j < L; ++j) hi[j] = lo[j] = v[0];
  std::size_t i = 0;
#if defined(__SSE2__)
  // Compilers do not turn the lane loop below into SIMD code by themselves (the max and min
  // defeat them); the same lanes in SSE2 registers give bit-identical results.
  if (n >= L) {
    __m128 sum0 = _mm_setzero_ps(), sum1 = sum0, hi0 = _mm_set1_ps(v[0]), hi1 = hi0, lo0 = hi0, lo1 = hi0;
    for (; i + L <= n; i += L) {
      const __m128 a = _mm_loadu_ps(v.data() + i), b = _mm_loadu_ps(v.data() + i + 4);
      sum0 = _mm_add_ps(sum0, a);
      sum1 = _mm_add_ps(sum1, b);
      hi0 = _mm_max_ps(a, hi0);
      hi1 = _mm_max_ps(b, hi1);
      lo0 = _mm_min_ps(a, lo0);
      lo1 = _mm_min_ps(b, lo1);
    }
    _mm_storeu_ps(sum, sum0);
    _mm_storeu_ps(sum + 4, sum1);
    _mm_storeu_ps(hi, hi0);
    _mm_storeu_ps(hi + 4, hi1);
    _mm_storeu_ps(lo, lo0);
    _mm_storeu_ps(lo + 4, lo1);
  }
#endif
  for (; i + L <= n; i += L)
    for (std::size_t j = 0; j < L; ++j) {
      const float x = v[i + j];
      sum[j] += x;
      hi[j] = x > hi[j] ? x : hi[j];
      lo[j] = x < lo[j] ? x : lo[j];
    }
  float total = 0, top = hi[0], bottom = lo[0];
  for (std::size_t j = 0; j < L; ++j) {
    total += sum[j];
    top = hi[j] > top ? hi[j] : top;
    bottom = lo[j] < bottom ? lo[j] : bottom;
  }
  for (; i < n; ++i) {
    total += v[i];
    top = v[i] > top ? v[i] : top;
    bottom = v[i] < bottom ? v[i] : bottom;
  }
  m.mean = total / static_cast<float>(n);
  float squares[L] = {};
  i = 0;
  for (; i + L <= n; i += L)
    for (std::size_t j = 0; j < L; ++j) {
      const float d = v[i + j] - m.mean;
      squares[j] += d * d;
    }
  float sum2 = 0;
  for (std::size_t j = 0; j < L; ++j) sum2 += squares[j];
  for (; i < n; ++i) sum2 += (v[i] - m.mean) * (v[i] - m.mean);
  m.std = std::sqrt(sum2 / static_cast<float>(n));
  m.max = top;
  m.min = bottom;
  // NaN or infinity anywhere makes the sum of squares NaN or infinite (inf - inf = NaN).
  m.finite = std::isfinite(sum2) && std::isfinite(total);
  return m;
}

/// How many samples are >= level.
inline std::size_t count_at_least(std::span<const float> v, float level) {
  constexpr std::size_t L = 8;
  unsigned count[L] = {};
  const std::size_t n = v.size();
  std::size_t i = 0;
  for (; i + L <= n; i += L)
    for (std::size_t j = 0; j < L; ++j) count[j] += v[i + j] >= level ? 1u : 0u;
  std::size_t total = 0;
  for (std::size_t j = 0; j < L; ++j) total += count[j];
  for (; i < n; ++i) total += v[i] >= level ? 1u : 0u;
  return total;
}

/// How many samples are <= level.
inline std::size_t count_at_most(std::span<const float> v, float level) {
  constexpr std::size_t L = 8;
  unsigned count[L] = {};
  const std::size_t n = v.size();
  std::size_t i = 0;
  for (; i + L <= n; i += L)
    for (std::size_t j = 0; j < L; ++j) count[j] += v[i + j] <= level ? 1u : 0u;
  std::size_t total = 0;
  for (std::size_t j = 0; j < L; ++j) total += count[j];
  for (; i < n; ++i) total += v[i] <= level ? 1u : 0u;
  return total;
}

/// How many samples lie strictly between lo and hi.
inline std::size_t count_between(std::span<const float> v, float lo, float hi) {
  constexpr std::size_t L = 8;
  unsigned count[L] = {};
  const std::size_t n = v.size();
  std::size_t i = 0;
  for (; i + L <= n; i += L)
    for (std::size_t j = 0; j < L; ++j) count[j] += (v[i + j] > lo) & (v[i + j] < hi) ? 1u : 0u;
  std::size_t total = 0;
  for (std::size_t j = 0; j < L; ++j) total += count[j];
  for (; i < n; ++i) total += (v[i] > lo) & (v[i] < hi) ? 1u : 0u;
  return total;
}

/// True only if median_of(v) >= level, proven by counting (no selection): at least
/// n/2 + 1 samples >= level put both middle order statistics there. False means "not
/// proven", not "below". Values must not be NaN.
inline bool median_at_least(std::span<const float> v, float level) {
  return !v.empty() && count_at_least(v, level) >= v.size() / 2 + 1;
}

/// True only if median_of(v) <= level, proven by counting (see median_at_least).
inline bool median_at_most(std::span<const float> v, float level) {
  return !v.empty() && count_at_most(v, level) >= v.size() / 2 + 1;
}

/// True only if lo <= median_of(v) <= hi, proven by counting in one pass: at most
/// n − (n/2 + 1) samples below lo and at most as many above hi (see median_at_least).
inline bool median_between(std::span<const float> v, float lo, float hi) {
  constexpr std::size_t L = 8;
  unsigned below[L] = {}, above[L] = {};
  const std::size_t n = v.size();
  std::size_t i = 0;
  for (; i + L <= n; i += L)
    for (std::size_t j = 0; j < L; ++j) {
      below[j] += v[i + j] < lo ? 1u : 0u;
      above[j] += v[i + j] > hi ? 1u : 0u;
    }
  std::size_t b = 0, a = 0;
  for (std::size_t j = 0; j < L; ++j) {
    b += below[j];
    a += above[j];
  }
  for (; i < n; ++i) {
    b += v[i] < lo ? 1u : 0u;
    a += v[i] > hi ? 1u : 0u;
  }
  const std::size_t most = n - (n / 2 + 1);
  return n > 0 && b <= most && a <= most;
}

}  // namespace tessera::steps
