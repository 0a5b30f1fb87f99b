// extract_box and extract_optimal: the aperture geometry and box sums checked by hand and
// against the notebook's aperture_extraction transcribed literally; the background annulus,
// error propagation, bad pixels, trace/constant/gaussian_fits centres, wavelength averaging,
// both dispersion axes; extract_box on 1, 2 and 3 emulated ranks; Horne's optimal extraction
// on a Monte Carlo of a Gaussian trace with known noise (bias, scatter against the predicted
// 1/sqrt(Σ P²/V), the gain over the box), and a cosmic ray it must reject.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "steps/spectra/aperture.hpp"
#include "steps/spectra/extract_box.hpp"
#include "steps/spectra/extract_optimal.hpp"
#include "support/emulated_ranks.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"
#include "tessera/runner.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;
using spectra::ApertureShape;
using spectra::LineAperture;
using tessera::testing::run_like_engine;

/// Frame-major (t, y, x) cubes of a synthetic visit.
struct Cubes {
  CubeShape shape;
  std::vector<float> data, err, var_poisson, var_rnoise, profile;
  std::vector<std::uint32_t> dq;
  explicit Cubes(CubeShape s) : shape(s), data(s.elements()), err(s.elements(), 1.0f), dq(s.elements(), 0) {}
  std::size_t at(std::size_t t, std::size_t y, std::size_t x) const { return (t * shape.ny + y) * shape.nx + x; }
};

Image make_image(const std::string& name, std::size_t ny, std::size_t nx, std::vector<float> values,
                 std::string dim_y, std::string dim_x) {
  Image image;
  image.info = {name, "", ""};
  image.ny = ny;
  image.nx = nx;
  image.dim_y = std::move(dim_y);
  image.dim_x = std::move(dim_x);
  image.values = std::move(values);
  return image;
}

void add_cubes(Dataset& d, const Cubes& c, bool frames) {
  auto put = [&](const std::string& name, const std::string& units, const std::vector<float>& values) {
    if (values.empty()) return;
    d.add_cube({name, units, ""}, ElementType::Float32);
    if (frames) {
      auto slab = d.frames<float>(name);
      for (std::size_t t = slab.t_begin; t < slab.t_end; ++t)
        std::memcpy(slab.frame(t).data(), values.data() + c.at(t, 0, 0), c.shape.frame_pixels() * sizeof(float));
    } else {
      for (auto& block : d.tiles<float>(name))
        for (std::size_t i = 0; i < block.pixels(); ++i) {
          const std::size_t y = block.tile.y0 + i / block.tile.width(), x = block.tile.x0 + i % block.tile.width();
          for (std::size_t t = 0; t < c.shape.nt; ++t) block.series(i)[t] = values[c.at(t, y, x)];
        }
    }
  };
  put("data", "electron", c.data);
  put("err", "electron", c.err);
  put("var_poisson", "electron2", c.var_poisson);
  put("var_rnoise", "electron2", c.var_rnoise);
  put("profile", "1", c.profile);
  d.add_cube({"dq", "1", ""}, ElementType::UInt32);
  if (frames) {
    auto slab = d.frames<std::uint32_t>("dq");
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t)
      std::memcpy(slab.frame(t).data(), c.dq.data() + c.at(t, 0, 0), c.shape.frame_pixels() * sizeof(std::uint32_t));
  } else {
    for (auto& block : d.tiles<std::uint32_t>("dq"))
      for (std::size_t i = 0; i < block.pixels(); ++i) {
        const std::size_t y = block.tile.y0 + i / block.tile.width(), x = block.tile.x0 + i % block.tile.width();
        for (std::size_t t = 0; t < c.shape.nt; ++t) block.series(i)[t] = c.dq[c.at(t, y, x)];
      }
  }
}

/// `nranks` emulated ranks in frame slabs holding the cubes and the given images.
std::vector<Dataset> frame_ranks(const Cubes& c, int nranks, const std::vector<Image>& images = {}) {
  std::vector<Dataset> ranks;
  for (int r = 0; r < nranks; ++r) {
    Dataset d(c.shape, Partition::frames(c.shape, nranks), r);
    add_cubes(d, c, true);
    for (const auto& image : images) d.images()[image.info.name] = image;
    ranks.push_back(std::move(d));
  }
  return ranks;
}

/// extract_optimal on one process as the engine runs it: phase 0 on the pixel time series
/// (one tile), phases 1 and 2 on frames.
Dataset run_optimal(const ExtractOptimalParams& p, const Cubes& c, const std::vector<Image>& images = {}) {
  Logger log(0, Verbosity::Quiet);
  const StepIO io = ExtractOptimal::io(p);
  Dataset tiles(c.shape, Partition::tiles(c.shape, 1, c.shape.ny, c.shape.nx), 0);
  add_cubes(tiles, c, false);
  for (const auto& image : images) tiles.images()[image.info.name] = image;
  prepare_outputs(tiles, io);
  {
    StepContext context(tiles, log, nullptr, {}, 0);
    ExtractOptimal::run(p, context);
  }
  Dataset frames(c.shape, Partition::frames(c.shape, 1), 0);
  add_cubes(frames, c, true);
  frames.images() = tiles.images();
  frames.frame_vectors() = tiles.frame_vectors();
  for (std::size_t phase = 1; phase < 3; ++phase) {
    StepContext context(frames, log, nullptr, {}, phase);
    ExtractOptimal::run(p, context);
  }
  return frames;
}

