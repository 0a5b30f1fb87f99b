// bkg_uniform against the simulator's truth: on a simulated visit (15 e- sky with a spatial
// gradient, Poisson and read noise, cosmic rays cleaned by fixed_iter first), the per-frame
// value must match the mean sky over the same pixels. The issue's thresholds hold for
// fit = "Gaussian": per-frame rms against the truth <= 0.1 e- and no frame off by more than
// 3 × that rms. The mode and the median get looser, sane bounds; every figure is printed.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "steps/simulate/uvis_simulator.hpp"
#include "support/mpi_world.hpp"
#include "support/temp_dir.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"
#include "tessera/workflow.hpp"

namespace {

using namespace tessera;

constexpr std::size_t kFrames = 40, kNy = 256, kNx = 512;
// Rows clear of the traces and the 0th order: the simulator puts the 0th order at row
// ≈ 0.5·ny = 128 (σ 1.7 px, visible to ~10 px) and the traces within rows ≈ 126–141
// (σ 1.5 px). Whole rows, so the boxes span the sky's gradient along x.
constexpr const char* kBounds = "[[0, 100, 0, 512], [170, 256, 0, 512]]";  // rows first
constexpr std::size_t kRows[2][2] = {{0, 100}, {170, 256}};

/// The visit, simulated once for all tests (rank 0 writes; every rank gets the path).
const std::string& visit() {
  static tessera::testing::TempDir dir("uniform_background");  // removed when the process ends
  static std::string path;
  if (path.empty()) {
    if (tessera::testing::world_rank() == 0) {
      sim::UvisSimOptions o;
      o.out_dir = dir.str();
      o.frames = kFrames;
      o.ny = kNy;
      o.nx = kNx;
      o.seed = 1;
      sim::simulate_uvis(o);
    }
    path = dir.str();
    int length = static_cast<int>(path.size());
    MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
    path.resize(static_cast<std::size_t>(length));
    MPI_Bcast(path.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  }
  return path;
}

/// Truth per frame: background[f] × the mean of the sky pattern over the bounds pixels.
std::vector<double> truth() {
  h5::File file = h5::File::open(visit() + "/truth.h5");
  const std::vector<double> background = file.read_doubles("background");
  const std::vector<float> image = file.read_floats("background_image");  // mean sky × pattern
  double mean_background = 0;
  for (double b : background) mean_background += b / static_cast<double>(background.size());
  double pattern = 0;
  std::size_t pixels = 0;
  for (const auto& rows : kRows)
    for (std::size_t y = rows[0]; y < rows[1]; ++y)
      for (std::size_t x = 0; x < kNx; ++x, ++pixels) pattern += image[y * kNx + x] / mean_background;
  pattern /= static_cast<double>(pixels);
  std::vector<double> out;
  for (double b : background) out.push_back(b * pattern);
  return out;
}

struct Outcome {
  std::vector<double> value, before, after;
  double rms = 0, worst = 0, bias = 0;
};

Outcome run(const std::string& label, const std::string& fit_lines) {
  const std::string output = visit() + "/" + label + ".h5";
  const std::string text = "[workflow]\nname = 'uniform_background'\n[input]\nkind = 'hst_flt_dir'\npath = '" + visit() +
                           "'\n[output]\npath = '" + output +
                           "'\n[[step]]\nid = 'clip'\nuses = 'fixed_iter'\n"
                           "[[step]]\nid = 'bkg'\nuses = 'bkg_uniform'\nafter = ['clip']\nbounds = " +
                           kBounds + "\n" + fit_lines;
  Workflow wf = parse_workflow(text, label + ".toml", {}, builtin_registry());
  run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
  Outcome o;
  h5::File file = h5::File::open(output);
  o.value = file.read_doubles("bkg_uniform_value");
  o.before = file.read_doubles("bkg_uniform_median_before");
  o.after = file.read_doubles("bkg_uniform_median_after");
  MPI_Barrier(MPI_COMM_WORLD);
  if (tessera::testing::world_rank() == 0) std::filesystem::remove(output);  // ~60 MB each
  const std::vector<double> want = truth();
  EXPECT_EQ(o.value.size(), want.size());
  for (std::size_t f = 0; f < std::min(o.value.size(), want.size()); ++f) {
    const double error = o.value[f] - want[f];
    o.rms += error * error;
    o.bias += error;
    o.worst = std::max(o.worst, std::fabs(error));
  }
  o.rms = std::sqrt(o.rms / static_cast<double>(want.size()));
  o.bias /= static_cast<double>(want.size());
  if (tessera::testing::world_rank() == 0)
    std::printf("[ figures  ] bkg_uniform %-26s rms %.3f e-, mean error %+.3f e-, worst frame %.3f e- (%.1f x rms)\n",
                label.c_str(), o.rms, o.bias, o.worst, o.worst / o.rms);
  // The medians bracket the subtraction: after = before − value (to float rounding).
  for (std::size_t f = 0; f < o.value.size(); ++f) EXPECT_NEAR(o.after[f], o.before[f] - o.value[f], 1e-3) << f;
  return o;
}

TEST(UniformBackgroundAccuracy, GaussianMeetsTheIssueThresholds) {
  const Outcome o = run("gaussian", "fit = 'Gaussian'\n");
  EXPECT_LE(o.rms, 0.1);
  EXPECT_LE(o.worst, 3 * o.rms);
  // The 3 × rms rule is a Gaussian-tail statistic (40 frames of pure noise break it about
  // one time in ten); a gross failure also shows as a frame off by more than the rms target.
  EXPECT_LE(o.worst, 0.1);
}

TEST(UniformBackgroundAccuracy, SymmetricGaussianIsBiasedTowardsThePeak) {
  // Without the skewness term the fit's centre sits below the mean of the Poisson-skewed
  // sky, the more so the narrower its window (see bkg_uniform.hpp): still usable at ±3σ,
  // but a narrow ±1.5σ window misses by ~0.2 e-.
  const Outcome wide = run("gaussian_symmetric_3sigma", "fit = 'Gaussian'\ngauss_skew = false\n");
  EXPECT_LE(wide.rms, 0.1);
  const Outcome narrow = run("gaussian_symmetric_1.5sigma", "fit = 'Gaussian'\ngauss_skew = false\ngauss_window = 1.5\n");
  EXPECT_LT(narrow.bias, -0.1);
  EXPECT_LT(narrow.rms, 0.4);
}

TEST(UniformBackgroundAccuracy, MedianAndModeAreSane) {
  // The median of a Poisson-skewed sky lies ≈ γσ/6 ≈ 0.1 e- below its mean; the mode of
  // 0.07 e- bins of ~5 e- noise jumps by about a noise sigma / 5 from frame to frame.
  const Outcome median = run("median", "fit = 'median'\n");
  EXPECT_LE(median.rms, 0.2);
  EXPECT_LE(median.worst, 3 * median.rms);
  const Outcome mode = run("mode", "");
  EXPECT_LE(mode.rms, 1.5);
  EXPECT_LE(mode.worst, 5.0);
}

}  // namespace
