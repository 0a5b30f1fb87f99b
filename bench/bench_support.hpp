#pragma once
// Small helpers the benchmarks share.
#include <sys/resource.h>

namespace tessera::bench {

/// Peak resident memory of this process so far, in MB.
inline double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace tessera::bench
