// Checkpoints and resume on 1, 2 and 3 ranks: the state survives a checkpoint exactly
// (whatever the layout it was in), a resumed run gives the uninterrupted run's output, a
// complete output is skipped, and a changed step invalidates its checkpoint and later ones.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <filesystem>

#include "support/memory_input.hpp"
#include "support/mpi_world.hpp"
#include "tessera/checkpoint.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/plan.hpp"
#include "tessera/runner.hpp"
#include "tessera/transpose.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;

int rank() { return tessera::testing::world_rank(); }
int nranks() { return tessera::testing::world_size(); }
std::string out_path(const std::string& name) { return tessera::testing::per_rank_count_path("checkpoint_test", name); }

const Registry& registry() {
  static const Registry r = tessera::testing::test_registry();
  return r;
}

Workflow workflow(const std::string& output, const std::vector<std::string>& overrides) {
  const std::string text =
      "[workflow]\nname='ck'\n[input]\nkind='memory'\nnt=13\nny=10\nnx=23\n[output]\npath='" + output +
      "'\ncopy_workflow=false\n[[step]]\nid='mean'\nuses='frame_mean'\n[[step]]\nid='clip'\nuses='fixed_iter'\n"
      "fixed_sigmas=[6.0, 4.0]\nreplacement=2\n[[step]]\nid='mean_after'\nuses='frame_mean'\n";
  return parse_workflow(text, "ck.toml", overrides, registry());
}

/// A value that tells every sample apart.
double sample(std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
  return static_cast<double>(((t * 7 + g) * 31 + y) * 53 + x) * 0.25;
}

void remove_on_rank0(const std::string& path) {
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove_all(path);
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(Checkpoint, StateSurvivesExactlyFromPixelTiles) {
  const CubeShape shape{7, 5, 6, 3};
  Dataset data(shape, Partition::frames(shape, nranks()), rank());
  data.add_cube({"data", "DN/s", "rate"}, ElementType::Float32);
  data.add_cube({"dq", "1", "flags"}, ElementType::UInt32);
  data.add_cube({"ramp", "DN", "reads"}, ElementType::Float32, 0.0, true);
  data.add_cube({"groupdq", "1", "group flags"}, ElementType::UInt8, 0.0, true);
  {
    auto d = data.frames<float>("data");
    auto q = data.frames<std::uint32_t>("dq");
    auto r = data.frames<float>("ramp");
    auto gq = data.frames<std::uint8_t>("groupdq");
    for (std::size_t t = d.t_begin; t < d.t_end; ++t)
      for (std::size_t y = 0; y < shape.ny; ++y)
        for (std::size_t x = 0; x < shape.nx; ++x) {
          d(t, y, x) = static_cast<float>(sample(t, 0, y, x));
          q(t, y, x) = static_cast<std::uint32_t>(t * 1000 + y * 10 + x);
          for (std::size_t g = 0; g < shape.ng; ++g) {
            r(t, g, y, x) = static_cast<float>(-sample(t, g, y, x));
            gq(t, g, y, x) = static_cast<std::uint8_t>((t + g + y + x) % 256);
          }
        }
  }
  data.add_frame_vector({"time", "d", "mid-exposure time"}).values = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.75};
  data.add_frame_vector({"integration", "1", "number"}, true).values = {1, 2, 3, 4, 5, 6, 7};
  Image wavelength{{"wavelength", "um", "wavelength"}, "", "wavelength", 1, 4, {1.0f, 1.5f, 2.0f, 2.5f}};
  Image flux{{"flux", "DN/s", "spectrum"}, "time", "wavelength", 7, 4, std::vector<float>(28, 3.0f)};
  flux.values[5] = NAN;
  data.images()["wavelength"] = wavelength;
  data.images()["flux"] = flux;
  data.attributes()["instrument"] = std::string("NIRISS");
  data.attributes()["gain"] = 1.61;
  data.attributes()["ngroups"] = std::int64_t{3};

  // Checkpoint from pixel tiles of an odd shape, as a Pixels step would leave the state.
  EngineSettings tiles;
  tiles.tile_ny = 2;
  tiles.tile_nx = 4;
  redistribute(data, partition_for(Layout::PixelTiles, shape, nranks(), tiles), MPI_COMM_WORLD, 1 << 20);
  const std::string path = out_path("state") + ".h5";
  write_checkpoint(data, {path, "jump", "0123456789abcdef", 4}, MPI_COMM_WORLD);

  if (rank() == 0) {
    auto info = read_checkpoint_info(path);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->step_id, "jump");
    EXPECT_EQ(info->hash, "0123456789abcdef");
    EXPECT_EQ(info->position, 4u);
    EXPECT_FALSE(read_checkpoint_info(path + ".missing"));
  }
  Dataset back = read_checkpoint(path, MPI_COMM_WORLD);
  EXPECT_EQ(back.shape(), shape);
  EXPECT_EQ(back.partition().layout(), Layout::Frames);
  ASSERT_EQ(back.cubes().size(), 4u);
  EXPECT_TRUE(back.cube("ramp").grouped);
  EXPECT_EQ(back.cube("groupdq").type(), ElementType::UInt8);
  EXPECT_EQ(back.cube("data").info.units, "DN/s");
  auto d = back.frames<float>("data");
  auto q = back.frames<std::uint32_t>("dq");
  auto r = back.frames<float>("ramp");
  auto gq = back.frames<std::uint8_t>("groupdq");
  for (std::size_t t = d.t_begin; t < d.t_end; ++t)
    for (std::size_t y = 0; y < shape.ny; ++y)
      for (std::size_t x = 0; x < shape.nx; ++x) {
        ASSERT_EQ(d(t, y, x), static_cast<float>(sample(t, 0, y, x)));
        ASSERT_EQ(q(t, y, x), t * 1000 + y * 10 + x);
        for (std::size_t g = 0; g < shape.ng; ++g) {
          ASSERT_EQ(r(t, g, y, x), static_cast<float>(-sample(t, g, y, x)));
          ASSERT_EQ(gq(t, g, y, x), (t + g + y + x) % 256);
        }
      }
  EXPECT_EQ(back.frame_vector("time").values, data.frame_vector("time").values);
  EXPECT_TRUE(back.frame_vector("integration").integer);
  EXPECT_EQ(back.frame_vector("integration").values, data.frame_vector("integration").values);
  EXPECT_EQ(back.image("wavelength").values, wavelength.values);
  EXPECT_EQ(back.image("wavelength").dim_y, "");
  EXPECT_EQ(back.image("flux").dim_y, "time");
  EXPECT_TRUE(std::isnan(back.image("flux").values[5]));
  EXPECT_EQ(back.image("flux").values[6], 3.0f);
  EXPECT_EQ(back.attributes(), data.attributes());
  remove_on_rank0(path);
}

