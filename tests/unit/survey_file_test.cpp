// The survey file (keys, paths, globs, overrides, errors with file:line:column) and the
// serial parts of the survey machinery: group sizing, queue order, array slices, records and
// the CSV index. Expected values are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <toml++/toml.h>

#include "engine/src/survey/survey_detail.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"
#include "tessera/survey.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::survey_detail;
using tessera::testing::TempDir;

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

/// A visit directory holding one file of `bytes` bytes.
void make_visit(const fs::path& dir, std::size_t bytes) { write(dir / "frame.fits", std::string(bytes, 'x')); }

std::string error_of(const std::string& path, const std::vector<std::string>& extra = {}) {
  try {
    load_survey(path, extra);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

/// Lines of a ConfigError message, for counting problems.
std::size_t lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
}

class SurveyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    write(dir.path() / "workflows/wf.toml", "# not read by load_survey\n");
    make_visit(dir.path() / "data/a1", 10);
    make_visit(dir.path() / "more/v2.d", 300);
    make_visit(dir.path() / "more/v10.d", 20);
    make_visit(dir.path() / "more/B3.d", 5);
  }
  std::string survey_path() const { return (dir.path() / "surveys/s.toml").string(); }
  TempDir dir{"survey_file_test"};
};

TEST_F(SurveyFile, ReadsEveryKeyAndResolvesPathsAgainstTheSurveyDirectory) {
  write(survey_path(), R"T([survey]
name = "test"
workflow = "../workflows/wf.toml"
output = "../out"
input_key = "workflow.visit"
group_size = 2
memory_per_rank_gb = 1.5
memory_factor = 3.0
set = ["clip.sigma=4"]
[survey.figures]
outliers = "sum(a, b)"
bkg = "median(c)"
[[visit]]
id = "first"
input = "../data/a1"
set = ["locate.location=[1, 2]"]
[[visits]]
glob = "../more/*.d"
id = "m_{stem}"
set = ["x.name={name}", "y.path={input.path}"]
)T");
  const Survey s = load_survey(survey_path(), {"cli.k=1"});
  const fs::path base = dir.path();
  EXPECT_EQ(s.name, "test");
  EXPECT_EQ(s.file, survey_path());
  EXPECT_EQ(s.workflow, (base / "workflows/wf.toml").string());
  EXPECT_EQ(s.output, (base / "out").string());
  EXPECT_EQ(s.input_key, "workflow.visit");
  EXPECT_EQ(s.group_size, 2);
  EXPECT_DOUBLE_EQ(s.memory_per_rank_gb, 1.5);
  EXPECT_DOUBLE_EQ(s.memory_factor, 3.0);
  // The survey's set, then the command line's.
  EXPECT_EQ(s.overrides, (std::vector<std::string>{"clip.sigma=4", "cli.k=1"}));
  ASSERT_EQ(s.figures.size(), 2u);
  // In file order (toml++ itself keeps a table's keys sorted).
  EXPECT_EQ(s.figures[0].name, "outliers");
  EXPECT_EQ(s.figures[0].expression, "sum(a, b)");
  EXPECT_EQ(s.figures[1].name, "bkg");

  // [[visit]] first, then the glob's matches in bytewise order: "B3.d" < "v10.d" < "v2.d".
  ASSERT_EQ(s.visits.size(), 4u);
  EXPECT_EQ(s.visits[0].id, "first");
  EXPECT_EQ(s.visits[0].input, (base / "data/a1").string());
  EXPECT_EQ(s.visits[0].input_bytes, 10u);
  EXPECT_EQ(s.visits[0].where.line, 14);
  EXPECT_EQ(s.visits[1].id, "m_B3");
  EXPECT_EQ(s.visits[2].id, "m_v10");
  EXPECT_EQ(s.visits[3].id, "m_v2");
  EXPECT_EQ(s.visits[3].input, (base / "more/v2.d").string());
  EXPECT_EQ(s.visits[3].input_bytes, 300u);
  EXPECT_EQ(s.visits[3].where.line, 18);
  // {name} and {stem} are replaced in a glob's set; workflow placeholders pass through.
  EXPECT_EQ(s.visits[3].overrides, (std::vector<std::string>{"x.name=v2.d", "y.path={input.path}"}));

  EXPECT_EQ(s.visit_directory(s.visits[0]), (base / "out/first").string());
  EXPECT_EQ(s.visit_output(s.visits[0]), (base / "out/first/first.h5").string());
  EXPECT_EQ(s.visit_record(s.visits[0]), (base / "out/first/survey_record.toml").string());
  EXPECT_EQ(s.visit_log(s.visits[0]), (base / "out/first/first.log").string());
  EXPECT_EQ(s.index_path(), (base / "out/survey_index.csv").string());
}

