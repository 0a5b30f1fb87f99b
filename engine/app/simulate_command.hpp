#pragma once
#include <CLI/CLI.hpp>

#include "steps/simulate/uvis_simulator.hpp"

namespace tessera::app {

struct SimulateArgs {
  std::string instrument;
  sim::UvisSimOptions uvis;
};

/// Adds `tessera simulate uvis ...`; returns the subcommand.
CLI::App* add_simulate_command(CLI::App& app, SimulateArgs& args);
int simulate_command(const SimulateArgs& args);

}  // namespace tessera::app
