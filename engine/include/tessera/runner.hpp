#pragma once
/// Runs a validated workflow on every rank of a communicator: read the input into frame
/// slabs, run each step in topological order in the layout its access pattern needs
/// (transposing only when it changes), then write the output collectively.
#include <mpi.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tessera/figures.hpp"

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

/// How a run ended when it did not throw.
enum class RunOutcome {
  Completed,        ///< the steps ran and the output was written
  AlreadyComplete,  ///< --resume found a complete output of the same workflow: nothing ran
};

struct RunSummary {
  std::vector<StageTiming> stages;
  double seconds = 0;
  std::string output_path;
  RunOutcome outcome = RunOutcome::Completed;
  std::string resumed_after;    ///< id of the step whose checkpoint the run restarted from ("" = the input)
  std::size_t frames = 0;       ///< frames of the output (after any resampling)
  std::size_t input_frames = 0; ///< frames read from the input (0 when restarted from a checkpoint)
  std::string workflow_hash;    ///< hash of the input and every step (see checkpoint.hpp)
  std::vector<std::pair<std::string, double>> figures;  ///< RunOptions::figures, in order
  std::string str() const;
};

struct RunOptions {
  Verbosity verbosity = Verbosity::Normal;
  /// Skip the run when its output is complete and carries this workflow's hash; otherwise
  /// restart from the latest checkpoint whose hash still matches, or from the input.
  bool resume = false;
  bool checkpoint_all = false;     ///< write a checkpoint after every step (as `checkpoint = true` on each)
  std::vector<FigureSpec> figures; ///< key figures to compute and store as `figure_NAME` attributes
  std::FILE* log_file = nullptr;   ///< where rank 0's messages go (default stderr)
  std::map<std::string, AttrValue> extra_attributes;  ///< more provenance (e.g. survey name, visit id)
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
