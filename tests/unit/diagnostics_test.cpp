// Diagnostics: PNG figures and animated GIFs are written and readable, the white light of
// a synthetic frame with known traces equals its hand-computed sum, and the plots and
// quicklook steps, run phase by phase as the engine runs them (on one "rank" and on two,
// with the engine's sums between phases done here), write the expected files and products.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <fstream>
#include <map>

#include "steps/common/dq_bits.hpp"
#include "steps/common/gif_writer.hpp"
#include "steps/common/png_plot.hpp"
#include "steps/diagnostics/plots.hpp"
#include "steps/diagnostics/quicklook.hpp"
#include "support/temp_dir.hpp"
#include "tessera/logger.hpp"
#include "support/emulated_ranks.hpp"
#include "tessera/runner.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;
using tessera::testing::TempDir;

// ---------------------------------------------------------------------------------------
// Reading back what was written

struct PngHeader {
  bool valid = false;
  std::uint32_t width = 0, height = 0;
};

std::uint32_t big_endian(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

/// Signature, IHDR first, IEND last, and every chunk length inside the file.
PngHeader read_png_header(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  PngHeader h;
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 + 25 + 12 || std::memcmp(bytes.data(), kSignature, 8) != 0) return h;
  if (std::memcmp(bytes.data() + 12, "IHDR", 4) != 0) return h;
  h.width = big_endian(bytes.data() + 16);
  h.height = big_endian(bytes.data() + 20);
  std::size_t at = 8;
  std::string last;
  while (at + 12 <= bytes.size()) {
    const std::uint32_t length = big_endian(bytes.data() + at);
    last.assign(reinterpret_cast<const char*>(bytes.data() + at + 4), 4);
    at += 12 + length;
  }
  h.valid = at == bytes.size() && last == "IEND";
  return h;
}

// ---------------------------------------------------------------------------------------
// PNG and RGB figures

TEST(RobustLimits, PercentilesInterpolateBetweenOrderStatistics) {
  std::vector<float> v;
  for (int i = 100; i >= 0; --i) v.push_back(static_cast<float>(i));  // 0..100 in reverse
  v.push_back(std::nanf(""));
  auto [lo, hi] = plot::robust_limits(v, 1, 99);
  EXPECT_DOUBLE_EQ(lo, 1.0);
  EXPECT_DOUBLE_EQ(hi, 99.0);
  std::tie(lo, hi) = plot::robust_limits(v, 2.5, 50);  // position 2.5 -> 2.5; 50 -> 50
  EXPECT_DOUBLE_EQ(lo, 2.5);
  EXPECT_DOUBLE_EQ(hi, 50.0);
  // Mostly zeros (a sparse count map): the range widens to the maximum.
  std::vector<float> sparse(1000, 0.0f);
  sparse[7] = 4.0f;
  std::tie(lo, hi) = plot::robust_limits(sparse, 0, 99);
  EXPECT_EQ(lo, 0.0);
  EXPECT_EQ(hi, 4.0);
  std::tie(lo, hi) = plot::robust_limits(std::vector<float>(5, 2.0f), 1, 99);
  EXPECT_EQ(lo, 2.0);
  EXPECT_EQ(hi, 3.0);
}

TEST(PngPlot, BinnedSumsMeansAndMaxima) {
  plot::ImagePanel p;
  p.ny = 3;
  p.nx = 5;
  p.values = {1, 2, 3, 4, 5,  //
              6, 7, 8, 9, 10,  //
              11, 12, 13, 14, 15};
  p.binning = plot::Binning::Sum;
  plot::ImagePanel s = plot::binned(p, 2);
  ASSERT_EQ(s.ny, 2u);
  ASSERT_EQ(s.nx, 3u);
  // Blocks: rows {0,1} x cols {0,1},{2,3},{4}; row {2} likewise.
  EXPECT_EQ(s.values, (std::vector<float>{16, 24, 15, 23, 27, 15}));
  EXPECT_EQ(s.dx, 2.0);
  p.binning = plot::Binning::Max;
  EXPECT_EQ(plot::binned(p, 2).values, (std::vector<float>{7, 9, 10, 12, 14, 15}));
  p.binning = plot::Binning::Mean;
  EXPECT_EQ(plot::binned(p, 2).values, (std::vector<float>{4, 6, 7.5, 11.5, 13.5, 15}));
  EXPECT_EQ(plot::display_factor(600, 2100), 5u);  // 2100 / 480 -> 5
  EXPECT_EQ(plot::display_factor(10, 10), 1u);
}

