#pragma once
/// Runs a validated workflow on every rank of a communicator: read the input into frame
/// slabs, run each step in topological order in the layout its access pattern needs
/// (transposing only when it changes), then write the output collectively.
#include <mpi.h>

#include <string>
#include <vector>

#include "tessera/logger.hpp"
#include "tessera/plan.hpp"
#include "tessera/workflow.hpp"

namespace tessera {

/// The frames of the input in time order, read from headers only (collective: each rank
/// reads the headers of a share of the files).
FrameOrder read_frame_order(Workflow& workflow, MPI_Comm comm);

struct StageTiming {
  std::string label;   ///< "read", "transpose", a step id, "write"
  double seconds = 0;
  std::size_t bytes_moved = 0;
};

struct RunSummary {
  std::vector<StageTiming> stages;
  double seconds = 0;
  std::string output_path;
  std::string str() const;
};

struct RunOptions {
  Verbosity verbosity = Verbosity::Normal;
};

/// Collective. Throws (on every rank, with the failing rank's message) if anything fails;
/// the output file then does not exist.
RunSummary run_workflow(Workflow& workflow, MPI_Comm comm, const RunOptions& options);

/// Creates what a step declares it writes and does not exist yet (cubes in the current
/// layout; per-frame vectors and images reset to zero). The runner calls it before each
/// step; tests that drive a step by hand call it too.
void prepare_outputs(Dataset& data, const StepIO& io);

/// Runs the steps of `workflow` on an in-memory dataset (no input read, no output
/// written); for tests and embedding. Collective.
void run_steps(Workflow& workflow, Dataset& data, MPI_Comm comm, const Logger& log, RunSummary* summary = nullptr);

}  // namespace tessera
