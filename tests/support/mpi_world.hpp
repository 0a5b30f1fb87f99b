#pragma once
// MPI_COMM_WORLD facts for MPI tests, and output paths that are the same on every rank but
// differ between rank counts, so that ctest may run the 1-, 2- and 3-rank tests at once.
#include <mpi.h>

#include <filesystem>
#include <string>

namespace tessera::testing {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

inline std::string per_rank_count_path(const std::string& test, const std::string& name) {
  return (std::filesystem::current_path() / (test + "_" + name + "_np" + std::to_string(world_size()) + ".h5")).string();
}

}  // namespace tessera::testing
