// Parameter schemas: binding TOML values, defaults, ranges, choices, unknown keys, docs.
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include "tessera/params.hpp"

namespace {

struct Example {
  double threshold = 3.5;
  std::int64_t passes = 2;
  std::vector<double> sigmas = {10, 10};
  std::optional<std::int64_t> window;
  std::string mode = "mad";
  bool flag = false;
  std::string needed;
  static tessera::Schema<Example> schema() {
    using namespace tessera;
    return tessera::schema<Example>(field(&Example::threshold, "threshold", "clip level", Range::above(0)),
                                    field(&Example::passes, "passes", "how many", Range::closed(1, 10)),
                                    field(&Example::sigmas, "sigmas", "per pass", Range::above(0)),
                                    field(&Example::window, "window", "half width", Range::at_least(1)),
                                    field(&Example::mode, "mode", "estimator", Choices{{"std", "mad"}}),
                                    field(&Example::flag, "flag", "a switch"),
                                    field(&Example::needed, "needed", "must be given", Required{}));
  }
};

Example bind(const std::string& text, tessera::Diagnostics& d) {
  toml::table t = toml::parse(std::string_view(text), std::string_view("test.toml"));
  return Example::schema().bind(t, {"id"}, d, "step 'x': ");
}

TEST(Params, DefaultsApplyWhenKeysAreAbsent) {
  tessera::Diagnostics d;
  Example e = bind("needed = 'a'", d);
  EXPECT_TRUE(d.empty()) << d.str();
  EXPECT_DOUBLE_EQ(e.threshold, 3.5);
  EXPECT_EQ(e.sigmas, (std::vector<double>{10, 10}));
  EXPECT_FALSE(e.window.has_value());
  EXPECT_EQ(e.mode, "mad");
}

TEST(Params, ValuesBindAndIntegersWidenToNumbers) {
  tessera::Diagnostics d;
  Example e = bind("needed='a'\nthreshold = 4\nsigmas = [5, 6.5]\nwindow = 3\nmode='std'\nflag=true\nid='x'", d);
  EXPECT_TRUE(d.empty()) << d.str();
  EXPECT_DOUBLE_EQ(e.threshold, 4.0);
  EXPECT_EQ(e.sigmas, (std::vector<double>{5, 6.5}));
  EXPECT_EQ(e.window, 3);
  EXPECT_EQ(e.mode, "std");
  EXPECT_TRUE(e.flag);
}

TEST(Params, NoneUnsetsAnOptional) {
  tessera::Diagnostics d;
  Example e = bind("needed='a'\nwindow='none'", d);
  EXPECT_TRUE(d.empty()) << d.str();
  EXPECT_FALSE(e.window.has_value());
}

TEST(Params, WrongTypeNamesKeyExpectedTypeAndLine) {
  tessera::Diagnostics d;
  bind("needed='a'\n\nthreshold = 'high'", d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d.items()[0].str(), "test.toml:3:13: step 'x': threshold: expected a number, got a string");
}

TEST(Params, OutOfRangeSaysWhatIsAllowed) {
  tessera::Diagnostics d;
  bind("needed='a'\npasses = 11\nsigmas=[1,-2]", d);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.items()[0].message, "step 'x': passes: expected a value in [1.0, 10.0], got 11");
  EXPECT_EQ(d.items()[0].where.line, 2);
  EXPECT_EQ(d.items()[1].message, "step 'x': sigmas: expected a value > 0.0, got [1.0, -2.0]");
}

TEST(Params, BadChoiceListsChoices) {
  tessera::Diagnostics d;
  bind("needed='a'\nmode='mean'", d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d.items()[0].message, "step 'x': mode: expected one of: std, mad, got \"mean\"");
}

TEST(Params, UnknownKeySuggestsClosest) {
  tessera::Diagnostics d;
  bind("needed='a'\ntreshold=2", d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d.items()[0].message, "step 'x': unknown parameter 'treshold'; did you mean 'threshold'?");
  EXPECT_EQ(d.items()[0].where.line, 2);
}

TEST(Params, MissingRequiredIsReported) {
  tessera::Diagnostics d;
  bind("threshold = 1", d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d.items()[0].message, "step 'x': missing required parameter 'needed'");
}

TEST(Params, AllProblemsAreReportedAtOnce) {
  tessera::Diagnostics d;
  bind("threshold = -1\npasses = 'x'\nbogus = 1", d);
  EXPECT_EQ(d.size(), 4u);  // range, type, unknown, missing required
}

TEST(Params, DocsAndResolvedValuesComeFromTheOneDeclaration) {
  auto docs = Example::schema().docs();
  ASSERT_EQ(docs.size(), 7u);
  EXPECT_EQ(docs[0].name, "threshold");
  EXPECT_EQ(docs[0].default_text, "3.5");
  EXPECT_EQ(docs[0].constraint, "> 0.0");
  EXPECT_EQ(docs[3].default_text, "unset");
  EXPECT_EQ(docs[4].constraint, "one of: std, mad");
  EXPECT_TRUE(docs[6].required);
  Example e;
  e.window = 4;
  auto resolved = Example::schema().resolved(e);
  EXPECT_EQ(resolved[2], (std::pair<std::string, std::string>{"sigmas", "[10.0, 10.0]"}));
  EXPECT_EQ(resolved[3].second, "4");
}

TEST(Diagnostics, ClosestNameIgnoresDistantNames) {
  EXPECT_EQ(tessera::closest_name("fixd_iter", {"fixed_iter", "free_iter"}), "fixed_iter");
  EXPECT_EQ(tessera::closest_name("zzzzzzzz", {"fixed_iter", "led"}), "");
}

}  // namespace
