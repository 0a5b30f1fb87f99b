// redistribute() on 1, 2 and 3 ranks: every element lands where its new partition says,
// with the value it had, for float and uint32 cubes, and the bytes counted as sent between
// ranks are exactly Partition::elements_moved.
#include "tessera/transpose.hpp"

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "tessera/dataset.hpp"

namespace {

using tessera::CubeShape;
using tessera::Dataset;
using tessera::ElementType;
using tessera::Layout;
using tessera::Partition;

constexpr std::size_t kDefaultChunk = std::size_t{64} << 20;

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Known values of global (t, y, x): distinct for every element of the cubes used here, and
// exact in float (all below 2^24).
float flux_at(std::size_t t, std::size_t y, std::size_t x) {
  return static_cast<float>((t * 131 + y) * 257 + x) + 0.5f;
}
std::uint32_t dq_at(std::size_t t, std::size_t y, std::size_t x) {
  return static_cast<std::uint32_t>(0x80000000u ^ ((t << 20) | (y << 10) | x));
}

/// A dataset with a float cube "flux" and a uint32 cube "dq" in frames, filled with the known values.
Dataset make_dataset(CubeShape shape) {
  Dataset data(shape, Partition::frames(shape, world_size()), world_rank());
  data.add_cube({"flux", "electron", "flux"}, ElementType::Float32);
  data.add_cube({"dq", "1", "data quality"}, ElementType::UInt32);
  auto flux = data.frames<float>("flux");
  auto dq = data.frames<std::uint32_t>("dq");
  for (std::size_t t = flux.t_begin; t < flux.t_end; ++t)
    for (std::size_t y = 0; y < shape.ny; ++y)
      for (std::size_t x = 0; x < shape.nx; ++x) {
        flux(t, y, x) = flux_at(t, y, x);
        dq(t, y, x) = dq_at(t, y, x);
      }
  return data;
}

/// Elements of this rank's part of the cubes that differ from the known values.
std::size_t count_wrong(Dataset& data) {
  const CubeShape& s = data.shape();
  std::size_t wrong = 0;
  if (data.partition().layout() == Layout::Frames) {
    auto flux = data.frames<float>("flux");
    auto dq = data.frames<std::uint32_t>("dq");
    for (std::size_t t = flux.t_begin; t < flux.t_end; ++t)
      for (std::size_t y = 0; y < s.ny; ++y)
        for (std::size_t x = 0; x < s.nx; ++x)
          wrong += (flux(t, y, x) != flux_at(t, y, x)) + (dq(t, y, x) != dq_at(t, y, x));
    return wrong;
  }
  auto flux = data.tiles<float>("flux");
  auto dq = data.tiles<std::uint32_t>("dq");
  for (std::size_t b = 0; b < flux.size(); ++b) {
    const tessera::Tile& tile = flux[b].tile;
    for (std::size_t y = tile.y0; y < tile.y1; ++y)
      for (std::size_t x = tile.x0; x < tile.x1; ++x) {
        auto f = flux[b].series(y, x);
        auto q = dq[b].series(y, x);
        for (std::size_t t = 0; t < s.nt; ++t) wrong += (f[t] != flux_at(t, y, x)) + (q[t] != dq_at(t, y, x));
      }
  }
  return wrong;
}

std::size_t local_size(const Dataset& data, const std::string& name) {
  return std::visit([](const auto& v) { return v.size(); }, data.cube(name).values);
}

/// Moves `data` to `target` and checks values, storage sizes and the bytes counted as sent.
tessera::TransposeStats move_and_check(Dataset& data, const Partition& target, std::size_t chunk_bytes = kDefaultChunk) {
  const Partition before = data.partition();
  const tessera::TransposeStats stats = tessera::redistribute(data, target, MPI_COMM_WORLD, chunk_bytes);
  EXPECT_EQ(data.partition().layout(), target.layout());
  EXPECT_EQ(data.partition().describe(), target.describe());
  for (const char* name : {"flux", "dq"}) EXPECT_EQ(local_size(data, name), target.local_elements(world_rank())) << name;
  EXPECT_EQ(count_wrong(data), 0u) << "after moving from " << before.describe() << " to " << target.describe();

  unsigned long long mine = stats.bytes_sent_to_other_ranks, total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, Partition::elements_moved(before, target) * 4 * data.cubes().size());
  return stats;
}

/// Frames -> tiles -> frames with the given tile shape.
void round_trip(CubeShape shape, std::size_t tile_ny, std::size_t tile_nx, std::size_t chunk_bytes = kDefaultChunk) {
  SCOPED_TRACE(testing::Message() << "cube " << shape.nt << "x" << shape.ny << "x" << shape.nx << ", tiles " << tile_ny
                                  << "x" << tile_nx << ", chunk " << chunk_bytes << " B");
  Dataset data = make_dataset(shape);
  ASSERT_EQ(count_wrong(data), 0u);
  move_and_check(data, Partition::tiles(shape, world_size(), tile_ny, tile_nx), chunk_bytes);
  move_and_check(data, Partition::frames(shape, world_size()), chunk_bytes);
}

