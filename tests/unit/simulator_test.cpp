// The UVIS simulator: deterministic for a seed, and its truth file agrees with the frames
// it wrote (read back through hst_flt_dir, as a workflow would).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "steps/inputs/hst_flt_dir.hpp"
#include "support/temp_dir.hpp"
#include "steps/simulate/uvis_simulator.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"

namespace {

namespace fs = std::filesystem;
using tessera::sim::UvisSimOptions;
class TempDir : public tessera::testing::TempDir {
 public:
  TempDir() : tessera::testing::TempDir("simulator") {}
};

UvisSimOptions small_options(const fs::path& out, std::uint64_t seed) {
  UvisSimOptions o;
  o.out_dir = out.string();
  o.frames = 8;
  o.orbits = 2;
  o.ny = 48;
  o.nx = 160;
  o.seed = seed;
  return o;
}

/// SCI of every spectral file, in file-name order.
std::vector<std::vector<float>> all_sci(const fs::path& visit) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(visit / "specimages")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::vector<float>> out;
  for (const auto& f : files) {
    auto file = tessera::fits::File::open_read(f.string());
    EXPECT_TRUE(file.goto_extension("SCI"));
    out.push_back(file.read_image_float());
  }
  return out;
}

/// A visit read through hst_flt_dir into a one-rank dataset.
struct Visit {
  tessera::FrameOrder order;
  tessera::Dataset data;
};

Visit read_visit(const fs::path& dir) {
  tessera::HstFltDirParams p;
  p.path = dir.string();
  auto source = tessera::HstFltDir::open(p);
  std::vector<tessera::UnitHeader> headers;
  for (std::size_t i = 0; i < source->units().size(); ++i) headers.push_back(source->read_header(i));
  Visit v{source->arrange(headers), {}};
  v.data = tessera::Dataset(v.order.shape, tessera::Partition::frames(v.order.shape, 1), 0);
  for (const auto& cube : source->cubes()) v.data.add_cube(cube.info, cube.type);
  for (std::size_t t = 0; t < v.order.shape.nt; ++t) source->read_frame(v.order.units[t], t, v.data);
  source->read_extras(v.data);
  return v;
}

std::vector<double> vector_of(const tessera::FrameOrder& order, const std::string& name) {
  for (const auto& v : order.vectors)
    if (v.info.name == name) return v.values;
  return {};
}

TEST(UvisSimulator, SameSeedSameFilesOtherSeedOtherFiles) {
  TempDir dir;
  tessera::sim::simulate_uvis(small_options(dir.path() / "a", 11));
  tessera::sim::simulate_uvis(small_options(dir.path() / "b", 11));
  tessera::sim::simulate_uvis(small_options(dir.path() / "c", 12));
  const auto a = all_sci(dir.path() / "a"), b = all_sci(dir.path() / "b"), c = all_sci(dir.path() / "c");
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a, b);
  ASSERT_EQ(c.size(), 8u);
  for (std::size_t f = 0; f < a.size(); ++f) EXPECT_NE(a[f], c[f]) << "frame " << f;
}

TEST(UvisSimulator, RerunIntoTheSameDirectoryLeavesNoOldFrames) {
  TempDir dir;
  tessera::sim::simulate_uvis(small_options(dir.path(), 1));
  UvisSimOptions fewer = small_options(dir.path(), 1);
  fewer.frames = 4;
  tessera::sim::simulate_uvis(fewer);
  EXPECT_EQ(all_sci(dir.path()).size(), 4u);
}