TEST(Checkpoint, HashChainChangesFromTheChangedStepOn) {
  Workflow a = workflow("unused.h5", {});
  Workflow b = workflow("elsewhere.h5", {"clip.fixed_sigmas=[6.0, 3.0]"});
  Workflow c = workflow("unused.h5", {"input.nt=14"});
  const auto ha = step_chain_hashes(a), hb = step_chain_hashes(b), hc = step_chain_hashes(c);
  ASSERT_EQ(ha.size(), 3u);
  EXPECT_EQ(ha[0], hb[0]);  // the output path is not part of the computation
  EXPECT_NE(ha[1], hb[1]);
  EXPECT_NE(ha[2], hb[2]);
  for (std::size_t k = 0; k < 3; ++k) EXPECT_NE(ha[k], hc[k]);  // a different input changes everything
  EXPECT_EQ(workflow_hash(a), ha.back());
  EXPECT_EQ(stable_hash(""), "cbf29ce484222325");  // FNV-1a 64 offset basis
  EXPECT_EQ(stable_hash("a"), "af63dc4c8601ec8c");
}

std::vector<float> read_data(const std::string& path) {
  std::vector<float> values;
  if (rank() == 0) values = h5::File::open(path).read_floats("data");
  return values;
}

TEST(Checkpoint, ResumeGivesTheUninterruptedOutputAndSkipsCompleteOnes) {
  const std::string dir = out_path("resume");
  if (rank() == 0) fs::remove_all(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string reference = dir + "/reference.h5", output = dir + "/visit.h5";
  Workflow ref = workflow(reference, {});
  run_workflow(ref, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});

  // Every step but the last leaves a checkpoint; losing the output is like a kill during it.
  Workflow first = workflow(output, {});
  RunOptions options{Verbosity::Quiet};
  options.checkpoint_all = true;
  run_workflow(first, MPI_COMM_WORLD, options);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) {
    EXPECT_TRUE(fs::exists(checkpoint_path(output, 1, "mean")));
    EXPECT_TRUE(fs::exists(checkpoint_path(output, 2, "clip")));
    EXPECT_FALSE(fs::exists(checkpoint_path(output, 3, "mean_after")));
    fs::remove(output);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  RunOptions resume{Verbosity::Quiet};
  resume.resume = true;
  Workflow again = workflow(output, {});
  RunSummary resumed = run_workflow(again, MPI_COMM_WORLD, resume);
  EXPECT_EQ(resumed.outcome, RunOutcome::Completed);
  EXPECT_EQ(resumed.resumed_after, "clip");
  EXPECT_EQ(resumed.input_frames, 0u);
  EXPECT_EQ(read_data(output), read_data(reference));
  if (rank() == 0) {
    const h5::File file = h5::File::open(output);
    const h5::File want = h5::File::open(reference);
    EXPECT_EQ(file.read_doubles("frame_mean"), want.read_doubles("frame_mean"));
    EXPECT_EQ(file.read_doubles("fixed_iter_outliers"), want.read_doubles("fixed_iter_outliers"));
    EXPECT_EQ(std::get<std::string>(file.read_attribute("resumed_after")), "clip");
    EXPECT_EQ(std::get<std::int64_t>(file.read_attribute("tessera_complete")), 1);
    EXPECT_EQ(std::get<std::string>(file.read_attribute("workflow_hash")), workflow_hash(again));
  }

  // Complete: nothing runs.
  Workflow third = workflow(output, {});
  RunSummary skipped = run_workflow(third, MPI_COMM_WORLD, resume);
  EXPECT_EQ(skipped.outcome, RunOutcome::AlreadyComplete);
  EXPECT_EQ(skipped.frames, 13u);

  // A changed clip: its checkpoint is stale (removed), mean's still holds.
  Workflow changed = workflow(output, {"clip.fixed_sigmas=[6.0, 3.0]"});
  RunSummary rerun = run_workflow(changed, MPI_COMM_WORLD, resume);
  EXPECT_EQ(rerun.outcome, RunOutcome::Completed);
  EXPECT_EQ(rerun.resumed_after, "mean");
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) EXPECT_FALSE(fs::exists(checkpoint_path(output, 2, "clip")));
  Workflow fresh = workflow(dir + "/fresh.h5", {"clip.fixed_sigmas=[6.0, 3.0]"});
  run_workflow(fresh, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
  EXPECT_EQ(read_data(output), read_data(dir + "/fresh.h5"));
  if (rank() == 0) EXPECT_NE(read_data(output), read_data(reference));
  remove_on_rank0(dir);
}

