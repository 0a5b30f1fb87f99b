#pragma once
/// `tessera import-hustle FILE.hustle [-o OUT.toml] [--force] [--no-check]`: converts a stage-1
/// .hustle configuration (ExoTiC-UVIS / HUSTLE-tools) into a Tessera workflow.
#include <CLI/CLI.hpp>

#include <string>

namespace tessera::app {

struct ImportArgs {
  std::string input;    ///< the .hustle file
  std::string output;   ///< "" -> the input with the extension .toml
  bool force = false;   ///< overwrite an existing output
  bool no_check = false;///< write even if the workflow does not validate
};

/// Adds the subcommand; returns it.
CLI::App* add_import_command(CLI::App& app, ImportArgs& args);
/// Exit status: 0 written; 2 malformed .hustle, invalid result or refused overwrite; 1 I/O failure.
int import_command(const ImportArgs& args);

}  // namespace tessera::app
