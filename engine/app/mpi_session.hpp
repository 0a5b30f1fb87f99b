#pragma once
/// What every MPI subcommand of the program shares: MPI started for the command's lifetime,
/// and errors reported once (by rank 0) with the exit status they carry.
#include <mpi.h>

#include <cstdio>

#include "tessera/errors.hpp"

namespace tessera::app {

/// MPI for the commands that need it; finalised on scope exit.
struct MpiSession {
  MpiSession() {
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) MPI_Init(nullptr, nullptr);
    // Errors in MPI calls come back as codes we can report instead of aborting silently.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }
  ~MpiSession() {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank = 0, size = 1;
};

/// Prints "tessera: error: ..." on rank 0 and returns the error's exit status.
inline int report(const Error& e, int rank) {
  if (rank == 0) std::fprintf(stderr, "tessera: error: %s\n", e.what());
  return static_cast<int>(e.exit_code());
}

}  // namespace tessera::app