/// Fraction of a unit Gaussian (centre c, sigma s) that falls on pixel j.
double gauss_pixel(double j, double c, double s) {
  const double k = 1.0 / (s * std::sqrt(2.0));
  return 0.5 * (std::erf((j + 0.5 - c) * k) - std::erf((j - 0.5 - c) * k));
}

/// The notebook's aperture_extraction (section 5.3) for one column, method 'sum', without
/// background, transcribed line by line: (flux, error).
std::pair<double, double> notebook_sum(const std::vector<double>& column, const std::vector<double>& error, double y,
                                       double aperture_radius) {
  const auto max_column = static_cast<double>(column.size() - 1);
  auto at = [&](const std::vector<double>& v, double i) { return v[static_cast<std::size_t>(std::min(i, max_column))]; };
  const double left_side_ap = std::max(y - aperture_radius, 0.0);
  const double right_side_ap = std::min(max_column, y + aperture_radius);
  double l_integer = 0, r_integer = 0;
  const double l_decimal = std::modf(left_side_ap, &l_integer), r_decimal = std::modf(right_side_ap, &r_integer);
  std::vector<double> variance(error.size());
  for (std::size_t i = 0; i < error.size(); ++i) variance[i] = error[i] * error[i];
  double l_fraction, l_var, r_fraction, r_var;
  std::size_t l_limit, r_limit;
  if (l_decimal < 0.5) {
    l_fraction = (0.5 - l_decimal) * at(column, l_integer);
    l_var = (0.5 - l_decimal) * (0.5 - l_decimal) * at(variance, l_integer);
    l_limit = static_cast<std::size_t>(l_integer) + 1;
  } else {
    l_fraction = (1.0 - (l_decimal - 0.5)) * at(column, l_integer + 1);
    l_var = std::pow(1.0 - (l_decimal - 0.5), 2) * at(variance, l_integer + 1);
    l_limit = static_cast<std::size_t>(l_integer) + 2;
  }
  if (r_decimal < 0.5) {
    r_fraction = (1.0 - (0.5 - r_decimal)) * at(column, r_integer);
    r_var = std::pow(1.0 - (0.5 - r_decimal), 2) * at(variance, r_integer);
    r_limit = static_cast<std::size_t>(r_integer);
  } else {
    r_fraction = (r_decimal - 0.5) * at(column, r_integer + 1);
    r_var = std::pow(r_decimal - 0.5, 2) * at(variance, r_integer + 1);
    r_limit = static_cast<std::size_t>(r_integer) + 1;
  }
  double sum = 0, var = 0;
  for (std::size_t i = l_limit; i < r_limit; ++i) {
    sum += column[i];
    var += variance[i];
  }
  return {l_fraction + r_fraction + sum, std::sqrt(var + l_var + r_var)};
}

ExtractBoxParams box_params(double centre, std::optional<double> radius) {
  ExtractBoxParams p;
  p.trace_position = "constant";
  p.aperture_center = centre;
  p.aperture_radius = radius;
  p.wavelength_map = "1.5";
  return p;
}

// ---------------------------------------------------------------------------------------------
// Geometry.

TEST(Aperture, FractionalEdgesFollowTheNotebookRule) {
  // c = 10.3, r = 2.6: [7.7, 12.9]. Pixel 8 covers [7.5, 8.5], 0.8 of it inside; pixels 9..12
  // whole; pixel 13 covers [12.5, 13.5], 0.4 inside (the notebook: l_decimal 0.7 >= 0.5 gives
  // (1 - 0.2) of pixel 8 and l_limit 9; r_decimal 0.9 gives 0.4 of pixel 13 and r_limit 13).
  ApertureShape shape;
  shape.radius = 2.6;
  LineAperture a = shape.at(10.3, 30);
  EXPECT_EQ(a.lo, 9);
  EXPECT_EQ(a.hi, 13);
  EXPECT_EQ(a.left, 8);
  EXPECT_NEAR(a.left_weight, 0.8, 1e-12);
  EXPECT_EQ(a.right, 13);
  EXPECT_NEAR(a.right_weight, 0.4, 1e-12);
  EXPECT_EQ(a.first(), 8);
  EXPECT_EQ(a.end(), 14);
  // c = 10.7: [8.1, 13.3]: 0.4 of pixel 8, 9..12, 0.8 of pixel 13.
  a = shape.at(10.7, 30);
  EXPECT_EQ(a.left, 8);
  EXPECT_NEAR(a.left_weight, 0.4, 1e-12);
  EXPECT_EQ(a.right, 13);
  EXPECT_NEAR(a.right_weight, 0.8, 1e-12);
  // At the line's start the aperture is cut at -0.5: c = 1, r = 2.6 gives pixels 0..3 whole
  // and 0.1 of pixel 4.
  a = shape.at(1.0, 30);
  EXPECT_EQ(a.lo, 0);
  EXPECT_EQ(a.hi, 4);
  EXPECT_EQ(a.left, -1);
  EXPECT_EQ(a.right, 4);
  EXPECT_NEAR(a.right_weight, 0.1, 1e-12);
  // ...and at its end at n - 0.5: c = 28.5 on 30 pixels: [25.9, 29.5]: 0.6 of pixel 26
  // ([25.5, 26.5]), 27..29 whole.
  a = shape.at(28.5, 30);
  EXPECT_EQ(a.lo, 27);
  EXPECT_EQ(a.hi, 30);
  EXPECT_EQ(a.left, 26);
  EXPECT_NEAR(a.left_weight, 0.6, 1e-12);
  EXPECT_EQ(a.right, -1);
  EXPECT_TRUE(shape.at(NAN, 30).empty());
  EXPECT_TRUE(shape.at(-10.0, 30).empty());
  // The box: whole pixels round(c) - left .. round(c) + right.
  ApertureShape box;
  box.left_width = 2;
  box.right_width = 3;
  a = box.at(10.6, 30);
  EXPECT_EQ(a.lo, 9);
  EXPECT_EQ(a.hi, 15);
  EXPECT_EQ(a.left, -1);
  EXPECT_EQ(a.right, -1);
  a = box.at(0.4, 30);  // cut at the edge
  EXPECT_EQ(a.lo, 0);
  EXPECT_EQ(a.hi, 4);
}

