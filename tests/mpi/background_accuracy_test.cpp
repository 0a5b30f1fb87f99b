// bkg_sky and bkg_column on a simulated G280 visit (~15 e- sky with gradients along both
// axes and a time variation), against the simulator's truth: frame f's sky is
// truth background[f] × the pattern in sky/g280_sky.fits.
//
// Issue 3's criteria: no frame off by more than 3× the rms, and a per-frame rms against
// the truth of at most 0.1 e-. The printed figures go into the closing note.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "steps/background/bkg_column.hpp"
#include "steps/simulate/uvis_simulator.hpp"
#include "support/temp_dir.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"
#include "tessera/workflow.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;

constexpr std::size_t kFrames = 40, kNy = 256, kNx = 512;

struct Visit {
  tessera::testing::TempDir dir{"background_accuracy"};
  std::vector<double> background;  // truth: mean sky per pixel of each frame
  std::vector<float> pattern;      // truth: the sky's spatial pattern (mean 1)
  std::vector<std::vector<float>> frames;  // the SCI images as simulated, in time order

  Visit() {
    sim::UvisSimOptions o;
    o.out_dir = dir.str();
    o.frames = kFrames;
    o.ny = kNy;
    o.nx = kNx;
    o.seed = 11;
    sim::simulate_uvis(o);
    background = h5::File::open((dir.path() / "truth.h5").string()).read_doubles("background");
    auto sky = fits::File::open_read((dir.path() / "sky" / "g280_sky.fits").string());
    if (!sky.goto_extension("SCI")) throw std::runtime_error("no SCI in the sky image");
    pattern = sky.read_image_float();
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir.path() / "specimages")) names.push_back(e.path().string());
    std::sort(names.begin(), names.end());  // orNNfmMMM: orbit, then frame: time order
    for (const auto& name : names) {
      auto file = fits::File::open_read(name);
      if (!file.goto_extension("SCI")) throw std::runtime_error(name + ": no SCI");
      frames.push_back(file.read_image_float());
    }
  }

  /// Runs one step on the visit and returns the path of the output.
  std::string run(const std::string& id, const std::string& step_toml) {
    const std::string out = (dir.path() / (id + ".h5")).string();
    const std::string text = "[workflow]\nname='" + id + "'\n[input]\nkind='hst_flt_dir'\npath='" + dir.str() +
                             "'\n[output]\npath='" + out + "'\n[[step]]\nid='" + id + "'\n" + step_toml;
    Workflow wf = parse_workflow(text, id + ".toml", {}, builtin_registry());
    run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
    return out;
  }
};

Visit& visit() {
  static Visit v;
  return v;
}

struct Figures {
  double rms = 0, worst = 0, mean = 0;
  std::size_t worst_frame = 0;
};

Figures figures_of(const std::vector<double>& errors) {
  Figures f;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    f.rms += errors[i] * errors[i];
    f.mean += errors[i];
    if (std::fabs(errors[i]) > f.worst) {
      f.worst = std::fabs(errors[i]);
      f.worst_frame = i;
    }
  }
  f.rms = std::sqrt(f.rms / static_cast<double>(errors.size()));
  f.mean /= static_cast<double>(errors.size());
  return f;
}

void print(const char* what, const Figures& f) {
  std::printf("  %-58s rms %.4f e-, mean %+.4f e-, worst %.4f e- (frame %zu, %.2f x rms)\n", what, f.rms, f.mean,
              f.worst, f.worst_frame, f.worst / f.rms);
}

/// Per frame: the error of the subtracted sky's level (mean over pixels of subtracted −
/// true sky) and the rms over pixels of subtracted − true sky.
struct SkyErrors {
  std::vector<double> level, pixel_rms;
};

SkyErrors sky_errors(const std::vector<double>& scales, const std::vector<float>& model) {
  const Visit& v = visit();
  SkyErrors e;
  for (std::size_t t = 0; t < kFrames; ++t) {
    double sum = 0, sum2 = 0;
    for (std::size_t i = 0; i < kNy * kNx; ++i) {
      const double d = scales[t] * model[i] - v.background[t] * v.pattern[i];
      sum += d;
      sum2 += d * d;
    }
    e.level.push_back(sum / static_cast<double>(kNy * kNx));
    e.pixel_rms.push_back(std::sqrt(sum2 / static_cast<double>(kNy * kNx)));
  }
  return e;
}