TEST(Checkpoint, FiguresAndSlurmJobAreRecorded) {
  const std::string dir = out_path("figures");
  setenv("SLURM_JOB_ID", "4242", 1);
  Workflow wf = workflow(dir + "/visit.h5", {});
  RunOptions options{Verbosity::Quiet};
  options.figures = {{"outliers", "sum(fixed_iter_outliers)"}, {"typical_mean", "median(frame_mean)"}};
  RunSummary summary = run_workflow(wf, MPI_COMM_WORLD, options);
  unsetenv("SLURM_JOB_ID");
  ASSERT_EQ(summary.figures.size(), 2u);
  if (rank() == 0) {
    const h5::File file = h5::File::open(dir + "/visit.h5");
    double outliers = 0;
    for (double n : file.read_doubles("fixed_iter_outliers")) outliers += n;
    EXPECT_GT(outliers, 10);
    EXPECT_EQ(summary.figures[0].second, outliers);
    EXPECT_EQ(std::get<double>(file.read_attribute("figure_outliers")), outliers);
    EXPECT_EQ(std::get<std::string>(file.read_attribute("slurm_job_id")), "4242");
  }
  // The figures of a skipped output come back from its attributes.
  RunOptions resume = options;
  resume.resume = true;
  Workflow again = workflow(dir + "/visit.h5", {});
  RunSummary skipped = run_workflow(again, MPI_COMM_WORLD, resume);
  EXPECT_EQ(skipped.outcome, RunOutcome::AlreadyComplete);
  EXPECT_EQ(skipped.figures, summary.figures);

  // A figure over something nothing writes fails before anything runs.
  Workflow bad = workflow(dir + "/bad.h5", {});
  RunOptions typo{Verbosity::Quiet};
  typo.figures = {{"outliers", "sum(fixed_iter_outlier)"}};
  EXPECT_THROW(run_workflow(bad, MPI_COMM_WORLD, typo), ConfigError);
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_FALSE(fs::exists(dir + "/bad.h5"));
  remove_on_rank0(dir);
}

}  // namespace
