#pragma once
/// A survey: one workflow run over many visits inside one MPI job. The ranks are split into
/// groups (MPI_Comm_split) that take visits from a shared queue, largest first; each visit
/// writes its own output and a record; the survey index (CSV) lists every visit.
///
/// ```toml
/// [survey]
/// name = "wasp127_uvis"
/// workflow = "../workflows/uvis_stage1.toml"  # relative to this file
/// output = "survey_out"                       # OUTPUT/ID/ID.h5 per visit, OUTPUT/survey_index.csv
/// set = ["bkg_sky.path_to_Pagul=/sky/G280_sky.fits"]   # overrides for every visit
/// [survey.figures]
/// outliers_found = "sum(fixed_iter_outliers, free_iter_outliers, led_outliers)"
/// [[visit]]
/// id = "visit01"
/// input = "data/visit01"
/// set = ["locate.location=[512, 130]"]
/// [[visits]]
/// glob = "data/more/*"
/// ```
#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tessera/diagnostics.hpp"
#include "tessera/figures.hpp"
#include "tessera/logger.hpp"

namespace tessera {

class Registry;

struct SurveyVisit {
  std::string id;
  std::string input;                   ///< the visit's input path (resolved against the survey file's directory)
  std::vector<std::string> overrides;  ///< this visit's own `set` overrides
  std::uintmax_t input_bytes = 0;      ///< size on disk of the input (files under it), for ordering and sizing
  SourcePos where;                     ///< where the visit is declared
};

struct Survey {
  std::string file;                       ///< the survey TOML as given
  std::string name;
  std::string workflow;                   ///< workflow TOML (resolved against the survey file's directory)
  std::string output;                     ///< survey output directory (resolved likewise)
  std::string input_key = "input.path";   ///< the --set key that a visit's input fills
  std::int64_t group_size = 0;            ///< ranks per group; 0: derived from the visit sizes
  double memory_per_rank_gb = 2.0;        ///< for group_size = 0: what one rank may hold
  double memory_factor = 4.0;             ///< for group_size = 0: working memory / input bytes
  std::vector<std::string> overrides;     ///< `set` for every visit (then the command line's --set)
  std::vector<FigureSpec> figures;        ///< [survey.figures], in file order
  std::vector<SurveyVisit> visits;        ///< [[visit]] entries in order, then each [[visits]] glob's matches sorted

  std::string visit_directory(const SurveyVisit& visit) const;  ///< OUTPUT/ID
  std::string visit_output(const SurveyVisit& visit) const;     ///< OUTPUT/ID/ID.h5
  std::string visit_record(const SurveyVisit& visit) const;     ///< OUTPUT/ID/survey_record.toml
  std::string visit_log(const SurveyVisit& visit) const;        ///< OUTPUT/ID/ID.log
  std::string index_path() const;                               ///< OUTPUT/survey_index.csv
  /// Every --set override a visit's workflow is loaded with, in order: the survey's, the
  /// command line's, the visit's own, then input_key=INPUT and output.path=visit_output().
  std::vector<std::string> visit_overrides(const SurveyVisit& visit) const;
};

/// Reads and checks a survey file (every problem at once, as ConfigError with
/// "file:line:column: problem" lines). `extra_overrides` (the command line's --set) apply to
/// every visit after the survey's own `set`. Checks that the workflow file exists and that
/// visit ids are unique and usable as directory names; does not load the workflow.
Survey load_survey(const std::string& path, const std::vector<std::string>& extra_overrides = {});
/// True when the TOML file has a [survey] table (used by `tessera submit` to tell surveys
/// from workflows). Throws ConfigError when the file cannot be read or parsed.
bool is_survey_file(const std::string& path);

struct SurveyOptions {
  std::optional<Verbosity> verbosity;  ///< unset: Normal
  bool resume = false;                 ///< skip complete visits, restart others from their checkpoints
  bool checkpoint_all = false;
  std::int64_t group_size = 0;         ///< overrides the survey's group_size when > 0
  /// Array mode: this process runs only visits [task·visits_per_task, (task+1)·visits_per_task)
  /// of the survey's order, and writes no index (the index job does).
  std::optional<std::int64_t> array_task;
  std::int64_t visits_per_task = 1;
  bool write_index = true;
  /// Step and input kinds the visits' workflows are loaded with; nullptr: builtin_registry()
  /// (tests pass one with their in-memory input).
  const Registry* registry = nullptr;
};

struct SurveyResult {
  std::size_t complete = 0;        ///< ran to completion now
  std::size_t already_complete = 0;///< skipped under --resume
  std::size_t failed = 0;
  std::size_t groups = 0;
  int group_size = 0;
  double seconds = 0;
  bool all_succeeded() const { return failed == 0; }
};

/// Collective over `comm`. Never throws for a failing visit (it is recorded as failed);
/// throws ConfigError/IoError only for problems of the survey itself.
SurveyResult run_survey(const Survey& survey, MPI_Comm comm, const SurveyOptions& options);

/// (Re)writes OUTPUT/survey_index.csv from the visits' records, one row per visit in survey
/// order (status "missing" where a visit has no record). Returns the number of visits that are
/// not complete. Serial.
std::size_t write_survey_index(const Survey& survey);

}  // namespace tessera
