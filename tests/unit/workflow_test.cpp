// Workflow files: DAG order, defaults, overrides, DOT, plans.
#include <gtest/gtest.h>

#include "support/memory_input.hpp"
#include "tessera/errors.hpp"
#include "tessera/plan.hpp"
#include "tessera/workflow.hpp"

namespace {

using tessera::testing::test_registry;

const char* kHeader = R"(
[workflow]
name = "t"
[input]
kind = "memory"
[output]
path = "out/t.h5"
)";

tessera::Workflow parse(const std::string& steps, std::vector<std::string> overrides = {}) {
  static const tessera::Registry registry = test_registry();
  return tessera::parse_workflow(kHeader + steps, "wf.toml", overrides, registry);
}

std::vector<std::string> order_ids(const tessera::Workflow& wf) {
  std::vector<std::string> ids;
  for (auto i : wf.order) ids.push_back(wf.steps[i].id);
  return ids;
}

TEST(Workflow, StepsDefaultToFileOrder) {
  auto wf = parse("[[step]]\nid='a'\nuses='frame_mean'\n[[step]]\nid='b'\nuses='uses_mean'\n[[step]]\nid='c'\nuses='fixed_iter'\n");
  EXPECT_EQ(order_ids(wf), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(wf.steps[1].after, (std::vector<std::string>{"a"}));
}

TEST(Workflow, AfterReordersSteps) {
  // c is declared first but depends on a; b depends on c.
  auto wf = parse("[[step]]\nid='c'\nuses='fixed_iter'\nafter=['a']\n"
                  "[[step]]\nid='b'\nuses='uses_mean'\nafter='c'\n"
                  "[[step]]\nid='a'\nuses='frame_mean'\nafter=[]\n");
  EXPECT_EQ(order_ids(wf), (std::vector<std::string>{"a", "c", "b"}));
}

TEST(Workflow, DisabledStepsAreSkipped) {
  auto wf = parse("[[step]]\nid='a'\nuses='fixed_iter'\nenabled=false\n[[step]]\nid='b'\nuses='fixed_iter'\n");
  EXPECT_EQ(order_ids(wf), (std::vector<std::string>{"b"}));
}

TEST(Workflow, DisabledProducerLeavesReaderUnsatisfied) {
  try {
    parse("[[step]]\nid='a'\nuses='frame_mean'\nenabled=false\n[[step]]\nid='b'\nuses='uses_mean'\n");
    FAIL() << "expected ConfigError";
  } catch (const tessera::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("reads per-frame vector 'frame_mean', which neither the input"),
              std::string::npos)
        << e.what();
  }
}

TEST(Workflow, SetOverridesAParameter) {
  auto wf = parse("[[step]]\nid='clip'\nuses='fixed_iter'\n", {"clip.fixed_sigmas=[4, 5]", "clip.estimator=std"});
  auto resolved = wf.steps[0].instance->resolved_params();
  EXPECT_EQ(resolved[0].second, "[4.0, 5.0]");
  EXPECT_EQ(resolved[2].second, "\"std\"");
}

TEST(Workflow, SetWithBadValueIsReportedWithItsArgument) {
  try {
    parse("[[step]]\nid='clip'\nuses='fixed_iter'\n", {"clip.fixed_sigmas=[-1]"});
    FAIL();
  } catch (const tessera::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--set clip.fixed_sigmas=[-1]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fixed_sigmas: expected a value > 0.0"), std::string::npos) << e.what();
  }
}

TEST(Workflow, SetNamingAMissingStepFails) {
  EXPECT_THROW(parse("[[step]]\nid='clip'\nuses='fixed_iter'\n", {"clop.fixed_sigmas=[4]"}), tessera::ConfigError);
}

TEST(Workflow, ResolvedTomlListsDefaults) {
  auto wf = parse("[[step]]\nid='clip'\nuses='fixed_iter'\n");
  const std::string text = wf.resolved_toml();
  EXPECT_NE(text.find("fixed_sigmas = [10.0, 10.0]"), std::string::npos) << text;
  EXPECT_NE(text.find("# replacement = unset"), std::string::npos) << text;
  EXPECT_NE(text.find("estimator = \"mad\""), std::string::npos) << text;
}

TEST(Workflow, DotShowsNodesEdgesAndAccess) {
  auto wf = parse("[[step]]\nid='a'\nuses='frame_mean'\n[[step]]\nid='b'\nuses='fixed_iter'\n");
  const std::string dot = tessera::workflow_dot(wf);
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("\"a\" -> \"b\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("fixed_iter (pixels)"), std::string::npos) << dot;
  EXPECT_NE(dot.find("frame_mean (frames)"), std::string::npos) << dot;
  EXPECT_NE(dot.find("\"b\" -> output"), std::string::npos) << dot;
}

TEST(Plan, TransposesOnlyWhereAccessChanges) {
  auto wf = parse("[[step]]\nid='a'\nuses='frame_mean'\n[[step]]\nid='b'\nuses='fixed_iter'\n"
                  "[[step]]\nid='c'\nuses='fixed_iter'\n[[step]]\nid='d'\nuses='uses_mean'\n"
                  "[[step]]\nid='e'\nuses='frame_mean'\n");
  const tessera::CubeShape shape{10, 64, 512};
  auto plan = tessera::make_plan(wf, shape, 2);
  ASSERT_EQ(plan.stages.size(), 5u);
  EXPECT_FALSE(plan.stages[0].transpose_before);
  EXPECT_TRUE(plan.stages[1].transpose_before);   // frames -> tiles
  EXPECT_FALSE(plan.stages[2].transpose_before);  // still tiles
  EXPECT_FALSE(plan.stages[3].transpose_before);  // reduce runs where it is
  EXPECT_EQ(plan.stages[3].layout, tessera::Layout::PixelTiles);
  EXPECT_TRUE(plan.stages[4].transpose_before);   // back to frames
  // Tiles 64x256 on 2 ranks: tile 0 (x<256) on rank 0, tile 1 on rank 1. Rank 0 holds
  // frames 0-4, so half of each half-frame moves: 10 frames * 64*256 pixels * 3 cubes * 4 B.
  EXPECT_EQ(plan.stages[1].bytes_moved, std::size_t{10} * 64 * 256 * 3 * 4);
  EXPECT_EQ(plan.total_bytes_moved(), 2 * plan.stages[1].bytes_moved);
  EXPECT_NE(plan.str(wf).find("move    frames -> tiles 64x256"), std::string::npos) << plan.str(wf);
}

}  // namespace

