// tessera::sim::simulate_jwst: file layout and keywords (the jwst_uncal contract), determinism,
// and the physics, checked by undoing the detector model with the reference files it writes and
// comparing with truth.h5: pulls of every group of every clean pixel against the true signal,
// jump sizes at the truth positions, reference pixels without light, saturation where truth says.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/simulate/jwst_simulator.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
namespace dq = tessera::jwst::dq;
using tessera::sim::JwstInstrument;
using tessera::sim::JwstSimOptions;

std::vector<fs::path> segment_files(const fs::path& out) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(out / "uncal"))
    if (e.path().filename().string().ends_with("_uncal.fits")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<float> read_all(const fs::path& path, const std::string& extname, std::size_t count) {
  auto f = tessera::fits::File::open_read(path.string());
  EXPECT_TRUE(f.goto_extension(extname)) << path << " " << extname;
  std::vector<float> values(count);
  f.read_pixels_float(values);
  return values;
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// One simulated exposure read back whole: ramps, references and truth.
struct Exposure {
  JwstSimOptions options;
  tessera::sim::JwstSimSummary summary;
  std::size_t ny = 0, nx = 0, ng = 0, nints = 0, n = 0;
  double tgroup = 0;
  std::vector<float> sci;  // (int, group, y, x), BZERO applied
  std::vector<float> superbias, saturation, gain, read_noise, dark, coeffs;
  std::vector<std::uint32_t> mask;
  std::vector<float> star, background, saturation_group;
  std::vector<double> flux, time;
  std::vector<std::int64_t> jump_int, jump_group, jump_y, jump_x;
  std::vector<double> jump_dn;

  float raw(std::size_t i, std::size_t g, std::size_t y, std::size_t x) const {
    return sci[((i * ng + g) * ny + y) * nx + x];
  }
  /// The linearity polynomial of pixel p (the reference file's coefficients).
  double linearise(std::size_t p, double r) const {
    double value = 0, power = 1;
    for (std::size_t k = 0; k < 4; ++k, power *= r) value += coeffs[k * n + p] * power;
    return value;
  }
  double slope(std::size_t p, double r) const {
    return coeffs[n + p] + 2 * coeffs[2 * n + p] * r + 3 * coeffs[3 * n + p] * r * r;
  }
};

Exposure simulate_and_read(const JwstSimOptions& o) {
  Exposure e;
  e.options = o;
  e.summary = tessera::sim::simulate_jwst(o);
  const fs::path out(o.out_dir);
  e.ny = o.ny;
  e.nx = o.nx;
  e.ng = o.groups;
  e.nints = o.ints;
  e.n = e.ny * e.nx;
  for (const fs::path& seg : segment_files(out)) {
    auto f = tessera::fits::File::open_read(seg.string());
    const auto start = static_cast<std::size_t>(f.require_double("INTSTART"));
    const auto end = static_cast<std::size_t>(f.require_double("INTEND"));
    e.tgroup = f.require_double("TGROUP");
    EXPECT_EQ(start, e.sci.size() / (e.ng * e.n) + 1) << seg;
    std::vector<float> part = read_all(seg, "SCI", (end - start + 1) * e.ng * e.n);
    e.sci.insert(e.sci.end(), part.begin(), part.end());
  }
  const fs::path refs = out / "refs";
  e.superbias = read_all(refs / "superbias.fits", "SCI", e.n);
  e.saturation = read_all(refs / "saturation.fits", "SCI", e.n);
  e.gain = read_all(refs / "gain.fits", "SCI", e.n);
  e.read_noise = read_all(refs / "readnoise.fits", "SCI", e.n);
  e.dark = read_all(refs / "dark.fits", "SCI", e.ng * e.n);
  e.coeffs = read_all(refs / "linearity.fits", "COEFFS", 4 * e.n);
  {
    auto f = tessera::fits::File::open_read((refs / "mask.fits").string());
    EXPECT_TRUE(f.goto_extension("DQ"));
    e.mask = f.read_image_uint32();
  }
  auto truth = tessera::h5::File::open((out / "truth.h5").string());
  e.star = truth.read_floats("star_rate");
  e.background = truth.read_floats("background_rate");
  e.saturation_group = truth.read_floats("saturation_group");
  e.flux = truth.read_doubles("flux");
  e.time = truth.read_doubles("time");
  e.jump_int = truth.read_ints("jump_int");
  e.jump_group = truth.read_ints("jump_group");
  e.jump_y = truth.read_ints("jump_y");
  e.jump_x = truth.read_ints("jump_x");
  e.jump_dn = truth.read_doubles("jump_dn");
  return e;
}

JwstSimOptions small_niriss(const std::string& dir) {
  JwstSimOptions o = tessera::sim::jwst_defaults(JwstInstrument::niriss_soss);
  o.out_dir = dir;
  o.ny = 64;
  o.nx = 256;
  o.groups = 5;
  o.ints = 12;
  o.ints_per_segment = 5;
  o.seed = 11;
  o.transit_depth = 0.02;
  o.threads = 2;
  return o;
}

JwstSimOptions small_miri(const std::string& dir) {
  JwstSimOptions o = tessera::sim::jwst_defaults(JwstInstrument::miri_lrs);
  o.out_dir = dir;
  o.ny = 128;
  o.groups = 6;
  o.ints = 8;
  o.ints_per_segment = 3;
  o.seed = 5;
  o.cr_rate = 5e-3;
  o.threads = 1;
  return o;
}

/// The offset the reference pixels give for sample (i, g, y, x), as refpix would use it:
/// NIRISS: the mean of the 4 top reference rows of column x (its amplifier/parity offset and
/// 1/f are per column); MIRI: reference column x % 4 of row y.
double reference_offset(const Exposure& e, std::size_t i, std::size_t g, std::size_t y, std::size_t x,
                        double& variance) {
  if (e.options.instrument == JwstInstrument::miri_lrs) {
    const std::size_t p = y * e.nx + x % 4;
    variance = e.read_noise[p] * e.read_noise[p] + 1.0 / 12;
    return e.raw(i, g, y, x % 4) - e.superbias[p];
  }
  double sum = 0;
  variance = 0;
  for (std::size_t r = e.ny - 4; r < e.ny; ++r) {
    const std::size_t p = r * e.nx + x;
    sum += e.raw(i, g, r, x) - e.superbias[p];
    variance += (e.read_noise[p] * e.read_noise[p] + 1.0 / 12) / 16;
  }
  return sum / 4;
}

/// Pulls of every usable group sample against the truth after undoing the detector: mean and rms.
struct PullStats {
  double mean = 0, rms = 0, bright_mean = 0, bright_rms = 0;
  std::size_t count = 0, bright = 0;
};

/// `stars`: the stellar rate image of each integration (default: truth star_rate for all).
PullStats ramp_pulls(const Exposure& e, const std::vector<std::vector<float>>& stars = {}) {
  std::vector<char> has_jump(e.nints * e.n, 0);
  for (std::size_t k = 0; k < e.jump_int.size(); ++k)
    has_jump[static_cast<std::size_t>(e.jump_int[k]) * e.n + static_cast<std::size_t>(e.jump_y[k]) * e.nx +
             static_cast<std::size_t>(e.jump_x[k])] = 1;
  double sum = 0, sum2 = 0, bsum = 0, bsum2 = 0;
  PullStats s;
  for (std::size_t i = 0; i < e.nints; ++i)
    for (std::size_t y = 0; y < e.ny; ++y)
      for (std::size_t x = 0; x < e.nx; ++x) {
        const std::size_t p = y * e.nx + x;
        if (e.mask[p] != 0 || e.saturation_group[p] >= 0 || has_jump[i * e.n + p]) continue;
        const double rate = (stars.empty() ? e.star[p] : stars[i][p]) * e.flux[i] + e.background[p];
        for (std::size_t g = 0; g < e.ng; ++g) {
          const float raw = e.raw(i, g, y, x);
          if (raw >= e.saturation[p] - 500) continue;
          double offset_variance = 0;
          const double r = raw - e.superbias[p] - reference_offset(e, i, g, y, x, offset_variance);
          const double corrected = e.linearise(p, r) - e.dark[g * e.n + p];
          const double t = e.tgroup * static_cast<double>(g + 1);
          const double lslope = e.slope(p, r);
          const double variance = rate * t / e.gain[p] + e.read_noise[p] * e.read_noise[p] +
                                  lslope * lslope * (offset_variance + 1.0 / 12);
          const double pull = (corrected - rate * t) / std::sqrt(variance);
          sum += pull;
          sum2 += pull * pull;
          ++s.count;
          if (rate * t > 5000) {
            bsum += pull;
            bsum2 += pull * pull;
            ++s.bright;
          }
        }
      }
  s.mean = sum / static_cast<double>(s.count);
  s.rms = std::sqrt(sum2 / static_cast<double>(s.count) - s.mean * s.mean);
  if (s.bright) {
    s.bright_mean = bsum / static_cast<double>(s.bright);
    s.bright_rms = std::sqrt(bsum2 / static_cast<double>(s.bright) - s.bright_mean * s.bright_mean);
  }
  return s;
}

class NirissSim : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new tessera::testing::TempDir("jwst_sim");
    exposure_ = new Exposure(simulate_and_read(small_niriss(dir_->str())));
  }
  static void TearDownTestSuite() {
    delete exposure_;
    delete dir_;
  }
  static tessera::testing::TempDir* dir_;
  static Exposure* exposure_;
};
tessera::testing::TempDir* NirissSim::dir_ = nullptr;
Exposure* NirissSim::exposure_ = nullptr;

