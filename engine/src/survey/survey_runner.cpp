// run_survey: split the ranks into groups, let each group's leader take visits from the
// shared queue, run each visit's workflow on the group's communicator, and record the result.
// A failing visit is caught here (run_workflow throws the same Error on every rank of the
// group), recorded as failed, and the group goes on to its next visit.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "survey_detail.hpp"
#include "tessera/collective.hpp"
#include "tessera/errors.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using namespace survey_detail;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string plural(std::size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

/// One line on stderr, written at once so that lines of different group leaders do not mix.
void say(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

enum class Outcome { Complete, AlreadyComplete, Failed };

struct Group {
  MPI_Comm comm = MPI_COMM_NULL;
  int index = 0, rank = 0, size = 1;
  bool leader() const { return rank == 0; }
};

/// Runs one visit on every rank of the group; the leader logs, prints and records it.
Outcome run_visit(const Survey& survey, const SurveyVisit& visit, const Group& group, const SurveyOptions& options,
                  const Registry& registry) {
  const Verbosity verbosity = options.verbosity.value_or(Verbosity::Normal);
  const std::string where =
      "group " + std::to_string(group.index) + " (" + plural(static_cast<std::size_t>(group.size), "rank") + ")";
  const auto start = std::chrono::steady_clock::now();
  VisitRecord record;
  record.id = visit.id;
  record.input = visit.input;
  record.output = survey.visit_output(visit);
  record.ranks = group.size;
  record.group = group.index;
  record.started_utc = utc_now();
  record.slurm_job_id = environment("SLURM_JOB_ID");
  record.slurm_array_task_id = environment("SLURM_ARRAY_TASK_ID");

  std::optional<VisitRecord> previous;
  std::FILE* log = nullptr;
  if (group.leader()) {
    try {
      previous = read_record(survey.visit_record(visit));
    } catch (const IoError& e) {
      say("visit " + visit.id + ": warning: " + e.what() + " (starting the attempt count again)");
    }
    record.attempt = (previous ? previous->attempt : 0) + 1;
    if (verbosity != Verbosity::Quiet) say("visit " + visit.id + ": started on " + where);
  }

  RunSummary summary;
  bool failed = false;
  try {
    // The directory and log come first, agreed over the group: a visit whose directory cannot
    // be made fails like any other.
    collectively(group.comm, [&] {
      if (!group.leader()) return;
      std::error_code ec;
      fs::create_directories(survey.visit_directory(visit), ec);
      if (ec) throw IoError(survey.visit_directory(visit) + ": cannot create the visit's directory: " + ec.message());
      log = std::fopen(survey.visit_log(visit).c_str(), "a");
      if (!log)
        say("visit " + visit.id + ": warning: cannot open " + survey.visit_log(visit) + "; its messages go to stderr");
      else
        std::fprintf(log, "== tessera survey %s: visit %s on %s, %s\n", survey.name.c_str(), visit.id.c_str(),
                     where.c_str(), record.started_utc.c_str());
    });
    Workflow workflow = load_workflow(survey.workflow, survey.visit_overrides(visit), registry);
    RunOptions run;
    run.verbosity = verbosity;
    run.resume = options.resume;
    run.checkpoint_all = options.checkpoint_all;
    run.figures = survey.figures;
    run.log_file = log;
    run.extra_attributes = {{"survey_name", survey.name}, {"survey_file", survey.file}, {"visit_id", visit.id}};
    summary = run_workflow(workflow, group.comm, run);
  } catch (const std::exception& e) {
    // Both load_workflow (deterministic) and run_workflow (agreed) throw alike on every rank.
    failed = true;
    record.message = e.what();
  }
  record.wall_s = seconds_since(start);
  std::string hosts;
  for (const auto& h : host_names(group.comm)) hosts += (hosts.empty() ? "" : ",") + h;
  const Outcome outcome = failed ? Outcome::Failed
                          : summary.outcome == RunOutcome::AlreadyComplete ? Outcome::AlreadyComplete
                                                                             : Outcome::Complete;
  if (!group.leader()) return outcome;

  record.host = hosts;
  record.finished_utc = utc_now();
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f s", record.wall_s);
  std::string line = "visit " + visit.id + ": ";
  if (outcome == Outcome::Failed) {
    record.status = "failed";
    line += "FAILED in " + std::string(seconds) + " on " + where + ": " + record.message + " (log: " +
            survey.visit_log(visit) + ")";
    if (log)
      std::fprintf(log, "== attempt %lld failed after %s: %s\n", static_cast<long long>(record.attempt), seconds,
                   record.message.c_str());
  } else {
    record.status = "complete";
    record.frames = static_cast<std::int64_t>(summary.frames);
    record.resumed_after = summary.resumed_after;
    record.workflow_hash = summary.workflow_hash;
    record.figures = summary.figures;
    if (outcome == Outcome::AlreadyComplete) {
      line += "already complete (same workflow hash), skipped";
      if (log) std::fprintf(log, "== already complete with this workflow's hash: nothing ran\n");
    } else {
      line += "complete in " + std::string(seconds) + " on " + where + ", " + plural(summary.frames, "frame");
      if (!summary.resumed_after.empty()) line += ", resumed after step '" + summary.resumed_after + "'";
      for (const auto& [name, value] : summary.figures) {
        char figure[96];
        std::snprintf(figure, sizeof figure, ", %s %.6g", name.c_str(), value);
        line += figure;
      }
      if (log) std::fprintf(log, "== attempt %lld complete in %s\n", static_cast<long long>(record.attempt), seconds);
    }
  }
  if (log) std::fclose(log);

  // A skipped visit keeps the record of the attempt that completed it; only a visit whose
  // output was made outside the survey (no record, or a stale failed one) gets one now, its
  // attempts unchanged (0 without a record): this run did not run it.
  const bool write = outcome != Outcome::AlreadyComplete || !previous || previous->status != "complete";
  if (outcome == Outcome::AlreadyComplete && write) {
    record.attempt = previous ? previous->attempt : 0;
    record.wall_s = 0;
    record.message = "output already complete when the survey first looked at it";
  }
  if (write) {
    try {
      write_record(survey.visit_record(visit), record);
    } catch (const IoError& e) {
      say("visit " + visit.id + ": warning: the record could not be written: " + e.what());
    }
  }
  if (verbosity != Verbosity::Quiet || outcome == Outcome::Failed) say(line);
  return outcome;
}

}  // namespace