TEST_F(SurveyFile, OverridesGoSurveyThenCommandLineThenVisitThenInputAndOutput) {
  write(survey_path(), R"T([survey]
name = "t"
workflow = "../workflows/wf.toml"
output = "out"
set = ["a.x=1"]
[[visit]]
id = "v"
input = "../data/a1"
set = ["a.x=3"]
)T");
  const Survey s = load_survey(survey_path(), {"a.x=2"});
  const std::string input = (dir.path() / "data/a1").string();
  const std::string output = (dir.path() / "surveys/out/v/v.h5").string();
  EXPECT_EQ(s.visit_overrides(s.visits[0]),
            (std::vector<std::string>{"a.x=1", "a.x=2", "a.x=3", "input.path=" + toml_quoted(input),
                                      "output.path=" + toml_quoted(output)}));
}

TEST_F(SurveyFile, DefaultsAndGlobIdsUseTheMatchName) {
  write(survey_path(), "[survey]\nname='t'\nworkflow='../workflows/wf.toml'\noutput='../out'\n"
                       "[[visits]]\nglob='../more/v*'\n");
  const Survey s = load_survey(survey_path());
  EXPECT_EQ(s.input_key, "input.path");
  EXPECT_EQ(s.group_size, 0);
  EXPECT_DOUBLE_EQ(s.memory_per_rank_gb, 2.0);
  EXPECT_DOUBLE_EQ(s.memory_factor, 4.0);
  EXPECT_TRUE(s.figures.empty());
  ASSERT_EQ(s.visits.size(), 2u);
  EXPECT_EQ(s.visits[0].id, "v10.d");
  EXPECT_EQ(s.visits[1].id, "v2.d");
}

TEST_F(SurveyFile, AGlobNeverMatchesTheSurveysOwnOutput) {
  // Output inside the globbed directory: after a first run "more/out" exists and would match.
  fs::create_directories(dir.path() / "more/out/v2.d");
  write(survey_path(), "[survey]\nname='t'\nworkflow='../workflows/wf.toml'\noutput='../more/out'\n"
                       "[[visits]]\nglob='../more/*'\n");
  const Survey s = load_survey(survey_path());
  ASSERT_EQ(s.visits.size(), 3u);
  for (const auto& v : s.visits) EXPECT_NE(v.id, "out");
}

TEST_F(SurveyFile, EveryProblemIsReportedAtOnceWithItsPosition) {
  write(survey_path(), R"T([survey]
name = "t"
workflow = "../workflows/missing.toml"
output = "out"
groupsize = 2
input_key = "nodot"
memory_factor = -1.0
set = ["no_equals_sign"]
[survey.figures]
good = "sum(a)"
bad = "average(a)"
status = "sum(a)"
[[visit]]
id = "has space"
input = "x"
[[visit]]
id = "dup"
input = "x"
[[visit]]
id = "dup"
input = "y"
[[visit]]
input = "z"
colour = "red"
[[visits]]
glob = "../nothing/*"
[extra]
)T");
  const std::string p = survey_path();
  const std::string e = error_of(p);
  auto has = [&](const std::string& text) { return e.find(text) != std::string::npos; };
  EXPECT_TRUE(has(p + ":3:12: [survey] workflow: no such file")) << e;
  EXPECT_TRUE(has(p + ":5:1: [survey] unknown parameter 'groupsize'; did you mean 'group_size'?")) << e;
  EXPECT_TRUE(has(p + ":6:13: [survey] input_key: expected SECTION.KEY")) << e;
  EXPECT_TRUE(has(p + ":7:17: [survey] memory_factor: expected a value > 0.0, got -1.0")) << e;
  EXPECT_TRUE(has(p + ":8:8: [survey] set: 'no_equals_sign': expected STEP.PARAM=VALUE")) << e;
  EXPECT_TRUE(has(p + ":11:7: [survey.figures] figure 'bad' = \"average(a)\": unknown reduction 'average'")) << e;
  EXPECT_TRUE(has(p + ":12:1: [survey.figures] 'status'")) << e;
  EXPECT_TRUE(has(p + ":14:6: [[visit]] 1: id 'has space' cannot be a directory name")) << e;
  EXPECT_TRUE(has(p + ":20:6: [[visit]] 3: duplicate visit id 'dup' (first at " + p + ":17:6)")) << e;
  EXPECT_TRUE(has("[[visit]] 4: missing required parameter 'id'")) << e;
  EXPECT_TRUE(has(p + ":24:1: [[visit]] 4: unknown parameter 'colour'")) << e;
  EXPECT_TRUE(has(p + ":26:8: [[visits]] 1: glob '../nothing/*' matches nothing")) << e;
  EXPECT_TRUE(has(p + ":27:2: unknown section 'extra'")) << e;
  EXPECT_EQ(lines(e), 13u) << e;
}

