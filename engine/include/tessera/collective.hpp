#pragma once
/// Collective helpers of the engine: failure agreement at step boundaries and progress
/// reporting across ranks. Steps never see these.
#include <mpi.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "tessera/logger.hpp"

namespace tessera {

/// Collective. Returns if no rank failed; otherwise every rank throws the failure of the
/// lowest failing rank (same error class, same message), so that no rank is left waiting
/// in a later collective call.
void agree_on_failure(MPI_Comm comm, std::exception_ptr local_failure);

/// Runs `body` on every rank and then agrees on failure (see agree_on_failure).
template <class F>
void collectively(MPI_Comm comm, F&& body) {
  std::exception_ptr failure;
  try {
    body();
  } catch (...) {
    failure = std::current_exception();
  }
  agree_on_failure(comm, failure);
}

/// Sum of a value over ranks.
std::size_t sum_over_ranks(MPI_Comm comm, std::size_t value);
/// Every rank's processor name, as a sorted list without duplicates (on every rank).
std::vector<std::string> host_names(MPI_Comm comm);

/// One updating progress line on rank 0 with the work done on all ranks. Other ranks
/// send their counts to rank 0 at most every 0.2 s; rank 0 prints when it reports its own
/// work (on a terminal, an updating line; otherwise nothing until finish()).
class Progress {
 public:
  Progress(MPI_Comm comm, const Logger& log, std::string label, std::size_t local_units);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void advance(std::size_t units);
  /// Collective: collects the final counts; rank 0 ends the line with `summary`.
  void finish(const std::string& summary);
  double elapsed_seconds() const;

 private:
  void drain(bool until_final);
  void print(bool final_line, const std::string& summary);

  MPI_Comm comm_;
  const Logger& log_;
  std::string label_;
  int rank_ = 0, nranks_ = 1;
  std::size_t total_units_ = 0, local_done_ = 0, sent_done_ = 0, remote_done_ = 0;
  std::vector<std::size_t> remote_counts_;
  std::vector<bool> final_received_;
  std::vector<MPI_Request> requests_;
  std::vector<std::unique_ptr<unsigned long long>> buffers_;
  std::chrono::steady_clock::time_point start_, last_send_, last_print_;
  bool tty_ = false, finished_ = false;
};

}  // namespace tessera