SurveyResult run_survey(const Survey& survey, MPI_Comm comm, const SurveyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Verbosity verbosity = options.verbosity.value_or(Verbosity::Normal);
  const Registry& registry = options.registry ? *options.registry : builtin_registry();
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);

  // Every rank read the survey file itself; the queue order and group size, which depend on
  // file sizes that could change under a running survey, come from rank 0 alone.
  const std::vector<std::size_t> visits = visits_of_run(survey, options);
  std::vector<std::size_t> order = queue_order(survey, visits);
  std::vector<unsigned long long> shared(order.begin(), order.end());
  unsigned long long count = shared.size();
  MPI_Bcast(&count, 1, MPI_UNSIGNED_LONG_LONG, 0, comm);
  collectively(comm, [&] {
    if (count != shared.size())
      throw ConfigError(survey.file + ": rank " + std::to_string(rank) + " found " + plural(shared.size(), "visit") +
                        ", rank 0 found " + std::to_string(count) + " (did the inputs change during start-up?)");
  });
  MPI_Bcast(shared.data(), static_cast<int>(shared.size()), MPI_UNSIGNED_LONG_LONG, 0, comm);
  order.assign(shared.begin(), shared.end());
  int group_size = choose_group_size(survey, visits, options.group_size, world);
  MPI_Bcast(&group_size, 1, MPI_INT, 0, comm);

  Group group;
  group.index = group_of(rank, world, group_size);
  const int groups = group_count(world, group_size);
  collectively(comm, [&] {
    if (rank != 0) return;
    std::error_code ec;
    fs::create_directories(survey.output, ec);
    if (ec) throw IoError(survey.output + ": cannot create the survey output directory: " + ec.message());
  });
  if (rank == 0 && verbosity != Verbosity::Quiet) {
    const int last = world - (groups - 1) * group_size;
    std::string text = "survey " + survey.name + ": " + plural(order.size(), "visit") +
                       (options.array_task ? " (array task " + std::to_string(*options.array_task) + ")" : "") +
                       " on " + plural(static_cast<std::size_t>(groups), "group") + " of " +
                       plural(static_cast<std::size_t>(group_size), "rank") +
                       (last != group_size ? " (the last has " + std::to_string(last) + ")" : "") +
                       ", largest visits first; output " + survey.output;
    say(text);
    std::uintmax_t largest = 0;
    for (std::size_t v : visits) largest = std::max(largest, survey.visits[v].input_bytes);
    const double need_gb = survey.memory_factor * static_cast<double>(largest) / (1024.0 * 1024.0 * 1024.0);
    if (need_gb > survey.memory_per_rank_gb * group_size) {
      char warning[256];
      std::snprintf(warning, sizeof warning,
                    "survey %s: warning: the largest visit may need %.1f GiB (memory_factor x input), more than "
                    "%d ranks x %.1f GiB",
                    survey.name.c_str(), need_gb, group_size, survey.memory_per_rank_gb);
      say(warning);
    }
  }
  MPI_Comm_split(comm, group.index, rank, &group.comm);
  MPI_Comm_rank(group.comm, &group.rank);
  MPI_Comm_size(group.comm, &group.size);

  unsigned long long counts[3] = {0, 0, 0};  // complete, already complete, failed
  {
    SurveyQueue queue(comm, order.size());
    while (true) {
      long long position = -1;
      if (group.leader())
        if (auto next = queue.next()) position = static_cast<long long>(*next);
      MPI_Bcast(&position, 1, MPI_LONG_LONG, 0, group.comm);
      if (position < 0) break;
      const Outcome outcome =
          run_visit(survey, survey.visits[order[static_cast<std::size_t>(position)]], group, options, registry);
      if (group.leader()) ++counts[static_cast<int>(outcome)];
    }
  }  // freeing the queue's window is collective over comm: every group is done here
  MPI_Allreduce(MPI_IN_PLACE, counts, 3, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  MPI_Comm_free(&group.comm);

  SurveyResult result;
  result.complete = counts[0];
  result.already_complete = counts[1];
  result.failed = counts[2];
  result.groups = static_cast<std::size_t>(groups);
  result.group_size = group_size;
  if (options.write_index && !options.array_task)
    collectively(comm, [&] {
      if (rank == 0) write_survey_index(survey);
    });
  result.seconds = seconds_since(start);
  if (rank == 0 && (verbosity != Verbosity::Quiet || result.failed > 0)) {
    char text[512];
    std::snprintf(text, sizeof text, "survey %s: %zu complete, %zu already complete, %zu failed of %s in %.1f s%s%s",
                  survey.name.c_str(), result.complete, result.already_complete, result.failed,
                  plural(order.size(), "visit").c_str(), result.seconds,
                  options.write_index && !options.array_task ? "; index " : "",
                  options.write_index && !options.array_task ? survey.index_path().c_str() : "");
    say(text);
  }
  return result;
}

}  // namespace tessera