TEST_F(SurveyFile, MissingSurveyTableAndSyntaxErrorsArePlaced) {
  write(survey_path(), "[[visit]]\nid='a'\ninput='b'\n");
  EXPECT_NE(error_of(survey_path()).find(survey_path() + ":1:1: missing [survey] table"), std::string::npos);
  write(survey_path(), "[survey]\nname = \n");
  EXPECT_NE(error_of(survey_path()).find(survey_path() + ":2:"), std::string::npos) << error_of(survey_path());
  EXPECT_NE(error_of(survey_path()).find("TOML syntax error"), std::string::npos);
  write(survey_path(), "[survey]\nname='t'\nworkflow='../workflows/wf.toml'\noutput='o'\n");
  EXPECT_NE(error_of(survey_path()).find("no visits"), std::string::npos);
  EXPECT_NE(error_of((dir.path() / "absent.toml").string()).find("cannot open the survey file"), std::string::npos);
}

TEST_F(SurveyFile, AMissingInputIsNotASurveyError) {
  // The visit fails when it runs, with the input kind's own message.
  write(survey_path(), "[survey]\nname='t'\nworkflow='../workflows/wf.toml'\noutput='o'\n"
                       "[[visit]]\nid='gone'\ninput='../no/such/dir'\n");
  const Survey s = load_survey(survey_path());
  ASSERT_EQ(s.visits.size(), 1u);
  EXPECT_EQ(s.visits[0].input_bytes, 0u);
}

TEST_F(SurveyFile, TellsSurveysFromWorkflows) {
  write(survey_path(), "[survey]\nname='t'\n");
  EXPECT_TRUE(is_survey_file(survey_path()));
  EXPECT_FALSE(is_survey_file((dir.path() / "workflows/wf.toml").string()));
  write(dir.path() / "bad.toml", "[survey\n");
  EXPECT_THROW(is_survey_file((dir.path() / "bad.toml").string()), ConfigError);
  EXPECT_THROW(is_survey_file((dir.path() / "absent.toml").string()), ConfigError);
}

TEST(SurveyIds, DirectoryNamesOnly) {
  EXPECT_TRUE(valid_visit_id("ibh707-v01_a.b"));
  EXPECT_FALSE(valid_visit_id(""));
  EXPECT_FALSE(valid_visit_id("."));
  EXPECT_FALSE(valid_visit_id(".."));
  EXPECT_FALSE(valid_visit_id("a/b"));
  EXPECT_FALSE(valid_visit_id("a b"));
  EXPECT_FALSE(valid_visit_id("{name}"));
  EXPECT_EQ(expand_match_placeholders("v_{stem}_{name}_{other}", "x.d", "x"), "v_x_x.d_{other}");
  // Quoted values survive TOML parsing unchanged, whatever they hold.
  for (const std::string value : {"plain/path", "a\"b\\c", "it's \"x\"\nnext", "123"}) {
    const toml::table t = toml::parse("v = " + toml_quoted(value));
    EXPECT_EQ(t["v"].value_or(std::string("?")), value) << toml_quoted(value);
  }
}

constexpr std::uintmax_t GiB = 1024ull * 1024 * 1024;

TEST(GroupSize, SmallestGroupThatHoldsTheLargestVisit) {
  // 1 GiB input × factor 4 = 4 GiB; 2 GiB per rank → 2 ranks. 10 visits ≥ 8/2 = 4 groups.
  EXPECT_EQ(derive_group_size(8, 10, 1 * GiB, 2.0, 4.0), 2);
  // 1.1 GiB × 4 = 4.4 GiB → ceil(2.2) = 3 ranks.
  EXPECT_EQ(derive_group_size(8, 10, GiB + GiB / 10, 2.0, 4.0), 3);
  // Tiny visits: 1 rank each; 16 ranks, 32 visits → 16 groups of 1.
  EXPECT_EQ(derive_group_size(16, 32, 1000, 2.0, 4.0), 1);
}