TEST(BkgSky, ScalesTheExactSkyImageToTheTruth) {
  Visit& v = visit();
  const std::string out =
      v.run("sky_exact", "uses='bkg_sky'\npath_to_Pagul='" + (v.dir.path() / "sky").string() + "'\nmedian_columns=false\n");
  h5::File file = h5::File::open(out);
  const std::vector<double> scale = file.read_doubles("bkg_sky_scale");
  const std::vector<double> raw = file.read_doubles("bkg_sky_scale_raw");
  const std::vector<double> before = file.read_doubles("bkg_sky_median_before");
  const std::vector<double> after = file.read_doubles("bkg_sky_median_after");
  ASSERT_EQ(scale.size(), kFrames);

  std::vector<double> raw_error, error;
  std::size_t replaced = 0;
  for (std::size_t t = 0; t < kFrames; ++t) {
    raw_error.push_back(raw[t] - v.background[t]);  // pattern mean 1: scale error = level error (e-)
    error.push_back(scale[t] - v.background[t]);
    replaced += scale[t] != raw[t] ? 1 : 0;
  }
  const SkyErrors e = sky_errors(scale, v.pattern);
  const Figures raw_f = figures_of(raw_error), f = figures_of(error), pixel = figures_of(e.pixel_rms);
  std::printf("bkg_sky, exact sky image (median_columns = false), %zu frames of %zu x %zu, sky %.1f-%.1f e-:\n",
              kFrames, kNy, kNx, *std::min_element(v.background.begin(), v.background.end()),
              *std::max_element(v.background.begin(), v.background.end()));
  print("raw scale - truth background", raw_f);
  print("smoothed scale - truth background", f);
  print("per-pixel rms of subtracted - true sky", pixel);
  std::printf("  smooth_fits replaced %zu of %zu scales\n", replaced, kFrames);

  EXPECT_LE(f.rms, 0.1);
  EXPECT_LE(f.worst, 3 * f.rms);
  EXPECT_LE(f.rms, 0.03);  // the fit over ~120,000 sky pixels is far better than the criterion
  EXPECT_LE(pixel.worst, 0.1);
  EXPECT_LE(replaced, kFrames / 8);
  for (std::size_t t = 0; t < kFrames; ++t) {
    EXPECT_NEAR(before[t], v.background[t], 0.15 * v.background[t]) << "frame " << t;
    EXPECT_NEAR(after[t], 0.0, 0.3) << "frame " << t;  // median of a Poisson sky lies ~0.1 e- below its mean
  }

  // After subtraction, the rows far from the traces hold noise about zero.
  const std::vector<float> data = file.read_floats("data");
  std::vector<double> residual;
  for (std::size_t t = 0; t < kFrames; ++t) {
    double sum = 0;
    std::size_t n = 0;
    for (std::size_t y = 0; y < kNy; ++y) {
      if (y >= 40 && y < kNy - 40) continue;
      for (std::size_t x = 0; x < kNx; ++x) {
        const float d = data[(t * kNy + y) * kNx + x];
        if (std::fabs(d) < 50) {  // leave out cosmic rays and hot pixels
          sum += d;
          ++n;
        }
      }
    }
    residual.push_back(sum / static_cast<double>(n));
  }
  const Figures r = figures_of(residual);
  print("mean residual in rows 0-39 and 216-255 after subtraction", r);
  EXPECT_LE(r.rms, 0.1);
}

TEST(BkgSky, ColumnMedianSkyImageKeepsTheLevel) {
  // The template's default: the sky image is replaced by its column medians, which cannot
  // follow the sky's gradient along y, but the fitted level stays right.
  Visit& v = visit();
  const std::string out = v.run("sky_columns", "uses='bkg_sky'\npath_to_Pagul='" + (v.dir.path() / "sky").string() + "'\n");
  h5::File file = h5::File::open(out);
  const std::vector<double> scale = file.read_doubles("bkg_sky_scale");
  std::vector<float> model(kNy * kNx);
  std::vector<float> column(kNy);
  for (std::size_t x = 0; x < kNx; ++x) {
    for (std::size_t y = 0; y < kNy; ++y) column[y] = v.pattern[y * kNx + x];
    std::nth_element(column.begin(), column.begin() + kNy / 2, column.end());
    const float upper = column[kNy / 2];
    const float lower = *std::max_element(column.begin(), column.begin() + kNy / 2);
    for (std::size_t y = 0; y < kNy; ++y) model[y * kNx + x] = 0.5f * (lower + upper);
  }
  const SkyErrors e = sky_errors(scale, model);
  const Figures level = figures_of(e.level), pixel = figures_of(e.pixel_rms);
  std::printf("bkg_sky, column-median sky image (median_columns = true, the default):\n");
  print("level of subtracted - true sky", level);
  print("per-pixel rms of subtracted - true sky (y gradient)", pixel);
  EXPECT_LE(level.rms, 0.1);
  EXPECT_LE(level.worst, 3 * level.rms);
}

