#pragma once
/// Private parts of the survey machinery shared by its .cpp files and unit-tested directly:
/// visit ids and glob names, group sizing, the queue's order, the per-visit record and CSV
/// quoting. Not installed; engine code outside engine/src/survey does not use it.
#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessera/survey.hpp"

namespace tessera::survey_detail {

// ---- survey file --------------------------------------------------------------------------

/// A visit id becomes a directory and file name: letters, digits, '.', '_' and '-' only,
/// not empty, not "." or "..".
bool valid_visit_id(const std::string& id);

/// Replaces {name} and {stem} in `pattern` (other braces are left alone, so that workflow
/// placeholders such as {input.path} pass through a visit's `set`).
std::string expand_match_placeholders(const std::string& pattern, const std::string& name, const std::string& stem);

/// The paths matching a glob pattern (POSIX glob(3): *, ?, [...] in any path component),
/// sorted bytewise so that every rank and every run sees the same order.
std::vector<std::string> glob_paths(const std::string& pattern);

/// Bytes of the regular files at or under `path` (0 when it does not exist).
std::uintmax_t bytes_on_disk(const std::string& path);

/// `value` as a TOML string literal (quoted and escaped), for --set overrides.
std::string toml_quoted(const std::string& value);

// ---- groups and queue ---------------------------------------------------------------------

/// Ranks per group when the survey does not fix it: the fewest ranks whose memory holds the
/// largest visit (memory_factor · bytes / g <= memory_per_rank_gb GiB), then more if needed
/// so that there are no more groups (world / g) than visits. Always in [1, world].
int derive_group_size(int world, std::size_t visits, std::uintmax_t largest_input_bytes, double memory_per_rank_gb,
                      double memory_factor);

/// The group size a run uses: the command line's, else the survey's, else derived; clamped
/// to the world size.
int choose_group_size(const Survey& survey, const std::vector<std::size_t>& visits, std::int64_t requested, int world);

/// Group of world rank `rank` for groups of `group_size`: rank / group_size, with the ranks
/// left over (world % group_size) joining the last group.
int group_of(int rank, int world, int group_size);
/// Number of groups: world / group_size (at least 1).
int group_count(int world, int group_size);

/// The order the queue hands visits out in: `visits` (indices into survey.visits) by
/// input_bytes, largest first, ties in survey order — longest-processing-time-first
/// scheduling (Graham 1969, "Bounds on multiprocessing timing anomalies") keeps groups busy
/// to the end when visits are uneven.
std::vector<std::size_t> queue_order(const Survey& survey, std::vector<std::size_t> visits);

/// The visits (indices into survey.visits) a run processes: all of them, or in array mode
/// task's block [task·per_task, (task+1)·per_task) of the survey order. Throws ConfigError
/// for a task beyond the survey or a non-positive per_task.
std::vector<std::size_t> visits_of_run(const Survey& survey, const SurveyOptions& options);

/// A shared counter on rank 0 of `comm` in an MPI window: next() is atomic across ranks
/// (MPI_Fetch_and_op under a shared lock) and needs no action from rank 0, so a group leader
/// can take its next visit while rank 0 is busy inside a visit of its own. Construction and
/// destruction are collective over `comm`.
class SurveyQueue {
 public:
  SurveyQueue(MPI_Comm comm, std::size_t size);
  ~SurveyQueue();
  SurveyQueue(const SurveyQueue&) = delete;
  SurveyQueue& operator=(const SurveyQueue&) = delete;
  /// The next position in [0, size), or nullopt when all have been taken.
  std::optional<std::size_t> next();

 private:
  MPI_Win window_ = MPI_WIN_NULL;
  std::size_t size_ = 0;
};

// ---- records and index --------------------------------------------------------------------

/// What OUTPUT/ID/survey_record.toml holds about a visit's latest attempt.
struct VisitRecord {
  std::string id, input, output;
  std::string status;  ///< "complete" or "failed"
  std::string message;
  double wall_s = 0;
  std::int64_t ranks = 0, group = 0, frames = 0, attempt = 0;
  std::string resumed_after, workflow_hash, started_utc, finished_utc, host;
  std::string slurm_job_id, slurm_array_task_id;
  std::vector<std::pair<std::string, double>> figures;
};

/// Writes the record as TOML to PATH.partial and renames it to PATH (a reader never sees
/// half a record). Throws IoError.
void write_record(const std::string& path, const VisitRecord& record);
/// The record at `path`; nullopt when there is none. Throws IoError when it exists but
/// cannot be read or parsed.
std::optional<VisitRecord> read_record(const std::string& path);

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& text);
/// The index's header row for these figure names (no line end).
std::string index_header(const std::vector<FigureSpec>& figures);
/// One index row (no line end). `record` nullopt: status "missing". Line breaks in the
/// message become "; " so that every visit is one line.
std::string index_row(const Survey& survey, const SurveyVisit& visit, const std::optional<VisitRecord>& record,
                      const std::string& problem = "");

/// "2024-05-01T12:00:00Z"
std::string utc_now();
/// Writes `text` to PATH.partial and renames it to PATH. Throws IoError.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace tessera::survey_detail
