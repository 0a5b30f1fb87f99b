// Partition: frame slabs and pixel tiles cover the cube exactly once, stay balanced, and
// count moved elements correctly.
#include "tessera/partition.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <vector>

#include "tessera/errors.hpp"

namespace {

using tessera::CubeShape;
using tessera::Layout;
using tessera::Partition;

TEST(PartitionFrames, UnevenCountsDifferByAtMostOne) {
  const Partition p = Partition::frames({10, 3, 4}, 3);
  EXPECT_EQ(p.layout(), Layout::Frames);
  EXPECT_EQ(p.frame_begin(0), 0u);
  EXPECT_EQ(p.frame_end(0), 3u);
  EXPECT_EQ(p.frame_begin(1), 3u);
  EXPECT_EQ(p.frame_end(1), 6u);
  EXPECT_EQ(p.frame_begin(2), 6u);
  EXPECT_EQ(p.frame_end(2), 10u);
  for (std::size_t t = 0; t < 10; ++t) {
    const int owner = p.frame_owner(t);
    EXPECT_LE(p.frame_begin(owner), t);
    EXPECT_LT(t, p.frame_end(owner));
  }
}

TEST(PartitionFrames, FewerFramesThanRanks) {
  const Partition p = Partition::frames({2, 5, 5}, 5);
  std::size_t covered = 0;
  int empty = 0;
  for (int r = 0; r < 5; ++r) {
    ASSERT_LE(p.frame_begin(r), p.frame_end(r));
    covered += p.frame_end(r) - p.frame_begin(r);
    if (p.frame_begin(r) == p.frame_end(r)) ++empty;
    EXPECT_LE(p.frame_end(r) - p.frame_begin(r), 1u);
  }
  EXPECT_EQ(covered, 2u);
  EXPECT_EQ(empty, 3);
  // Frame owners are the ranks that really hold the frame, not an empty neighbour.
  for (std::size_t t = 0; t < 2; ++t) {
    const int owner = p.frame_owner(t);
    EXPECT_EQ(p.frame_end(owner) - p.frame_begin(owner), 1u);
    EXPECT_EQ(p.frame_begin(owner), t);
  }
}

TEST(PartitionFrames, NoFrames) {
  const Partition p = Partition::frames({0, 4, 4}, 3);
  for (int r = 0; r < 3; ++r) EXPECT_EQ(p.local_elements(r), 0u);
}

TEST(PartitionFrames, RejectsNoRanks) { EXPECT_THROW(Partition::frames({4, 4, 4}, 0), tessera::InternalError); }

TEST(PartitionTiles, RejectsEmptyTiles) {
  EXPECT_THROW(Partition::tiles({4, 4, 4}, 1, 0, 4), tessera::InternalError);
  EXPECT_THROW(Partition::tiles({4, 4, 4}, 1, 4, 0), tessera::InternalError);
  EXPECT_THROW(Partition::tiles({4, 4, 4}, 0, 4, 4), tessera::InternalError);
}

/// Checks every tile invariant of Partition::tiles for one shape, rank count and tile size.
void check_tiles(CubeShape shape, int nranks, std::size_t tile_ny, std::size_t tile_nx) {
  SCOPED_TRACE(testing::Message() << shape.ny << "x" << shape.nx << " on " << nranks << " ranks, tiles " << tile_ny
                                  << "x" << tile_nx);
  const Partition p = Partition::tiles(shape, nranks, tile_ny, tile_nx);
  ASSERT_EQ(p.layout(), Layout::PixelTiles);

  // Every pixel in exactly one tile, and no tile larger than asked for or empty.
  std::vector<int> hits(shape.frame_pixels(), 0);
  std::size_t largest = 0;
  for (const tessera::Tile& t : p.tiles()) {
    ASSERT_GT(t.pixels(), 0u);
    EXPECT_LE(t.height(), tile_ny);
    EXPECT_LE(t.width(), tile_nx);
    ASSERT_LE(t.y1, shape.ny);
    ASSERT_LE(t.x1, shape.nx);
    largest = std::max(largest, t.pixels());
    for (std::size_t y = t.y0; y < t.y1; ++y)
      for (std::size_t x = t.x0; x < t.x1; ++x) ++hits[y * shape.nx + x];
  }
  EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));

  // Owners in range, in contiguous runs (non-decreasing with the tile index).
  for (std::size_t i = 0; i < p.tiles().size(); ++i) {
    ASSERT_GE(p.tile_owner(i), 0);
    ASSERT_LT(p.tile_owner(i), nranks);
    if (i > 0) {
      EXPECT_LE(p.tile_owner(i - 1), p.tile_owner(i));
    }
  }

  // local_tiles agrees with tile_owner; pixel counts within one tile of an equal share;
  // local elements add up to the cube.
  std::size_t elements = 0;
  for (int r = 0; r < nranks; ++r) {
    const std::vector<std::size_t> mine = p.local_tiles(r);
    EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
    std::size_t pixels = 0;
    for (std::size_t i : mine) {
      EXPECT_EQ(p.tile_owner(i), r);
      pixels += p.tiles()[i].pixels();
    }
    const double share = static_cast<double>(shape.frame_pixels()) / nranks;
    EXPECT_LE(std::abs(static_cast<double>(pixels) - share), static_cast<double>(largest)) << "rank " << r;
    EXPECT_EQ(p.local_elements(r), pixels * shape.nt);
    EXPECT_EQ(p.local_work_units(r), pixels);
    elements += p.local_elements(r);
  }
  EXPECT_EQ(elements, shape.elements());
}