TEST(PngPlot, WritesValidPngFilesOfTheFigureSize) {
  TempDir dir("png_plot");
  plot::LinePanel lines{"Two series", "frame", "value", {}, {}, {}, true};
  lines.series.push_back({"sine", {0, 1, 2, 3, 4}, {0, 0.8, 0.9, 0.1, -0.7}, plot::Series::Style::Line, -1});
  lines.series.push_back({"points", {0, 1, 2, 3, 4}, {1, std::nan(""), 0.5, 0.2, 0.3},
                          plot::Series::Style::Points, -1});
  plot::ImagePanel image;
  image.title = "Image";
  image.ny = 60;
  image.nx = 900;  // more cells than the box: binned before drawing
  image.colorbar_label = "electron";
  for (std::size_t i = 0; i < image.ny * image.nx; ++i) image.values.push_back(static_cast<float>(i % 97));
  plot::HistogramPanel histogram{"Histogram", "value", "count", {1, 2, 2, 3, 3, 3, std::nan("")}, 3, {}, true};
  const fs::path path = dir.path() / "figure.png";
  plot::write_png(path, plot::Figure{640, 900, {lines, image, histogram}, {1, 1, 1}});
  const PngHeader h = read_png_header(path);
  EXPECT_TRUE(h.valid);
  EXPECT_EQ(h.width, 640u);
  EXPECT_EQ(h.height, 900u);
  EXPECT_FALSE(fs::exists(path.string() + ".partial"));
  // Many figures in one process: PLplot's global state is set up and torn down each time.
  for (int i = 0; i < 5; ++i) plot::write_png(dir.path() / ("again" + std::to_string(i) + ".png"),
                                              plot::Figure{400, 300, {lines}, {}});
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(read_png_header(dir.path() / ("again" + std::to_string(i) + ".png")).valid);
}

TEST(PngPlot, UnwritableFileIsAnIoErrorNamingIt) {
  plot::LinePanel lines{"t", "x", "y", {{"a", {0, 1}, {0, 1}, plot::Series::Style::Line, -1}}, {}, {}, true};
  try {
    plot::write_png("/nonexistent-dir/x.png", plot::Figure{400, 300, {lines}, {}});
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.png"), std::string::npos) << e.what();
  }
}

TEST(PngPlot, RenderRgbFillsTheImageBoxWithTheColourMap) {
  plot::ImagePanel image;
  image.ny = 4;
  image.nx = 8;
  image.values.assign(32, 1.0f);
  image.values[0] = std::nanf("");  // bottom-left cell: left blank (white)
  image.vmin = 0.0;
  image.vmax = 1.0;
  const plot::RgbImage rgb = plot::render_rgb(plot::Figure{600, 400, {image}, {}});
  ASSERT_EQ(rgb.width, 600);
  ASSERT_EQ(rgb.height, 400);
  ASSERT_EQ(rgb.rgb.size(), 600u * 400u * 3u);
  // The box spans x 95..(600-30-135)=435 and y 34..(400-62)=338 (margins in png_plot.cpp).
  auto pixel = [&](int x, int y) {
    const std::size_t i = (static_cast<std::size_t>(y) * 600 + static_cast<std::size_t>(x)) * 3;
    return std::array<std::uint8_t, 3>{rgb.rgb[i], rgb.rgb[i + 1], rgb.rgb[i + 2]};
  };
  EXPECT_EQ(pixel(300, 150), plot::viridis(1.0));
  EXPECT_EQ(pixel(110, 330), (std::array<std::uint8_t, 3>{255, 255, 255}));
  EXPECT_EQ(pixel(20, 20), (std::array<std::uint8_t, 3>{255, 255, 255}));  // margin
  EXPECT_EQ(plot::viridis(0.0), (std::array<std::uint8_t, 3>{68, 1, 84}));
  EXPECT_EQ(plot::viridis(0.5), (std::array<std::uint8_t, 3>{33, 144, 141}));
}

// ---------------------------------------------------------------------------------------
// GIF

