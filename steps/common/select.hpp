#pragma once
/// Order statistics of short series (a pixel's time series, a window), the inner loop of
/// the temporal cleaning steps.
#include <cstddef>
#include <span>
#include <utility>

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

}  // namespace tessera::steps