TEST(Aperture, BackgroundAnnulusLeavesOutEveryPixelTheApertureTouches) {
  ApertureShape shape;
  shape.radius = 2.6;
  const LineAperture a = shape.at(10.3, 30);  // touches 8..13
  std::vector<std::int64_t> got;
  spectra::for_each_background_pixel(a, 10.3, 6.0, 30, [&](std::int64_t j) { got.push_back(j); });
  // Centres within 6 of 10.3: 5..16.
  EXPECT_EQ(got, (std::vector<std::int64_t>{5, 6, 7, 14, 15, 16}));
}

TEST(Aperture, GaussianFitFindsCentreAndWidth) {
  std::vector<double> x, y;
  for (int j = 30; j <= 42; ++j) {
    x.push_back(j);
    y.push_back(500.0 * std::exp(-0.5 * std::pow((j - 36.27) / 1.4, 2)));
  }
  const spectra::GaussianFit fit = spectra::fit_gaussian(x, y);
  ASSERT_TRUE(fit.ok);
  // Converged to 1e-4 pixel (the fit's stopping rule).
  EXPECT_NEAR(fit.centre, 36.27, 1e-4);
  EXPECT_NEAR(fit.sigma, 1.4, 1e-4);
  EXPECT_NEAR(fit.amplitude, 500.0, 0.05);
  std::vector<double> flat(x.size(), -1.0);
  EXPECT_FALSE(spectra::fit_gaussian(x, flat).ok);
}

TEST(Aperture, SquaredUnits) {
  EXPECT_EQ(spectra::squared_units("DN/s"), "DN2/s2");
  EXPECT_EQ(spectra::squared_units("electron"), "electron2");
}

// ---------------------------------------------------------------------------------------------
// extract_box.

/// One integration, dispersion along x, 20 rows × 6 columns: value 10 + y + 100 x, error
/// 1 + 0.1 y.
Cubes column_visit() {
  Cubes c({1, 20, 6});
  for (std::size_t y = 0; y < 20; ++y)
    for (std::size_t x = 0; x < 6; ++x) {
      c.data[c.at(0, y, x)] = static_cast<float>(10.0 + static_cast<double>(y) + 100.0 * static_cast<double>(x));
      c.err[c.at(0, y, x)] = static_cast<float>(1.0 + 0.1 * static_cast<double>(y));
    }
  return c;
}

TEST(ExtractBox, FractionalSumAndErrorByHand) {
  // c = 10.3, r = 2.6: 0.8·v(8) + v(9..12) + 0.4·v(13) with v = 10 + y + 100x:
  // 0.8·18 + (19+20+21+22) + 0.4·23 = 105.6 at x = 0, plus 5.2·100x.
  // Error: sqrt(0.64·1.8² + 1.9² + 2.0² + 2.1² + 2.2² + 0.16·2.3²) = sqrt(19.7800).
  const Cubes c = column_visit();
  auto ranks = frame_ranks(c, 1);
  run_like_engine<ExtractBox>(box_params(10.3, 2.6), ranks);
  const auto& flux = ranks[0].image("flux").values;
  const auto& error = ranks[0].image("flux_error").values;
  ASSERT_EQ(flux.size(), 6u);
  for (std::size_t x = 0; x < 6; ++x) {
    EXPECT_NEAR(flux[x], 105.6 + 520.0 * static_cast<double>(x), 1e-3) << x;
    EXPECT_NEAR(error[x], std::sqrt(19.78), 1e-5) << x;
  }
  EXPECT_EQ(ranks[0].image("flux").info.units, "electron");
  EXPECT_EQ(ranks[0].image("flux").dim_x, "wavelength");
  EXPECT_EQ(ranks[0].image("flux").dim_y, "time");
  EXPECT_EQ(ranks[0].frame_vector("extract_bad_pixels").values[0], 0.0);
}

TEST(ExtractBox, MatchesTheNotebooksAperturesAwayFromTheEdges) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Cubes c({1, 40, 1});
  std::vector<double> column(40), error(40);
  for (std::size_t y = 0; y < 40; ++y) {
    column[y] = c.data[c.at(0, y, 0)] = static_cast<float>(100.0 * u(rng) - 20.0);
    error[y] = c.err[c.at(0, y, 0)] = static_cast<float>(1.0 + 3.0 * u(rng));
  }
  for (int trial = 0; trial < 200; ++trial) {
    const double r = 0.5 + 6.0 * u(rng), centre = r + 1.0 + (37.0 - 2.0 * r) * u(rng);
    auto ranks = frame_ranks(c, 1);
    run_like_engine<ExtractBox>(box_params(centre, r), ranks);
    const auto [flux, err] = notebook_sum(column, error, centre, r);
    EXPECT_NEAR(ranks[0].image("flux").values[0], flux, 1e-4 * (1.0 + std::abs(flux))) << centre << " " << r;
    EXPECT_NEAR(ranks[0].image("flux_error").values[0], err, 1e-5 * err) << centre << " " << r;
  }
}