TEST_F(NirissSim, SegmentsFollowTheUncalContract) {
  const Exposure& e = *exposure_;
  const auto files = segment_files(dir_->path());
  ASSERT_EQ(files.size(), 3u);
  const std::size_t expect_start[] = {1, 6, 11}, expect_end[] = {5, 10, 12};
  for (std::size_t s = 0; s < files.size(); ++s) {
    char name[96];
    std::snprintf(name, sizeof name, "jw09999001001_04101_00001_seg%03zu_nis_uncal.fits", s + 1);
    EXPECT_EQ(files[s].filename().string(), name);
    auto f = tessera::fits::File::open_read(files[s].string());
    EXPECT_EQ(f.read_string("TELESCOP").value_or(""), "JWST");
    EXPECT_EQ(f.read_string("INSTRUME").value_or(""), "NIRISS");
    EXPECT_EQ(f.read_string("DETECTOR").value_or(""), "NIS");
    EXPECT_EQ(f.read_string("EXP_TYPE").value_or(""), "NIS_SOSS");
    EXPECT_EQ(f.read_string("READPATT").value_or(""), "NISRAPID");
    EXPECT_EQ(f.read_string("SUBARRAY").value_or(""), "SUBSTRIP256");
    EXPECT_EQ(f.require_double("NINTS"), 12);
    EXPECT_EQ(f.require_double("NGROUPS"), 5);
    EXPECT_EQ(f.require_double("NFRAMES"), 1);
    EXPECT_EQ(f.require_double("GROUPGAP"), 0);
    EXPECT_NEAR(f.require_double("TFRAME"), 5.494, 1e-12);
    EXPECT_NEAR(f.require_double("TGROUP"), 5.494, 1e-12);
    EXPECT_EQ(f.require_double("EXSEGNUM"), static_cast<double>(s + 1));
    EXPECT_EQ(f.require_double("EXSEGTOT"), 3);
    EXPECT_EQ(f.require_double("INTSTART"), static_cast<double>(expect_start[s]));
    EXPECT_EQ(f.require_double("INTEND"), static_cast<double>(expect_end[s]));
    EXPECT_EQ(f.require_double("SUBSTRT1"), 1);
    EXPECT_EQ(f.require_double("SUBSTRT2"), 1793);
    EXPECT_EQ(f.require_double("SUBSIZE1"), 256);
    EXPECT_EQ(f.require_double("SUBSIZE2"), 64);
    EXPECT_NEAR(f.require_double("EXPSTART"), e.time.front() - 0.5 * 5 * 5.494 / 86400, 1e-9);

    ASSERT_TRUE(f.goto_extension("SCI"));
    EXPECT_EQ(f.bitpix(), 16);
    EXPECT_EQ(f.read_double("BZERO").value_or(0), 32768);
    const std::vector<long> axes = {256, 64, 5, static_cast<long>(expect_end[s] - expect_start[s] + 1)};
    EXPECT_EQ(f.axes(), axes);

    ASSERT_TRUE(f.goto_table("INT_TIMES"));
    ASSERT_EQ(f.table_rows(), 12u);
    const auto number = f.read_column_double("integration_number");
    const auto start = f.read_column_double("int_start_MJD_UTC");
    const auto mid = f.read_column_double("int_mid_MJD_UTC");
    const auto end = f.read_column_double("int_end_MJD_UTC");
    const auto bjd = f.read_column_double("int_mid_BJD_TDB");
    for (const char* column : {"int_start_BJD_TDB", "int_end_BJD_TDB"}) EXPECT_EQ(f.read_column_double(column).size(), 12u);
    for (std::size_t i = 0; i < 12; ++i) {
      EXPECT_EQ(number[i], static_cast<double>(i + 1));
      EXPECT_DOUBLE_EQ(mid[i], e.time[i]);
      EXPECT_NEAR(end[i] - start[i], 5 * 5.494 / 86400, 1e-9);
      EXPECT_NEAR(mid[i], 0.5 * (start[i] + end[i]), 1e-9);
      EXPECT_GT(std::fabs(bjd[i] - mid[i]), 0.0);
      EXPECT_LT(std::fabs(bjd[i] - mid[i]), 0.01);
      // One reset frame between integrations.
      if (i) {
        EXPECT_NEAR(start[i] - start[i - 1], 6 * 5.494 / 86400, 1e-9);
      }
    }
  }
}

