// run_survey on 1, 2 and 3 ranks with the in-memory test input: every visit runs exactly once
// whatever the groups, failing visits are recorded with their message while the others
// complete, the records and the index say what happened, and the queue's counter hands out
// each position once even while its host rank is busy outside MPI.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

#include "engine/src/survey/survey_detail.hpp"
#include "support/memory_input.hpp"
#include "support/mpi_world.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/runner.hpp"
#include "tessera/survey.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::survey_detail;

int rank() { return tessera::testing::world_rank(); }
int nranks() { return tessera::testing::world_size(); }

const Registry& registry() {
  static const Registry r = tessera::testing::test_registry();
  return r;
}

/// Same on every rank, different per rank count (ctest runs np 1, 2, 3 at once).
fs::path base_dir(const std::string& test) {
  return fs::current_path() / ("survey_runner_test_" + test + "_np" + std::to_string(nranks()));
}

const char* kWorkflow = R"([workflow]
name = "survey_test"
visit = "unset"
[input]
kind = "memory"
nt = 12
ny = 6
nx = 9
[output]
path = "unused.h5"
save_plots = 0
[[step]]
id = "mean"
uses = "frame_mean"
[[step]]
id = "clip"
uses = "fixed_iter"
fixed_sigmas = [6.0, 4.0]
replacement = 2
)";

struct VisitSpec {
  std::string id;
  std::int64_t frames;  ///< input.nt
  std::size_t bytes;    ///< size of the visit directory's file: sets the queue order
  std::string extra;    ///< one more override ("" none)
};

/// Uneven visits (the largest is 4× the smallest), one whose input fails while reading and
/// one whose override names no step (a workflow error, raised by load_workflow).
const std::vector<VisitSpec> kVisits = {
    {"v01", 10, 100, ""},  {"v02", 40, 400, ""}, {"v03", 12, 120, "input.fail_reading=true"},
    {"v04", 16, 160, ""},  {"v05", 10, 100, ""}, {"v06", 8, 80, "nosuchstep.x=1"},
    {"v07", 25, 250, ""},
};
bool fails(const VisitSpec& v) { return !v.extra.empty(); }

/// Writes the workflow, the visits' directories and the survey file under `dir` (rank 0),
/// then every rank loads the survey.
Survey make_survey(const fs::path& dir) {
  if (rank() == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir / "visits");
    std::ofstream(dir / "wf.toml") << kWorkflow;
    std::ostringstream s;
    s << "[survey]\nname = \"runner_test\"\nworkflow = \"wf.toml\"\noutput = \"out\"\ninput_key = \"workflow.visit\"\n"
      << "[survey.figures]\noutliers = \"sum(fixed_iter_outliers)\"\nlevel = \"mean(frame_mean)\"\n";
    for (const auto& v : kVisits) {
      fs::create_directories(dir / "visits" / v.id);
      std::ofstream(dir / "visits" / v.id / "size") << std::string(v.bytes, 'x');
      s << "[[visit]]\nid = \"" << v.id << "\"\ninput = \"visits/" << v.id << "\"\nset = [\"input.nt="
        << v.frames << "\"" << (v.extra.empty() ? "" : ", \"" + v.extra + "\"") << "]\n";
    }
    std::ofstream(dir / "survey.toml") << s.str();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return load_survey((dir / "survey.toml").string());
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        fields.push_back(field);
        field.clear();
      } else {
        field += c;
      }
    }
    fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

std::size_t column(const std::vector<std::string>& header, const std::string& name) {
  return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
}

std::size_t count_of(const std::string& path, const std::string& text) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string all = buffer.str();
  std::size_t n = 0;
  for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++n;
  return n;
}

SurveyOptions quiet_options() {
  SurveyOptions o;
  o.verbosity = Verbosity::Quiet;
  o.registry = &registry();
  return o;
}

class SurveyRun : public ::testing::TestWithParam<int> {};