TEST(ExtractBox, BackgroundAnnulusMedianIsSubtracted) {
  // Annulus of radius 6 about 10.3: pixels 5, 6, 7, 14, 15, 16 with values 15, 16, 17, 24, 25,
  // 26 (+100x): median 20.5 + 100x. Flux 105.6 + 520x - 5.2 (20.5 + 100x) = -1.0.
  Cubes c = column_visit();
  auto p = box_params(10.3, 2.6);
  p.background_radius = 6.0;
  auto ranks = frame_ranks(c, 1);
  run_like_engine<ExtractBox>(p, ranks);
  for (std::size_t x = 0; x < 6; ++x) {
    EXPECT_NEAR(ranks[0].image("aperture_background").values[x], 20.5 + 100.0 * static_cast<double>(x), 1e-4);
    EXPECT_NEAR(ranks[0].image("flux").values[x], -1.0, 2e-3);
    EXPECT_NEAR(ranks[0].image("flux_error").values[x], std::sqrt(19.78), 1e-5);
  }
  // A NaN in the annulus (pixel 16 of column 2) drops out: median of 215, 216, 217, 224, 225 is 217.
  c.data[c.at(0, 16, 2)] = NAN;
  ranks = frame_ranks(c, 1);
  run_like_engine<ExtractBox>(p, ranks);
  EXPECT_NEAR(ranks[0].image("aperture_background").values[2], 217.0, 1e-4);
  EXPECT_NEAR(ranks[0].image("flux").values[2], 105.6 + 520.0 * 2 - 5.2 * 217.0, 2e-3);
}

TEST(ExtractBox, BadPixelsAreLeftOutAndCounted) {
  Cubes c = column_visit();
  c.data[c.at(0, 10, 1)] = NAN;                      // non-finite: always left out
  c.dq[c.at(0, 11, 4)] = 1u;                         // do_not_use: left out with dq_bits_to_skip = [0]
  c.dq[c.at(0, 12, 5)] = 4u;                         // another bit: kept
  auto p = box_params(10.3, 2.6);
  p.dq_bits_to_skip = {0};
  auto ranks = frame_ranks(c, 1);
  run_like_engine<ExtractBox>(p, ranks);
  const auto& flux = ranks[0].image("flux").values;
  const auto& error = ranks[0].image("flux_error").values;
  EXPECT_NEAR(flux[1], 105.6 + 520.0 - 120.0, 1e-3);
  EXPECT_NEAR(error[1], std::sqrt(19.78 - 4.0), 1e-5);
  EXPECT_NEAR(flux[4], 105.6 + 520.0 * 4 - 421.0, 1e-3);
  EXPECT_NEAR(flux[5], 105.6 + 520.0 * 5, 1e-3);
  EXPECT_EQ(ranks[0].frame_vector("extract_bad_pixels").values[0], 2.0);
}

TEST(ExtractBox, TraceCentresMatchConstantRunsAtTheSameCentre) {
  // Three integrations of a Gaussian star moving across the rows; the trace image follows
  // it. Each integration extracted with the trace equals a constant-centre run at its centre.
  const std::vector<double> centres = {10.3, 9.6, 11.2};
  Cubes c({3, 24, 5});
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t y = 0; y < 24; ++y)
      for (std::size_t x = 0; x < 5; ++x) {
        c.data[c.at(t, y, x)] = static_cast<float>(1000.0 * gauss_pixel(static_cast<double>(y), centres[t], 1.5) + 2.0);
        c.err[c.at(t, y, x)] = 1.0f + 0.01f * static_cast<float>(y);
      }
  std::vector<float> trace(3 * 5);
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t x = 0; x < 5; ++x) trace[t * 5 + x] = static_cast<float>(centres[t]);
  auto p = box_params(0, 5.0);
  p.trace_position = "trace";
  auto ranks = frame_ranks(c, 1, {make_image("trace_order1", 3, 5, trace, "time", "x")});
  run_like_engine<ExtractBox>(p, ranks);
  const auto& flux = ranks[0].image("flux").values;
  for (std::size_t t = 0; t < 3; ++t) {
    auto constant = frame_ranks(c, 1);
    run_like_engine<ExtractBox>(box_params(centres[t], 5.0), constant);
    for (std::size_t x = 0; x < 5; ++x) {
      EXPECT_EQ(flux[t * 5 + x], constant[0].image("flux").values[t * 5 + x]);
      // About 1000 · erf(5/(1.5 √2)) + 2 · 10: the star within ±5 plus the pedestal (not
      // exactly: an edge pixel's fraction assumes light spread evenly over the pixel).
      EXPECT_NEAR(flux[t * 5 + x], 1000.0 * std::erf(5.0 / (1.5 * std::sqrt(2.0))) + 20.0, 1.0);
    }
  }
  // The constant aperture at 10.3 loses star light in the integration centred at 11.2.
  auto fixed = frame_ranks(c, 1);
  run_like_engine<ExtractBox>(box_params(10.3, 2.0), fixed);
  EXPECT_LT(fixed[0].image("flux").values[2 * 5], fixed[0].image("flux").values[0] - 50.0);
}

