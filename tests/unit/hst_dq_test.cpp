// hst_dq on tiny frames and series whose answers are worked out by hand, and the two-phase
// step on different frame and tile partitions.
#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "steps/cleaning/hst_dq.hpp"
#include "steps/common/dq_bits.hpp"
#include "tessera/dataset.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"
#include "tessera/step.hpp"

namespace {

using tessera::steps::HstDqMasks;
using tessera::steps::HstDqParams;
namespace dq = tessera::dq;

constexpr std::uint32_t kHot = 16, kSaturated = 256, kCosmicRay = 4096;

/// A 5 × 5 frame with value 10·y + x at (y, x), no flags.
struct Frame {
  std::vector<float> data;
  std::vector<std::uint32_t> dq;
  Frame() {
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 5; ++x) data.push_back(static_cast<float>(10 * y + x));
    dq.assign(25, 0);
  }
  std::size_t clean(const std::vector<std::int64_t>& flags = {16, 4096}, bool replace = true) {
    return tessera::steps::hst_dq_frame(data, dq, 5, 5, HstDqMasks(flags), replace);
  }
};

TEST(HstDq, HotPixelTakesTheMedianOfItsNeighbours) {
  // (2, 2) hot; its 3×3 neighbours are 11 12 13 21 23 31 32 33 -> median (21 + 23) / 2 = 22.
  Frame f;
  f.data[12] = 5000;
  f.dq[12] = kHot;
  EXPECT_EQ(f.clean(), 1u);
  EXPECT_FLOAT_EQ(f.data[12], 22.0f);
  EXPECT_EQ(f.dq[12], kHot | dq::hst_flagged);  // HST's own bit stays
  for (std::size_t i = 0; i < 25; ++i) {
    if (i != 12) {
      EXPECT_EQ(f.dq[i], 0u) << i;
    }
  }
}

TEST(HstDq, FlaggedNeighboursAreLeftOut) {
  // (2, 2) and (2, 3) hot: (2, 2)'s usable neighbours are 11 12 13 21 31 32 33 -> 21.
  // (2, 3)'s are 12 13 14 24 32 33 34 -> 24.
  Frame f;
  f.dq[12] = kHot;
  f.dq[13] = kHot | kSaturated;
  f.data[12] = f.data[13] = 9999;
  EXPECT_EQ(f.clean(), 2u);
  EXPECT_FLOAT_EQ(f.data[12], 21.0f);
  EXPECT_FLOAT_EQ(f.data[13], 24.0f);
}

TEST(HstDq, BoxIsClippedAtTheEdgesAndGrowsWhenAllAreFlagged) {
  // Corner (0, 0): neighbours 1, 10, 11 -> 10.
  Frame corner;
  corner.dq[0] = kHot;
  corner.clean();
  EXPECT_FLOAT_EQ(corner.data[0], 10.0f);
  // (2, 2) with its whole 3×3 ring flagged: the 5×5 box's usable pixels are the 16 on the
  // border: 0 1 2 3 4 10 14 20 24 30 34 40 41 42 43 44 -> median (20 + 24) / 2 = 22.
  Frame ring;
  for (int y = 1; y <= 3; ++y)
    for (int x = 1; x <= 3; ++x) ring.dq[static_cast<std::size_t>(5 * y + x)] = kHot;
  ring.data[12] = -1;
  EXPECT_EQ(ring.clean(), 9u);
  EXPECT_FLOAT_EQ(ring.data[12], 22.0f);
  // A neighbour that is not finite is not usable either: (0, 0) with 1 = NaN -> (10 + 11) / 2.
  Frame nan;
  nan.dq[0] = kHot;
  nan.data[1] = NAN;
  nan.clean();
  EXPECT_FLOAT_EQ(nan.data[0], 10.5f);
}

TEST(HstDq, OnlyTheChosenFlagsCount) {
  // Saturated (256) is not in the default [16, 4096]: left alone, not flagged.
  Frame f;
  f.dq[7] = kSaturated;
  f.data[7] = 63000;
  EXPECT_EQ(f.clean(), 0u);
  EXPECT_FLOAT_EQ(f.data[7], 63000.0f);
  EXPECT_EQ(f.dq[7], kSaturated);
  // Chosen: replaced by the median of 1 2 3 11 13 21 22 23 = (11 + 13) / 2.
  EXPECT_EQ(f.clean({256}), 1u);
  EXPECT_FLOAT_EQ(f.data[7], 12.0f);
  EXPECT_EQ(f.dq[7], kSaturated | dq::hst_flagged);
}