TEST(Gif, PaletteHoldsItsOwnColoursExactly) {
  // (The colour cube's black and white are the grey ramp's ends.)
  for (int i = 0; i < 256; ++i) {
    const auto c = gif::palette_colour(static_cast<std::uint8_t>(i));
    EXPECT_EQ(gif::palette_colour(gif::palette_index(c[0], c[1], c[2])), c) << i;
  }
  EXPECT_EQ(gif::palette_index(0, 0, 0), 0);
  EXPECT_EQ(gif::palette_index(255, 255, 255), 159);
  EXPECT_EQ(gif::palette_colour(gif::palette_index(255, 0, 0)), (std::array<std::uint8_t, 3>{255, 0, 0}));
}

TEST(Gif, AnimatedGifHasEveryFrameTheDelayAndLoops) {
  TempDir dir("gif");
  const fs::path path = dir.path() / "anim.gif";
  {
    gif::AnimatedGif g(path, 32, 16, 25);
    for (int f = 0; f < 7; ++f) {
      std::vector<std::uint8_t> rgb(32 * 16 * 3);
      for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>((i * 7 + static_cast<std::size_t>(f) * 31) % 256);
      g.add_frame(rgb);
    }
    EXPECT_FALSE(fs::exists(path));  // only after close
    g.close();
    EXPECT_EQ(g.frames(), 7u);
  }
  const gif::GifSummary s = gif::inspect_gif(path);
  EXPECT_EQ(s.width, 32);
  EXPECT_EQ(s.height, 16);
  EXPECT_EQ(s.frames, 7u);
  EXPECT_EQ(s.delay_cs, 25);
  EXPECT_TRUE(s.loops);
  EXPECT_THROW(gif::AnimatedGif(dir.path() / "no" / "such" / "dir.gif", 4, 4, 10), IoError);
  gif::AnimatedGif wrong(dir.path() / "wrong.gif", 4, 4, 10);
  EXPECT_THROW(wrong.add_frame(std::vector<std::uint8_t>(10)), InternalError);
}

// ---------------------------------------------------------------------------------------
// Traces and white light

constexpr std::size_t kNy = 40, kNx = 120;

/// Background 1 everywhere; a peaked 5 × 5 0th order centred on (30, 20) that reaches no
/// further than 2 px; the +1 trace adds `plus` on row 22 for x in [45, 120), the −1 trace
/// `minus` on row 18 for x in [0, 15].
std::vector<float> synthetic_frame(float plus, float minus) {
  std::vector<float> f(kNy * kNx, 1.0f);
  for (int dy = -2; dy <= 2; ++dy)
    for (int dx = -2; dx <= 2; ++dx)
      f[static_cast<std::size_t>(20 + dy) * kNx + static_cast<std::size_t>(30 + dx)] +=
          1000.0f / static_cast<float>(1 + dx * dx + dy * dy);
  for (std::size_t x = 45; x < kNx; ++x) f[22 * kNx + x] += plus;
  for (std::size_t x = 0; x <= 15; ++x) f[18 * kNx + x] += minus;
  return f;
}

steps::ApertureOptions narrow() {
  steps::ApertureOptions o;
  o.half_width = 3;
  o.zeroth_radius = 10;
  o.degree = 2;
  return o;
}

TEST(WhiteLight, SyntheticFrameEqualsTheHandComputedSum) {
  const std::vector<float> frame = synthetic_frame(50.0f, 30.0f);
  EXPECT_EQ(steps::brightest_patch(frame, kNy, kNx), (std::pair<double, double>{30.0, 20.0}));
  // +1: columns ceil(30 + 10) = 40 .. 119 (80), rows 22 ± 3 (7): 80·7·1 + 75 columns · 50 = 4310.
  const auto plus = steps::find_trace_aperture(frame, kNy, kNx, 30, 20, "+1", narrow());
  EXPECT_EQ(plus.x_begin, 40u);
  EXPECT_EQ(plus.x_end, 120u);
  EXPECT_EQ(plus.columns_detected, 75u);
  EXPECT_EQ(plus.y_begin.front(), 19u);
  EXPECT_EQ(plus.y_end.back(), 26u);
  EXPECT_EQ(plus.pixels(), 560u);
  EXPECT_DOUBLE_EQ(steps::aperture_sum(frame, kNx, plus), 4310.0);
  // −1: columns 0 .. floor(30 − 10) = 20 (21), rows 18 ± 3: 21·7·1 + 16 columns · 30 = 627.
  const auto minus = steps::find_trace_aperture(frame, kNy, kNx, 30, 20, "-1", narrow());
  EXPECT_EQ(minus.x_begin, 0u);
  EXPECT_EQ(minus.x_end, 21u);
  EXPECT_EQ(minus.columns_detected, 16u);
  EXPECT_EQ(minus.y_begin.front(), 15u);
  EXPECT_DOUBLE_EQ(steps::aperture_sum(frame, kNx, minus), 627.0);
  EXPECT_THROW(steps::find_trace_aperture(frame, kNy, kNx, 30, 20, "+2", narrow()), ConfigError);
}

