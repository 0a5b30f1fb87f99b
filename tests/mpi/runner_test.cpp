// The runner on 1, 2 and 3 ranks: identical results whatever the rank count and tile
// shape, failures agreed across ranks, and no output left behind by a failed run.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>
#include <fstream>

#include "steps/cleaning/fixed_iter.hpp"
#include "support/memory_input.hpp"
#include "support/mpi_world.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/runner.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;

int rank() { return tessera::testing::world_rank(); }
int nranks() { return tessera::testing::world_size(); }
std::string out_path(const std::string& name) { return tessera::testing::per_rank_count_path("runner_test", name); }

const Registry& registry() {
  static const Registry r = tessera::testing::test_registry();
  return r;
}

Workflow workflow(const std::string& output, const std::string& extra_steps, std::vector<std::string> overrides) {
  const std::string text = "[workflow]\nname='runner'\n[input]\nkind='memory'\nnt=13\nny=10\nnx=23\n[output]\npath='" +
                           output + "'\n[[step]]\nid='mean'\nuses='frame_mean'\n[[step]]\nid='clip'\nuses='fixed_iter'\n"
                           "fixed_sigmas=[6.0, 4.0]\nreplacement=2\n[[step]]\nid='mean_after'\nuses='frame_mean'\n" +
                           extra_steps;
  return parse_workflow(text, "runner.toml", overrides, registry());
}

/// What the workflow must produce, computed serially from the memory input's definition.
struct Expected {
  std::vector<float> data;
  std::vector<double> outliers;
};
Expected expected(std::size_t nt, std::size_t ny, std::size_t nx) {
  Expected e;
  e.data.resize(nt * ny * nx);
  e.outliers.assign(nt, 0);
  steps::FixedIterParams p;
  p.fixed_sigmas = {6.0, 4.0};
  p.replacement = 2;
  steps::FixedIterScratch scratch;
  std::vector<float> series(nt);
  std::vector<std::uint32_t> dq(nt);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      for (std::size_t t = 0; t < nt; ++t)
        series[t] = tessera::testing::memory_value(t, y, x) + (tessera::testing::memory_is_outlier(t, y, x) ? 1000.0f : 0.0f);
      std::fill(dq.begin(), dq.end(), 0u);
      steps::fixed_iter_series(series, dq, p, e.outliers, scratch);
      for (std::size_t t = 0; t < nt; ++t) e.data[(t * ny + y) * nx + x] = series[t];
    }
  return e;
}

class Runner : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(Runner, OutputIsTheSameForAnyRankCountAndTileShape) {
  const auto [tile_ny, tile_nx] = GetParam();
  const std::string path = out_path("tiles" + std::to_string(tile_ny) + "x" + std::to_string(tile_nx));
  Workflow wf = workflow(path, "", {"engine.tile_ny=" + std::to_string(tile_ny), "engine.tile_nx=" + std::to_string(tile_nx),
                                    "engine.transpose_chunk_mb=0.001"});
  RunSummary summary = run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
  EXPECT_GE(summary.stages.size(), 5u);
  if (rank() == 0) {
    const Expected want = expected(13, 10, 23);
    h5::File file = h5::File::open(path);
    EXPECT_EQ(file.read_floats("data"), want.data);
    EXPECT_EQ(file.read_doubles("fixed_iter_outliers"), want.outliers);
    double injected = 0;
    for (double c : want.outliers) injected += c;
    EXPECT_GT(injected, 10);  // the memory input injects about 1 in 97 samples
    // frame_mean before and after cleaning differ exactly where outliers were replaced.
    auto before = file.read_doubles("frame_mean");
    EXPECT_EQ(before.size(), 13u);
    EXPECT_EQ(std::get<std::int64_t>(file.read_attribute("mpi_ranks")), nranks());
    EXPECT_NE(std::get<std::string>(file.read_attribute("step.clip")).find("fixed_sigmas = [6.0, 4.0]"), std::string::npos);
  }
  MPI_Barrier(MPI_COMM_WORLD);  // rank 0 reads the file before anyone removes it
  if (rank() == 0) fs::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Tiles, Runner,
                         ::testing::Values(std::pair{1, 1}, std::pair{3, 7}, std::pair{64, 256}, std::pair{10, 23},
                                           std::pair{4, 100}));