TEST(UvisSimulator, TruthAgreesWithTheFrames) {
  TempDir dir;
  UvisSimOptions o = small_options(dir.path(), 5);
  o.frames = 10;
  o.cr_rate = 2e-3;  // plenty of hits in a small frame
  o.hot_fraction = 5e-3;
  o.drift_px = 0;  // a pixel's level then changes only with the sky, so a hit stands out by its charge
  o.transit_depth = 0;
  const auto summary = tessera::sim::simulate_uvis(o);
  EXPECT_FALSE(summary.str().empty());

  Visit v = read_visit(dir.path());
  const auto shape = v.order.shape;
  ASSERT_EQ(shape, (tessera::CubeShape{10, 48, 160}));
  const auto orbit = vector_of(v.order, "orbit");
  EXPECT_EQ(*std::max_element(orbit.begin(), orbit.end()), 1.0);  // two orbits found from the gaps
  EXPECT_EQ(v.order.units, (std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));  // names sort in time
  EXPECT_EQ(v.data.image("direct_image").ny, 48u);
  auto sci = v.data.frames<float>("data");
  auto err = v.data.frames<float>("err");
  auto dq = v.data.frames<std::uint32_t>("dq");

  auto truth = tessera::h5::File::open((dir.path() / "truth.h5").string());
  const auto time = truth.read_doubles("time");
  const auto in_files = vector_of(v.order, "time");
  ASSERT_EQ(time.size(), 10u);
  for (std::size_t t = 0; t < 10; ++t) EXPECT_NEAR(time[t], in_files[t], 1e-8);
  EXPECT_EQ(std::get<std::int64_t>(truth.read_attribute("frames")), 10);
  EXPECT_EQ(truth.read_doubles("background").size(), 10u);
  EXPECT_EQ(truth.shape("background_image"), (std::vector<std::size_t>{48, 160}));

  // Cosmic rays: each listed pixel exceeds its own median over the other frames by its charge.
  const auto cr_frame = truth.read_ints("cr_frame"), cr_y = truth.read_ints("cr_y"), cr_x = truth.read_ints("cr_x");
  const auto cr_charge = truth.read_doubles("cr_charge");
  ASSERT_EQ(cr_charge.size(), summary.cosmic_ray_pixels);
  ASSERT_GT(cr_charge.size(), 50u);
  std::vector<bool> hit(shape.elements(), false);
  for (std::size_t i = 0; i < cr_frame.size(); ++i)
    hit[(static_cast<std::size_t>(cr_frame[i]) * shape.ny + static_cast<std::size_t>(cr_y[i])) * shape.nx +
        static_cast<std::size_t>(cr_x[i])] = true;
  std::size_t checked = 0;
  for (std::size_t i = 0; i < cr_frame.size(); ++i) {
    const auto t = static_cast<std::size_t>(cr_frame[i]), y = static_cast<std::size_t>(cr_y[i]),
               x = static_cast<std::size_t>(cr_x[i]);
    if (dq(t, y, x) & 256) continue;  // clipped at the full well: the value says little
    std::vector<float> others;
    for (std::size_t s = 0; s < shape.nt; ++s)
      if (!hit[(s * shape.ny + y) * shape.nx + x]) others.push_back(sci(s, y, x));
    ASSERT_GE(others.size(), 3u);
    std::nth_element(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(others.size() / 2), others.end());
    const double excess = sci(t, y, x) - others[others.size() / 2];
    EXPECT_NEAR(excess, cr_charge[i], 6.0 * err(t, y, x) + 0.3 * o.sky) << "hit " << i;
    ++checked;
  }
  EXPECT_GT(checked, 50u);

  // Saturation: every pixel over the full well is flagged 256, and flagged pixels sit at it.
  const double full_well = std::get<double>(truth.read_attribute("full_well"));
  std::size_t saturated = 0;
  for (std::size_t t = 0; t < shape.nt; ++t)
    for (std::size_t y = 0; y < shape.ny; ++y)
      for (std::size_t x = 0; x < shape.nx; ++x) {
        if (dq(t, y, x) & 256) {
          ++saturated;
          EXPECT_NEAR(sci(t, y, x), full_well, 6 * o.read_noise);
        } else {
          EXPECT_LT(sci(t, y, x), full_well + 6 * o.read_noise);
        }
      }
  EXPECT_EQ(saturated, summary.saturated_pixels);
  EXPECT_GT(saturated, 0u);  // the 0th order saturates

  // Hot pixels: flagged 16 exactly where truth says, and as bright as their rate.
  const auto hot_y = truth.read_ints("hot_y"), hot_x = truth.read_ints("hot_x");
  const auto hot_flagged = truth.read_ints("hot_flagged");
  const auto hot_rate = truth.read_doubles("hot_rate");
  ASSERT_EQ(hot_y.size(), summary.hot_pixels);
  std::size_t flagged_16 = 0;
  for (std::size_t i = 0; i < shape.frame_pixels(); ++i) flagged_16 += (dq(0, i / shape.nx, i % shape.nx) & 16) ? 1 : 0;
  EXPECT_EQ(flagged_16, summary.hot_flagged);
  auto median_over_time = [&](std::size_t y, std::size_t x) {
    std::vector<float> series;
    for (std::size_t t = 0; t < shape.nt; ++t) series.push_back(sci(t, y, x));
    std::nth_element(series.begin(), series.begin() + static_cast<std::ptrdiff_t>(series.size() / 2), series.end());
    return static_cast<double>(series[series.size() / 2]);
  };
  const auto star_x = truth.read_doubles("star_x"), star_y = truth.read_doubles("star_y");
  auto near_a_star = [&](std::size_t y, std::size_t x) {
    for (std::size_t k = 0; k < star_x.size(); ++k)
      if (std::hypot(static_cast<double>(x) - star_x[k], static_cast<double>(y) - star_y[k]) < 8) return true;
    return false;
  };
  std::size_t compared = 0;
  for (std::size_t i = 0; i < hot_y.size(); ++i) {
    const auto y = static_cast<std::size_t>(hot_y[i]), x = static_cast<std::size_t>(hot_x[i]);
    for (std::size_t t = 0; t < shape.nt; ++t) EXPECT_EQ((dq(t, y, x) & 16) != 0, hot_flagged[i] == 1);
    if (near_a_star(y, x)) continue;  // on a field star's wing the neighbours differ by its light
    // Against the dimmer of the pixels two columns away (one of them may be hot too).
    const double around = std::min(median_over_time(y, x >= 2 ? x - 2 : x + 2),
                                   median_over_time(y, x + 2 < shape.nx ? x + 2 : x - 2));
    if (around > 3 * o.sky) continue;  // on the star: its light dominates
    const double dark = hot_rate[i] * o.exptime;
    const double noise = std::sqrt(dark + 2 * o.sky + 2 * o.read_noise * o.read_noise) / std::sqrt(double(shape.nt));
    EXPECT_NEAR(median_over_time(y, x) - around, dark, 6 * noise + 0.2 * o.sky) << "hot pixel " << i;
    ++compared;
  }
  EXPECT_GT(compared, hot_y.size() / 2);
}