TEST(ExtractBox, WavelengthsAverageTheMapOverWholePixelsAtTheMedianCentre) {
  // Map 1 + 0.01 x + 0.001 y; centres 10.2, 10.6, 10.3 in the three integrations: median 10.3.
  // Radius 2.6: whole pixels 9..12, mean row 10.5. Box 4/4: rows 6..14 about 10, mean 10.
  const std::size_t nt = 3, ny = 24, nx = 5;
  Cubes c({nt, ny, nx});
  std::vector<float> map(ny * nx), trace(nt * nx);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x)
      map[y * nx + x] = static_cast<float>(1.0 + 0.01 * static_cast<double>(x) + 0.001 * static_cast<double>(y));
  const double centre[3] = {10.2, 10.6, 10.3};
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t x = 0; x < nx; ++x) trace[t * nx + x] = static_cast<float>(centre[t]);
  trace[1 * nx + 4] = NAN;  // column 4: centres 10.2, 10.3 -> median 10.25 -> whole pixels 9..12 too
  const std::vector<Image> images = {make_image("trace_order1", nt, nx, trace, "time", "x"),
                                     make_image("wavemap", ny, nx, map, "y", "x")};
  auto p = box_params(0, 2.6);
  p.trace_position = "trace";
  p.wavelength_map = "@wavemap";
  auto ranks = frame_ranks(c, 1, images);
  run_like_engine<ExtractBox>(p, ranks);
  const Image& wave = ranks[0].image("wavelength");
  EXPECT_EQ(wave.ny, 1u);
  EXPECT_EQ(wave.dim_y, "");
  EXPECT_EQ(wave.dim_x, "wavelength");
  EXPECT_EQ(wave.info.units, "micron");
  for (std::size_t x = 0; x < nx; ++x) EXPECT_NEAR(wave.values[x], 1.0105 + 0.01 * static_cast<double>(x), 1e-6);
  p.aperture_radius.reset();
  ranks = frame_ranks(c, 1, images);
  run_like_engine<ExtractBox>(p, ranks);
  for (std::size_t x = 0; x < nx; ++x)
    EXPECT_NEAR(ranks[0].image("wavelength").values[x], 1.010 + 0.01 * static_cast<double>(x), 1e-6);
  // Suffixes name every product.
  p.suffix = "_order2";
  ranks = frame_ranks(c, 1, images);
  run_like_engine<ExtractBox>(p, ranks);
  EXPECT_EQ(ranks[0].images().count("wavelength_order2"), 1u);
  EXPECT_EQ(ranks[0].image("flux_order2").dim_x, "wavelength_order2");
  EXPECT_EQ(ranks[0].frame_vectors().count("psf_sigma_order2"), 1u);
}

TEST(ExtractBox, DispersionAlongYGivesTheTransposedResult) {
  const Cubes cx = column_visit();  // 20 rows x 6 columns, spectrum along x
  Cubes cy({1, 6, 20});             // the same transposed: spectrum along y
  for (std::size_t y = 0; y < 20; ++y)
    for (std::size_t x = 0; x < 6; ++x) {
      cy.data[cy.at(0, x, y)] = cx.data[cx.at(0, y, x)];
      cy.err[cy.at(0, x, y)] = cx.err[cx.at(0, y, x)];
    }
  auto p = box_params(10.3, 2.6);
  p.background_radius = 6.0;
  auto rx = frame_ranks(cx, 1), ry = frame_ranks(cy, 1);
  run_like_engine<ExtractBox>(p, rx);
  p.dispersion_axis = "y";
  run_like_engine<ExtractBox>(p, ry);
  EXPECT_EQ(rx[0].image("flux").values, ry[0].image("flux").values);
  EXPECT_EQ(rx[0].image("flux_error").values, ry[0].image("flux_error").values);
  EXPECT_EQ(ry[0].image("flux").dim_x, "wavelength");
}

/// MIRI-like: dispersion along y, a pixel-integrated Gaussian (sigma 1.3) near column 36.3
/// with a slight tilt, on 72 columns.
double lrs_centre(std::size_t y) { return 36.3 + 0.01 * (static_cast<double>(y) - 20.0); }
Cubes lrs_visit(std::size_t nt, std::size_t ny, double noise, std::uint64_t seed) {
  Cubes c({nt, ny, 72});
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t x = 0; x < 72; ++x) {
        const double star = 2000.0 * gauss_pixel(static_cast<double>(x), lrs_centre(y) + 0.05 * static_cast<double>(t), 1.3);
        c.data[c.at(t, y, x)] = static_cast<float>(star + noise * normal(rng));
        c.err[c.at(t, y, x)] = static_cast<float>(std::max(noise, 1e-3));
      }
  return c;
}

TEST(ExtractBox, GaussianFitsFollowTheTraceAndPsfSigmaIsTheGaussianWidth) {
  const Cubes c = lrs_visit(2, 40, 0.0, 1);
  ExtractBoxParams p;
  p.dispersion_axis = "y";
  p.trace_position = "gaussian_fits";
  p.aperture_center = 36;
  p.aperture_left_width = 8;
  p.aperture_right_width = 8;
  p.fit_smoothing = 3;
  p.wavelength_map = "2.0";
  auto ranks = frame_ranks(c, 1);
  run_like_engine<ExtractBox>(p, ranks);
  const Image& fit = ranks[0].image("trace_fit");
  ASSERT_EQ(fit.ny, 2u);
  ASSERT_EQ(fit.nx, 40u);
  EXPECT_EQ(fit.dim_x, "y");
  // The running median (half-width 3) of a straight line is the line, except within 3 of
  // the ends where its window is cut short.
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t y = 3; y < 37; ++y)
      EXPECT_NEAR(fit.values[t * 40 + y], lrs_centre(y) + 0.05 * static_cast<double>(t), 1e-3) << t << " " << y;
  // Second moment within ±8 of a sigma-1.3 Gaussian, Sheppard-corrected: 1.3.
  for (std::size_t t = 0; t < 2; ++t) EXPECT_NEAR(ranks[0].frame_vector("psf_sigma").values[t], 1.3, 5e-3);
  // Flux: the whole star (2000) within ±8.5 pixels.
  for (float f : ranks[0].image("flux").values) EXPECT_NEAR(f, 2000.0, 0.1);
  for (float w : ranks[0].image("wavelength").values) EXPECT_FLOAT_EQ(w, 2.0f);
}