TEST(WhiteLight, ApertureFollowsATiltedTraceAndIgnoresACosmicRay) {
  // Trace centre y = 8 + 0.2·x (x ≥ 45), Gaussian profile σ = 1.2, plus a cosmic ray far from
  // the trace in column 80 that is brighter than the trace there.
  std::vector<float> frame = synthetic_frame(0.0f, 0.0f);
  for (std::size_t x = 45; x < kNx; ++x) {
    const double yc = 8 + 0.2 * static_cast<double>(x) - 10;  // 7 .. 21.8
    for (std::size_t y = 0; y < kNy; ++y) {
      const double d = (static_cast<double>(y) - yc) / 1.2;
      frame[y * kNx + x] += static_cast<float>(200 * std::exp(-0.5 * d * d));
    }
  }
  frame[35 * kNx + 80] += 5000.0f;
  const auto a = steps::find_trace_aperture(frame, kNy, kNx, 30, 20, "+1", narrow());
  ASSERT_EQ(a.centre.size(), 80u);
  for (std::size_t x = 45; x < kNx; ++x)
    EXPECT_NEAR(a.centre[x - 40], 0.2 * static_cast<double>(x) - 2, 0.1) << "column " << x;
  EXPECT_EQ(a.columns_detected, 74u);  // 75 columns with the trace, less the cosmic ray's
}

TEST(WhiteLight, NoTraceFollowsTheZerothOrderRow) {
  const std::vector<float> frame = synthetic_frame(0.0f, 0.0f);
  const auto a = steps::find_trace_aperture(frame, kNy, kNx, 30, 20, "+1", narrow());
  EXPECT_EQ(a.columns_detected, 0u);
  EXPECT_EQ(a.y_begin.front(), 17u);
  EXPECT_EQ(a.y_end.front(), 24u);
}

TEST(Quicklook, DqCategoriesByPriority) {
  EXPECT_EQ(steps::dq_category(0, true), 0);
  EXPECT_EQ(steps::dq_category(16, true), 1);
  EXPECT_EQ(steps::dq_category(16, false), 0);
  EXPECT_EQ(steps::dq_category(16 | dq::hst_flagged, false), 2);
  EXPECT_EQ(steps::dq_category(dq::non_finite | dq::hst_flagged, true), 3);
  EXPECT_EQ(steps::dq_category(dq::smooth_outlier | dq::non_finite, true), 4);
  EXPECT_EQ(steps::dq_category(dq::led_outlier | dq::smooth_outlier, true), 5);
  EXPECT_EQ(steps::dq_category(dq::temporal_outlier | dq::led_outlier | 4096, true), 6);
}

// ---------------------------------------------------------------------------------------
// Steps, run phase by phase as the engine does (tests/support/emulated_ranks.hpp).

using tessera::testing::make_ranks;
using tessera::testing::run_like_engine;

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

/// dq: pixel (2, 3) a temporal outlier in frames 0–2, (5, 5) an LED hit in frame 4, (7, 7)
/// HST-flagged (bit 4 and hst_flagged) in every frame.
void plots_frame(std::size_t t, std::span<float> data, std::span<std::uint32_t> dq) {
  constexpr std::size_t nx = 16;
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 7) + static_cast<float>(t);
  if (t <= 2) dq[2 * nx + 3] |= dq::temporal_outlier;
  if (t == 4) dq[5 * nx + 5] |= dq::led_outlier;
  dq[7 * nx + 7] |= 4u | dq::hst_flagged;
}