TEST_F(NirissSim, ReferenceFilesHaveTheirShapesAndFlags) {
  const Exposure& e = *exposure_;
  const fs::path refs = dir_->path() / "refs";
  const std::map<std::string, std::pair<std::string, std::vector<long>>> expected = {
      {"mask.fits", {"DQ", {256, 64}}},           {"saturation.fits", {"SCI", {256, 64}}},
      {"superbias.fits", {"SCI", {256, 64}}},     {"linearity.fits", {"COEFFS", {256, 64, 4}}},
      {"dark.fits", {"SCI", {256, 64, 5}}},       {"gain.fits", {"SCI", {256, 64}}},
      {"readnoise.fits", {"SCI", {256, 64}}}};
  for (const auto& [file, ext] : expected) {
    auto f = tessera::fits::File::open_read((refs / file).string());
    EXPECT_EQ(f.require_double("SUBSTRT2"), 1793) << file;
    ASSERT_TRUE(f.goto_extension(ext.first)) << file;
    EXPECT_EQ(f.axes(), ext.second) << file;
  }
  std::size_t reference = 0, dead = 0, hot = 0;
  for (std::size_t y = 0; y < e.ny; ++y)
    for (std::size_t x = 0; x < e.nx; ++x) {
      const std::uint32_t m = e.mask[y * e.nx + x];
      const bool is_ref = x < 4 || x >= e.nx - 4 || y >= e.ny - 4;
      EXPECT_EQ((m & dq::reference_pixel) != 0, is_ref) << y << "," << x;
      reference += is_ref;
      dead += (m & dq::dead) != 0;
      hot += (m & dq::hot) != 0;
      if (m) {
        EXPECT_TRUE(m & dq::do_not_use);
      }
      // Saturation levels are whole numbers (a clipped sample equals its level) within uint16.
      EXPECT_EQ(e.saturation[y * e.nx + x], std::round(e.saturation[y * e.nx + x]));
      EXPECT_LE(e.saturation[y * e.nx + x], 65535.0f);
      EXPECT_GT(e.saturation[y * e.nx + x], e.superbias[y * e.nx + x] + 30000);
    }
  EXPECT_EQ(reference, e.summary.reference_pixels);
  EXPECT_EQ(reference, 4u * 64 + 4u * 64 + 4u * 248);
  EXPECT_EQ(dead, e.summary.dead_pixels);
  EXPECT_EQ(hot, e.summary.hot_pixels);
  EXPECT_GE(dead, 2u);
  EXPECT_GE(hot, 3u);
  // The dark is cumulative: group g holds (g + 1) times group 0.
  for (std::size_t p = 0; p < e.n; p += 97)
    for (std::size_t g = 1; g < e.ng; ++g)
      EXPECT_NEAR(e.dark[g * e.n + p], static_cast<double>(g + 1) * e.dark[p], 1e-4 * (1 + e.dark[g * e.n + p]));
}

TEST_F(NirissSim, TruthDescribesTheScene) {
  const Exposure& e = *exposure_;
  auto truth = tessera::h5::File::open((dir_->path() / "truth.h5").string());
  EXPECT_EQ(std::get<std::string>(truth.read_attribute("instrument")), "niriss-soss");
  EXPECT_EQ(std::get<double>(truth.read_attribute("transit_depth")), 0.02);
  EXPECT_EQ(std::get<double>(truth.read_attribute("tgroup")), 5.494);
  EXPECT_EQ(std::get<std::int64_t>(truth.read_attribute("ngroups")), 5);
  EXPECT_EQ(std::get<std::int64_t>(truth.read_attribute("nints")), 12);
  EXPECT_NEAR(std::get<double>(truth.read_attribute("gain")), 1.61, 0.02);
  EXPECT_NEAR(std::get<double>(truth.read_attribute("read_noise")), 8.0, 0.2);
  EXPECT_EQ(truth.shape("star_rate"), (std::vector<std::size_t>{64, 256}));
  // The transit: out of transit at both ends, the full depth in the middle.
  EXPECT_DOUBLE_EQ(e.flux.front(), 1.0);
  EXPECT_DOUBLE_EQ(e.flux.back(), 1.0);
  EXPECT_NEAR(*std::min_element(e.flux.begin(), e.flux.end()), 0.98, 1e-12);
  // No light on reference or dead pixels; the trace is bright and some pixels saturate before
  // the last group.
  float peak = 0;
  for (std::size_t p = 0; p < e.n; ++p) {
    if (e.mask[p] & (dq::reference_pixel | dq::dead)) {
      EXPECT_EQ(e.star[p], 0.0f);
      EXPECT_EQ(e.background[p], 0.0f);
    }
    peak = std::max(peak, e.star[p]);
  }
  EXPECT_FLOAT_EQ(peak, static_cast<float>(e.summary.peak_rate));
  EXPECT_GT(e.summary.saturating_pixels, 10u);
  EXPECT_EQ(*std::min_element(e.saturation_group.begin(), e.saturation_group.end()), -1.0f);
  float first_saturation = 1e9f;
  for (float g : e.saturation_group)
    if (g >= 0) first_saturation = std::min(first_saturation, g);
  EXPECT_LT(first_saturation, static_cast<float>(e.ng - 1));
  EXPECT_GT(e.summary.jumps, 100u);
  EXPECT_EQ(e.jump_int.size(), e.summary.jumps);
}

