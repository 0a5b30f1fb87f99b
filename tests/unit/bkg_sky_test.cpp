// bkg_sky pieces with hand-derived answers: the least-squares scale of an exact multiple of
// the sky image, the smooth_fits rule, and reading the sky image.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "steps/background/bkg_sky.hpp"
#include "support/temp_dir.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;
namespace fs = std::filesystem;

/// A sky pattern with structure along both axes, mean about 1.
std::vector<float> sky_pattern(std::size_t ny, std::size_t nx) {
  std::vector<float> p(ny * nx);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x)
      p[y * nx + x] = static_cast<float>(1.0 + 0.2 * std::sin(0.05 * static_cast<double>(x)) +
                                         0.1 * static_cast<double>(y) / static_cast<double>(ny));
  return p;
}

TEST(FitSkyScale, ExactMultipleWithASourceAndOutliersGivesTheMultiple) {
  const std::size_t ny = 80, nx = 120;
  const std::vector<float> sky = sky_pattern(ny, nx);
  std::vector<float> frame(ny * nx);
  for (std::size_t i = 0; i < frame.size(); ++i) frame[i] = 3.5f * sky[i];
  // A bright trace (masked as a source), a hot pixel and a cosmic ray (clipped as outliers).
  for (std::size_t x = 20; x < 100; ++x)
    for (std::size_t y = 30; y < 50; ++y) {
      const double d = (static_cast<double>(y) - 40.0) / 1.5;
      frame[y * nx + x] += static_cast<float>(2000.0 * std::exp(-0.5 * d * d));
    }
  frame[5 * nx + 7] += 300.0f;
  frame[70 * nx + 110] += 5000.0f;
  BkgSkyParams p;
  BkgSkyScratch scratch;
  EXPECT_NEAR(fit_sky_scale(frame, sky, ny, nx, p, scratch), 3.5, 1e-6);
  EXPECT_EQ(scratch.mask[40 * nx + 60], 1);  // the trace is masked
  EXPECT_EQ(scratch.mask[10 * nx + 60], 0);

  // Without the mask and the clipping the trace would pull the scale up: check the setup
  // really tests them (least squares over everything: s = Σ f·p / Σ p²).
  double num = 0, den = 0;
  for (std::size_t i = 0; i < frame.size(); ++i) {
    num += static_cast<double>(frame[i]) * sky[i];
    den += static_cast<double>(sky[i]) * sky[i];
  }
  EXPECT_GT(num / den, 3.5 + 0.5);
}

TEST(FitSkyScale, NoUsablePixelGivesNaN) {
  const std::size_t ny = 20, nx = 64;
  const std::vector<float> sky = sky_pattern(ny, nx);
  const std::vector<float> frame(ny * nx, std::nanf(""));
  BkgSkyParams p;
  BkgSkyScratch scratch;
  EXPECT_TRUE(std::isnan(fit_sky_scale(frame, sky, ny, nx, p, scratch)));
}

TEST(SmoothScales, ConstantWithOneOutlierBecomesConstant) {
  std::vector<double> scales(20, 2.0);
  scales[7] = 5.0;
  const std::vector<double> out = smooth_scales(scales, {}, {}, 2.5);
  for (std::size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], 2.0, 1e-12) << "frame " << i;
}

TEST(SmoothScales, EachOrbitKeepsItsOwnTrendAndOnlyOutliersChange) {
  // Two orbits: a rising line and a parabola, noise ±0.01 alternating, one outlier each.
  std::vector<double> scales, time, orbit;
  for (int i = 0; i < 12; ++i) {
    time.push_back(i);
    orbit.push_back(0);
    scales.push_back(10.0 + 0.3 * i + (i % 2 ? 0.01 : -0.01));
  }
  for (int i = 0; i < 12; ++i) {
    const double u = i - 5.5;
    time.push_back(100 + i);
    orbit.push_back(1);
    scales.push_back(12.0 - 0.05 * u * u + (i % 2 ? 0.01 : -0.01));
  }
  std::vector<double> with_outliers = scales;
  with_outliers[0] += 3.0;   // at an orbit's first frame, where a running median would be biased
  with_outliers[18] -= 2.0;
  const std::vector<double> out = smooth_scales(with_outliers, time, orbit, 2.5);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i == 0 || i == 18) {
      EXPECT_NEAR(out[i], scales[i], 0.03) << "outlier " << i << " takes its orbit's trend";
    } else {
      EXPECT_EQ(out[i], scales[i]) << "frame " << i << " is left alone";
    }
  }
  // Without the outliers nothing stands out, and nothing changes.
  const std::vector<double> untouched = smooth_scales(scales, time, orbit, 2.5);
  EXPECT_EQ(untouched, scales);
}