TEST(HstDq, RecordOnlyLeavesValues) {
  Frame f;
  f.dq[12] = kHot;
  f.dq[3] = kCosmicRay;
  f.data[12] = 5000;
  EXPECT_EQ(f.clean({16, 4096}, false), 0u);
  EXPECT_FLOAT_EQ(f.data[12], 5000.0f);
  EXPECT_EQ(f.dq[12], kHot | dq::hst_flagged);
  EXPECT_EQ(f.dq[3], kCosmicRay | dq::hst_flagged);
}

TEST(HstDq, TemporalFlagsTakeTheMedianOfTheGoodFrames) {
  // Frames 2 and 5 carry 4096: the median of the unflagged 10 12 11 13 9 14 is 11.5.
  std::vector<float> s = {10, 12, 900, 11, 13, 700, 9, 14};
  std::vector<std::uint32_t> q = {0, 0, kCosmicRay, 0, 0, kCosmicRay | kSaturated, 0, 0};
  std::vector<double> counts(8, 0);
  std::vector<float> scratch;
  const HstDqMasks masks({16, 4096});
  EXPECT_EQ(tessera::steps::hst_dq_series(s, q, masks, counts, scratch), 2u);
  EXPECT_EQ(s, (std::vector<float>{10, 12, 11.5f, 11, 13, 11.5f, 9, 14}));
  EXPECT_EQ(counts, (std::vector<double>{0, 0, 1, 0, 0, 1, 0, 0}));
  // A sample that also carries a chosen spatial flag was the frame phase's to repair; one
  // carrying 16 in every frame has no good frame at all: values stay.
  std::vector<float> hot = {50, 60, 70};
  std::vector<std::uint32_t> hot_q = {kHot, kHot | kCosmicRay, kHot};
  std::vector<double> hot_counts(3, 0);
  EXPECT_EQ(tessera::steps::hst_dq_series(hot, hot_q, masks, hot_counts, scratch), 0u);
  EXPECT_EQ(hot, (std::vector<float>{50, 60, 70}));
  // No temporal flag anywhere: untouched.
  std::vector<float> quiet = {1, 2, 3};
  std::vector<std::uint32_t> quiet_q = {0, kSaturated, 0};
  EXPECT_EQ(tessera::steps::hst_dq_series(quiet, quiet_q, masks, hot_counts, scratch), 0u);
}

TEST(HstDq, FlagsMustBeSingleBitsAndChooseThePhases) {
  try {
    HstDqMasks bad({16, 48});
    FAIL() << "48 accepted";
  } catch (const tessera::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("hst_flags: 48"), std::string::npos) << e.what();
  }
  const HstDqMasks m({16, 256, 4096, 8192});
  EXPECT_EQ(m.any, 16u | 256u | 4096u | 8192u);
  EXPECT_EQ(m.spatial, 16u | 256u);
  EXPECT_EQ(m.temporal, 4096u | 8192u);
  using tessera::Access;
  HstDqParams p;
  EXPECT_EQ(tessera::steps::HstDq::access(p), (std::vector<Access>{Access::Frames, Access::Pixels}));
  p.hst_replace = false;
  EXPECT_EQ(tessera::steps::HstDq::access(p), (std::vector<Access>{Access::Frames}));
  p.hst_replace = true;
  p.hst_flags = {16, 256};
  EXPECT_EQ(tessera::steps::HstDq::access(p), (std::vector<Access>{Access::Frames}));
}

/// A cube (time, y, x) and what the step made of it.
struct Cube {
  tessera::CubeShape shape;
  std::vector<float> data;
  std::vector<std::uint32_t> dq;
  std::vector<double> counts;
  std::size_t at(std::size_t t, std::size_t y, std::size_t x) const { return (t * shape.ny + y) * shape.nx + x; }
};