TEST(ExtractBox, SameOutputOnOneTwoAndThreeRanks) {
  Cubes c = lrs_visit(7, 30, 3.0, 2);
  c.data[c.at(3, 12, 36)] = NAN;
  c.dq[c.at(5, 20, 37)] = 1u;
  for (const char* mode : {"gaussian_fits", "constant"}) {
    ExtractBoxParams p;
    p.dispersion_axis = "y";
    p.trace_position = mode;
    p.aperture_center = 36;
    p.aperture_radius = 3.3;
    p.background_radius = 12.0;
    p.dq_bits_to_skip = {0};
    p.wavelength_map = "3.0";
    std::vector<std::vector<Dataset>> runs;
    for (int n = 1; n <= 3; ++n) {
      runs.push_back(frame_ranks(c, n));
      run_like_engine<ExtractBox>(p, runs.back());
    }
    for (int n = 1; n < 3; ++n)
      for (std::size_t r = 0; r < runs[n].size(); ++r) {
        for (const char* image : {"flux", "flux_error", "aperture_background", "wavelength"}) {
          const auto& a = runs[0][0].image(image).values;
          const auto& b = runs[n][r].image(image).values;
          ASSERT_EQ(a.size(), b.size());
          EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << mode << " " << image << " " << n;
        }
        for (const char* vector : {"psf_sigma", "extract_bad_pixels"})
          EXPECT_EQ(runs[0][0].frame_vector(vector).values, runs[n][r].frame_vector(vector).values) << vector;
      }
    EXPECT_EQ(runs[0][0].frame_vector("extract_bad_pixels").values[3], 1.0);
    EXPECT_EQ(runs[0][0].frame_vector("extract_bad_pixels").values[5], 1.0);
  }
}

template <class F>
void expect_error(F&& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ExtractBox, ErrorsNameTheParameter) {
  const Cubes c = column_visit();
  expect_error(
      [&] {
        auto p = box_params(0, 2.0);
        p.trace_position = "trace";
        auto ranks = frame_ranks(c, 1);
        run_like_engine<ExtractBox>(p, ranks);
      },
      "trace: the dataset has no image 'trace_order1'");
  expect_error(
      [&] {
        auto ranks = frame_ranks(c, 1);
        run_like_engine<ExtractBox>(box_params(36, 2.0), ranks);
      },
      "aperture_center: 36");
  expect_error(
      [&] {
        auto p = box_params(10, 2.0);
        p.trace_position = "trace";
        auto ranks = frame_ranks(c, 1, {make_image("trace_order1", 1, 20, std::vector<float>(20, 10.f), "time", "x")});
        run_like_engine<ExtractBox>(p, ranks);
      },
      "check dispersion_axis");
  expect_error(
      [&] {
        auto p = box_params(10, 2.0);
        p.background_radius = 1.5;
        auto ranks = frame_ranks(c, 1);
        run_like_engine<ExtractBox>(p, ranks);
      },
      "background_radius: must exceed aperture_radius");
  expect_error(
      [&] {
        auto p = box_params(10, 2.0);
        p.wavelength_map = "@nothing";
        auto ranks = frame_ranks(c, 1);
        run_like_engine<ExtractBox>(p, ranks);
      },
      "wavelength_map");
}

// ---------------------------------------------------------------------------------------------
// extract_optimal.

TEST(OptimalKernel, NoiseModelFromTheSeries) {
  // var_poisson = 0.5 data (one ramp segment), var_rnoise 4: factor 0.5, floor 4.
  const std::size_t nt = 9;
  std::vector<float> data(nt), err(nt), vp(nt), vr(nt, 4.0f), scratch(nt);
  for (std::size_t t = 0; t < nt; ++t) {
    data[t] = 100.0f + static_cast<float>(t);
    vp[t] = 0.5f * data[t];
    err[t] = std::sqrt(vp[t] + vr[t]);
  }
  PixelNoise n = pixel_noise(data, err, vp, vr, {}, 0, std::nullopt, scratch);
  EXPECT_FLOAT_EQ(n.factor, 0.5f);
  EXPECT_FLOAT_EQ(n.floor, 4.0f);
  // Without var_rnoise: err² - var_poisson (= 4) or the read_noise parameter.
  n = pixel_noise(data, err, vp, {}, {}, 0, std::nullopt, scratch);
  EXPECT_NEAR(n.floor, 4.0f, 1e-3);
  n = pixel_noise(data, err, vp, {}, {}, 0, 3.0f, scratch);
  EXPECT_FLOAT_EQ(n.floor, 9.0f);
  // Sky subtracted upstream: var_poisson = 0.5 (data + 20) of a faint pixel (data ~ 1 err):
  // no factor, the whole Poisson variance at its median in the floor.
  for (std::size_t t = 0; t < nt; ++t) {
    data[t] = 3.0f + 0.1f * static_cast<float>(t);
    vp[t] = 0.5f * (data[t] + 20.0f);
    err[t] = std::sqrt(vp[t] + vr[t]);
  }
  n = pixel_noise(data, err, vp, vr, {}, 0, std::nullopt, scratch);
  EXPECT_EQ(n.factor, 0.0f);
  EXPECT_NEAR(n.floor, 4.0f + 0.5f * 23.4f, 1e-4);
  // No variance cubes: the median err².
  n = pixel_noise(data, err, {}, {}, {}, 0, std::nullopt, scratch);
  EXPECT_EQ(n.factor, 0.0f);
  EXPECT_NEAR(n.floor, err[4] * err[4], 1e-4);
  // Skipped samples do not count.
  std::vector<std::uint32_t> dq(nt, 1u);
  n = pixel_noise(data, err, vp, vr, dq, 1u, std::nullopt, scratch);
  EXPECT_TRUE(std::isnan(n.floor));
}

