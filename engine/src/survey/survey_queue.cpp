// Groups and the shared queue: how many ranks work on one visit, which visits this run
// takes, in what order, and the atomic counter that hands them out.
#include <algorithm>
#include <cmath>

#include "survey_detail.hpp"
#include "tessera/errors.hpp"

namespace tessera::survey_detail {

int derive_group_size(int world, std::size_t visits, std::uintmax_t largest_input_bytes, double memory_per_rank_gb,
                      double memory_factor) {
  if (world < 1) return 1;
  const double per_rank = memory_per_rank_gb * 1024.0 * 1024.0 * 1024.0;
  const double needed = memory_factor * static_cast<double>(largest_input_bytes);
  // The smallest g with needed / g <= per_rank.
  double g_memory = per_rank > 0 ? std::ceil(needed / per_rank) : static_cast<double>(world);
  int g = static_cast<int>(std::clamp(g_memory, 1.0, static_cast<double>(world)));
  // More groups than visits would leave ranks idle from the start: widen the groups instead.
  const std::size_t n = std::max<std::size_t>(visits, 1);
  while (g < world && static_cast<std::size_t>(world / g) > n) ++g;
  // One group takes every rank anyway (the left-over ranks join it): say so.
  if (world / g == 1) g = world;
  return g;
}

int choose_group_size(const Survey& survey, const std::vector<std::size_t>& visits, std::int64_t requested, int world) {
  std::int64_t g = requested > 0 ? requested : survey.group_size;
  if (g <= 0) {
    std::uintmax_t largest = 0;
    for (std::size_t v : visits) largest = std::max(largest, survey.visits[v].input_bytes);
    return derive_group_size(world, visits.size(), largest, survey.memory_per_rank_gb, survey.memory_factor);
  }
  return static_cast<int>(std::clamp<std::int64_t>(g, 1, world));
}

int group_count(int world, int group_size) { return std::max(1, world / std::max(1, group_size)); }

int group_of(int rank, int world, int group_size) {
  return std::min(rank / std::max(1, group_size), group_count(world, group_size) - 1);
}

std::vector<std::size_t> queue_order(const Survey& survey, std::vector<std::size_t> visits) {
  std::stable_sort(visits.begin(), visits.end(), [&](std::size_t a, std::size_t b) {
    if (survey.visits[a].input_bytes != survey.visits[b].input_bytes)
      return survey.visits[a].input_bytes > survey.visits[b].input_bytes;
    return a < b;
  });
  return visits;
}

std::vector<std::size_t> visits_of_run(const Survey& survey, const SurveyOptions& options) {
  const std::size_t n = survey.visits.size();
  std::vector<std::size_t> visits;
  if (!options.array_task) {
    for (std::size_t i = 0; i < n; ++i) visits.push_back(i);
    return visits;
  }
  const std::int64_t task = *options.array_task, per_task = options.visits_per_task;
  if (per_task < 1) throw ConfigError("--visits-per-task: expected at least 1, got " + std::to_string(per_task));
  const std::int64_t tasks = (static_cast<std::int64_t>(n) + per_task - 1) / per_task;
  if (task < 0 || task >= tasks)
    throw ConfigError("--array-task " + std::to_string(task) + ": the survey's " + std::to_string(n) +
                      " visits make tasks 0.." + std::to_string(tasks - 1) + " at " + std::to_string(per_task) +
                      " visit" + (per_task == 1 ? "" : "s") + " per task");
  const auto begin = static_cast<std::size_t>(task * per_task);
  const auto end = std::min(n, static_cast<std::size_t>((task + 1) * per_task));
  for (std::size_t i = begin; i < end; ++i) visits.push_back(i);
  return visits;
}

SurveyQueue::SurveyQueue(MPI_Comm comm, std::size_t size) : size_(size) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::int64_t* counter = nullptr;
  const MPI_Aint bytes = rank == 0 ? static_cast<MPI_Aint>(sizeof(std::int64_t)) : 0;
  if (MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, comm, &counter, &window_) != MPI_SUCCESS)
    throw IoError("survey queue: MPI_Win_allocate failed");
  if (rank == 0) {
    // A local store into window memory is made visible under an exclusive lock epoch.
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, window_);
    *counter = 0;
    MPI_Win_unlock(0, window_);
  }
  MPI_Barrier(comm);  // nobody takes a visit before the counter is zero
}

SurveyQueue::~SurveyQueue() {
  if (window_ != MPI_WIN_NULL) MPI_Win_free(&window_);
}

std::optional<std::size_t> SurveyQueue::next() {
  const std::int64_t one = 1;
  std::int64_t taken = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, window_);
  MPI_Fetch_and_op(&one, &taken, MPI_INT64_T, 0, 0, MPI_SUM, window_);
  MPI_Win_unlock(0, window_);
  if (taken < 0 || static_cast<std::size_t>(taken) >= size_) return std::nullopt;
  return static_cast<std::size_t>(taken);
}

}  // namespace tessera::survey_detail