TEST(GroupSize, NoMoreGroupsThanVisits) {
  // 8 ranks, 3 visits: g = 1 → 8 groups, 2 → 4, 3 → 2 (8 / 3 = 2 ≤ 3).
  EXPECT_EQ(derive_group_size(8, 3, 1000, 2.0, 4.0), 3);
  // One visit: all ranks in one group.
  EXPECT_EQ(derive_group_size(5, 1, 1000, 2.0, 4.0), 5);
}

TEST(GroupSize, NeverMoreThanTheWorld) {
  // 100 GiB × 4 needs 200 ranks of 2 GiB; there are 4.
  EXPECT_EQ(derive_group_size(4, 10, 100 * GiB, 2.0, 4.0), 4);
  EXPECT_EQ(derive_group_size(1, 10, 100 * GiB, 2.0, 4.0), 1);
}

Survey sized_survey(const std::vector<std::uintmax_t>& bytes) {
  Survey s;
  s.name = "t";
  s.output = "out";
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    SurveyVisit v;
    v.id = "v";
    v.id += std::to_string(i);
    v.input = "in/" + v.id;
    v.input_bytes = bytes[i];
    s.visits.push_back(v);
  }
  return s;
}

TEST(GroupSize, CommandLineThenSurveyThenDerived) {
  Survey s = sized_survey({1 * GiB, 2 * GiB});
  const std::vector<std::size_t> all = {0, 1};
  // Derived from the largest (2 GiB × 4 / 2 GiB = 4 ranks).
  EXPECT_EQ(choose_group_size(s, all, 0, 8), 4);
  s.group_size = 2;
  EXPECT_EQ(choose_group_size(s, all, 0, 8), 2);
  EXPECT_EQ(choose_group_size(s, all, 1, 8), 1);
  EXPECT_EQ(choose_group_size(s, all, 16, 8), 8);  // clamped to the world
  // Only the visits of this run count: visit 0 alone needs 2 ranks.
  s.group_size = 0;
  EXPECT_EQ(choose_group_size(s, {0}, 0, 2), 2);
}

TEST(Groups, LeftOverRanksJoinTheLastGroup) {
  // 5 ranks in groups of 2: groups {0,1} and {2,3,4}.
  EXPECT_EQ(group_count(5, 2), 2);
  const int expected[] = {0, 0, 1, 1, 1};
  for (int r = 0; r < 5; ++r) EXPECT_EQ(group_of(r, 5, 2), expected[r]) << r;
  // 2 ranks in groups of 1: two groups; in a group of 3 (clamped elsewhere): one.
  EXPECT_EQ(group_count(2, 1), 2);
  EXPECT_EQ(group_of(1, 2, 1), 1);
  EXPECT_EQ(group_count(2, 3), 1);
  EXPECT_EQ(group_of(1, 2, 3), 0);
}

TEST(Queue, LargestFirstTiesInSurveyOrder) {
  const Survey s = sized_survey({10, 50, 10, 70, 50});
  EXPECT_EQ(queue_order(s, {0, 1, 2, 3, 4}), (std::vector<std::size_t>{3, 1, 4, 0, 2}));
  EXPECT_EQ(queue_order(s, {2, 4}), (std::vector<std::size_t>{4, 2}));
}

