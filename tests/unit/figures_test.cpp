// Key figures: parsing and the reductions, by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "tessera/errors.hpp"
#include "tessera/figures.hpp"

namespace {

using namespace tessera;

Dataset small_dataset() {
  Dataset data;
  data.add_frame_vector({"a", "1", ""}).values = {1, 5, NAN, 3};
  data.add_frame_vector({"b", "1", ""}).values = {0, 2, 0, 0};
  Image image;
  image.info = {"img", "1", ""};
  image.ny = 1;
  image.nx = 3;
  image.values = {10, 20, INFINITY};
  data.images()["img"] = image;
  return data;
}

double figure(const std::string& expression) {
  return evaluate_figure(parse_figure({"f", expression}, "test"), small_dataset());
}

TEST(Figures, ReductionsOverFiniteValues) {
  EXPECT_DOUBLE_EQ(figure("sum(a)"), 9.0);
  EXPECT_DOUBLE_EQ(figure("mean(a)"), 3.0);
  EXPECT_DOUBLE_EQ(figure("median(a)"), 3.0);
  EXPECT_DOUBLE_EQ(figure("min(a)"), 1.0);
  EXPECT_DOUBLE_EQ(figure("max(a)"), 5.0);
  EXPECT_DOUBLE_EQ(figure("count_nonzero(b)"), 1.0);
}

TEST(Figures, PoolsSeveralVariables) {
  EXPECT_DOUBLE_EQ(figure("sum(a, b)"), 11.0);
  // Pooled finite values 0 0 0 1 2 3 5 10 20: the middle one.
  EXPECT_DOUBLE_EQ(figure(" median ( a ,b, img ) "), 2.0);
  // 0 0 0 2 10 20: an even count takes the mean of the two middle values.
  EXPECT_DOUBLE_EQ(figure("median(b, img)"), 1.0);
}

TEST(Figures, EmptyIsNaN) {
  Dataset data;
  data.add_frame_vector({"z", "1", ""}).values = {NAN, NAN};
  EXPECT_TRUE(std::isnan(evaluate_figure(parse_figure({"f", "mean(z)"}, "t"), data)));
  EXPECT_DOUBLE_EQ(evaluate_figure(parse_figure({"f", "count_nonzero(z)"}, "t"), data), 0.0);
}

TEST(Figures, ErrorsNameTheFigure) {
  EXPECT_THROW(parse_figure({"f", "avg(a)"}, "s.toml"), ConfigError);
  EXPECT_THROW(parse_figure({"f", "sum a"}, "s.toml"), ConfigError);
  EXPECT_THROW(parse_figure({"f", "sum(a,)"}, "s.toml"), ConfigError);
  try {
    evaluate_figure(parse_figure({"outliers", "sum(nope)"}, "s.toml"), small_dataset());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("outliers"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

}  // namespace