/// Runs both phases of hst_dq as the engine would on `nranks` ranks: frames dealt in slabs,
/// then pixel tiles of tile_ny × tile_nx; per-frame counts combined as the engine does.
Cube run_step(const Cube& in, const HstDqParams& params, int nranks, std::size_t tile_ny, std::size_t tile_nx) {
  Cube out = in;
  out.counts.assign(in.shape.nt, 0.0);
  const auto phases = tessera::steps::HstDq::access(params);
  for (std::size_t phase = 0; phase < phases.size(); ++phase) {
    const bool frames = phases[phase] == tessera::Access::Frames;
    std::vector<double> summed(in.shape.nt, 0.0);
    for (int rank = 0; rank < nranks; ++rank) {
      const auto partition = frames ? tessera::Partition::frames(in.shape, nranks)
                                    : tessera::Partition::tiles(in.shape, nranks, tile_ny, tile_nx);
      tessera::Dataset data(in.shape, partition, rank);
      data.add_cube({"data", "electron", ""}, tessera::ElementType::Float32);
      data.add_cube({"dq", "1", ""}, tessera::ElementType::UInt32);
      data.add_frame_vector({"hst_dq_replaced", "1", ""}, true);
      auto copy = [&](bool into) {
        if (frames) {
          auto d = data.frames<float>("data");
          auto q = data.frames<std::uint32_t>("dq");
          for (std::size_t t = d.t_begin; t < d.t_end; ++t)
            for (std::size_t y = 0; y < in.shape.ny; ++y)
              for (std::size_t x = 0; x < in.shape.nx; ++x) {
                if (into) {
                  d(t, y, x) = out.data[out.at(t, y, x)];
                  q(t, y, x) = out.dq[out.at(t, y, x)];
                } else {
                  out.data[out.at(t, y, x)] = d(t, y, x);
                  out.dq[out.at(t, y, x)] = q(t, y, x);
                }
              }
          return;
        }
        auto d = data.tiles<float>("data");
        auto q = data.tiles<std::uint32_t>("dq");
        for (std::size_t k = 0; k < d.size(); ++k)
          for (std::size_t y = d[k].tile.y0; y < d[k].tile.y1; ++y)
            for (std::size_t x = d[k].tile.x0; x < d[k].tile.x1; ++x)
              for (std::size_t t = 0; t < in.shape.nt; ++t) {
                float& v = d[k].series(y, x)[t];
                std::uint32_t& b = q[k].series(y, x)[t];
                if (into) {
                  v = out.data[out.at(t, y, x)];
                  b = out.dq[out.at(t, y, x)];
                } else {
                  out.data[out.at(t, y, x)] = v;
                  out.dq[out.at(t, y, x)] = b;
                }
              }
      };
      copy(true);
      tessera::Logger log(rank, tessera::Verbosity::Quiet);
      tessera::StepContext context(data, log, {}, {}, phase);
      tessera::steps::HstDq::run(params, context);
      copy(false);
      const auto& counts = data.frame_vector("hst_dq_replaced").values;
      for (std::size_t t = 0; t < in.shape.nt; ++t)
        if (!frames || (t >= partition.frame_begin(rank) && t < partition.frame_end(rank))) summed[t] += counts[t];
    }
    for (std::size_t t = 0; t < in.shape.nt; ++t) out.counts[t] += summed[t];
  }
  return out;
}

TEST(HstDqStep, SameResultOnAnyPartition) {
  Cube in;
  in.shape = {9, 11, 14};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(0, 100);
  in.data.resize(in.shape.elements());
  for (float& v : in.data) v = uniform(rng);
  in.dq.assign(in.shape.elements(), 0);
  // Hot pixels in every frame (two of them adjacent, one in a corner), cosmic rays here and there.
  for (auto [y, x] : {std::pair{4, 5}, std::pair{4, 6}, std::pair{0, 0}, std::pair{10, 13}})
    for (std::size_t t = 0; t < in.shape.nt; ++t) in.dq[in.at(t, y, x)] |= kHot;
  for (int k = 0; k < 30; ++k) in.dq[rng() % in.dq.size()] |= kCosmicRay;
  const HstDqParams params;
  const Cube one = run_step(in, params, 1, 64, 64);
  double total = 0;
  for (double c : one.counts) total += c;
  std::size_t flagged = 0;
  for (std::uint32_t b : one.dq) flagged += (b & dq::hst_flagged) ? 1 : 0;
  EXPECT_EQ(total, static_cast<double>(flagged));  // every flagged sample had something to take
  EXPECT_GE(flagged, 4u * 9u + 25u);
  for (auto [nranks, ty, tx] : {std::tuple{2, 3, 4}, std::tuple{3, 11, 1}, std::tuple{3, 1, 14}}) {
    const Cube other = run_step(in, params, nranks, ty, tx);
    EXPECT_EQ(other.data, one.data) << nranks << " ranks, tiles " << ty << "x" << tx;
    EXPECT_EQ(other.dq, one.dq);
    EXPECT_EQ(other.counts, one.counts);
  }
  // Recording only: the same flags, values untouched, nothing counted.
  HstDqParams record = params;
  record.hst_replace = false;
  const Cube recorded = run_step(in, record, 2, 3, 4);
  EXPECT_EQ(recorded.data, in.data);
  EXPECT_EQ(recorded.dq, one.dq);
  EXPECT_EQ(recorded.counts, std::vector<double>(in.shape.nt, 0.0));
}

}  // namespace