void add_products(Dataset& d) {
  const std::size_t nt = d.shape().nt;
  auto vec = [&](const std::string& name, std::vector<double> v) {
    d.add_frame_vector({name, "1", name}).values = std::move(v);
  };
  vec("fixed_iter_outliers", {1, 1, 1, 0, 0});
  vec("led_outliers", {0, 0, 0, 0, 1});
  vec("hst_dq_replaced", {1, 1, 1, 1, 1});
  vec("bkg_uniform_value", {15.0, 15.2, 14.9, 15.1, 15.0});
  vec("bkg_uniform_median_before", {15.0, 15.2, 14.9, 15.1, 15.0});
  vec("bkg_uniform_median_after", {0.01, -0.02, 0.0, 0.01, 0.0});
  vec("track_0th_x_shift", {0, 0.01, 0.03, 0.04, 0.06});
  vec("track_0th_y_shift", {0, -0.01, 0.0, 0.01, 0.0});
  vec("white_light", {1.0e6, 1.001e6, 0.99e6, 0.991e6, 1.0e6});
  Image column;
  column.info = {"bkg_column_value", "electron", "column background"};
  column.dim_y = "time";
  column.ny = nt;
  column.nx = d.shape().nx;
  for (std::size_t i = 0; i < column.ny * column.nx; ++i) column.values.push_back(static_cast<float>(i % 5));
  d.images()["bkg_column_value"] = column;
}

TEST(PlotsStep, WritesTheFiguresOfTheProductsThatExistAndKeepsTheOutlierMaps) {
  const CubeShape shape{5, 12, 16};
  for (int level : {1, 2}) {
    TempDir dir("plots_step");
    auto ranks = make_ranks(shape, 1, plots_frame);
    add_products(ranks[0]);
    run_like_engine<steps::Plots>(steps::PlotsParams{}, ranks, dir.path(), level);
    const Dataset& d = ranks[0];
    // Maps: counts worked out from plots_frame. The smooth map is dropped (step absent, all zero).
    ASSERT_TRUE(d.images().count("outlier_map_temporal"));
    EXPECT_EQ(d.images().at("outlier_map_temporal").values[2 * 16 + 3], 3.0f);
    EXPECT_EQ(d.images().at("outlier_map_led").values[5 * 16 + 5], 1.0f);
    EXPECT_EQ(d.images().at("outlier_map_hst").values[7 * 16 + 7], 5.0f);
    double total = 0;
    for (float v : d.images().at("outlier_map_temporal").values) total += v;
    EXPECT_EQ(total, 3.0);
    EXPECT_FALSE(d.images().count("outlier_map_smooth"));
    EXPECT_EQ(d.images().at("outlier_map_temporal").info.units, "1");

    std::vector<std::string> want = {"CR_location.png",         "LED_location_of_all_corrected_pixels.png",
                                     "bkg_correction_uniform.png", "bkg_values_column.png",
                                     "bkg_values_uniform.png",  "displacements.png",
                                     "outliers_per_frame.png"};
    if (level == 2) want.insert(want.end(), {"HST_DQ_location.png", "outlier_count_histogram.png", "white_light.png"});
    std::sort(want.begin(), want.end());
    EXPECT_EQ(files_in(dir.path()), want) << "level " << level;
    for (const auto& name : want) {
      const PngHeader h = read_png_header(dir.path() / name);
      EXPECT_TRUE(h.valid) << name;
      EXPECT_EQ(h.width, 1000u) << name;
      EXPECT_GE(h.height, 200u) << name;
    }
  }
}