class SkyImage : public ::testing::Test {
 protected:
  tessera::testing::TempDir dir{"bkg_sky_test"};
  std::string write(const std::string& name, std::size_t ny, std::size_t nx, float base = 1.0f) {
    std::vector<float> values(ny * nx);
    for (std::size_t y = 0; y < ny; ++y)
      for (std::size_t x = 0; x < nx; ++x) values[y * nx + x] = base + static_cast<float>(y * 100 + x);
    const std::string path = (dir.path() / name).string();
    fs::create_directories(fs::path(path).parent_path());
    auto file = fits::File::create(path);
    file.append_image_float("SCI", values, static_cast<long>(ny), static_cast<long>(nx));
    file.close();
    return path;
  }
  static std::string message_of(const BkgSkyParams& p, std::size_t ny, std::size_t nx) {
    try {
      load_sky_image(p, ny, nx);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(SkyImage, ReadsAFileOrTheOnlyFitsInADirectoryAndTakesColumnMedians) {
  const std::string path = write("one/sky.fits", 5, 4);
  BkgSkyParams p;
  p.path_to_pagul = path;
  p.median_columns = false;
  std::vector<float> sky = load_sky_image(p, 5, 4);
  ASSERT_EQ(sky.size(), 20u);
  EXPECT_FLOAT_EQ(sky[2 * 4 + 3], 1.0f + 203.0f);
  p.path_to_pagul = (dir.path() / "one").string();
  p.median_columns = true;  // column x holds 1 + 100 y + x for y = 0..4: median 1 + 200 + x
  sky = load_sky_image(p, 5, 4);
  for (std::size_t y = 0; y < 5; ++y)
    for (std::size_t x = 0; x < 4; ++x) EXPECT_FLOAT_EQ(sky[y * 4 + x], 201.0f + static_cast<float>(x));
}

TEST_F(SkyImage, CutsAtSkyOrigin) {
  BkgSkyParams p;
  p.path_to_pagul = write("big.fits", 10, 12);
  p.median_columns = false;
  p.sky_origin = std::vector<double>{3, 2};
  const std::vector<float> sky = load_sky_image(p, 4, 5);
  EXPECT_FLOAT_EQ(sky[0], 1.0f + 203.0f);
  EXPECT_FLOAT_EQ(sky[3 * 5 + 4], 1.0f + 507.0f);
  p.sky_origin = std::vector<double>{9, 2};
  EXPECT_NE(message_of(p, 4, 5).find("reach outside the 10 x 12 sky image"), std::string::npos) << message_of(p, 4, 5);
}

TEST_F(SkyImage, ClearErrorsNameThePath) {
  BkgSkyParams p;
  p.path_to_pagul = (dir.path() / "missing.fits").string();
  EXPECT_NE(message_of(p, 5, 4).find("path_to_Pagul: '" + p.path_to_pagul + "' does not exist"), std::string::npos)
      << message_of(p, 5, 4);

  fs::create_directories(dir.path() / "empty");
  p.path_to_pagul = (dir.path() / "empty").string();
  EXPECT_NE(message_of(p, 5, 4).find("holds no *.fits file"), std::string::npos) << message_of(p, 5, 4);

  write("two/a.fits", 5, 4);
  write("two/b.fits", 5, 4);
  p.path_to_pagul = (dir.path() / "two").string();
  EXPECT_NE(message_of(p, 5, 4).find("holds 2 *.fits files (a.fits, b.fits)"), std::string::npos)
      << message_of(p, 5, 4);

  p.path_to_pagul = write("shape.fits", 5, 4);
  EXPECT_NE(message_of(p, 6, 4).find("the sky image is 5 x 4 (ny x nx) but the frames are 6 x 4"), std::string::npos)
      << message_of(p, 6, 4);
}

}  // namespace
