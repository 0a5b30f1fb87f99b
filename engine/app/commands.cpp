#include "commands.hpp"

#include <mpi.h>

#include <cstdio>
#include <iostream>

#include "tessera/errors.hpp"
#include "tessera/plan.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"
#include "tessera/workflow.hpp"

namespace tessera::app {
namespace {

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
  int rank = 0, size = 1;
};

int report(const Error& e, int rank) {
  if (rank == 0) std::fprintf(stderr, "tessera: error: %s\n", e.what());
  return static_cast<int>(e.exit_code());
}

void print_params(const std::vector<ParamDoc>& params, bool markdown) {
  if (params.empty()) {
    std::printf(markdown ? "No parameters.\n" : "  (no parameters)\n");
    return;
  }
  if (markdown) std::printf("| parameter | type | default | allowed | description |\n|---|---|---|---|---|\n");
  for (const auto& p : params) {
    if (markdown)
      std::printf("| `%s` | %s | `%s` | %s | %s |\n", p.name.c_str(), p.type.c_str(), p.default_text.c_str(),
                  p.constraint.c_str(), p.doc.c_str());
    else
      std::printf("  %-18s %s, default %s%s%s\n  %18s %s\n", p.name.c_str(), p.type.c_str(), p.default_text.c_str(),
                  p.constraint.empty() ? "" : ", ", p.constraint.c_str(), "", p.doc.c_str());
  }
}

std::string list_io(const StepIO& io, bool reads) {
  std::string out;
  if (reads)
    for (const auto& r : io.reads) out += (out.empty() ? "" : ", ") + to_string(r.kind) + " " + r.name;
  else
    for (const auto& w : io.writes) out += (out.empty() ? "" : ", ") + to_string(w.kind) + " " + w.info.name;
  return out.empty() ? "nothing" : out;
}

}  // namespace

int validate_command(const WorkflowArgs& args) {
  try {
    Workflow wf = load_workflow(args.path, args.overrides, builtin_registry());
    std::printf("%s: valid workflow '%s': input %s, %zu step%s (%zu enabled), output %s\n", args.path.c_str(),
                wf.name.c_str(), wf.input_kind.c_str(), wf.steps.size(), wf.steps.size() == 1 ? "" : "s",
                wf.order.size(), wf.output_path.c_str());
    return 0;
  } catch (const Error& e) {
    return report(e, 0);
  }
}

int graph_command(const WorkflowArgs& args) {
  try {
    Workflow wf = load_workflow(args.path, args.overrides, builtin_registry());
    std::cout << workflow_dot(wf);
    return 0;
  } catch (const Error& e) {
    return report(e, 0);
  }
}

int plan_command(const WorkflowArgs& args, int nranks) {
  MpiSession mpi;
  try {
    Workflow wf = load_workflow(args.path, args.overrides, builtin_registry());
    FrameOrder order = read_frame_order(wf, MPI_COMM_WORLD);
    const int ranks = nranks > 0 ? nranks : mpi.size;
    if (mpi.rank == 0) std::cout << make_plan(wf, order.shape, ranks).str(wf);
    return 0;
  } catch (const Error& e) {
    return report(e, mpi.rank);
  }
}

int run_command(const WorkflowArgs& args, std::optional<Verbosity> requested) {
  MpiSession mpi;
  try {
    // Every rank validates the whole workflow before the first collective call.
    Workflow wf = load_workflow(args.path, args.overrides, builtin_registry());
    const Verbosity verbosity =
        requested ? *requested : wf.verbose ? static_cast<Verbosity>(*wf.verbose) : Verbosity::Normal;
    RunOptions options;
    options.verbosity = verbosity;
    options.resume = args.resume;
    options.checkpoint_all = args.checkpoint_all;
    RunSummary summary = run_workflow(wf, MPI_COMM_WORLD, options);
    if (mpi.rank == 0 && verbosity != Verbosity::Quiet) std::fprintf(stderr, "%s", summary.str().c_str());
    return 0;
  } catch (const Error& e) {
    return report(e, mpi.rank);
  }
}

int steps_command(const std::string& kind, bool markdown) {
  const Registry& registry = builtin_registry();
  if (!kind.empty()) {
    const StepInfo* step = registry.find_step(kind);
    const InputInfo* input = registry.find_input(kind);
    if (!step && !input) {
      std::vector<std::string> names = registry.step_names();
      for (auto& n : registry.input_names()) names.push_back(n);
      std::string hint = closest_name(kind, names);
      std::fprintf(stderr, "tessera: error: no step or input kind '%s'%s\n", kind.c_str(),
                   hint.empty() ? "" : ("; did you mean '" + hint + "'?").c_str());
      return 2;
    }
    if (step) {
      std::printf("%s — %s\n\n  access: %s\n  reads:  %s\n  writes: %s\n\nparameters:\n", step->name.c_str(),
                  step->summary.c_str(), to_string(step->default_phases).c_str(),
                  list_io(step->default_io, true).c_str(), list_io(step->default_io, false).c_str());
      print_params(step->params, false);
    } else {
      std::printf("%s (input kind) — %s\n\nparameters ([input] table):\n", input->name.c_str(), input->summary.c_str());
      print_params(input->params, false);
    }
    return 0;
  }
  if (markdown) {
    std::printf("# Step and input reference\n\nGenerated by `tessera steps --markdown` from the registry; do not edit.\n");
    std::printf("\n## Input kinds\n");
    for (const auto& i : registry.inputs()) {
      std::printf("\n### `%s`\n\n%s\n\n", i.name.c_str(), i.summary.c_str());
      print_params(i.params, true);
    }
    std::printf("\n## Steps\n");
    for (const auto& s : registry.steps()) {
      std::printf("\n### `%s`\n\n%s\n\n- access: `%s`\n- reads: %s\n- writes: %s\n\n", s.name.c_str(), s.summary.c_str(),
                  to_string(s.default_phases).c_str(), list_io(s.default_io, true).c_str(),
                  list_io(s.default_io, false).c_str());
      print_params(s.params, true);
    }
    return 0;
  }
  std::printf("steps:\n");
  for (const auto& s : registry.steps())
    std::printf("  %-16s %-20s %s\n", s.name.c_str(), to_string(s.default_phases).c_str(), s.summary.c_str());
  std::printf("inputs:\n");
  for (const auto& i : registry.inputs()) std::printf("  %-16s %-7s %s\n", i.name.c_str(), "", i.summary.c_str());
  std::printf("\n`tessera steps KIND` shows a kind's parameters.\n");
  return 0;
}

}  // namespace tessera::app