TEST(Queue, ArrayTasksTakeConsecutiveBlocksOfTheSurveyOrder) {
  const Survey s = sized_survey({1, 2, 3, 4, 5});
  SurveyOptions o;
  EXPECT_EQ(visits_of_run(s, o), (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  o.visits_per_task = 2;
  o.array_task = 0;
  EXPECT_EQ(visits_of_run(s, o), (std::vector<std::size_t>{0, 1}));
  o.array_task = 2;  // tasks 0..2 (ceil(5 / 2) = 3); the last has one visit
  EXPECT_EQ(visits_of_run(s, o), (std::vector<std::size_t>{4}));
  o.array_task = 3;
  EXPECT_THROW(visits_of_run(s, o), ConfigError);
  o.array_task = 0;
  o.visits_per_task = 0;
  EXPECT_THROW(visits_of_run(s, o), ConfigError);
}

TEST(Records, RoundTripThroughToml) {
  TempDir dir("survey_record");
  VisitRecord r;
  r.id = "v1";
  r.input = "data/v 1";
  r.output = "out/v1/v1.h5";
  r.status = "failed";
  r.message = "line one \"quoted\"\nline two";
  r.wall_s = 1.25;
  r.ranks = 2;
  r.group = 1;
  r.frames = 40;
  r.attempt = 3;
  r.resumed_after = "led";
  r.workflow_hash = "0123456789abcdef";
  r.started_utc = "2024-01-01T00:00:00Z";
  r.finished_utc = "2024-01-01T00:00:01Z";
  r.host = "a,b";
  r.slurm_job_id = "77";
  r.slurm_array_task_id = "3";
  r.figures = {{"bkg", 15.5}, {"empty", std::nan("")}};
  const std::string path = (dir.path() / "survey_record.toml").string();
  write_record(path, r);
  EXPECT_FALSE(fs::exists(path + ".partial"));
  const auto back = read_record(path);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->input, r.input);
  EXPECT_EQ(back->status, r.status);
  EXPECT_EQ(back->message, r.message);
  EXPECT_DOUBLE_EQ(back->wall_s, 1.25);
  EXPECT_EQ(back->ranks, 2);
  EXPECT_EQ(back->group, 1);
  EXPECT_EQ(back->frames, 40);
  EXPECT_EQ(back->attempt, 3);
  EXPECT_EQ(back->resumed_after, "led");
  EXPECT_EQ(back->workflow_hash, r.workflow_hash);
  EXPECT_EQ(back->host, "a,b");
  EXPECT_EQ(back->slurm_job_id, "77");
  EXPECT_EQ(back->slurm_array_task_id, "3");
  ASSERT_EQ(back->figures.size(), 2u);
  EXPECT_EQ(back->figures[0].first, "bkg");
  EXPECT_DOUBLE_EQ(back->figures[0].second, 15.5);
  EXPECT_TRUE(std::isnan(back->figures[1].second));
  EXPECT_FALSE(read_record((dir.path() / "none.toml").string()));
  write(dir.path() / "broken.toml", "status = \n");
  EXPECT_THROW(read_record((dir.path() / "broken.toml").string()), IoError);
}

TEST(Index, CsvQuotingAndRows) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  Survey s = sized_survey({1, 2});
  s.figures = {{"outliers", "sum(x)"}, {"bkg", "median(y)"}};
  EXPECT_EQ(index_header(s.figures),
            "visit_id,status,input,output,wall_s,ranks,frames,outliers,bkg,resumed_after,attempt,slurm_job_id,"
            "slurm_array_task_id,started_utc,message");
  VisitRecord r;
  r.status = "failed";
  r.wall_s = 0.25;
  r.ranks = 2;
  r.frames = 0;
  r.attempt = 1;
  r.started_utc = "T";
  r.message = "bad, very\nbad";
  r.figures = {{"bkg", 2.5}};
  EXPECT_EQ(index_row(s, s.visits[0], r),
            "v0,failed,in/v0,out/v0/v0.h5,0.250,2,0,,2.5,,1,,,T,\"bad, very; bad\"");
  EXPECT_EQ(index_row(s, s.visits[1], std::nullopt), "v1,missing,in/v1,out/v1/v1.h5,,,,,,,,,,,");
}

TEST(Index, RebuiltFromTheRecordsInSurveyOrder) {
  TempDir dir("survey_index");
  Survey s = sized_survey({1, 2, 3});
  s.output = (dir.path() / "out").string();
  s.figures = {{"n", "sum(x)"}};
  VisitRecord done;
  done.id = "v2";
  done.status = "complete";
  done.frames = 12;
  done.ranks = 1;
  done.attempt = 1;
  done.figures = {{"n", 7}};
  fs::create_directories(s.visit_directory(s.visits[2]));
  write_record(s.visit_record(s.visits[2]), done);
  VisitRecord failed = done;
  failed.status = "failed";
  failed.figures.clear();
  fs::create_directories(s.visit_directory(s.visits[0]));
  write_record(s.visit_record(s.visits[0]), failed);
  // v0 failed, v1 has no record, v2 complete: two not complete.
  EXPECT_EQ(write_survey_index(s), 2u);
  std::ifstream in(s.index_path());
  std::string header, row0, row1, row2, extra;
  std::getline(in, header);
  std::getline(in, row0);
  std::getline(in, row1);
  std::getline(in, row2);
  EXPECT_FALSE(std::getline(in, extra));
  EXPECT_EQ(row0.substr(0, 10), "v0,failed,");
  EXPECT_EQ(row1.substr(0, 11), "v1,missing,");
  EXPECT_EQ(row2, "v2,complete,in/v2," + s.visit_output(s.visits[2]) + ",0.000,1,12,7,,1,,,,");
}

}  // namespace
