#include "submit_command.hpp"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "slurm_templates.hpp"
#include "tessera/checkpoint.hpp"
#include "tessera/errors.hpp"
#include "tessera/registry.hpp"
#include "tessera/survey.hpp"
#include "tessera/workflow.hpp"

namespace tessera::app {

namespace fs = std::filesystem;

/// What `tessera submit` was given. Zero / empty means "not given" where Slurm has its own
/// default (nodes, tasks per node, cpus per task, memory, partition, account).
struct SubmitArgs {
  std::string file;
  int nodes = 0;
  int ntasks = 2;
  int ntasks_per_node = 0;
  int cpus_per_task = 0;
  std::string time = "01:00:00";
  std::string mem, partition, account, job_name;
  std::string launcher = "srun";
  std::string mpi = "pmix";
  bool array = false;
  int visits_per_task = 1;
  int max_parallel = 0;
  int group_size = 0;
  bool resume = false, checkpoint_all = false, dry_run = false;
  std::vector<std::string> overrides;
  std::vector<std::string> sbatch_options;
  std::string script_dir;
  /// Every option by its long name ("--array"), to tell which were given.
  std::map<std::string, const CLI::Option*> options;

  bool given(const std::string& name) const {
    const auto it = options.find(name);
    return it != options.end() && it->second->count() > 0;
  }
};

CLI::App* add_submit_command(CLI::App& app, std::shared_ptr<SubmitArgs>& args) {
  args = std::make_shared<SubmitArgs>();
  SubmitArgs& a = *args;
  auto* sub = app.add_subcommand(
      "submit",
      "Write an sbatch script for a workflow or a survey and submit it to Slurm (--dry-run: only print it)");
  sub->footer(
      "A workflow or a survey goes as one MPI job; a survey with --array goes as a job array (K visits per task)\n"
      "followed by an index job. Give values that begin with '-' after '=': --sbatch-option=--hold.\n"
      "See docs/slurm.md.");
  auto keep = [&a](CLI::Option* option) {
    a.options[option->get_name()] = option;
    return option;
  };
  sub->add_option("file", a.file, "Workflow or survey TOML file (a survey has a [survey] table)")->required();
  keep(sub->add_option("--nodes", a.nodes, "Nodes to ask for (#SBATCH --nodes; default: Slurm chooses)"))
      ->check(CLI::PositiveNumber);
  keep(sub->add_option("--ntasks", a.ntasks, "MPI ranks of the job, or of each array task")->capture_default_str())
      ->check(CLI::PositiveNumber);
  keep(sub->add_option("--ntasks-per-node", a.ntasks_per_node, "MPI ranks per node (#SBATCH --ntasks-per-node)"))
      ->check(CLI::PositiveNumber);
  keep(sub->add_option("--cpus-per-task", a.cpus_per_task, "CPUs per MPI rank (#SBATCH --cpus-per-task)"))
      ->check(CLI::PositiveNumber);
  keep(sub->add_option("--time", a.time, "Time limit: MINUTES, HH:MM:SS, D-HH[:MM[:SS]] or UNLIMITED")
           ->capture_default_str());
  keep(sub->add_option("--mem", a.mem, "Memory per node: a number with an optional K, M, G or T suffix (e.g. 8G)"));
  keep(sub->add_option("--partition", a.partition, "Partition (queue) to submit to"));
  keep(sub->add_option("--account", a.account, "Account to charge"));
  keep(sub->add_option("--job-name", a.job_name, "Job name (default: tessera-NAME, NAME the workflow's or survey's)"));
  keep(sub->add_option("--launcher", a.launcher, "How the script starts the MPI ranks: srun or mpirun")
           ->capture_default_str())
      ->check(CLI::IsMember({"srun", "mpirun"}));
  keep(sub->add_option("--mpi", a.mpi, "srun's --mpi plugin for --launcher srun (srun --mpi=list shows them)")
           ->capture_default_str());
  keep(sub->add_flag("--array", a.array, "Survey only: submit a job array, --visits-per-task visits per task, and an "
                                         "index job that runs after every task has ended"));
  keep(sub->add_option("--visits-per-task", a.visits_per_task, "With --array: visits per array task")
           ->capture_default_str())
      ->check(CLI::PositiveNumber);
  keep(sub->add_option("--max-parallel", a.max_parallel, "With --array: at most this many tasks at once (--array=...%M)"))
      ->check(CLI::PositiveNumber);
  keep(sub->add_option("--group-size", a.group_size, "Survey only: ranks per group (passed to `tessera survey run`)"))
      ->check(CLI::PositiveNumber);
  keep(sub->add_flag("--resume", a.resume,
                     "Skip complete outputs and restart from checkpoints; with --array, submit only the tasks that "
                     "have a visit left to do"));
  keep(sub->add_flag("--checkpoint-all", a.checkpoint_all, "Write a checkpoint after every step"));
  keep(sub->add_option("--set", a.overrides, "Override a parameter: STEP.PARAM=VALUE (repeatable)")
           ->type_name("STEP.PARAM=VALUE")
           ->allow_extra_args(false));
  keep(sub->add_option("--sbatch-option", a.sbatch_options,
                       "Extra #SBATCH line, e.g. --sbatch-option=--hold or --sbatch-option=--qos=long (repeatable)")
           ->type_name("OPTION")
           ->allow_extra_args(false));
  keep(sub->add_option("--script-dir", a.script_dir,
                       "Directory for the scripts and the slurm-*.out logs (default: the survey's output directory "
                       "or the workflow output's directory)"));
  keep(sub->add_flag("--dry-run", a.dry_run, "Print the script(s) and the sbatch commands; write and submit nothing"));
  return sub;
}

namespace {

// ---- checks of the options ----------------------------------------------------------------

void check_option(bool ok, const std::string& option, const std::string& value, const std::string& expected) {
  if (!ok) throw ConfigError(option + ": expected " + expected + ", got '" + value + "'");
}

bool full_match(const std::string& text, const char* pattern) {
  return std::regex_match(text, std::regex(pattern));
}

/// Checks everything that needs no file: formats of the Slurm values and combinations.
void check_arguments(const SubmitArgs& a) {
  check_option(full_match(a.time, R"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})") ||
                   full_match(a.time, "(?:UNLIMITED|unlimited|INFINITE|infinite)"),
               "--time", a.time, "MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED");
  if (a.given("--mem"))
    check_option(full_match(a.mem, "[0-9]+[KMGTkmgt]?"), "--mem", a.mem,
                 "a whole number with an optional K, M, G or T suffix (e.g. 4000 for MB, 8G)");
  if (a.given("--partition"))
    check_option(full_match(a.partition, "[A-Za-z0-9._+-]+(,[A-Za-z0-9._+-]+)*"), "--partition", a.partition,
                 "a partition name (or a comma-separated list) of letters, digits, '.', '_', '+' and '-'");
  if (a.given("--account"))
    check_option(full_match(a.account, "[A-Za-z0-9._+-]+"), "--account", a.account,
                 "an account name of letters, digits, '.', '_', '+' and '-'");
  if (a.given("--job-name"))
    check_option(full_match(a.job_name, "[A-Za-z0-9._+-]+"), "--job-name", a.job_name,
                 "a name of letters, digits, '.', '_', '+' and '-'");
  check_option(full_match(a.mpi, "[A-Za-z0-9_]+"), "--mpi", a.mpi, "an MPI plugin name such as pmix or pmi2");
  if (a.given("--mpi") && a.launcher != "srun")
    throw ConfigError("--mpi: is srun's --mpi plugin and only used with --launcher srun (the launcher is " +
                      a.launcher + ")");
  for (const auto& option : a.sbatch_options) {
    check_option(!option.empty() && option[0] == '-' && option.find_first_of("\r\n") == std::string::npos,
                 "--sbatch-option", option, "one sbatch option beginning with '-', such as --hold or --qos=long");
    for (const char* owned : {"--array", "--output", "--error", "--job-name", "--ntasks", "--time", "--nodes",
                              "--mem", "--partition", "--account", "--cpus-per-task", "--dependency"}) {
      const std::string name(owned);
      if (option != name && option.rfind(name + "=", 0) != 0) continue;
      if (name == "--dependency" && !a.array) continue;  // a single job may wait for another one
      throw ConfigError("--sbatch-option: '" + option + "' is set by tessera submit itself; " +
                        (name == "--output" || name == "--error" ? std::string("use --script-dir instead")
                         : name == "--dependency" ? std::string("with --array it makes the index job wait for the array")
                                                  : "use " + name + " instead"));
    }
  }
  for (const auto& override : a.overrides)
    check_option(override.find('=') != std::string::npos, "--set", override, "STEP.PARAM=VALUE");
  if (!a.array) {
    for (const char* option : {"--visits-per-task", "--max-parallel"})
      if (a.given(option)) throw ConfigError(std::string(option) + ": only used with --array");
  }
}

// ---- text ---------------------------------------------------------------------------------

/// `text` as one word for bash: unchanged when it is made only of characters the shell leaves
/// alone, else in single quotes (a quote inside written as '\'').
std::string shell_word(const std::string& text) {
  if (!text.empty() && full_match(text, R"([A-Za-z0-9_./:=,+@%^-]+)")) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// A value on an #SBATCH line: sbatch splits those lines at white space and takes "..." (with
/// \" and \\ inside) as one argument.
std::string sbatch_word(const std::string& text) {
  if (text.find_first_of(" \t\"\\") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

/// In --output file names sbatch replaces %j, %A, %a, ...; a literal '%' is written "%%".
std::string escape_percent(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}

/// Letters, digits, '.', '_', '+' and '-' of `name`; anything else becomes '_'.
std::string job_name_from(const std::string& name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' || c == '-') ? c : '_';
  return out.empty() ? std::string("tessera") : out;
}

/// Fills the @NAME@ placeholders of a template in one pass (what is filled in is not scanned
/// again, so '@' in a path is harmless). A placeholder without a value is a bug here.
std::string fill_template(std::string_view template_name, const std::map<std::string, std::string>& values) {
  const std::string_view text = slurm_template(template_name);
  const std::regex placeholder("@([A-Z_]+)@");
  std::string out;
  auto begin = text.begin();
  std::match_results<std::string_view::const_iterator> match;
  while (std::regex_search(begin, text.end(), match, placeholder)) {
    out.append(begin, match[0].first);
    const auto it = values.find(match[1].str());
    if (it == values.end())
      throw InternalError("slurm/templates/" + std::string(template_name) + ": no value for placeholder @" +
                          match[1].str() + "@");
    out += it->second;
    begin = match[0].second;
  }
  out.append(begin, text.end());
  return out;
}

std::string sbatch_block(const std::vector<std::string>& options) {
  std::string out;
  for (const auto& option : options) out += (out.empty() ? "" : "\n") + ("#SBATCH " + option);
  return out;
}

/// Task ids as an sbatch --array list: runs of consecutive ids as "a-b", joined by commas.
std::string array_spec(const std::vector<std::size_t>& tasks) {
  std::string out;
  for (std::size_t i = 0; i < tasks.size();) {
    std::size_t j = i;
    while (j + 1 < tasks.size() && tasks[j + 1] == tasks[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(tasks[i]) + (j > i ? "-" + std::to_string(tasks[j]) : "");
    i = j + 1;
  }
  return out;
}

std::string plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// ---- running sbatch -----------------------------------------------------------------------

struct Captured {
  int status = 0;       ///< exit status; 127 when the program could not be started
  std::string out;      ///< what it wrote to stdout (its stderr goes to ours)
  std::string failure;  ///< why it could not be started
};

Captured capture(const std::vector<std::string>& command) {
  Captured result;
  int fds[2];
  if (pipe(fds) != 0) throw IoError(std::string("cannot create a pipe: ") + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    throw IoError(std::string("cannot fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (const auto& word : command) argv.push_back(const_cast<char*>(word.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::fprintf(stderr, "%s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      result.out.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

/// Submits `script` with sbatch; returns the job id.
std::string sbatch(const std::string& script) {
  const Captured run = capture({"sbatch", "--parsable", script});
  if (run.status == 127)
    throw IoError("could not run sbatch (is this a Slurm login node? `tessera submit --dry-run` only prints the "
                  "script): " + script);
  if (run.status != 0)
    throw IoError("sbatch failed with exit status " + std::to_string(run.status) + " (its message is above): " +
                  script);
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  std::smatch match;
  if (!std::regex_search(run.out, match, std::regex(R"(^\s*([0-9]+))")))
    throw IoError("sbatch printed no job id for " + script + ": '" + run.out + "'");
  return match[1].str();
}

void write_text(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw IoError(path + ": cannot write the script (" + std::strerror(errno) + ")");
  }
  std::error_code ec;
  fs::permissions(partial, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add, ec);
  fs::rename(partial, path, ec);
  if (ec) throw IoError(path + ": cannot write the script (" + ec.message() + ")");
}

// ---- the jobs -----------------------------------------------------------------------------

/// One script to write and submit.
struct Script {
  std::string path;                  ///< where it is written
  std::string template_name;         ///< which template
  std::vector<std::string> sbatch;   ///< its #SBATCH options
  std::map<std::string, std::string> values;  ///< the other placeholders
  std::string what;                  ///< "array 0-3", "index, after 123", ... for the message
};

std::string program_path() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw IoError("cannot find this program's path (/proc/self/exe): " + ec.message());
  return self.string();
}

/// The resource lines every MPI job of this submission has.
std::vector<std::string> resource_lines(const SubmitArgs& a) {
  std::vector<std::string> lines;
  if (a.nodes > 0) lines.push_back("--nodes=" + std::to_string(a.nodes));
  lines.push_back("--ntasks=" + std::to_string(a.ntasks));
  if (a.ntasks_per_node > 0) lines.push_back("--ntasks-per-node=" + std::to_string(a.ntasks_per_node));
  if (a.cpus_per_task > 0) lines.push_back("--cpus-per-task=" + std::to_string(a.cpus_per_task));
  lines.push_back("--time=" + a.time);
  if (!a.mem.empty()) lines.push_back("--mem=" + a.mem);
  return lines;
}

/// Partition, account and the raw --sbatch-option lines: for every job of this submission.
void add_site_lines(const SubmitArgs& a, std::vector<std::string>& lines) {
  if (!a.partition.empty()) lines.push_back("--partition=" + a.partition);
  if (!a.account.empty()) lines.push_back("--account=" + a.account);
  for (const auto& option : a.sbatch_options) lines.push_back(option);
}

std::string launch_command(const SubmitArgs& a) {
  if (a.launcher == "srun") return "srun --mpi=" + a.mpi + " --kill-on-bad-exit=1";
  return "mpirun -n \"$SLURM_NTASKS\"";
}

/// The options after the file that `tessera run` / `tessera survey run` gets.
std::string run_options(const SubmitArgs& a, bool survey) {
  std::string out;
  for (const auto& override : a.overrides) out += " --set " + shell_word(override);
  if (a.resume) out += " --resume";
  if (a.checkpoint_all) out += " --checkpoint-all";
  if (survey && a.group_size > 0) out += " --group-size " + std::to_string(a.group_size);
  return out;
}

/// Loads the workflow once per visit, as the job will, and (for `resume`) tells which visits
/// are complete already: their output exists complete and was made by the workflow the visit
/// would be run with now — the test `--resume` makes inside the job. When the workflow loads
/// for no visit, the survey cannot run and submitting it would only waste a queue slot (error);
/// when it fails for some, those visits will fail and be recorded so (warning; not complete).
std::vector<bool> check_visits(const Survey& survey, bool resume) {
  std::vector<bool> complete(survey.visits.size(), false);
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < survey.visits.size(); ++i) {
    const SurveyVisit& visit = survey.visits[i];
    try {
      const Workflow wf = load_workflow(survey.workflow, survey.visit_overrides(visit), builtin_registry());
      if (resume) complete[i] = output_is_complete(survey.visit_output(visit), workflow_hash(wf));
    } catch (const Error& e) {
      problems.push_back("visit " + visit.id + ": " + e.what());
    }
  }
  if (problems.empty()) return complete;
  if (problems.size() == survey.visits.size())
    throw ConfigError("the survey's workflow does not load for any visit; for " + problems.front());
  const std::size_t shown = std::min<std::size_t>(problems.size(), 5);
  for (std::size_t i = 0; i < shown; ++i)
    std::fprintf(stderr, "tessera submit: warning: %s (this visit will fail; the others run)\n", problems[i].c_str());
  if (problems.size() > shown)
    std::fprintf(stderr, "tessera submit: warning: ... and %zu more visits whose workflow does not load\n",
                 problems.size() - shown);
  return complete;
}

std::string absolute_path(const std::string& path) {
  return fs::absolute(fs::path(path)).lexically_normal().string();
}

/// The --output line for logs named `pattern` (with sbatch's %j, %A, %a) in `dir`.
std::string log_line(const std::string& dir, const char* pattern) {
  return "--output=" + sbatch_word(escape_percent(dir) + "/" + pattern);
}

struct Plan {
  std::vector<Script> scripts;  ///< in submission order
  bool index_after_array = false;  ///< scripts[1] is the index job and waits for scripts[0]
  std::vector<std::string> notes;  ///< said before submitting
};

Plan plan_workflow(const SubmitArgs& a, const std::string& file) {
  for (const char* option : {"--array", "--group-size"})
    if (a.given(option))
      throw ConfigError(std::string(option) + ": only for surveys, and " + a.file +
                        " is a workflow (a survey file has a [survey] table)");
  const Workflow wf = load_workflow(file, a.overrides, builtin_registry());
  std::string dir = a.script_dir;
  if (dir.empty()) {
    dir = fs::path(wf.output_path).parent_path().string();
    if (dir.empty()) dir = ".";
  }
  dir = absolute_path(dir);
  const std::string name = a.given("--job-name") ? a.job_name : job_name_from("tessera-" + wf.name);

  Script job;
  job.path = (fs::path(dir) / (name + ".sbatch")).string();
  job.template_name = "job.sbatch";
  job.sbatch = {"--job-name=" + name, log_line(dir, "slurm-%j.out")};
  for (auto& line : resource_lines(a)) job.sbatch.push_back(line);
  add_site_lines(a, job.sbatch);
  job.values = {{"TITLE", "Tessera workflow '" + wf.name + "' (" + file + ") as one MPI job of " +
                              plural(static_cast<std::size_t>(a.ntasks), "rank") + "; output " + wf.output_path},
                {"LAUNCH", launch_command(a)},
                {"ARGS", "run " + shell_word(file) + run_options(a, false)}};
  job.what = "workflow " + wf.name;
  Plan plan;
  plan.scripts.push_back(std::move(job));
  if (a.resume) {
    bool complete = false;
    try {
      complete = output_is_complete(wf.output_path, workflow_hash(wf));
    } catch (const Error&) {
    }
    if (complete) plan.notes.push_back(wf.output_path + " is already complete for this workflow: the job will only check it");
  }
  return plan;
}

Plan plan_survey(const SubmitArgs& a, const std::string& file) {
  const Survey survey = load_survey(file, a.overrides);
  if (survey.visits.empty()) throw ConfigError(a.file + ": the survey has no visits: nothing to submit");
  const std::string dir = absolute_path(a.script_dir.empty() ? survey.output : a.script_dir);
  const std::string name = a.given("--job-name") ? a.job_name : job_name_from("tessera-" + survey.name);
  const std::size_t n = survey.visits.size();
  Plan plan;

  // Under --resume, which visits are complete already.
  const std::vector<bool> complete = check_visits(survey, a.resume);
  if (a.resume) {
    const auto done = static_cast<std::size_t>(std::count(complete.begin(), complete.end(), true));
    plan.notes.push_back("resume: " + std::to_string(done) + " of " + plural(n, "visit") +
                         (done == 1 ? " is" : " are") + " complete already and will not run again");
  }

  if (!a.array) {
    Script job;
    job.path = (fs::path(dir) / (name + ".sbatch")).string();
    job.template_name = "job.sbatch";
    job.sbatch = {"--job-name=" + name, log_line(dir, "slurm-%j.out")};
    for (auto& line : resource_lines(a)) job.sbatch.push_back(line);
    add_site_lines(a, job.sbatch);
    job.values = {{"TITLE", "Tessera survey '" + survey.name + "' (" + file + ", " + plural(n, "visit") +
                                ") as one MPI job of " + plural(static_cast<std::size_t>(a.ntasks), "rank") +
                                "; outputs and index in " + survey.output},
                  {"LAUNCH", launch_command(a)},
                  {"ARGS", "survey run " + shell_word(file) + run_options(a, true)}};
    job.what = "survey " + survey.name + ", " + plural(n, "visit");
    plan.scripts.push_back(std::move(job));
    return plan;
  }

  // Array: task t runs visits [t·K, (t+1)·K) of the survey order.
  const std::size_t per_task = static_cast<std::size_t>(a.visits_per_task);
  const std::size_t task_count = (n + per_task - 1) / per_task;
  std::vector<std::size_t> tasks;
  for (std::size_t t = 0; t < task_count; ++t) {
    bool needed = !a.resume;
    for (std::size_t v = t * per_task; v < std::min(n, (t + 1) * per_task) && !needed; ++v) needed = !complete[v];
    if (needed) tasks.push_back(t);
  }
  if (a.resume && tasks.size() < task_count)
    plan.notes.push_back(std::to_string(task_count - tasks.size()) + " of " + plural(task_count, "array task") +
                         " have every visit complete and are not submitted");

  if (!tasks.empty()) {
    std::string spec = array_spec(tasks);
    if (a.max_parallel > 0) spec += "%" + std::to_string(a.max_parallel);
    Script job;
    job.path = (fs::path(dir) / (name + ".array.sbatch")).string();
    job.template_name = "array.sbatch";
    job.sbatch = {"--job-name=" + name, log_line(dir, "slurm-%A_%a.out"), "--array=" + spec};
    for (auto& line : resource_lines(a)) job.sbatch.push_back(line);
    add_site_lines(a, job.sbatch);
    job.values = {{"TITLE", "Tessera survey '" + survey.name + "' (" + file + ", " + plural(n, "visit") +
                                ") as a job array: tasks " + spec + ", " + plural(per_task, "visit") +
                                " per task, " + plural(static_cast<std::size_t>(a.ntasks), "rank") + " each"},
                  {"LAUNCH", launch_command(a)},
                  {"VISITS_PER_TASK", std::to_string(per_task)},
                  {"ARGS", run_options(a, true)}};
    job.what = "array " + spec;
    plan.scripts.push_back(std::move(job));
    plan.index_after_array = true;
  } else {
    plan.notes.push_back("every visit is complete: only the index job is submitted");
  }

  Script index;
  index.path = (fs::path(dir) / (name + ".index.sbatch")).string();
  index.template_name = "index.sbatch";
  index.sbatch = {"--job-name=" + name + "-index", log_line(dir, "slurm-%j.out"), "--ntasks=1", "--time=" + a.time};
  add_site_lines(a, index.sbatch);
  index.values = {{"TITLE", "Tessera survey '" + survey.name + "' (" + file + "): the survey index " +
                                survey.index_path()}};
  index.what = "index";
  plan.scripts.push_back(std::move(index));
  return plan;
}

/// `text` with line breaks turned into spaces (for the one-line comment at the top).
std::string one_line(std::string text) {
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

/// Paths end up in comments and #SBATCH lines, where a line break would end the line.
void check_one_line(const std::string& path, const std::string& what) {
  if (path.find_first_of("\r\n") != std::string::npos)
    throw ConfigError(what + " has a line break in its path, which cannot go into an sbatch script: '" +
                      one_line(path) + "'");
}

std::string render(const Script& script, const std::string& tessera, const std::string& file,
                   const std::string& submit_dir) {
  std::map<std::string, std::string> values = script.values;
  values["TITLE"] = one_line(values["TITLE"]);
  values["SBATCH"] = sbatch_block(script.sbatch);
  values["SCRIPT"] = shell_word(script.path);
  values["SUBMIT_DIR"] = shell_word(submit_dir);
  values["TESSERA"] = shell_word(tessera);
  values["SURVEY"] = shell_word(file);
  return fill_template(script.template_name, values);
}

}  // namespace

int submit_command(const SubmitArgs& a) {
  try {
    check_arguments(a);
    std::error_code ec;
    if (!fs::is_regular_file(a.file, ec))
      throw ConfigError(a.file + ": " + (fs::exists(a.file, ec) ? "not a file" : "no such file"));
    const std::string file = absolute_path(a.file);
    const std::string tessera = program_path();
    const std::string submit_dir = fs::current_path().string();
    const bool survey = is_survey_file(file);

    Plan plan = survey ? plan_survey(a, file) : plan_workflow(a, file);
    check_one_line(file, a.file);
    check_one_line(submit_dir, "the current directory");
    check_one_line(tessera, "the tessera program");
    for (const auto& script : plan.scripts) check_one_line(script.path, "the script directory");
    for (const auto& note : plan.notes) std::fprintf(stderr, "tessera submit: %s\n", note.c_str());

    if (a.dry_run) {
      for (std::size_t i = 0; i < plan.scripts.size(); ++i) {
        Script script = plan.scripts[i];
        std::string command = "sbatch --parsable " + shell_word(script.path);
        if (plan.index_after_array && i == 1) script.sbatch.push_back("--dependency=afterany:ARRAY_JOB_ID");
        std::printf("%s# ==> %s (dry run: not written; would be submitted with: %s) <==\n", i ? "\n" : "",
                    script.path.c_str(), command.c_str());
        std::printf("%s", render(script, tessera, file, submit_dir).c_str());
      }
      return 0;
    }

    fs::create_directories(fs::path(plan.scripts.front().path).parent_path(), ec);
    if (ec) throw IoError(fs::path(plan.scripts.front().path).parent_path().string() + ": cannot create (" +
                          ec.message() + ")");
    std::string array_job;
    for (std::size_t i = 0; i < plan.scripts.size(); ++i) {
      Script& script = plan.scripts[i];
      const bool index_job = plan.index_after_array && i == 1;
      if (index_job) {
        script.sbatch.push_back("--dependency=afterany:" + array_job);
        script.what += ", after " + array_job;
      }
      write_text(script.path, render(script, tessera, file, submit_dir));
      const std::string id = sbatch(script.path);
      if (plan.index_after_array && i == 0) array_job = id;
      std::printf("submitted job %s (%s)\n", id.c_str(), script.what.c_str());
      std::fflush(stdout);
      const bool array = script.template_name == "array.sbatch";
      std::fprintf(stderr, "  script %s\n  log    %s\n", script.path.c_str(),
                   (fs::path(script.path).parent_path() / ("slurm-" + id + (array ? "_TASK" : "") + ".out")).c_str());
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "tessera submit: error: %s\n", e.what());
    return static_cast<int>(e.exit_code());
  } catch (const fs::filesystem_error& e) {
    std::fprintf(stderr, "tessera submit: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace tessera::app
