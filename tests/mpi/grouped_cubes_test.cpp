// Grouped cubes (time, group, y, x) on 1, 2 and 3 ranks: transposes move every (frame, group)
// sample of float32 and uint8 cubes to where the new partition says, next to ungrouped cubes;
// the HDF5 writer lays them out as (time, group, y, x) from frames and from tiles; a
// resampling keeps each pixel's samples in the order it asks for.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/mpi_world.hpp"
#include "tessera/dataset.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/io/hdf5_writer.hpp"
#include "tessera/resample.hpp"
#include "tessera/transpose.hpp"

namespace {

using tessera::CubeShape;
using tessera::Dataset;
using tessera::ElementType;
using tessera::Partition;

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int ranks() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Distinct, float-exact values of every (t, g, y, x); flags wrap at 256 but differ between neighbours.
float ramp_at(std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
  return static_cast<float>(((t * 7 + g) * 53 + y) * 61 + x);
}
std::uint8_t flag_at(std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
  return static_cast<std::uint8_t>((t * 31 + g * 17 + y * 5 + x) & 0xff);
}
std::uint32_t dq_at(std::size_t t, std::size_t y, std::size_t x) { return static_cast<std::uint32_t>((t << 20) | (y << 10) | x); }

Dataset make(CubeShape shape) {
  Dataset d(shape, Partition::frames(shape, ranks()), rank());
  d.add_cube({"ramp", "DN", "reads"}, ElementType::Float32, 0.0, true);
  d.add_cube({"groupdq", "1", "group flags"}, ElementType::UInt8, 0.0, true);
  d.add_cube({"dq", "1", "pixel flags"}, ElementType::UInt32);
  auto ramp = d.frames<float>("ramp");
  auto gdq = d.frames<std::uint8_t>("groupdq");
  auto dq = d.frames<std::uint32_t>("dq");
  EXPECT_EQ(ramp.groups, shape.ng);
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t)
    for (std::size_t y = 0; y < shape.ny; ++y)
      for (std::size_t x = 0; x < shape.nx; ++x) {
        dq(t, y, x) = dq_at(t, y, x);
        for (std::size_t g = 0; g < shape.ng; ++g) {
          ramp(t, g, y, x) = ramp_at(t, g, y, x);
          gdq(t, g, y, x) = flag_at(t, g, y, x);
        }
      }
  std::vector<double> time;
  for (std::size_t t = 0; t < shape.nt; ++t) time.push_back(60000.0 + static_cast<double>(t));
  d.frame_vectors()["time"] = {{"time", "d", "time"}, time, false};
  return d;
}

/// Samples in this rank's tiles that differ from the known values (after frames -> tiles).
std::size_t wrong_in_tiles(Dataset& d) {
  const CubeShape& s = d.shape();
  std::size_t wrong = 0;
  auto ramp = d.tiles<float>("ramp");
  auto gdq = d.tiles<std::uint8_t>("groupdq");
  auto dq = d.tiles<std::uint32_t>("dq");
  for (std::size_t b = 0; b < ramp.size(); ++b) {
    EXPECT_EQ(ramp[b].groups, s.ng);
    const tessera::Tile& tile = ramp[b].tile;
    for (std::size_t y = tile.y0; y < tile.y1; ++y)
      for (std::size_t x = tile.x0; x < tile.x1; ++x) {
        auto r = ramp[b].series(y, x);
        auto f = gdq[b].series(y, x);
        auto q = dq[b].series(y, x);
        EXPECT_EQ(r.size(), s.nt * s.ng);
        for (std::size_t t = 0; t < s.nt; ++t) {
          wrong += q[t] != dq_at(t, y, x);
          for (std::size_t g = 0; g < s.ng; ++g)
            wrong += (r[t * s.ng + g] != ramp_at(t, g, y, x)) + (f[t * s.ng + g] != flag_at(t, g, y, x));
        }
      }
  }
  return wrong;
}

std::size_t wrong_in_frames(Dataset& d) {
  const CubeShape& s = d.shape();
  std::size_t wrong = 0;
  auto ramp = d.frames<float>("ramp");
  auto gdq = d.frames<std::uint8_t>("groupdq");
  auto dq = d.frames<std::uint32_t>("dq");
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t)
    for (std::size_t y = 0; y < s.ny; ++y)
      for (std::size_t x = 0; x < s.nx; ++x) {
        wrong += dq(t, y, x) != dq_at(t, y, x);
        for (std::size_t g = 0; g < s.ng; ++g)
          wrong += (ramp(t, g, y, x) != ramp_at(t, g, y, x)) + (gdq(t, g, y, x) != flag_at(t, g, y, x));
      }
  return wrong;
}