TEST(UvisSimulator, FieldStarsAreWhereTheTruthSaysAndUnsaturated) {
  TempDir dir;
  UvisSimOptions o = small_options(dir.path(), 3);
  o.ny = 128;
  o.nx = 256;
  o.frames = 6;
  o.cr_rate = 0;
  o.hot_fraction = 0;
  o.drift_px = 0;  // every frame sees each star at its truth position
  const auto summary = tessera::sim::simulate_uvis(o);
  EXPECT_EQ(summary.stars, 5u);
  auto truth = tessera::h5::File::open((dir.path() / "truth.h5").string());
  const auto star_x = truth.read_doubles("star_x"), star_y = truth.read_doubles("star_y");
  const auto star_peak = truth.read_doubles("star_peak");
  ASSERT_EQ(star_x.size(), 5u);
  ASSERT_EQ(star_y.size(), 5u);
  ASSERT_EQ(star_peak.size(), 5u);
  const double zeroth_x = std::get<double>(truth.read_attribute("zeroth_x"));
  const double zeroth_y = std::get<double>(truth.read_attribute("zeroth_y"));

  Visit v = read_visit(dir.path());
  auto sci = v.data.frames<float>("data");
  auto dq = v.data.frames<std::uint32_t>("dq");
  const auto shape = v.order.shape;
  auto mean_over_time = [&](long y, long x) {
    double sum = 0;
    for (std::size_t t = 0; t < shape.nt; ++t) sum += sci(t, static_cast<std::size_t>(y), static_cast<std::size_t>(x));
    return sum / static_cast<double>(shape.nt);
  };
  for (std::size_t k = 0; k < star_x.size(); ++k) {
    // Inside the frame, well away from the 0th order and the traces' band around its row.
    EXPECT_GT(star_x[k], 5.0);
    EXPECT_LT(star_x[k], static_cast<double>(o.nx) - 5.0);
    EXPECT_GT(std::fabs(star_y[k] - zeroth_y), 0.15 * static_cast<double>(o.ny) + 10) << "star " << k;
    EXPECT_GT(std::hypot(star_x[k] - zeroth_x, star_y[k] - zeroth_y), 30.0);
    EXPECT_GE(star_peak[k], 1000.0);
    EXPECT_LE(star_peak[k], 10000.0);
    // The brightest pixel is the one nearest the centre and holds the Gaussian's value there
    // above the sky (taken 12 px away); nothing is saturated.
    const long cx = std::lround(star_x[k]), cy = std::lround(star_y[k]);
    const double dx = static_cast<double>(cx) - star_x[k], dy = static_cast<double>(cy) - star_y[k];
    const double expected = star_peak[k] * std::exp(-0.5 * (dx * dx + dy * dy) / (1.7 * 1.7));
    const double sky = 0.5 * (mean_over_time(cy, cx - 12) + mean_over_time(cy, cx + 12));
    const double noise = std::sqrt((expected + o.sky + o.read_noise * o.read_noise) / static_cast<double>(shape.nt));
    EXPECT_NEAR(mean_over_time(cy, cx) - sky, expected, 6 * noise + 0.1 * o.sky) << "star " << k;
    for (long y = cy - 1; y <= cy + 1; ++y)
      for (long x = cx - 1; x <= cx + 1; ++x) {
        EXPECT_LT(mean_over_time(y, x), mean_over_time(cy, cx) + 6 * noise) << "star " << k;
        for (std::size_t t = 0; t < shape.nt; ++t)
          EXPECT_EQ(dq(t, static_cast<std::size_t>(y), static_cast<std::size_t>(x)) & 256, 0u);
      }
  }

  // No stars when asked for none; more than the fixed places is refused.
  o.out_dir = (dir.path() / "none").string();
  o.stars = 0;
  EXPECT_EQ(tessera::sim::simulate_uvis(o).stars, 0u);
  auto none = tessera::h5::File::open((dir.path() / "none" / "truth.h5").string());
  EXPECT_TRUE(none.read_doubles("star_x").empty());
  o.stars = 9;
  EXPECT_THROW(tessera::sim::simulate_uvis(o), tessera::ConfigError);
}