TEST(OptimalKernel, NoiseFreeLineGivesTheFluxAndHornesVariance) {
  const std::size_t n = 9;
  std::vector<double> d(n), p(n), floor(n, 25.0), factor(n, 1.0);
  std::vector<std::uint8_t> usable(n, 1);
  double sum_p2_v = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double pj = gauss_pixel(static_cast<double>(j), 4.2, 1.5);
    p[j] = 3.0 * pj;  // any normalisation
    d[j] = 5000.0 * pj;
  }
  double norm = 0;
  for (std::size_t j = 0; j < n; ++j) norm += gauss_pixel(static_cast<double>(j), 4.2, 1.5);
  for (std::size_t j = 0; j < n; ++j) {
    const double pj = gauss_pixel(static_cast<double>(j), 4.2, 1.5) / norm;
    sum_p2_v += pj * pj / (25.0 + 5000.0 * norm * pj);
  }
  const OptimalLine line = extract_optimal_line(d, p, floor, factor, usable, 5.0);
  EXPECT_NEAR(line.flux, 5000.0 * norm, 1e-9 * 5000.0);
  EXPECT_NEAR(line.variance, 1.0 / sum_p2_v, 1e-9 / sum_p2_v);
  EXPECT_EQ(line.rejected, 0u);
}

/// A Gaussian trace along x (sigma 1.3 about row 10.2 of 21) in every one of `nx` columns,
/// flux F per column in electrons, read noise rn, Poisson noise; var_poisson computed from
/// each sample's own value, as ramp fitting does.
struct McVisit {
  Cubes cubes;
  double flux_in_aperture = 0, box_sigma = 0, optimal_sigma = 0;
};
constexpr double kF = 3000.0, kRn = 25.0, kCentre = 10.2, kSigma = 1.3;
constexpr int kHalf = 6;  // the box: rows 4..16
McVisit mc_visit(std::size_t nt, std::size_t nx, std::uint64_t seed) {
  const std::size_t ny = 21;
  McVisit v{Cubes({nt, ny, nx})};
  Cubes& c = v.cubes;
  c.var_poisson.assign(c.shape.elements(), 0.0f);
  c.var_rnoise.assign(c.shape.elements(), static_cast<float>(kRn * kRn));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t x = 0; x < nx; ++x) {
        const double star = kF * gauss_pixel(static_cast<double>(y), kCentre, kSigma);
        const double value = star + std::sqrt(kRn * kRn + star) * normal(rng);
        const std::size_t i = c.at(t, y, x);
        c.data[i] = static_cast<float>(value);
        c.var_poisson[i] = static_cast<float>(std::max(value, 0.0));
        c.err[i] = std::sqrt(c.var_poisson[i] + c.var_rnoise[i]);
      }
  // The 6/6 box about round(10.2) = 10: rows 4..16.
  double in = 0, box_var = 0, sum_p2_v = 0;
  for (int y = 10 - kHalf; y <= 10 + kHalf; ++y) in += gauss_pixel(y, kCentre, kSigma);
  for (int y = 10 - kHalf; y <= 10 + kHalf; ++y) {
    const double star = kF * gauss_pixel(y, kCentre, kSigma), p = star / (kF * in), var = kRn * kRn + star;
    box_var += var;
    sum_p2_v += p * p / var;
  }
  v.flux_in_aperture = kF * in;
  v.box_sigma = std::sqrt(box_var);
  v.optimal_sigma = 1.0 / std::sqrt(sum_p2_v);
  return v;
}

struct Stats {
  double mean = 0, sd = 0;
  std::size_t n = 0;
};
Stats stats_of(const std::vector<double>& v) {
  Stats s;
  s.n = v.size();
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(s.n);
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = std::sqrt(s.sd / static_cast<double>(s.n - 1));
  return s;
}