TEST(GroupedCubes, TransposeRoundTripKeepsEverySample) {
  for (CubeShape shape : {CubeShape{5, 7, 9, 4}, CubeShape{2, 3, 11, 6}, CubeShape{7, 8, 8, 1}})
    for (auto [tile_ny, tile_nx] : {std::pair<std::size_t, std::size_t>{3, 4}, {1, 1}, {100, 100}}) {
      SCOPED_TRACE(testing::Message() << shape.nt << "x" << shape.ng << "x" << shape.ny << "x" << shape.nx << " tiles "
                                      << tile_ny << "x" << tile_nx);
      Dataset d = make(shape);
      const auto stats = tessera::redistribute(d, Partition::tiles(shape, ranks(), tile_ny, tile_nx), MPI_COMM_WORLD, 256);
      EXPECT_EQ(wrong_in_tiles(d), 0u);
      // Bytes sent: 4 (float) + 1 (uint8) per moved grouped sample, 4 per moved pixel dq.
      unsigned long long mine = stats.bytes_sent_to_other_ranks, total = 0;
      MPI_Allreduce(&mine, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
      const std::size_t moved = Partition::elements_moved(Partition::frames(shape, ranks()), d.partition());
      EXPECT_EQ(total, moved * (5 * shape.ng + 4));
      tessera::redistribute(d, Partition::tiles(shape, ranks(), 2, 5), MPI_COMM_WORLD);
      EXPECT_EQ(wrong_in_tiles(d), 0u);
      tessera::redistribute(d, Partition::frames(shape, ranks()), MPI_COMM_WORLD);
      EXPECT_EQ(wrong_in_frames(d), 0u);
    }
}

void expect_file_holds_everything(const std::string& path, CubeShape s) {
  const tessera::h5::File file = tessera::h5::File::open(path);
  EXPECT_EQ(file.shape("ramp"), (std::vector<std::size_t>{s.nt, s.ng, s.ny, s.nx}));
  EXPECT_EQ(file.shape("groupdq"), (std::vector<std::size_t>{s.nt, s.ng, s.ny, s.nx}));
  EXPECT_EQ(file.shape("dq"), (std::vector<std::size_t>{s.nt, s.ny, s.nx}));
  EXPECT_EQ(file.shape("group"), (std::vector<std::size_t>{s.ng}));
  const auto ramp = file.read_floats("ramp");
  const auto flags = file.read_uints("groupdq");
  const auto dq = file.read_uints("dq");
  std::size_t wrong = 0, i = 0;
  for (std::size_t t = 0; t < s.nt; ++t)
    for (std::size_t g = 0; g < s.ng; ++g)
      for (std::size_t y = 0; y < s.ny; ++y)
        for (std::size_t x = 0; x < s.nx; ++x, ++i)
          wrong += (ramp[i] != ramp_at(t, g, y, x)) + (flags[i] != flag_at(t, g, y, x)) +
                   (g == 0 && dq[(t * s.ny + y) * s.nx + x] != dq_at(t, y, x));
  EXPECT_EQ(wrong, 0u);
}

TEST(GroupedCubes, WrittenAsTimeGroupYXFromFramesAndFromTiles) {
  const CubeShape shape{5, 6, 7, 3};
  const std::string frames_path = tessera::testing::per_rank_count_path("grouped_cubes_test", "frames");
  const std::string tiles_path = tessera::testing::per_rank_count_path("grouped_cubes_test", "tiles");
  Dataset frames = make(shape);
  tessera::write_dataset_hdf5(frames, frames_path, MPI_COMM_WORLD, {});
  Dataset tiles = make(shape);
  tessera::redistribute(tiles, Partition::tiles(shape, ranks(), 4, 2), MPI_COMM_WORLD);
  tessera::write_dataset_hdf5(tiles, tiles_path, MPI_COMM_WORLD, {});
  if (rank() == 0) {
    expect_file_holds_everything(frames_path, shape);
    expect_file_holds_everything(tiles_path, shape);
    std::filesystem::remove(frames_path);
    std::filesystem::remove(tiles_path);
  }
}

TEST(GroupedCubes, ResamplingSplitsIntegrationsAndDropsFrames) {
  // 4 integrations of 6 groups -> drop integration 1, split the rest into 2 of 3 groups: 6 x 3.
  const CubeShape shape{4, 5, 6, 6};
  Dataset d = make(shape);
  tessera::redistribute(d, Partition::tiles(shape, ranks(), 2, 3), MPI_COMM_WORLD);
  tessera::Resampling r;
  r.nt = 6;
  r.ng = 3;
  for (std::size_t old_t : {0, 2, 3})
    for (std::size_t half = 0; half < 2; ++half)
      for (std::size_t g = 0; g < 3; ++g) {
        r.source_frame.push_back(old_t);
        r.source_group.push_back(half * 3 + g);
      }
  tessera::check_resampling(r, d.shape(), "test");
  tessera::apply_resampling(d, r);
  EXPECT_EQ(d.shape().nt, 6u);
  EXPECT_EQ(d.shape().ng, 3u);
  EXPECT_EQ(d.frame_vector("time").values, (std::vector<double>{60000, 60000, 60002, 60002, 60003, 60003}));
  auto ramp = d.tiles<float>("ramp");
  auto dq = d.tiles<std::uint32_t>("dq");
  std::size_t wrong = 0;
  for (std::size_t b = 0; b < ramp.size(); ++b)
    for (std::size_t y = ramp[b].tile.y0; y < ramp[b].tile.y1; ++y)
      for (std::size_t x = ramp[b].tile.x0; x < ramp[b].tile.x1; ++x) {
        auto series = ramp[b].series(y, x);
        auto flags = dq[b].series(y, x);
        ASSERT_EQ(series.size(), 18u);
        for (std::size_t t = 0; t < 6; ++t) {
          wrong += flags[t] != dq_at(r.source_frame[t * 3], y, x);
          for (std::size_t g = 0; g < 3; ++g)
            wrong += series[t * 3 + g] != ramp_at(r.source_frame[t * 3 + g], r.source_group[t * 3 + g], y, x);
        }
      }
  EXPECT_EQ(wrong, 0u);
  // And back to frames on the new axes.
  tessera::redistribute(d, Partition::frames(d.shape(), ranks()), MPI_COMM_WORLD);
  auto frames = d.frames<float>("ramp");
  for (std::size_t t = frames.t_begin; t < frames.t_end; ++t)
    EXPECT_EQ(frames(t, 2, 1, 4), ramp_at(r.source_frame[t * 3 + 2], r.source_group[t * 3 + 2], 1, 4));
}

}  // namespace