TEST(RunnerFailure, ReadFailureOnOneRankStopsAllWithItsMessage) {
  const std::string path = out_path("read_failure");
  Workflow wf = workflow(path, "", {"input.fail_reading=true"});
  try {
    run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("frame12: simulated read failure"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
}

/// Throws on the last rank only, while the others go on to the next collective call.
struct FailOnLastRank {
  struct Params {
    static Schema<Params> schema() { return tessera::schema<Params>(); }
  };
  static constexpr std::string_view name = "fail_on_last_rank";
  static constexpr std::string_view summary = "test step";
  static Access access(const Params&) { return Access::Pixels; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& c) {
    if (c.data().rank() == c.data().partition().nranks() - 1) throw std::runtime_error("deliberate failure");
  }
};

TEST(RunnerFailure, StepFailureOnOneRankIsReportedByAll) {
  Registry r = tessera::testing::test_registry();
  r.add_step(describe_step<FailOnLastRank>());
  const std::string path = out_path("step_failure");
  Workflow wf = parse_workflow("[input]\nkind='memory'\n[output]\npath='" + path +
                                   "'\n[[step]]\nid='boom'\nuses='fail_on_last_rank'\n[[step]]\nid='m'\nuses='frame_mean'\n",
                               "fail.toml", {}, r);
  try {
    run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
    FAIL() << "expected a StepError";
  } catch (const StepError& e) {
    const std::string want = "step 'boom' (fail_on_last_rank) failed on rank " + std::to_string(nranks() - 1) +
                             ": deliberate failure";
    EXPECT_EQ(std::string(e.what()), want);
  }
  EXPECT_FALSE(fs::exists(path));
}

/// Two phases, pixel tiles then frames: each pixel adds 1 to its frame's count and to its
/// own place in an image; then each frame doubles what it sees and a plot file is written.
struct TwoPhases {
  struct Params {
    static Schema<Params> schema() { return tessera::schema<Params>(); }
  };
  static constexpr std::string_view name = "two_phases";
  static constexpr std::string_view summary = "test step";
  static std::vector<Access> access(const Params&) { return {Access::Pixels, Access::Frames}; }
  static StepIO io(const Params&) {
    StepIO io;
    io.writes = {{DataKind::FrameVector, {"pixel_count", "1", "pixels seen per frame"}, ElementType::Float32, true},
                 {DataKind::FrameVector, {"doubled", "1", "twice the count"}},
                 {DataKind::Image, {"visits", "1", "times each pixel was seen"}}};
    return io;
  }
  static void run(const Params&, StepContext& c) {
    if (c.phase() == 0) {
      auto& count = c.frame_vector("pixel_count").values;
      Image& visits = c.image("visits");
      for (const auto& block : c.tiles<float>("data"))
        for (std::size_t y = block.tile.y0; y < block.tile.y1; ++y)
          for (std::size_t x = block.tile.x0; x < block.tile.x1; ++x) {
            visits.values[y * visits.nx + x] += 1.0f;
            for (double& n : count) n += 1;
          }
      return;
    }
    auto slab = c.frames<float>("data");
    auto& doubled = c.frame_vector("doubled").values;
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) doubled[t] = 2 * c.frame_vector("pixel_count").values[t];
    if (auto path = c.plot_file("two_phases.txt", 1)) std::ofstream(*path) << "written once\n";
    if (auto path = c.plot_file("extra.txt", 2)) std::ofstream(*path) << "level 2 only\n";
  }
};

TEST(RunnerPhases, VectorsAndImagesAreCombinedBetweenPhasesAndPlotsWrittenOnce) {
  Registry r = tessera::testing::test_registry();
  r.add_step(describe_step<TwoPhases>());
  const fs::path dir = fs::path(out_path("phases_dir"));
  const std::string path = (dir / "out.h5").string();
  for (bool save : {true, false}) {
    Workflow wf = parse_workflow("[input]\nkind='memory'\nnt=7\nny=9\nnx=11\n[output]\nrun='r1'\npath='" +
                                     dir.string() + "/{output.run}/out.h5'\nsave=" + (save ? "true" : "false") +
                                     "\n[[step]]\nid='p'\nuses='two_phases'\n",
                                 "phases.toml", {"engine.tile_ny=2", "engine.tile_nx=5"}, r);
    EXPECT_EQ(wf.output_path, dir.string() + "/r1/out.h5");
    run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
    if (rank() == 0) {
      EXPECT_TRUE(fs::exists(dir / "r1" / "plots" / "two_phases.txt"));
      EXPECT_FALSE(fs::exists(dir / "r1" / "plots" / "extra.txt"));  // save_plots defaults to 1
      EXPECT_TRUE(fs::exists(dir / "r1" / "out.workflow.toml"));
      EXPECT_EQ(fs::exists(dir / "r1" / "out.h5"), save);
      if (save) {
        h5::File file = h5::File::open((dir / "r1" / "out.h5").string());
        EXPECT_EQ(file.read_doubles("doubled"), std::vector<double>(7, 2.0 * 9 * 11));
        EXPECT_EQ(file.read_ints("pixel_count"), std::vector<std::int64_t>(7, 9 * 11));
        EXPECT_EQ(file.read_floats("visits"), std::vector<float>(9 * 11, 1.0f));
      }
      fs::remove_all(dir);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
}

}  // namespace