TEST(ExtractOptimal, MonteCarloUnbiasedWithThePredictedScatterAndRejectsACosmicRay) {
  constexpr std::size_t nt = 500, nx = 8, kCrT = 17, kCrX = 3;
  McVisit v = mc_visit(nt, nx, 12345);
  // A cosmic ray of ~50 sigma on the peak pixel of one line.
  v.cubes.data[v.cubes.at(kCrT, 10, kCrX)] += 2000.0f;
  ExtractOptimalParams p;
  p.trace_position = "constant";
  p.aperture_center = kCentre;
  p.aperture_left_width = p.aperture_right_width = kHalf;
  p.wavelength_map = "1.0";
  const Dataset out = run_optimal(p, v.cubes);
  auto box = frame_ranks(v.cubes, 1);
  ExtractBoxParams pb = box_params(kCentre, std::nullopt);
  pb.aperture_left_width = pb.aperture_right_width = kHalf;
  run_like_engine<ExtractBox>(pb, box);

  const auto& flux = out.images().at("flux").values;
  const auto& error = out.images().at("flux_error").values;
  const auto& box_flux = box[0].image("flux").values;
  std::vector<double> opt, bx, reported;
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t x = 0; x < nx; ++x) {
      if (t == kCrT && x == kCrX) continue;
      opt.push_back(flux[t * nx + x]);
      bx.push_back(box_flux[t * nx + x]);
      reported.push_back(error[t * nx + x]);
    }
  const Stats so = stats_of(opt), sb = stats_of(bx), se = stats_of(reported);
  const double truth = v.flux_in_aperture;
  const double bias_sigmas = (so.mean - truth) / (v.optimal_sigma / std::sqrt(static_cast<double>(so.n)));
  const double predicted_ratio = v.box_sigma / v.optimal_sigma;
  std::printf("optimal: mean - truth = %.3f e (%.2f sigma of the mean), scatter %.2f vs predicted %.2f (ratio %.4f); "
              "reported error %.2f\nbox: mean - truth = %.3f, scatter %.2f vs predicted %.2f; box/optimal scatter "
              "%.4f vs predicted %.4f\n",
              so.mean - truth, bias_sigmas, so.sd, v.optimal_sigma, so.sd / v.optimal_sigma, se.mean,
              sb.mean - truth, sb.sd, v.box_sigma, sb.sd / so.sd, predicted_ratio);
  EXPECT_LT(std::abs(bias_sigmas), 3.0);
  EXPECT_NEAR(so.sd / v.optimal_sigma, 1.0, 0.05);
  EXPECT_NEAR(se.mean / v.optimal_sigma, 1.0, 0.05);
  EXPECT_NEAR(sb.sd / v.box_sigma, 1.0, 0.05);
  EXPECT_NEAR((sb.sd / so.sd) / predicted_ratio, 1.0, 0.05);
  EXPECT_GT(predicted_ratio, 1.25);  // the test means something: optimal clearly wins here

  // The cosmic ray: the box takes it in full, the optimal extraction rejects it.
  const std::size_t cr = kCrT * nx + kCrX;
  EXPECT_GT(box_flux[cr] - truth, 1500.0);
  EXPECT_LT(std::abs(flux[cr] - truth), 4.0 * v.optimal_sigma);
  EXPECT_GE(out.frame_vectors().at("extract_rejected").values[kCrT], 1.0);
  double rejected = 0;
  for (double r : out.frame_vectors().at("extract_rejected").values) rejected += r;
  EXPECT_LE(rejected, 3.0);  // ~nothing else at 5 sigma among 36000 pixels

  // The noise model recovered from the series: factor 1, floor rn² (plus nothing).
  const auto& factor = out.images().at("optimal_poisson_factor").values;
  const auto& floor = out.images().at("optimal_variance_floor").values;
  EXPECT_NEAR(factor[10 * nx + 2], 1.0, 1e-6);
  EXPECT_NEAR(floor[10 * nx + 2], kRn * kRn, 1.0);
  EXPECT_EQ(out.images().at("optimal_variance_floor").info.units, "electron2");
  // psf_sigma: second moment of the 1.3-sigma Gaussian within rows 4..16 (±4.6 sigma). One
  // integration's 8 lines give a noisy figure (the wings' read noise weighs x²); its median
  // over the visit is close.
  std::vector<float> sigmas(out.frame_vectors().at("psf_sigma").values.begin(),
                            out.frame_vectors().at("psf_sigma").values.end());
  std::nth_element(sigmas.begin(), sigmas.begin() + nt / 2, sigmas.end());
  std::printf("psf_sigma: median %.4f (truth 1.3)\n", sigmas[nt / 2]);
  EXPECT_NEAR(sigmas[nt / 2], 1.3, 0.02);
}

TEST(ExtractOptimal, ProfileCubeAndTraceCentresAgreeWithTheMedianImage) {
  // Noise-free: every profile source gives the flux within the aperture exactly.
  McVisit v = mc_visit(6, 4, 1);
  Cubes& c = v.cubes;
  c.profile.assign(c.shape.elements(), 0.0f);
  for (std::size_t t = 0; t < 6; ++t)
    for (std::size_t y = 0; y < 21; ++y)
      for (std::size_t x = 0; x < 4; ++x) {
        const double star = kF * gauss_pixel(static_cast<double>(y), kCentre, kSigma);
        c.data[c.at(t, y, x)] = static_cast<float>(star);
        c.var_poisson[c.at(t, y, x)] = static_cast<float>(star);
        c.err[c.at(t, y, x)] = static_cast<float>(std::sqrt(star + kRn * kRn));
        c.profile[c.at(t, y, x)] = static_cast<float>(gauss_pixel(static_cast<double>(y), kCentre, kSigma));
      }
  std::vector<float> trace(6 * 4, static_cast<float>(kCentre));
  const std::vector<Image> images = {make_image("trace_order1", 6, 4, trace, "time", "x")};
  for (const char* profile : {"median_image", "cube"})
    for (bool median : {false, true}) {
      ExtractOptimalParams p;
      p.profile = profile;
      p.median_spatial_profile = median;
      p.wavelength_map = "1.0";
      p.aperture_radius = 3.0;  // touches rows 7..13
      const Dataset out = run_optimal(p, c, images);
      double in = 0;
      for (int y = 7; y <= 13; ++y) in += gauss_pixel(y, kCentre, kSigma);
      for (float f : out.images().at("flux").values) EXPECT_NEAR(f, kF * in, 1e-3 * kF) << profile << median;
      EXPECT_EQ(out.images().count("optimal_profile"), std::string(profile) == "cube" && !median ? 0u : 1u);
    }
}

}  // namespace