TEST(PlotsStep, MapsAreTheSameOnOneAndTwoRanksAndNothingIsWrittenWithoutAPlotLevel) {
  const CubeShape shape{5, 12, 16};
  TempDir dir("plots_ranks");
  auto one = make_ranks(shape, 1, plots_frame);
  auto two = make_ranks(shape, 2, plots_frame);
  for (auto* ranks : {&one, &two})
    for (auto& d : *ranks) add_products(d);
  run_like_engine<steps::Plots>(steps::PlotsParams{}, one, dir.path(), 0);
  run_like_engine<steps::Plots>(steps::PlotsParams{}, two, dir.path(), 0);
  for (const char* name : {"outlier_map_temporal", "outlier_map_led", "outlier_map_hst"}) {
    EXPECT_EQ(one[0].images().at(name).values, two[0].images().at(name).values) << name;
    EXPECT_EQ(two[1].images().at(name).values, two[0].images().at(name).values) << name;
  }
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(PlotsStep, WithoutProductsOnlyMapsWithFlagsAreKeptAndDrawn) {
  // No step's per-frame vector exists; one pixel carries smooth_outlier in frame 1 (on the
  // second of two ranks): phase 1 must see the summed map to keep and draw it.
  TempDir dir("plots_bare");
  auto ranks = make_ranks({4, 8, 8}, 2, [](std::size_t t, std::span<float> data, std::span<std::uint32_t> dq) {
    std::fill(data.begin(), data.end(), 1.0f);
    if (t == 3) dq[9] = dq::smooth_outlier;
  });
  run_like_engine<steps::Plots>(steps::PlotsParams{}, ranks, dir.path(), 2);
  for (const auto& d : ranks) {
    ASSERT_EQ(d.images().size(), 1u);
    EXPECT_EQ(d.images().at("outlier_map_smooth").values[9], 1.0f);
  }
  EXPECT_EQ(files_in(dir.path()), (std::vector<std::string>{"smooth_location.png"}));
}

/// Frame t: the synthetic frame with traces of 50 − 2t (+1) and 30 − t (−1), and dq flags.
void quicklook_frame(std::size_t t, std::span<float> data, std::span<std::uint32_t> dq) {
  const auto f = synthetic_frame(50.0f - 2.0f * static_cast<float>(t), 30.0f - static_cast<float>(t));
  std::copy(f.begin(), f.end(), data.begin());
  dq[(t % kNy) * kNx + 100] = dq::temporal_outlier;
  dq[5 * kNx + 5] = 4096;
}

double expected_white_light(std::size_t t, bool plus, bool minus) {
  // From WhiteLight.SyntheticFrameEqualsTheHandComputedSum with the traces' amplitudes.
  const double a = 50.0 - 2.0 * static_cast<double>(t), b = 30.0 - static_cast<double>(t);
  return (plus ? 560.0 + 75.0 * a : 0.0) + (minus ? 147.0 + 16.0 * b : 0.0);
}

TEST(QuicklookStep, WhiteLightGifsAndTemporaryImagesOnOneAndTwoRanks) {
  const CubeShape shape{8, kNy, kNx};
  steps::QuicklookParams p;
  p.traces_included = {"+1", "-1"};
  p.aperture_half_width = 3;
  p.zeroth_order_radius = 10;
  p.display_width = 40;  // 3 × 3 blocks: 14 × 40 cells
  std::vector<double> first;
  for (int nranks : {1, 2}) {
    TempDir dir("quicklook_step");
    auto ranks = make_ranks(shape, nranks, quicklook_frame);
    run_like_engine<steps::Quicklook>(p, ranks, dir.path(), 1);
    for (const auto& d : ranks) {
      const auto& white = d.frame_vectors().at("white_light");
      EXPECT_EQ(white.info.units, "electron");
      for (std::size_t t = 0; t < shape.nt; ++t)
        EXPECT_DOUBLE_EQ(white.values[t], expected_white_light(t, true, true)) << "frame " << t;
      EXPECT_TRUE(d.images().empty()) << "temporary images left behind";
    }
    EXPECT_EQ(files_in(dir.path()), (std::vector<std::string>{"quicklookup.gif", "quicklookupDQ.gif"}));
    for (const char* name : {"quicklookup.gif", "quicklookupDQ.gif"}) {
      const gif::GifSummary s = gif::inspect_gif(dir.path() / name);
      EXPECT_EQ(s.frames, shape.nt) << name;
      EXPECT_EQ(s.width, 800) << name;
      EXPECT_EQ(s.delay_cs, 10) << name;
      EXPECT_TRUE(s.loops) << name;
    }
  }
}

TEST(QuicklookStep, OnlyThePlusOneOrderAndAGivenLocation) {
  const CubeShape shape{3, kNy, kNx};
  steps::QuicklookParams p;  // traces_included = ["+1"]
  p.aperture_half_width = 3;
  p.zeroth_order_radius = 10;
  p.location = std::vector<double>{30.0, 20.0};
  TempDir dir("quicklook_plus");
  auto ranks = make_ranks(shape, 1, quicklook_frame);
  run_like_engine<steps::Quicklook>(p, ranks, dir.path(), 0);
  for (std::size_t t = 0; t < shape.nt; ++t)
    EXPECT_DOUBLE_EQ(ranks[0].frame_vectors().at("white_light").values[t], expected_white_light(t, true, false));
  EXPECT_TRUE(files_in(dir.path()).empty());  // save_plots = 0

  p.location = std::vector<double>{30.0};
  auto bad = make_ranks(shape, 1, quicklook_frame);
  try {
    run_like_engine<steps::Quicklook>(p, bad, dir.path(), 0);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("location"), std::string::npos) << e.what();
  }
}

}  // namespace
