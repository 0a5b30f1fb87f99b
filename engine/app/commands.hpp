#pragma once
/// The `tessera` subcommands. Each returns the process exit status.
#include <optional>
#include <string>
#include <vector>

#include "tessera/logger.hpp"

namespace tessera::app {

struct WorkflowArgs {
  std::string path;
  std::vector<std::string> overrides;  ///< --set STEP.PARAM=VALUE
  bool resume = false;                 ///< run --resume
  bool checkpoint_all = false;         ///< run --checkpoint-all
};

int run_command(const WorkflowArgs& args, std::optional<Verbosity> verbosity);
int validate_command(const WorkflowArgs& args);
int graph_command(const WorkflowArgs& args);
int plan_command(const WorkflowArgs& args, int nranks);
int steps_command(const std::string& kind, bool markdown);

}  // namespace tessera::app
