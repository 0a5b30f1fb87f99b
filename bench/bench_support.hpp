#pragma once
// Small helpers the benchmarks share.
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace tessera::bench {

/// Peak resident memory of this process so far, in MB.
inline double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

/// Seconds to copy `elements` floats (this rank's share of a cube), every rank at once; the
/// slowest rank's time, best of 3. Collective over MPI_COMM_WORLD.
inline double memcpy_seconds(std::size_t elements) {
  std::vector<float> from(elements, 1.0f), to(elements);
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(to.data(), from.data(), elements * sizeof(float));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    best = std::min(best, seconds);
  }
  volatile float sink = to[elements / 2];
  (void)sink;
  return best;
}

}  // namespace tessera::bench
