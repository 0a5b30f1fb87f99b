#include "survey_command.hpp"

#include <mpi.h>

#include <cstdio>

#include "mpi_session.hpp"
#include "tessera/errors.hpp"
#include "tessera/survey.hpp"

namespace tessera::app {

struct SurveyArgs {
  CLI::App* run = nullptr;
  CLI::App* index = nullptr;
  CLI::App* list = nullptr;
  std::string path;
  std::vector<std::string> overrides;
  bool resume = false, checkpoint_all = false, no_index = false, quiet = false, verbose = false;
  std::int64_t group_size = 0;
  CLI::Option* array_task_option = nullptr;
  std::int64_t array_task = 0;
  std::int64_t visits_per_task = 1;
};

namespace {

std::string human(std::uintmax_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit ? "%.1f %s" : "%.0f %s", value, units[unit]);
  return text;
}

int run_survey_command(const SurveyArgs& args) {
  MpiSession mpi;
  try {
    const Survey survey = load_survey(args.path, args.overrides);
    SurveyOptions options;
    if (args.quiet) options.verbosity = Verbosity::Quiet;
    if (args.verbose) options.verbosity = Verbosity::Verbose;
    options.resume = args.resume;
    options.checkpoint_all = args.checkpoint_all;
    options.group_size = args.group_size;
    if (args.array_task_option->count() > 0) options.array_task = args.array_task;
    options.visits_per_task = args.visits_per_task;
    options.write_index = !args.no_index;
    const SurveyResult result = run_survey(survey, MPI_COMM_WORLD, options);
    return result.all_succeeded() ? 0 : 1;
  } catch (const Error& e) {
    return report(e, mpi.rank);
  }
}

int index_survey(const SurveyArgs& args) {
  try {
    const Survey survey = load_survey(args.path, args.overrides);
    const std::size_t not_complete = write_survey_index(survey);
    std::printf("%s: %zu of %zu visits complete; wrote %s\n", survey.name.c_str(),
                survey.visits.size() - not_complete, survey.visits.size(), survey.index_path().c_str());
    return not_complete == 0 ? 0 : 1;
  } catch (const Error& e) {
    return report(e, 0);
  }
}

int list_survey(const SurveyArgs& args) {
  try {
    const Survey survey = load_survey(args.path, args.overrides);
    std::size_t width = 2;
    for (const auto& v : survey.visits) width = std::max(width, v.id.size());
    std::printf("%-*s  %10s  %s -> %s\n", static_cast<int>(width), "id", "bytes", "input", "output");
    for (const auto& v : survey.visits)
      std::printf("%-*s  %10s  %s -> %s\n", static_cast<int>(width), v.id.c_str(), human(v.input_bytes).c_str(),
                  v.input.c_str(), survey.visit_output(v).c_str());
    std::printf("%zu visits\n", survey.visits.size());
    return 0;
  } catch (const Error& e) {
    return report(e, 0);
  }
}

}  // namespace

CLI::App* add_survey_command(CLI::App& app, std::shared_ptr<SurveyArgs>& args) {
  args = std::make_shared<SurveyArgs>();
  SurveyArgs& a = *args;
  auto* survey = app.add_subcommand("survey", "Run one workflow over many visits (docs/surveys.md)");
  survey->require_subcommand(1);
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("survey", a.path, "Survey TOML file")->required();
    sub->add_option("--set", a.overrides, "Override a parameter for every visit: STEP.PARAM=VALUE (repeatable)")
        ->type_name("STEP.PARAM=VALUE");
  };

  a.run = survey->add_subcommand("run", "Process the survey's visits in groups of ranks (under mpirun or srun)");
  add_common(a.run);
  a.run->add_flag("--resume", a.resume, "Skip visits whose output is complete; restart others from their checkpoints");
  a.run->add_flag("--checkpoint-all", a.checkpoint_all, "Write a checkpoint after every step of every visit");
  a.run->add_option("--group-size", a.group_size, "Ranks per visit (default: the survey's group_size, else derived)")
      ->check(CLI::PositiveNumber);
  a.array_task_option =
      a.run->add_option("--array-task", a.array_task,
                        "Job-array mode: run only visits [I*K, (I+1)*K) of the survey's order and write no index")
          ->check(CLI::NonNegativeNumber)
          ->type_name("I");
  a.run->add_option("--visits-per-task", a.visits_per_task, "Visits per array task (K, default 1)")
      ->check(CLI::PositiveNumber)
      ->needs(a.array_task_option)
      ->type_name("K");
  a.run->add_flag("--no-index", a.no_index, "Do not write OUTPUT/survey_index.csv at the end");
  a.run->add_flag("-q,--quiet", a.quiet, "Print failures and errors only");
  a.run->add_flag("-v,--verbose", a.verbose, "Run every visit verbosely (its log gets every rank's detail)");

  a.index = survey->add_subcommand(
      "index", "Rewrite OUTPUT/survey_index.csv from the visits' records (exit 0 iff every visit is complete)");
  add_common(a.index);
  a.list = survey->add_subcommand("list", "List the visits: id, input size, input and output");
  add_common(a.list);
  return survey;
}

int survey_command(const SurveyArgs& args) {
  if (*args.run) return run_survey_command(args);
  if (*args.index) return index_survey(args);
  if (*args.list) return list_survey(args);
  return 2;
}

}  // namespace tessera::app