TEST(UvisSimulator, TransitDepthShowsInTheTruthFlux) {
  TempDir dir;
  UvisSimOptions o = small_options(dir.path(), 2);
  o.frames = 12;
  o.orbits = 3;
  o.transit_depth = 0.02;
  tessera::sim::simulate_uvis(o);
  auto truth = tessera::h5::File::open((dir.path() / "truth.h5").string());
  const auto flux = truth.read_doubles("flux");
  EXPECT_NEAR(*std::min_element(flux.begin(), flux.end()), 0.98, 1e-12);  // the middle orbit is in transit
  EXPECT_EQ(*std::max_element(flux.begin(), flux.end()), 1.0);           // the first and last are not
  EXPECT_EQ(std::get<double>(truth.read_attribute("transit_depth")), 0.02);
  EXPECT_EQ(std::get<std::string>(truth.read_attribute("transit_model")), "trapezoid");
}

TEST(UvisSimulator, RejectsAVisitThatDoesNotFitInTheOrbits) {
  TempDir dir;
  UvisSimOptions o = small_options(dir.path(), 1);
  o.frames = 100;
  o.orbits = 2;  // 50 frames of 100 s in a 50 min window
  EXPECT_THROW(tessera::sim::simulate_uvis(o), tessera::ConfigError);
}

}  // namespace