TEST_F(NirissSim, RampsAreLinearAfterUndoingTheDetector) {
  const PullStats s = ramp_pulls(*exposure_);
  std::printf("NIRISS pulls: %zu samples mean %.4f rms %.4f; %zu bright (> 5000 DN) mean %.4f rms %.4f\n", s.count,
              s.mean, s.rms, s.bright, s.bright_mean, s.bright_rms);
  EXPECT_GT(s.count, 100000u);
  EXPECT_GT(s.bright, 2000u);
  EXPECT_NEAR(s.mean, 0.0, 0.02);
  EXPECT_NEAR(s.rms, 1.0, 0.05);
  EXPECT_NEAR(s.bright_mean, 0.0, 0.06);
  EXPECT_NEAR(s.bright_rms, 1.0, 0.06);
}

TEST_F(NirissSim, RawRampsAreNonLinearAndSaturateWhereTruthSays) {
  const Exposure& e = *exposure_;
  // Bright pixels: the raw signal falls short of the linear one by more than 3 %.
  std::size_t bright = 0, checked = 0;
  for (std::size_t p = 0; p < e.n; ++p) {
    if (e.mask[p] != 0) continue;
    const double linear = (e.star[p] + e.background[p]) * 4 * e.tgroup;  // group 3, out of transit
    if (linear < 30000 || (e.saturation_group[p] >= 0 && e.saturation_group[p] <= 4)) continue;
    const double r = e.raw(0, 3, p / e.nx, p % e.nx) - e.superbias[p];
    if (r < linear * 0.95) ++bright;
    ++checked;
  }
  EXPECT_GT(checked, 0u);
  EXPECT_GT(static_cast<double>(bright), 0.9 * static_cast<double>(checked));

  // Saturation: out of transit, clipped at the level from one group after truth's first
  // saturated group on, and below it until one group before.
  std::size_t saturated_samples = 0;
  for (std::size_t i = 0; i < e.nints; ++i) {
    if (e.flux[i] != 1.0) continue;
    for (std::size_t p = 0; p < e.n; ++p) {
      const float first = e.saturation_group[p];
      if (first < 0) continue;
      for (std::size_t g = 0; g < e.ng; ++g) {
        const float raw = e.raw(i, g, p / e.nx, p % e.nx);
        if (static_cast<float>(g) >= first + 1) {
          EXPECT_EQ(raw, e.saturation[p]);
          ++saturated_samples;
        }
        if (static_cast<float>(g) + 1 < first) {
          EXPECT_LT(raw, e.saturation[p]);
        }
      }
    }
  }
  EXPECT_GT(saturated_samples, 20u);
  for (float v : e.sci) ASSERT_TRUE(v >= 0 && v <= 65535 && v == std::round(v));
}

TEST_F(NirissSim, JumpsAreWhereTruthPutsThem) {
  const Exposure& e = *exposure_;
  std::map<std::size_t, int> hits_per_ramp;
  for (std::size_t k = 0; k < e.jump_int.size(); ++k)
    ++hits_per_ramp[static_cast<std::size_t>(e.jump_int[k]) * e.n + static_cast<std::size_t>(e.jump_y[k]) * e.nx +
                    static_cast<std::size_t>(e.jump_x[k])];
  std::size_t checked = 0;
  for (std::size_t k = 0; k < e.jump_int.size(); ++k) {
    const auto i = static_cast<std::size_t>(e.jump_int[k]), g = static_cast<std::size_t>(e.jump_group[k]);
    const auto y = static_cast<std::size_t>(e.jump_y[k]), x = static_cast<std::size_t>(e.jump_x[k]);
    const std::size_t p = y * e.nx + x;
    EXPECT_LT(i, e.nints);
    EXPECT_LT(g, e.ng);
    EXPECT_EQ(e.mask[p] & (dq::reference_pixel | dq::dead), 0u) << "a jump on a reference or dead pixel";
    EXPECT_GE(e.jump_dn[k], 25.0);
    EXPECT_LE(e.jump_dn[k], 2500.0);
    if (g == 0 || hits_per_ramp[i * e.n + p] > 1 || e.saturation_group[p] >= 0) continue;
    double v[2], offset_variance = 0;
    for (int j = 0; j < 2; ++j) {
      const std::size_t gg = g - 1 + static_cast<std::size_t>(j);
      const double r = e.raw(i, gg, y, x) - e.superbias[p] - reference_offset(e, i, gg, y, x, offset_variance);
      v[j] = e.linearise(p, r) - e.dark[gg * e.n + p];
    }
    const double rate = e.star[p] * e.flux[i] + e.background[p];
    const double measured = v[1] - v[0] - rate * e.tgroup;
    const double sigma = std::sqrt(rate * e.tgroup / e.gain[p] + 2 * e.read_noise[p] * e.read_noise[p] +
                                   2.5 * (offset_variance + 1.0 / 12));
    EXPECT_NEAR(measured, e.jump_dn[k], 5 * sigma + 0.01 * e.jump_dn[k]) << "jump " << k;
    ++checked;
  }
  EXPECT_GT(checked, 50u);
}

TEST_F(NirissSim, ReferencePixelsCarryNoLight) {
  const Exposure& e = *exposure_;
  // Side reference columns below the reference rows, corrected with their column's offset from
  // the reference rows: flat in time (no light, no dark). An illuminated pixel with only the
  // background (about 2 DN/s) would gain 4 tgroup x 2 = 44 DN from the first to the last group.
  double sum = 0, sky = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < e.nints; ++i)
    for (std::size_t y = 0; y + 4 < e.ny; ++y)
      for (std::size_t x : {0ul, 1ul, 2ul, 3ul, e.nx - 4, e.nx - 3, e.nx - 2, e.nx - 1}) {
        double variance = 0;
        const double first = e.raw(i, 0, y, x) - reference_offset(e, i, 0, y, x, variance);
        const double last = e.raw(i, e.ng - 1, y, x) - reference_offset(e, i, e.ng - 1, y, x, variance);
        sum += last - first;
        sky += e.background[y * e.nx + std::min<std::size_t>(std::max<std::size_t>(x, 4), e.nx - 5)];
        ++count;
      }
  const double mean = sum / static_cast<double>(count);
  const double neighbour_gain = sky / static_cast<double>(count) * (e.ng - 1) * e.tgroup;
  std::printf("reference columns: mean change first->last group %.3f DN (an exposed neighbour: %.1f DN)\n", mean,
              neighbour_gain);
  EXPECT_LT(std::fabs(mean), 1.5);  // noise of the mean: about 12 DN / sqrt(6720) = 0.15 DN
  EXPECT_GT(neighbour_gain, 30.0);
}