namespace {

TEST(Registry, HelpComesFromTheStepDeclaration) {
  const tessera::Registry& registry = tessera::builtin_registry();
  const tessera::StepInfo* info = registry.find_step("fixed_iter");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->default_phases, std::vector<tessera::Access>{tessera::Access::Pixels});
  ASSERT_EQ(info->params.size(), 3u);
  EXPECT_EQ(info->params[0].name, "fixed_sigmas");
  EXPECT_EQ(info->params[0].default_text, "[10.0, 10.0]");
  EXPECT_EQ(info->params[1].name, "replacement");
  EXPECT_EQ(info->params[1].default_text, "unset");
  EXPECT_EQ(info->params[2].constraint, "one of: std, mad");
  for (const auto& p : info->params) EXPECT_FALSE(p.doc.empty()) << p.name;
  ASSERT_EQ(info->default_io.writes.size(), 3u);
  EXPECT_EQ(info->default_io.writes[2].info.name, "fixed_iter_outliers");
  EXPECT_EQ(registry.find_step("nope"), nullptr);
  ASSERT_NE(registry.find_input("hst_flt_dir"), nullptr);
}

}  // namespace

namespace {

TEST(WorkflowOutput, PlaceholdersAreReplacedAndPlotsGoNextToTheOutput) {
  static const tessera::Registry registry = test_registry();
  auto wf = tessera::parse_workflow(
      "[workflow]\nname='w'\nverbose=2\n[input]\nkind='memory'\nnt=4\n[output]\nrun='run_7'\n"
      "path='{input.kind}/outputs/stage1/{output.run}/clean_obs.h5'\nsave_plots=0\nshow_plots=2\n",
      "wf.toml", {}, registry);
  EXPECT_EQ(wf.output_path, "memory/outputs/stage1/run_7/clean_obs.h5");
  EXPECT_EQ(wf.output.plots_directory(), "memory/outputs/stage1/run_7/plots");
  EXPECT_EQ(wf.output.plot_level(), 2);  // shown plots are written: nothing blocks
  EXPECT_EQ(wf.output.workflow_copy_path(), "memory/outputs/stage1/run_7/clean_obs.workflow.toml");
  EXPECT_EQ(wf.verbose, 2);
  const std::string resolved = wf.resolved_toml();
  EXPECT_NE(resolved.find("run = \"run_7\""), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("nt = 4"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("verbose = 2"), std::string::npos) << resolved;
}

TEST(WorkflowOutput, UnknownPlaceholderIsAnError) {
  static const tessera::Registry registry = test_registry();
  try {
    tessera::parse_workflow("[input]\nkind='memory'\n[output]\npath='{output.nope}/x.h5'\n", "wf.toml", {}, registry);
    FAIL() << "expected a ConfigError";
  } catch (const tessera::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("wf.toml:4:6: placeholder {output.nope}: no such string or integer key"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace

namespace {

// String step parameters may name keys of other sections; what the step sees (and validates)
// is the expanded text.
TEST(Workflow, StepStringParametersExpandPlaceholders) {
  try {
    parse("[[step]]\nid='a'\nuses='fixed_iter'\nestimator='{output.path}'\n");
    FAIL() << "expected a ConfigError";
  } catch (const tessera::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("out/t.h5"), std::string::npos) << e.what();
  }
  try {
    parse("[[step]]\nid='a'\nuses='fixed_iter'\nestimator='{input.nothing}'\n");
    FAIL() << "expected a ConfigError";
  } catch (const tessera::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("placeholder {input.nothing}"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

// [workflow] visit names the visit once; [input], [output] and steps follow it, and an
// override points the whole workflow elsewhere.
TEST(Workflow, VisitPlaceholderReachesTheInput) {
  static const tessera::Registry registry = test_registry();
  const std::string text =
      "[workflow]\nname='w'\nvisit='v9'\n[input]\nkind='hst_flt_dir'\npath='{workflow.visit}/data'\n"
      "[output]\npath='{workflow.visit}/out.h5'\n";
  auto wf = tessera::parse_workflow(text, "wf.toml", {}, registry);
  EXPECT_EQ(wf.output_path, "v9/out.h5");
  EXPECT_NE(wf.resolved_toml().find("path = \"v9/data\""), std::string::npos) << wf.resolved_toml();
  auto moved = tessera::parse_workflow(text, "wf.toml", {"workflow.visit=v2"}, registry);
  EXPECT_EQ(moved.output_path, "v2/out.h5");
  EXPECT_NE(moved.resolved_toml().find("path = \"v2/data\""), std::string::npos) << moved.resolved_toml();
  EXPECT_NE(moved.resolved_toml().find("visit = 'v2'"), std::string::npos) << moved.resolved_toml();
}

}  // namespace