TEST_P(SurveyRun, EveryVisitRunsOnceFailuresAreRecordedAndTheIndexListsAll) {
  const int group_size = GetParam();
  const fs::path dir = base_dir("groups" + std::to_string(group_size));
  const Survey survey = make_survey(dir);
  SurveyOptions options = quiet_options();
  options.group_size = group_size;
  const SurveyResult result = run_survey(survey, MPI_COMM_WORLD, options);

  // Groups: world / g of them (at least one), g clamped to the world.
  const int g = std::min(group_size, nranks());
  const int groups = std::max(1, nranks() / g);
  EXPECT_EQ(result.group_size, g);
  EXPECT_EQ(result.groups, static_cast<std::size_t>(groups));
  EXPECT_EQ(result.complete, 5u);
  EXPECT_EQ(result.failed, 2u);
  EXPECT_EQ(result.already_complete, 0u);
  EXPECT_FALSE(result.all_succeeded());

  if (rank() == 0) {
    for (const auto& v : kVisits) {
      const SurveyVisit& visit = *std::find_if(survey.visits.begin(), survey.visits.end(),
                                               [&](const SurveyVisit& s) { return s.id == v.id; });
      SCOPED_TRACE(v.id);
      const auto record = read_record(survey.visit_record(visit));
      ASSERT_TRUE(record);
      // Exactly once: one attempt, one start in the visit's log.
      EXPECT_EQ(record->attempt, 1);
      EXPECT_EQ(count_of(survey.visit_log(visit), "== tessera survey runner_test: visit " + v.id + " on group"), 1u);
      EXPECT_EQ(count_of(survey.visit_log(visit), "== attempt 1 "), 1u);
      EXPECT_EQ(record->id, v.id);
      EXPECT_EQ(record->input, visit.input);
      EXPECT_EQ(record->output, survey.visit_output(visit));
      EXPECT_GE(record->group, 0);
      EXPECT_LT(record->group, groups);
      // The last group takes the ranks left over.
      EXPECT_EQ(record->ranks, record->group == groups - 1 ? nranks() - (groups - 1) * g : g);
      EXPECT_GE(record->wall_s, 0);  // to the millisecond: a visit that fails at once may record 0
      EXPECT_FALSE(record->started_utc.empty());
      EXPECT_FALSE(record->host.empty());
      if (fails(v)) {
        EXPECT_EQ(record->status, "failed");
        EXPECT_FALSE(fs::exists(survey.visit_output(visit)));
        EXPECT_TRUE(record->figures.empty());
      } else {
        EXPECT_EQ(record->status, "complete");
        EXPECT_TRUE(record->message.empty()) << record->message;
        EXPECT_GT(record->wall_s, 0);
        ASSERT_TRUE(fs::exists(survey.visit_output(visit)));
        h5::File out = h5::File::open(survey.visit_output(visit));
        EXPECT_EQ(out.read_doubles("time").size(), static_cast<std::size_t>(v.frames));
        EXPECT_EQ(std::get<std::int64_t>(out.read_attribute("mpi_ranks")), record->ranks);
        EXPECT_TRUE(fs::exists(survey.visit_directory(visit) + "/" + v.id + ".workflow.toml"));
        const auto attributes = out.attributes();
        if (attributes.count("visit_id")) {
          EXPECT_EQ(std::get<std::string>(attributes.at("visit_id")), v.id);
          EXPECT_EQ(std::get<std::string>(attributes.at("survey_name")), "runner_test");
        }
        {
          EXPECT_EQ(record->frames, v.frames);
          const auto outliers = out.read_doubles("fixed_iter_outliers");
          const auto means = out.read_doubles("frame_mean");
          ASSERT_EQ(record->figures.size(), 2u);
          EXPECT_EQ(record->figures[0].first, "level");  // toml++ keeps table keys sorted
          EXPECT_NEAR(record->figures[0].second,
                      std::accumulate(means.begin(), means.end(), 0.0) / static_cast<double>(means.size()), 1e-9);
          EXPECT_EQ(record->figures[1].first, "outliers");
          EXPECT_EQ(record->figures[1].second, std::accumulate(outliers.begin(), outliers.end(), 0.0));
          EXPECT_GT(record->figures[1].second, 0);  // the memory input injects about 1 in 97 samples
        }
      }
    }
    const SurveyVisit& v03 = survey.visits[2];
    EXPECT_NE(read_record(survey.visit_record(v03))->message.find("frame11: simulated read failure"),
              std::string::npos);
    EXPECT_NE(read_record(survey.visit_record(survey.visits[5]))->message.find("no step with id 'nosuchstep'"),
              std::string::npos);
    EXPECT_EQ(count_of(survey.visit_log(v03), "== attempt 1 failed after"), 1u);

    // The index: a header and one row per visit in survey order.
    const auto rows = read_csv(survey.index_path());
    ASSERT_EQ(rows.size(), kVisits.size() + 1);
    const auto& header = rows[0];
    EXPECT_EQ(header[0], "visit_id");
    EXPECT_EQ(header[7], "outliers");  // figures come after frames, in the survey's order
    EXPECT_EQ(header[8], "level");
    for (std::size_t i = 0; i < kVisits.size(); ++i) {
      const auto& row = rows[i + 1];
      ASSERT_EQ(row.size(), header.size());
      EXPECT_EQ(row[0], kVisits[i].id);
      EXPECT_EQ(row[column(header, "status")], fails(kVisits[i]) ? "failed" : "complete");
      EXPECT_EQ(row[column(header, "attempt")], "1");
      EXPECT_EQ(row[column(header, "output")], survey.visit_output(survey.visits[i]));
      if (!fails(kVisits[i])) {
        EXPECT_EQ(row[column(header, "frames")], std::to_string(kVisits[i].frames));
        EXPECT_NE(row[column(header, "outliers")], "");
      }
    }
    EXPECT_NE(rows[3][column(header, "message")].find("simulated read failure"), std::string::npos);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove_all(dir);
}

// Groups of 1 (as many groups as ranks), 2 (with a left-over rank at 3) and 3 (clamped).
INSTANTIATE_TEST_SUITE_P(GroupSizes, SurveyRun, ::testing::Values(1, 2, 3));

TEST(SurveyResume, CompleteVisitsAreSkippedAndFailedOnesRunAgain) {
  const fs::path dir = base_dir("resume");
  const Survey survey = make_survey(dir);
  SurveyOptions options = quiet_options();
  options.group_size = 1;
  run_survey(survey, MPI_COMM_WORLD, options);
  options.resume = true;
  const SurveyResult again = run_survey(survey, MPI_COMM_WORLD, options);
  EXPECT_EQ(again.failed, 2u);
  EXPECT_EQ(again.already_complete, 5u);
  EXPECT_EQ(again.complete, 0u);
  if (rank() == 0) {
    for (std::size_t i = 0; i < kVisits.size(); ++i) {
      SCOPED_TRACE(kVisits[i].id);
      const auto record = read_record(survey.visit_record(survey.visits[i]));
      ASSERT_TRUE(record);
      // Failed visits ran a second time; complete ones kept their first record.
      EXPECT_EQ(record->attempt, fails(kVisits[i]) ? 2 : 1);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove_all(dir);
}

TEST(SurveyArray, ATaskRunsOnlyItsBlockAndWritesNoIndex) {
  const fs::path dir = base_dir("array");
  const Survey survey = make_survey(dir);
  SurveyOptions options = quiet_options();
  options.array_task = 1;
  options.visits_per_task = 3;  // visits 3..5 of the survey: v04, v05, v06 (v06 fails)
  const SurveyResult result = run_survey(survey, MPI_COMM_WORLD, options);
  EXPECT_EQ(result.complete, 2u);
  EXPECT_EQ(result.failed, 1u);
  if (rank() == 0) {
    EXPECT_FALSE(fs::exists(survey.index_path()));
    for (std::size_t i = 0; i < kVisits.size(); ++i)
      EXPECT_EQ(fs::exists(survey.visit_record(survey.visits[i])), i >= 3 && i < 6) << kVisits[i].id;
    // The index job afterwards lists the others as missing.
    EXPECT_EQ(write_survey_index(survey), 5u);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove_all(dir);
}

TEST(SurveyQueueCounter, HandsOutEveryPositionOnceWhileItsHostIsBusy) {
  constexpr std::size_t kPositions = 200;
  std::vector<int> taken;
  {
    SurveyQueue queue(MPI_COMM_WORLD, kPositions);
    // Rank 0 holds the counter and stays out of MPI for a while: the others must progress.
    if (rank() == 0 && nranks() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    while (auto next = queue.next()) taken.push_back(static_cast<int>(*next));
    EXPECT_FALSE(queue.next());  // stays exhausted
  }
  const int mine = static_cast<int>(taken.size());
  std::vector<int> counts(static_cast<std::size_t>(nranks()));
  MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int> offsets(counts.size(), 0);
  for (std::size_t r = 1; r < counts.size(); ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<int> all(kPositions + 10, -1);
  MPI_Gatherv(taken.data(), mine, MPI_INT, all.data(), counts.data(), offsets.data(), MPI_INT, 0, MPI_COMM_WORLD);
  if (rank() == 0) {
    const int total = std::accumulate(counts.begin(), counts.end(), 0);
    ASSERT_EQ(total, static_cast<int>(kPositions));
    std::vector<int> seen(kPositions, 0);
    for (int i = 0; i < total; ++i) ++seen[static_cast<std::size_t>(all[static_cast<std::size_t>(i)])];
    for (std::size_t p = 0; p < kPositions; ++p) EXPECT_EQ(seen[p], 1) << "position " << p;
    // The other ranks emptied the queue while rank 0 slept (passive-target progress).
    if (nranks() > 1) {
      EXPECT_EQ(counts[0], 0);
    }
  }
}

}  // namespace