TEST(JwstSimulator, SameSeedSameFilesWhateverTheThreads) {
  tessera::testing::TempDir a("jwst_sim_a"), b("jwst_sim_b"), c("jwst_sim_c");
  JwstSimOptions o = small_niriss(a.str());
  o.ints = 4;
  o.ints_per_segment = 3;
  o.threads = 1;
  tessera::sim::simulate_jwst(o);
  o.out_dir = b.str();
  o.threads = 3;
  tessera::sim::simulate_jwst(o);
  o.out_dir = c.str();
  o.seed += 1;
  tessera::sim::simulate_jwst(o);
  std::vector<std::string> files;
  for (const auto& seg : segment_files(a.path())) files.push_back("uncal/" + seg.filename().string());
  ASSERT_EQ(files.size(), 2u);
  for (const char* ref : {"mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise"})
    files.push_back(std::string("refs/") + ref + ".fits");
  for (const auto& file : files) {
    const std::string bytes = file_bytes(a.path() / file);
    EXPECT_GT(bytes.size(), 2880u) << file;
    EXPECT_EQ(bytes, file_bytes(b.path() / file)) << file;
  }
  EXPECT_NE(file_bytes(a.path() / files[0]), file_bytes(c.path() / files[0]));
  auto ta = tessera::h5::File::open((a.path() / "truth.h5").string());
  auto tb = tessera::h5::File::open((b.path() / "truth.h5").string());
  for (const char* v : {"star_rate", "background_rate", "saturation_group"}) EXPECT_EQ(ta.read_floats(v), tb.read_floats(v));
  for (const char* v : {"time", "flux", "jump_dn"}) EXPECT_EQ(ta.read_doubles(v), tb.read_doubles(v));
  for (const char* v : {"jump_int", "jump_group", "jump_y", "jump_x"}) EXPECT_EQ(ta.read_ints(v), tb.read_ints(v));
  // No partial files are left behind.
  for (const auto& entry : fs::recursive_directory_iterator(a.path()))
    EXPECT_FALSE(entry.path().string().ends_with(".partial")) << entry.path();
}

TEST(JwstSimulator, MiriLrsExposure) {
  tessera::testing::TempDir dir("jwst_sim_miri");
  const Exposure e = simulate_and_read(small_miri(dir.str()));
  const auto files = segment_files(dir.path());
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[2].filename().string(), "jw09999002001_04102_00001_seg003_mirimage_uncal.fits");
  {
    auto f = tessera::fits::File::open_read(files[2].string());
    EXPECT_EQ(f.read_string("INSTRUME").value_or(""), "MIRI");
    EXPECT_EQ(f.read_string("DETECTOR").value_or(""), "MIRIMAGE");
    EXPECT_EQ(f.read_string("EXP_TYPE").value_or(""), "MIR_LRS-SLITLESS");
    EXPECT_EQ(f.read_string("READPATT").value_or(""), "FASTR1");
    EXPECT_EQ(f.read_string("SUBARRAY").value_or(""), "SLITLESSPRISM");
    EXPECT_NEAR(f.require_double("TGROUP"), 0.15904, 1e-12);
    EXPECT_EQ(f.require_double("INTSTART"), 7);
    EXPECT_EQ(f.require_double("INTEND"), 8);
    EXPECT_EQ(f.require_double("SUBSTRT2"), 529);
    ASSERT_TRUE(f.goto_extension("SCI"));
    EXPECT_EQ(f.axes(), (std::vector<long>{72, 128, 6, 2}));
  }
  // Reference columns 0-3 only.
  for (std::size_t y = 0; y < e.ny; ++y)
    for (std::size_t x = 0; x < e.nx; ++x)
      EXPECT_EQ((e.mask[y * e.nx + x] & dq::reference_pixel) != 0, x < 4);
  // The trace runs along y near column 36.
  std::size_t brightest = 0;
  for (std::size_t p = 0; p < e.n; ++p)
    if (e.star[p] > e.star[brightest]) brightest = p;
  EXPECT_NEAR(static_cast<double>(brightest % e.nx), 36.0, 1.0);
  EXPECT_GT(brightest / e.nx, e.ny / 2);

  // Undoing the detector with reference column x % 4 of the same row (odd/even rows and the row
  // drift included) leaves the true signal within the predicted noise.
  const PullStats s = ramp_pulls(e);
  std::printf("MIRI pulls: %zu samples mean %.4f rms %.4f; %zu bright mean %.4f rms %.4f\n", s.count, s.mean, s.rms,
              s.bright, s.bright_mean, s.bright_rms);
  EXPECT_GT(s.count, 20000u);
  EXPECT_NEAR(s.mean, 0.0, 0.03);
  EXPECT_NEAR(s.rms, 1.0, 0.05);
  EXPECT_GT(e.summary.saturating_pixels, 0u);

  // The reference offsets differ between odd and even rows (what refpix_miri's odd_even_rows removes).
  double diff = 0;
  for (std::size_t i = 0; i < e.nints; ++i)
    for (std::size_t y = 0; y + 1 < e.ny; y += 2)
      diff += (e.raw(i, 0, y + 1, 0) - e.superbias[(y + 1) * e.nx]) - (e.raw(i, 0, y, 0) - e.superbias[y * e.nx]);
  diff /= static_cast<double>(e.nints * e.ny / 2);
  EXPECT_GT(std::fabs(diff), 1.0);
}