TEST(BkgColumn, ColumnLevelsMatchTheSkyInTheRowsUsed) {
  Visit& v = visit();
  const std::string out = v.run("column", "uses='bkg_column'\n");
  h5::File file = h5::File::open(out);
  const std::vector<float> values = file.read_floats("bkg_column_value");
  ASSERT_EQ(values.size(), kFrames * kNx);
  const std::vector<double> before = file.read_doubles("bkg_column_median_before");
  const std::vector<double> after = file.read_doubles("bkg_column_median_after");

  // The kernel on the frames as simulated gives the step's values and the rows it used.
  steps::BkgColumnParams p;
  steps::BkgColumnScratch scratch;
  std::vector<float> kernel(kNx);
  std::vector<double> level_used, level_column, column_rms, pixel_rms;
  std::size_t own_columns = 0;
  double used_fraction = 0;
  for (std::size_t t = 0; t < kFrames; ++t) {
    steps::column_background(v.frames[t], kNy, kNx, p, scratch, kernel);
    double sum_used = 0, sum_column = 0, sum2 = 0, pixel2 = 0;
    for (std::size_t x = 0; x < kNx; ++x) {
      ASSERT_EQ(kernel[x], values[t * kNx + x]) << "frame " << t << " column " << x;
      double pattern_used = 0, pattern_all = 0;
      std::size_t used = 0;
      for (std::size_t y = 0; y < kNy; ++y) {
        const double pv = v.pattern[y * kNx + x];
        pattern_all += pv;
        pixel2 += std::pow(values[t * kNx + x] - v.background[t] * pv, 2);
        if (!scratch.excluded_t[x * kNy + y]) {
          pattern_used += pv;
          ++used;
        }
      }
      own_columns += scratch.source[x] == steps::ColumnSource::own ? 1 : 0;
      used_fraction += static_cast<double>(used) / static_cast<double>(kNy * kNx * kFrames);
      const double truth_used = v.background[t] * (used ? pattern_used / static_cast<double>(used) : 1.0);
      const double truth_column = v.background[t] * pattern_all / static_cast<double>(kNy);
      const double d = values[t * kNx + x] - truth_used;
      sum_used += d;
      sum2 += d * d;
      sum_column += values[t * kNx + x] - truth_column;
    }
    level_used.push_back(sum_used / kNx);
    level_column.push_back(sum_column / kNx);
    column_rms.push_back(std::sqrt(sum2 / kNx));
    pixel_rms.push_back(std::sqrt(pixel2 / static_cast<double>(kNy * kNx)));
  }
  const Figures used = figures_of(level_used), col = figures_of(level_column), per_column = figures_of(column_rms),
                pixel = figures_of(pixel_rms);
  std::printf("bkg_column (mask_trace, dist_from_trace 100, col_sigma 3, mean): %.1f%% of pixels used, %.1f%% of "
              "columns with their own estimate\n",
              100 * used_fraction, 100.0 * static_cast<double>(own_columns) / static_cast<double>(kNx * kFrames));
  print("frame level (mean over columns) - sky in the rows used", used);
  print("frame level - sky averaged over whole columns", col);
  print("per-column rms of value - sky in the rows used (noise)", per_column);
  print("per-pixel rms of subtracted - true sky (y gradient, noise)", pixel);
  EXPECT_LE(used.rms, 0.1);
  EXPECT_LE(used.worst, 3 * used.rms);
  // Noise alone: ~5 e- per pixel over ~100 rows gives ~0.5 e- per column; a mask that let
  // the traces in would add tens of e- in their columns.
  EXPECT_LE(per_column.worst, 1.0);
  // 256 rows minus ±100 around traces that bend over ~30 rows leave about 16% of the pixels.
  EXPECT_GT(used_fraction, 0.1);
  EXPECT_GT(static_cast<double>(own_columns), 0.9 * static_cast<double>(kNx * kFrames));
  // Symmetric 3-sigma clipping of a skewed (Poisson) sky loses a little more of the upper
  // tail: about -0.03 e- here; the median would be ~-0.1 e- (see the estimator parameter).
  EXPECT_LE(std::fabs(used.mean), 0.06);
  for (std::size_t t = 0; t < kFrames; ++t) {
    EXPECT_NEAR(before[t], v.background[t], 0.2 * v.background[t]) << "frame " << t;
    EXPECT_NEAR(after[t], 0.0, 0.3) << "frame " << t;
  }
}

}  // namespace
