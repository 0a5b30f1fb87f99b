// The `tessera` command line: simulate, validate, graph, plan, run, steps, import-hustle.
#include <optional>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "commands.hpp"
#include "import_command.hpp"
#include "simulate_command.hpp"
#include "submit_command.hpp"
#include "survey_command.hpp"
#include "tessera/version.hpp"

int main(int argc, char** argv) {
  using namespace tessera::app;
  CLI::App app{"Tessera: distributed reduction of astronomical time-series spectroscopy"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(tessera::version()) + " (" + tessera::git_commit() + ")");

  WorkflowArgs args;
  auto add_workflow_args = [&](CLI::App* sub) {
    sub->add_option("workflow", args.path, "Workflow TOML file")->required();
    sub->add_option("--set", args.overrides, "Override a parameter: STEP.PARAM=VALUE (repeatable)")
        ->type_name("STEP.PARAM=VALUE");
  };

  auto* run = app.add_subcommand("run", "Run a workflow (under mpirun or srun for several ranks)");
  add_workflow_args(run);
  bool quiet = false, verbose = false;
  run->add_flag("-q,--quiet", quiet, "Print errors only");
  run->add_flag("-v,--verbose", verbose, "Print the plan and messages from every rank");
  run->add_flag("--resume", args.resume,
                "Skip the run if its output is complete for this workflow; else restart from the last valid checkpoint");
  run->add_flag("--checkpoint-all", args.checkpoint_all, "Write a checkpoint after every step (as checkpoint = true)");

  auto* validate = app.add_subcommand("validate", "Check a workflow and report every problem with file:line:column");
  add_workflow_args(validate);
  auto* graph = app.add_subcommand("graph", "Print the workflow's DAG as Graphviz DOT");
  add_workflow_args(graph);
  auto* plan = app.add_subcommand("plan", "Print the execution plan (layouts, transposes, bytes moved) without reading data");
  add_workflow_args(plan);
  int plan_ranks = 0;
  plan->add_option("--ranks", plan_ranks, "Plan for this many ranks (default: the ranks it runs on)")
      ->check(CLI::PositiveNumber);

  auto* steps = app.add_subcommand("steps", "List step and input kinds, or show one kind's parameters");
  std::string kind;
  bool markdown = false;
  steps->add_option("kind", kind, "A step or input kind");
  steps->add_flag("--markdown", markdown, "Print the whole reference as Markdown (docs/steps.md)");

  SimulateArgs simulate_args;
  auto* simulate = add_simulate_command(app, simulate_args);

  ImportArgs import_args;
  auto* import_hustle = add_import_command(app, import_args);

  std::shared_ptr<SurveyArgs> survey_args;
  auto* survey = add_survey_command(app, survey_args);

  std::shared_ptr<SubmitArgs> submit_args;
  auto* submit = add_submit_command(app, submit_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (*run) {
    std::optional<tessera::Verbosity> verbosity;  // unset: the workflow's [workflow] verbose
    if (quiet) verbosity = tessera::Verbosity::Quiet;
    if (verbose) verbosity = tessera::Verbosity::Verbose;
    return run_command(args, verbosity);
  }
  if (*validate) return validate_command(args);
  if (*graph) return graph_command(args);
  if (*plan) return plan_command(args, plan_ranks);
  if (*steps) return steps_command(kind, markdown);
  if (*simulate) return simulate_command(simulate_args);
  if (*import_hustle) return import_command(import_args);
  if (*survey) return survey_command(*survey_args);
  if (*submit) return submit_command(*submit_args);
  return 2;
}
