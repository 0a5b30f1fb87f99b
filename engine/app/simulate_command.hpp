#pragma once
#include <CLI/CLI.hpp>

#include <map>
#include <string>

#include "steps/simulate/jwst_simulator.hpp"
#include "steps/simulate/uvis_simulator.hpp"

namespace tessera::app {

/// What `tessera simulate INSTRUMENT ...` was given. Options shared by all instruments live
/// here; the instrument's own options are parsed into `uvis` / `jwst` and applied over that
/// instrument's defaults by simulate_command.
struct SimulateArgs {
  std::string instrument;  ///< uvis, niriss-soss or miri-lrs
  std::string out_dir;
  std::size_t ny = 0, nx = 0;
  std::uint64_t seed = 1;
  double depth = 0.01, cr_rate = 0;
  sim::UvisSimOptions uvis;
  sim::JwstSimOptions jwst;
  /// Every option by its long name ("--ny"), to tell which ones were given.
  std::map<std::string, CLI::Option*> options;
};

/// Adds `tessera simulate uvis|niriss-soss|miri-lrs ...`; returns the subcommand.
CLI::App* add_simulate_command(CLI::App& app, SimulateArgs& args);
int simulate_command(const SimulateArgs& args);

}  // namespace tessera::app