TEST(PartitionTiles, CoverBalanceAndOwnership) {
  const std::vector<std::tuple<std::size_t, std::size_t>> images = {{1, 1}, {7, 10}, {64, 64}, {65, 130}, {600, 210}};
  const std::vector<std::tuple<std::size_t, std::size_t>> tile_sizes = {{1, 1}, {3, 4}, {8, 8}, {64, 256}, {1000, 1000}};
  for (auto [ny, nx] : images)
    for (auto [ty, tx] : tile_sizes)
      for (int nranks : {1, 2, 3, 4, 7}) check_tiles({3, ny, nx}, nranks, ty, tx);
}

TEST(PartitionTiles, TileLargerThanImageIsTheImage) {
  const Partition p = Partition::tiles({2, 5, 7}, 3, 100, 100);
  ASSERT_EQ(p.tiles().size(), 1u);
  EXPECT_EQ(p.tiles()[0], (tessera::Tile{0, 5, 0, 7}));
  // One rank holds it; the others hold nothing.
  int holders = 0;
  for (int r = 0; r < 3; ++r) holders += p.local_elements(r) > 0 ? 1 : 0;
  EXPECT_EQ(holders, 1);
}

TEST(PartitionTiles, EdgeTilesAreSmaller) {
  const Partition p = Partition::tiles({1, 5, 7}, 1, 2, 3);
  // Rows [0,2) [2,4) [4,5); columns [0,3) [3,6) [6,7), in row-major order.
  ASSERT_EQ(p.tiles().size(), 9u);
  EXPECT_EQ(p.tiles()[0], (tessera::Tile{0, 2, 0, 3}));
  EXPECT_EQ(p.tiles()[2], (tessera::Tile{0, 2, 6, 7}));
  EXPECT_EQ(p.tiles()[3], (tessera::Tile{2, 4, 0, 3}));
  EXPECT_EQ(p.tiles()[8], (tessera::Tile{4, 5, 6, 7}));
}

TEST(PartitionDescribe, NamesLayoutAndTileShape) {
  EXPECT_EQ(Partition::frames({1, 1, 1}, 1).describe(), "frames");
  EXPECT_EQ(Partition::tiles({1, 100, 300}, 2, 64, 256).describe(), "tiles 64x256");
}

TEST(PartitionMoved, FramesAndTilesByHand) {
  // 4 frames of 2x2 on 2 ranks: frames [0,2) and [2,4); tiles are the two rows, row 0 on
  // rank 0 and row 1 on rank 1. Each rank keeps its own row of its own frames: half moves.
  const CubeShape shape{4, 2, 2};
  const Partition frames = Partition::frames(shape, 2);
  const Partition rows = Partition::tiles(shape, 2, 1, 2);
  ASSERT_EQ(rows.tile_owner(0), 0);
  ASSERT_EQ(rows.tile_owner(1), 1);
  EXPECT_EQ(Partition::elements_moved(frames, rows), 8u);
  EXPECT_EQ(Partition::elements_moved(rows, frames), 8u);
  EXPECT_EQ(Partition::elements_moved(frames, frames), 0u);
  EXPECT_EQ(Partition::elements_moved(rows, rows), 0u);
}

TEST(PartitionMoved, UnevenFramesToTilesByHand) {
  // 5 frames of 1x3 on 2 ranks: frames [0,2) and [2,5); one tile per pixel, pixels 0 and 1
  // on rank 0, pixel 2 on rank 1 (a tile goes where its middle pixel falls: 0, 1 < 1.5 <= 2).
  const CubeShape shape{5, 1, 3};
  const Partition tiles = Partition::tiles(shape, 2, 1, 1);
  ASSERT_EQ(tiles.tile_owner(0), 0);
  ASSERT_EQ(tiles.tile_owner(1), 0);
  ASSERT_EQ(tiles.tile_owner(2), 1);
  // Rank 0's 2 frames of pixel 2, rank 1's 3 frames of pixels 0 and 1.
  EXPECT_EQ(Partition::elements_moved(Partition::frames(shape, 2), tiles), 2u + 6u);
}

TEST(PartitionMoved, TilesToOtherTilesByHand) {
  // 3 frames of 2x4 on 2 ranks. 2x2 tiles: left half on rank 0, right half on rank 1.
  // 1x4 tiles: top row on rank 0, bottom row on rank 1. Top-right and bottom-left move.
  const CubeShape shape{3, 2, 4};
  const Partition squares = Partition::tiles(shape, 2, 2, 2);
  const Partition rows = Partition::tiles(shape, 2, 1, 4);
  ASSERT_EQ(squares.tile_owner(0), 0);
  ASSERT_EQ(squares.tile_owner(1), 1);
  ASSERT_EQ(rows.tile_owner(0), 0);
  ASSERT_EQ(rows.tile_owner(1), 1);
  EXPECT_EQ(Partition::elements_moved(squares, rows), 4u * 3u);
  EXPECT_EQ(Partition::elements_moved(rows, squares), 4u * 3u);
}

TEST(PartitionMoved, NothingMovesOnOneRank) {
  const CubeShape shape{6, 9, 11};
  const Partition frames = Partition::frames(shape, 1);
  const Partition tiles = Partition::tiles(shape, 1, 4, 4);
  EXPECT_EQ(Partition::elements_moved(frames, tiles), 0u);
  EXPECT_EQ(Partition::elements_moved(tiles, Partition::tiles(shape, 1, 2, 5)), 0u);
}

TEST(PartitionMoved, RejectsDifferentCubes) {
  EXPECT_THROW(Partition::elements_moved(Partition::frames({2, 2, 2}, 2), Partition::frames({3, 2, 2}, 2)),
               tessera::InternalError);
  EXPECT_THROW(Partition::elements_moved(Partition::frames({2, 2, 2}, 2), Partition::frames({2, 2, 2}, 3)),
               tessera::InternalError);
}

}  // namespace
