#pragma once
/// `tessera submit WORKFLOW.toml|SURVEY.toml ...`: writes sbatch scripts from the templates of
/// slurm/templates (embedded in the program, engine/app/slurm_templates.hpp) and submits them,
/// or prints them with --dry-run. A workflow or a survey goes as one MPI job (job.sbatch); a
/// survey with --array goes as a job array (array.sbatch, one or a few visits per task) and an
/// index job (index.sbatch) that runs after every task has ended. docs/slurm.md has the options.
#include <CLI/CLI.hpp>

#include <memory>

namespace tessera::app {

struct SubmitArgs;  // defined in submit_command.cpp
CLI::App* add_submit_command(CLI::App& app, std::shared_ptr<SubmitArgs>& args);
int submit_command(const SubmitArgs& args);

}  // namespace tessera::app
