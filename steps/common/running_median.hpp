#pragma once
// A running median along one axis, for smoothing per-row estimates (reference pixels,
// background levels) the way the ExoTiC-MIRI steps median-filter them.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace tessera::steps {

/// Running median of `in` over the window [k - radius, k + radius] (cut at the ends), NaN
/// entries skipped, into `out` (NaN where a window has no finite entry). The window's
/// values are kept sorted in `window` and updated by one removal and one insertion per step,
/// so a step costs O(window) moves instead of a fresh selection. Ties and the even-count
/// average (0.5 * (lower + upper)) match median_of.
template <class In, class Out>
void running_median(std::size_t n, In in, Out out, std::size_t radius, std::vector<float>& window) {
  window.clear();
  auto insert = [&](float v) {
    if (std::isnan(v)) return;
    window.insert(std::upper_bound(window.begin(), window.end(), v), v);
  };
  auto remove = [&](float v) {
    if (std::isnan(v)) return;
    window.erase(std::lower_bound(window.begin(), window.end(), v));
  };
  for (std::size_t k = 0; k <= std::min(n - 1, radius); ++k) insert(in(k));
  for (std::size_t k = 0; k < n; ++k) {
    if (k > 0) {
      if (k > radius) remove(in(k - radius - 1));
      if (k + radius < n) insert(in(k + radius));
    }
    const std::size_t m = window.size();
    out(k, m == 0 ? NAN : (m % 2 ? window[m / 2] : 0.5f * (window[m / 2 - 1] + window[m / 2])));
  }
}

}  // namespace tessera::steps