TEST(JwstSimulator, BadOptionsNameTheOption) {
  tessera::testing::TempDir dir("jwst_sim_bad");
  auto expect_error = [&](JwstSimOptions o, const std::string& what) {
    o.out_dir = dir.str();
    try {
      tessera::sim::simulate_jwst(o);
      ADD_FAILURE() << "no error for " << what;
    } catch (const tessera::ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find(what), std::string::npos) << error.what();
    }
  };
  JwstSimOptions o = small_niriss(dir.str());
  o.nx = 250;
  expect_error(o, "--nx");
  o = small_niriss(dir.str());
  o.groups = 1;
  expect_error(o, "--groups");
  o = small_niriss(dir.str());
  o.ints_per_segment = 0;
  expect_error(o, "--ints-per-segment");
  o = small_miri(dir.str());
  o.transit_depth = 0.9;
  expect_error(o, "--depth");
  o = small_niriss(dir.str());
  o.orders = 3;
  expect_error(o, "--orders");
  o = small_miri(dir.str());
  o.orders = 2;
  expect_error(o, "--orders");
  o = small_miri(dir.str());
  o.drift = -0.1;
  expect_error(o, "--drift");
  o = small_miri(dir.str());
  o.out_dir.clear();
  try {
    tessera::sim::simulate_jwst(o);
    ADD_FAILURE() << "no error for an empty --out";
  } catch (const tessera::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("--out"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// Spectral truth (issue 5): wavelength maps, order 2, trace centres, pointing drift.

/// A (ny, nx) float image from extension SCI, with its axes checked.
std::vector<float> read_map(const fs::path& path, std::size_t ny, std::size_t nx) {
  auto f = tessera::fits::File::open_read(path.string());
  EXPECT_TRUE(f.goto_extension("SCI")) << path;
  EXPECT_EQ(f.axes(), (std::vector<long>{static_cast<long>(nx), static_cast<long>(ny)})) << path;
  EXPECT_EQ(f.read_string("BUNIT").value_or(""), "micron") << path;
  std::vector<float> values(ny * nx);
  f.read_pixels_float(values);
  return values;
}

/// Flux-weighted centroid of column x (rows [0, ny)), or of row y (columns [x0, nx)).
double column_centroid(const std::vector<float>& image, std::size_t ny, std::size_t nx, std::size_t x) {
  double sum = 0, weighted = 0;
  for (std::size_t y = 0; y < ny; ++y) {
    sum += image[y * nx + x];
    weighted += static_cast<double>(y) * image[y * nx + x];
  }
  return weighted / sum;
}
double row_centroid(const std::vector<float>& image, std::size_t nx, std::size_t y, std::size_t x0) {
  double sum = 0, weighted = 0;
  for (std::size_t x = x0; x < nx; ++x) {
    sum += image[y * nx + x];
    weighted += static_cast<double>(x) * image[y * nx + x];
  }
  return weighted / sum;
}

/// Linear interpolation of a 1D truth vector at a fractional index.
double interpolate(const std::vector<double>& v, double at) {
  const auto i = static_cast<std::size_t>(std::floor(at));
  const double w = at - static_cast<double>(i);
  return (1 - w) * v[i] + w * v[i + 1];
}

TEST_F(NirissSim, WavelengthMapsRunTheRightWay) {
  const Exposure& e = *exposure_;
  const fs::path refs = dir_->path() / "refs";
  auto truth = tessera::h5::File::open((dir_->path() / "truth.h5").string());
  for (int order = 1; order <= 2; ++order) {
    const fs::path file = refs / ("wavelength_order" + std::to_string(order) + ".fits");
    {
      auto f = tessera::fits::File::open_read(file.string());
      EXPECT_EQ(f.require_double("SUBSTRT2"), 1793);
      EXPECT_EQ(f.require_double("SPORDER"), order);
    }
    const std::vector<float> map = read_map(file, e.ny, e.nx);
    for (float v : map) ASSERT_TRUE(std::isfinite(v));
    // Red at small x: decreasing along every row; a small tilt along y (0.002 micron/pixel).
    for (std::size_t y = 0; y < e.ny; ++y)
      for (std::size_t x = 0; x + 1 < e.nx; ++x) ASSERT_LT(map[y * e.nx + x + 1], map[y * e.nx + x]) << y << "," << x;
    for (std::size_t x = 0; x < e.nx; x += 17)
      EXPECT_NEAR(map[(e.ny - 1) * e.nx + x] - map[x], 0.002 * static_cast<double>(e.ny - 1), 1e-4);
    // At the trace centre the map holds the truth trace_wavelength.
    const std::vector<double> centre = truth.read_doubles("trace_center_order" + std::to_string(order));
    const std::vector<double> wave = truth.read_doubles("trace_wavelength_order" + std::to_string(order));
    ASSERT_EQ(centre.size(), e.nx);
    std::size_t defined = 0;
    for (std::size_t x = 0; x < e.nx; ++x) {
      if (std::isnan(centre[x])) continue;
      ++defined;
      const double y = centre[x];
      const auto y0 = static_cast<std::size_t>(std::floor(y));
      const double at = (1 - (y - y0)) * map[y0 * e.nx + x] + (y - y0) * map[(y0 + 1) * e.nx + x];
      EXPECT_NEAR(at, wave[x], 1e-5) << "order " << order << " x " << x;
    }
    EXPECT_GT(defined, order == 1 ? e.nx - 9 : e.nx / 2);
  }
  const std::vector<float> order1 = read_map(refs / "wavelength_order1.fits", e.ny, e.nx);
  const std::vector<double> wave1 = truth.read_doubles("trace_wavelength_order1");
  const std::vector<double> wave2 = truth.read_doubles("trace_wavelength_order2");
  EXPECT_NEAR(wave1[4], 2.83 - 1.98 * 4 / 255.0, 0.01);
  EXPECT_NEAR(wave1[e.nx - 5], 0.85 + 1.98 * 4 / 255.0, 0.01);
  // Order 2 covers about 1.4 -> 0.6 micron over its light.
  double first = std::nan(""), last = std::nan("");
  for (double w : wave2)
    if (!std::isnan(w)) {
      if (std::isnan(first)) first = w;
      last = w;
    }
  EXPECT_NEAR(first, 1.4, 0.02);
  EXPECT_NEAR(last, 0.6, 0.02);
  (void)order1;
}

TEST_F(NirissSim, OrderTwoIsFainterAndAddsUp) {
  const Exposure& e = *exposure_;
  auto truth = tessera::h5::File::open((dir_->path() / "truth.h5").string());
  EXPECT_EQ(std::get<std::int64_t>(truth.read_attribute("orders")), 2);
  const std::vector<float> o1 = truth.read_floats("star_rate_order1");
  const std::vector<float> o2 = truth.read_floats("star_rate_order2");
  ASSERT_EQ(o1.size(), e.n);
  ASSERT_EQ(o2.size(), e.n);
  float max1 = 0, max2 = 0;
  for (std::size_t p = 0; p < e.n; ++p) {
    EXPECT_NEAR(e.star[p], o1[p] + o2[p], 1e-6 * e.star[p] + 1e-30) << p;
    max1 = std::max(max1, o1[p]);
    max2 = std::max(max2, o2[p]);
    const double u = (static_cast<double>(p % e.nx) + 0.5) / static_cast<double>(e.nx);
    if (u <= 0.34 || u >= 0.9) {
      EXPECT_EQ(o2[p], 0.0f) << "order 2 light outside its range at x " << p % e.nx;
    }
  }
  // The brightest pixel is order 1's (order 2's far wing adds a part in a million there).
  EXPECT_NEAR(max1, e.summary.peak_rate, 1e-5 * e.summary.peak_rate);
  EXPECT_GT(max2, 0.25f * max1);
  EXPECT_LT(max2, 0.45f * max1);
  // Order 2 lies above order 1 and has light in the middle of its range.
  const std::vector<double> c1 = truth.read_doubles("trace_center_order1");
  const std::vector<double> c2 = truth.read_doubles("trace_center_order2");
  const std::size_t mid = e.nx * 62 / 100;
  ASSERT_FALSE(std::isnan(c2[mid]));
  EXPECT_GT(c2[mid], c1[mid] + 25);
  EXPECT_GT(o2[static_cast<std::size_t>(std::lround(c2[mid]) - 6) * e.nx + mid], 0.2f * max1);
  for (std::size_t x = 0; x < e.nx; ++x) {
    const double u = (static_cast<double>(x) + 0.5) / static_cast<double>(e.nx);
    EXPECT_EQ(std::isnan(c1[x]), x < 4 || x >= e.nx - 4) << x;
    if (u <= 0.34 || u >= 0.9) {
      EXPECT_TRUE(std::isnan(c2[x])) << x;
    }
  }
  // Order 1 alone (--orders 1) is the same order-1 image, up to the part in a million order 2's
  // far wing adds to the brightest pixel (which sets the brightness scale).
  JwstSimOptions one = e.options;
  one.orders = 1;
  const std::vector<float> alone = tessera::sim::jwst_star_rate(one, 0, 0);
  for (std::size_t p = 0; p < e.n; ++p) EXPECT_NEAR(alone[p], o1[p], 1e-5 * o1[p]) << p;
  EXPECT_EQ(tessera::sim::jwst_star_rate(e.options, 0, 0), e.star);
  EXPECT_EQ(tessera::sim::jwst_star_rate(e.options, 0, 0, 2), o2);
}

/// The centre truth is the profile's symmetry centre: the flux-weighted centroid of each column
/// of an order's noise-free image (order 2 on a subarray tall enough to hold all of it).
TEST(JwstSimulator, TraceCentreIsTheColumnCentroid) {
  tessera::testing::TempDir dir("jwst_sim_centre");
  JwstSimOptions o = small_niriss(dir.str());
  o.ny = 128;
  o.ints = 2;
  o.groups = 2;
  o.ints_per_segment = 2;
  tessera::sim::simulate_jwst(o);
  auto truth = tessera::h5::File::open((dir.path() / "truth.h5").string());
  const auto mask = [&] {
    auto f = tessera::fits::File::open_read((dir.path() / "refs" / "mask.fits").string());
    EXPECT_TRUE(f.goto_extension("DQ"));
    return f.read_image_uint32();
  }();
  double worst = 0;
  std::size_t checked = 0;
  for (int order = 1; order <= 2; ++order) {
    const std::vector<float> image = truth.read_floats("star_rate_order" + std::to_string(order));
    const std::vector<double> centre = truth.read_doubles("trace_center_order" + std::to_string(order));
    for (std::size_t x = 0; x < o.nx; ++x) {
      if (std::isnan(centre[x])) continue;
      bool dead = false;
      for (std::size_t y = 0; y < o.ny; ++y) dead |= (mask[y * o.nx + x] & dq::dead) != 0;
      if (dead) continue;
      worst = std::max(worst, std::fabs(column_centroid(image, o.ny, o.nx, x) - centre[x]));
      ++checked;
    }
  }
  std::printf("trace centre vs column centroid of the noise-free orders: %zu columns, worst %.2e px\n", checked,
              worst);
  EXPECT_GT(checked, 300u);
  EXPECT_LT(worst, 1e-3);
}

/// Integration i's stellar image at the truth's shifts.
std::vector<std::vector<float>> shifted_stars(const JwstSimOptions& o, const std::vector<double>& sx,
                                              const std::vector<double>& sy) {
  std::vector<std::vector<float>> stars;
  for (std::size_t i = 0; i < sx.size(); ++i) stars.push_back(tessera::sim::jwst_star_rate(o, sx[i], sy[i]));
  return stars;
}

double rms(const std::vector<double>& v) {
  double sum2 = 0;
  for (double x : v) sum2 += x * x;
  return std::sqrt(sum2 / static_cast<double>(v.size()));
}

TEST(JwstSimulator, NirissPointingDriftMovesTheScene) {
  tessera::testing::TempDir dir("jwst_sim_drift");
  JwstSimOptions o = small_niriss(dir.str());
  o.ints = 8;
  o.ints_per_segment = 8;
  o.drift = 0.5;
  const Exposure e = simulate_and_read(o);
  auto truth = tessera::h5::File::open((dir.path() / "truth.h5").string());
  const std::vector<double> sx = truth.read_doubles("shift_x"), sy = truth.read_doubles("shift_y");
  ASSERT_EQ(sx.size(), o.ints);
  EXPECT_NEAR(rms(sx), 0.5, 1e-9);
  EXPECT_NEAR(rms(sy), 0.5, 1e-9);
  EXPECT_NE(sx, sy);
  EXPECT_EQ(std::get<double>(truth.read_attribute("drift")), 0.5);

  // Noise-free: the centroid of a column of order 1 follows the shift (the trace centre at
  // x - shift_x, moved by shift_y).
  const std::vector<double> c1 = truth.read_doubles("trace_center_order1");
  const std::vector<float> still = tessera::sim::jwst_star_rate(o, 0, 0, 1);
  double worst = 0;
  for (std::size_t i = 0; i < o.ints; ++i) {
    const std::vector<float> moved = tessera::sim::jwst_star_rate(o, sx[i], sy[i], 1);
    for (std::size_t x = 8; x + 8 < o.nx; x += 5) {
      bool dead = false;
      for (std::size_t y = 0; y + 4 < e.ny; ++y) dead |= e.mask[y * e.nx + x] != 0;
      if (dead) continue;
      const double expected = interpolate(c1, static_cast<double>(x) - sx[i]) + sy[i];
      worst = std::max(worst, std::fabs(column_centroid(moved, e.ny - 4, e.nx, x) - expected));
      if (i == 0) {
        EXPECT_NEAR(column_centroid(still, e.ny - 4, e.nx, x), c1[x], 1e-3);
      }
    }
  }
  std::printf("NIRISS drift: shifted-scene column centroids within %.2e px of truth centre + shift\n", worst);
  EXPECT_LT(worst, 0.02);

  // The data: undoing the detector leaves the shifted scene within the noise, and not the
  // unshifted one (a 0.5 px shift of the horned trace is many sigma on its flanks).
  const PullStats moved = ramp_pulls(e, shifted_stars(o, sx, sy));
  const PullStats fixed = ramp_pulls(e);
  std::printf("NIRISS drift pulls: shifted scene mean %.3f rms %.3f (bright %.3f %.3f); unshifted bright rms %.1f\n",
              moved.mean, moved.rms, moved.bright_mean, moved.bright_rms, fixed.bright_rms);
  EXPECT_NEAR(moved.mean, 0.0, 0.02);
  EXPECT_NEAR(moved.rms, 1.0, 0.05);
  EXPECT_NEAR(moved.bright_mean, 0.0, 0.08);
  EXPECT_NEAR(moved.bright_rms, 1.0, 0.08);
  EXPECT_GT(fixed.bright_rms, 3.0);
}

TEST(JwstSimulator, MiriPointingDriftAndWavelengths) {
  tessera::testing::TempDir dir("jwst_sim_miri_drift");
  JwstSimOptions o = small_miri(dir.str());
  o.ints = 6;
  o.ints_per_segment = 6;
  o.groups = 5;
  o.drift = 0.3;
  const Exposure e = simulate_and_read(o);
  auto truth = tessera::h5::File::open((dir.path() / "truth.h5").string());
  EXPECT_FALSE(truth.has("star_rate_order2"));
  const std::vector<double> sx = truth.read_doubles("shift_x"), sy = truth.read_doubles("shift_y");
  EXPECT_NEAR(rms(sx), 0.3, 1e-9);
  EXPECT_NEAR(rms(sy), 0.3, 1e-9);

  // The wavelength map: long wavelengths at small rows, nearly constant along x.
  const std::vector<float> map = read_map(dir.path() / "refs" / "wavelength.fits", e.ny, e.nx);
  for (std::size_t y = 0; y + 1 < e.ny; ++y)
    for (std::size_t x = 0; x < e.nx; ++x) ASSERT_LT(map[(y + 1) * e.nx + x], map[y * e.nx + x]) << y << "," << x;
  for (std::size_t y = 0; y < e.ny; ++y) EXPECT_LT(std::fabs(map[y * e.nx + e.nx - 1] - map[y * e.nx]), 0.2);
  const std::vector<double> centre = truth.read_doubles("trace_center");
  const std::vector<double> wave = truth.read_doubles("trace_wavelength");
  ASSERT_EQ(centre.size(), e.ny);
  std::size_t first = e.ny, last = 0;
  for (std::size_t y = 0; y < e.ny; ++y)
    if (!std::isnan(centre[y])) {
      first = std::min(first, y);
      last = std::max(last, y);
      EXPECT_NEAR(centre[y], 36.3, 0.5);
    }
  ASSERT_LT(first, last);
  // Light (above 1e-3 of the peak) from v = (y + 0.5)/ny of about 0.34 to 0.97: 13.3 -> 5.2 micron.
  EXPECT_NEAR(static_cast<double>(first) / static_cast<double>(e.ny), 0.34, 0.02);
  EXPECT_NEAR(static_cast<double>(last) / static_cast<double>(e.ny), 0.965, 0.02);
  EXPECT_NEAR(wave[first], 13.3, 0.3);
  EXPECT_NEAR(wave[last], 5.2, 0.2);

  // Noise-free: the row centroid (columns 4..) follows the trace centre at y - shift_y, moved by shift_x.
  double worst = 0;
  for (std::size_t i = 0; i < o.ints; ++i) {
    const std::vector<float> moved = tessera::sim::jwst_star_rate(o, sx[i], sy[i]);
    for (std::size_t y = first + 2; y + 2 < last; y += 3) {
      bool bad = false;
      for (std::size_t x = 4; x < e.nx; ++x) bad |= e.mask[y * e.nx + x] != 0;
      if (bad) continue;
      const double expected = interpolate(centre, static_cast<double>(y) - sy[i]) + sx[i];
      worst = std::max(worst, std::fabs(row_centroid(moved, e.nx, y, 4) - expected));
    }
  }
  std::printf("MIRI drift: shifted-scene row centroids within %.2e px of truth centre + shift\n", worst);
  EXPECT_LT(worst, 0.02);
  const PullStats moved = ramp_pulls(e, shifted_stars(o, sx, sy));
  std::printf("MIRI drift pulls: mean %.3f rms %.3f\n", moved.mean, moved.rms);
  EXPECT_NEAR(moved.mean, 0.0, 0.03);
  EXPECT_NEAR(moved.rms, 1.0, 0.05);
}

TEST(JwstSimulator, DriftIsDeterministicWhateverTheThreads) {
  tessera::testing::TempDir a("jwst_sim_drift_a"), b("jwst_sim_drift_b");
  JwstSimOptions o = small_niriss(a.str());
  o.ints = 4;
  o.ints_per_segment = 3;
  o.drift = 0.2;
  o.threads = 1;
  tessera::sim::simulate_jwst(o);
  o.out_dir = b.str();
  o.threads = 3;
  tessera::sim::simulate_jwst(o);
  std::vector<std::string> files;
  for (const auto& seg : segment_files(a.path())) files.push_back("uncal/" + seg.filename().string());
  ASSERT_EQ(files.size(), 2u);
  for (const char* ref : {"wavelength_order1", "wavelength_order2"}) files.push_back(std::string("refs/") + ref + ".fits");
  for (const auto& file : files) EXPECT_EQ(file_bytes(a.path() / file), file_bytes(b.path() / file)) << file;
  auto ta = tessera::h5::File::open((a.path() / "truth.h5").string());
  auto tb = tessera::h5::File::open((b.path() / "truth.h5").string());
  for (const char* v : {"shift_x", "shift_y", "trace_center_order1", "trace_center_order2"}) {
    const auto va = ta.read_doubles(v), vb = tb.read_doubles(v);
    ASSERT_EQ(va.size(), vb.size());
    for (std::size_t i = 0; i < va.size(); ++i) EXPECT_TRUE(va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i])));
  }
  // Without drift the shifts are zero.
  tessera::testing::TempDir c("jwst_sim_drift_c");
  o.out_dir = c.str();
  o.drift = 0;
  tessera::sim::simulate_jwst(o);
  auto tc = tessera::h5::File::open((c.path() / "truth.h5").string());
  for (double v : tc.read_doubles("shift_y")) EXPECT_EQ(v, 0.0);
  EXPECT_NE(file_bytes(a.path() / files[0]), file_bytes(c.path() / files[0]));
}

}  // namespace