TEST(Transpose, ShapesNotDivisibleByRanksOrTiles) {
  round_trip({7, 13, 11}, 4, 5);
  round_trip({10, 31, 17}, 8, 3);
}

TEST(Transpose, TilesLargerThanTheImage) { round_trip({5, 6, 9}, 100, 100); }

TEST(Transpose, SinglePixelTiles) { round_trip({4, 5, 3}, 1, 1); }

TEST(Transpose, WideTilesAndManyFrames) {
  // Rows longer than the copy loops' pixel blocks, and frame counts with and without a
  // remainder after the loops' groups of frames.
  round_trip({37, 5, 600}, 3, 520);
  round_trip({37, 5, 600}, 3, 520, 37 * 700 * 4);
  round_trip({16, 3, 300}, 100, 1000);
}

TEST(Transpose, FewerFramesThanRanks) {
  round_trip({1, 6, 7}, 2, 3);
  round_trip({2, 6, 7}, 4, 4);
}

TEST(Transpose, EmptyCube) {
  round_trip({0, 4, 4}, 2, 2);
  round_trip({3, 0, 4}, 2, 2);
}

TEST(Transpose, TilesToOtherTiles) {
  const CubeShape shape{6, 11, 9};
  Dataset data = make_dataset(shape);
  const int n = world_size();
  move_and_check(data, Partition::tiles(shape, n, 3, 4));
  move_and_check(data, Partition::tiles(shape, n, 5, 2));
  move_and_check(data, Partition::tiles(shape, n, 1, 9));
  move_and_check(data, Partition::tiles(shape, n, 100, 1));
  move_and_check(data, Partition::tiles(shape, n, 1, 1), 1);
  move_and_check(data, Partition::frames(shape, n));
}

TEST(Transpose, SamePartitionIsANoOp) {
  const CubeShape shape{5, 4, 6};
  Dataset data = make_dataset(shape);
  auto stats = move_and_check(data, Partition::frames(shape, world_size()));
  EXPECT_EQ(stats.bytes_sent_to_other_ranks, 0u);
  EXPECT_EQ(stats.chunks, 0u);
  move_and_check(data, Partition::tiles(shape, world_size(), 2, 3));
  stats = move_and_check(data, Partition::tiles(shape, world_size(), 2, 3));
  EXPECT_EQ(stats.bytes_sent_to_other_ranks, 0u);
  EXPECT_EQ(stats.chunks, 0u);
}

/// Most pixels any rank holds in `tiles`.
std::size_t most_pixels(const Partition& tiles) {
  std::size_t most = 0;
  for (int r = 0; r < tiles.nranks(); ++r) most = std::max(most, tiles.local_work_units(r));
  return most;
}

TEST(Transpose, TinyChunksForceManyRounds) {
  // A 1-byte chunk still moves one unit per round: between frames and tiles, one pixel's
  // series per tiles-side rank; from tiles to tiles, one sample of every pixel. On one rank
  // nothing changes rank and everything is copied in one round.
  const CubeShape shape{9, 8, 10};
  const std::size_t cubes = 2;
  const bool alone = world_size() == 1;
  const Partition squares = Partition::tiles(shape, world_size(), 3, 3);
  const Partition bars = Partition::tiles(shape, world_size(), 2, 5);
  Dataset data = make_dataset(shape);
  auto stats = move_and_check(data, squares, 1);
  EXPECT_EQ(stats.chunks, alone ? cubes : cubes * most_pixels(squares));
  stats = move_and_check(data, bars, 1);
  EXPECT_EQ(stats.chunks, alone ? cubes : cubes * shape.nt);
  stats = move_and_check(data, Partition::frames(shape, world_size()), 1);
  EXPECT_EQ(stats.chunks, alone ? cubes : cubes * most_pixels(bars));

  // A chunk of a few pixels' series: several rounds, windows cutting tiles and tile rows.
  for (std::size_t chunk : {5 * 12 * 4, 7 * 12 * 4, 2 * 8 * 10 * 4}) {
    round_trip({12, 8, 10}, 3, 3, chunk);
    round_trip({12, 8, 10}, 100, 100, chunk);
    Dataset again = make_dataset({12, 8, 10});
    stats = move_and_check(again, Partition::tiles(again.shape(), world_size(), 3, 4), chunk);
    if (!alone) {
      EXPECT_GT(stats.chunks, cubes);
    }
  }
}

TEST(Transpose, MismatchedStorageFailsOnEveryRank) {
  const CubeShape shape{4, 4, 4};
  Dataset data = make_dataset(shape);
  if (world_rank() == 0) std::get<std::vector<float>>(data.cube("flux").values).push_back(0.0f);
  EXPECT_THROW(tessera::redistribute(data, Partition::tiles(shape, world_size(), 2, 2), MPI_COMM_WORLD),
               tessera::InternalError);
}

}  // namespace
