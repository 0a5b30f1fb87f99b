// Group-level spatial corrections (refpix, refpix_miri, one_over_f, group_background) on
// hand-made ramps whose offsets, stripes and backgrounds are known: the steps must remove them
// exactly (integer-valued scenes, so the arithmetic is exact) or to float precision, respect
// masks and flags, and give identical results on 1, 2 and 3 emulated ranks.
#include <gtest/gtest.h>

#include <ctime>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "steps/common/jwst_dq.hpp"
#include "steps/detector/one_over_f.hpp"
#include "steps/detector/refpix.hpp"
#include "steps/miri/group_background.hpp"
#include "steps/miri/refpix_miri.hpp"
#include "support/emulated_ranks.hpp"
#include "support/ramp_ranks.hpp"
#include "tessera/errors.hpp"

namespace {

using namespace tessera;
using tessera::testing::make_ramp_ranks;
using tessera::testing::run_like_engine;
using tessera::steps::GroupBackgroundParams;
using tessera::steps::OneOverFParams;
using tessera::steps::RefpixMiriParams;
using tessera::steps::RefpixParams;
namespace dq = tessera::jwst::dq;

using DqValue = std::function<std::uint32_t(std::size_t t, std::size_t y, std::size_t x)>;

void set_dq(std::vector<Dataset>& ranks, const DqValue& value) {
  for (auto& d : ranks) {
    auto q = d.frames<std::uint32_t>("dq");
    for (std::size_t t = q.t_begin; t < q.t_end; ++t)
      for (std::size_t y = 0; y < q.ny; ++y)
        for (std::size_t x = 0; x < q.nx; ++x) q(t, y, x) = value(t, y, x);
  }
}

/// The whole cube `name`, frames of all ranks in order.
std::vector<float> gather(std::vector<Dataset>& ranks, const std::string& name) {
  std::vector<float> all;
  for (auto& d : ranks) {
    auto c = d.frames<float>(name);
    for (std::size_t t = c.t_begin; t < c.t_end; ++t) {
      auto f = c.frame(t);
      all.insert(all.end(), f.begin(), f.end());
    }
  }
  return all;
}

/// Deterministic pseudo-noise in [-0.5, 0.5), for scenes that are not exact.
float noise(std::size_t a, std::size_t b, std::size_t c, std::size_t d) {
  std::uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^
                    (c + 17) * 0x94D049BB133111EBull ^ (d + 91) * 0xD6E8FEB86659FD93ull;
  h ^= h >> 31;
  h *= 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return static_cast<float>(h >> 40) / static_cast<float>(1ull << 24) - 0.5f;
}

template <class S>
void expect_partition_invariant(const typename S::Params& params, CubeShape shape, const tessera::testing::RampValue& value,
                                const DqValue& dqv, const std::string& cube = "ramp") {
  std::vector<float> reference;
  for (int n = 1; n <= 3; ++n) {
    auto ranks = make_ramp_ranks(shape, n, value);
    set_dq(ranks, dqv);
    if (cube == "data")
      for (auto& d : ranks) {
        d.add_cube({"data", "DN/s", "rate"}, ElementType::Float32);
        auto c = d.frames<float>("data");
        auto r = d.frames<float>("ramp");
        for (std::size_t t = c.t_begin; t < c.t_end; ++t)
          for (std::size_t y = 0; y < shape.ny; ++y)
            for (std::size_t x = 0; x < shape.nx; ++x) c(t, y, x) = r(t, 0, y, x);
      }
    run_like_engine<S>(params, ranks);
    auto out = gather(ranks, cube);
    if (n == 1) {
      reference = out;
      continue;
    }
    ASSERT_EQ(out.size(), reference.size());
    for (std::size_t i = 0; i < out.size(); ++i)
      ASSERT_TRUE(out[i] == reference[i] || (std::isnan(out[i]) && std::isnan(reference[i])))
          << S::name << " on " << n << " ranks differs at sample " << i;
  }
}

// ---------------------------------------------------------------------------------------
// refpix (NIR). SUBSTRIP256-like geometry, shrunk: 16 rows x 32 columns, 4 amplifiers of 8
// columns; reference pixels: columns 0..3 and 28..31 and the top 4 rows (12..15).

constexpr std::size_t kNy = 16, kNx = 32;

bool nir_reference(std::size_t y, std::size_t x) { return x < 4 || x >= kNx - 4 || y >= kNy - 4; }
std::uint32_t nir_dq(std::size_t, std::size_t y, std::size_t x) { return nir_reference(y, x) ? dq::reference_pixel : 0; }

/// Amplifier offset by integration, group, amplifier and column parity (integers).
float amp_offset(std::size_t t, std::size_t g, std::size_t x) {
  return 100.0f + 10.0f * static_cast<float>(x / 8) + 3.0f * static_cast<float>(x % 2) + 7.0f * g + 20.0f * t;
}
/// Light on the science pixels (integers); reference pixels see none.
float nir_signal(std::size_t g, std::size_t y, std::size_t x) {
  return nir_reference(y, x) ? 0.0f : 1000.0f + static_cast<float>((y * kNx + x) % 13) * g;
}

TEST(Refpix, RemovesOddEvenAmplifierOffsetsExactlyAndClipsOutliers) {
  CubeShape shape{3, kNy, kNx, 3};
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    float v = nir_signal(g, y, x) + amp_offset(t, g, x);
    if (y == 13 && x == 9) v += 5000.0f;  // a hit on a top reference pixel: the 3-sigma clip rejects it
    if (y == 14 && x == 20) v = NAN;      // a bad reference pixel, flagged bad_ref_pixel below
    return v;
  });
  set_dq(ranks, [](std::size_t t, std::size_t y, std::size_t x) {
    return nir_dq(t, y, x) | (y == 14 && x == 20 ? dq::bad_ref_pixel : 0u);
  });
  RefpixParams p;
  p.use_side_ref_pixels = false;
  run_like_engine<tessera::steps::Refpix>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t y = 0; y < kNy; ++y)
        for (std::size_t x = 0; x < kNx; ++x) {
          if (y == 14 && x == 20) continue;
          // Reference pixels are corrected too (as jwst does): they end at 0.
          const float expected = nir_signal(g, y, x) + (y == 13 && x == 9 ? 5000.0f : 0.0f);
          ASSERT_EQ(ramp(t, g, y, x), expected) << t << " " << g << " " << y << " " << x;
        }
}

TEST(Refpix, WithoutOddEvenColumnsBothParitiesShareOneMean) {
  CubeShape shape{1, kNy, kNx, 2};
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return nir_signal(g, y, x) + amp_offset(t, g, x);
  });
  set_dq(ranks, nir_dq);
  RefpixParams p;
  p.use_side_ref_pixels = false;
  p.odd_even_columns = false;
  run_like_engine<tessera::steps::Refpix>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  // Pooled mean of an amplifier's top rows = even offset + 1.5: even columns end 1.5 low, odd 1.5 high.
  for (std::size_t g = 0; g < 2; ++g)
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x)
        ASSERT_EQ(ramp(0, g, y, x), nir_signal(g, y, x) + (x % 2 ? 1.5f : -1.5f)) << g << " " << y << " " << x;
}

/// Row signal common to all amplifiers (integers), what the side reference pixels track.
float row_signal(std::size_t t, std::size_t g, std::size_t y) { return 2.0f * y + g + 3.0f * t; }

TEST(Refpix, SideReferencePixelsRemoveTheRowSignal) {
  CubeShape shape{2, kNy, kNx, 3};
  auto value = [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return nir_signal(g, y, x) + amp_offset(t, g, x) + row_signal(t, g, y);
  };
  // Window of one row: after the top correction (which also removed the top rows' mean row
  // signal, 27 + g + 3t), each side column holds row_signal(y) - that mean; subtracting it
  // leaves the light exactly.
  {
    auto ranks = make_ramp_ranks(shape, 1, value);
    set_dq(ranks, nir_dq);
    RefpixParams p;
    p.side_smoothing_length = 1;
    run_like_engine<tessera::steps::Refpix>(p, ranks);
    auto ramp = ranks[0].frames<float>("ramp");
    for (std::size_t t = 0; t < 2; ++t)
      for (std::size_t g = 0; g < 3; ++g)
        for (std::size_t y = 0; y < kNy; ++y)
          for (std::size_t x = 0; x < kNx; ++x) ASSERT_EQ(ramp(t, g, y, x), nir_signal(g, y, x));
  }
  // Default window of 11 rows (y-5 .. y+5): the running median of a linear row signal is exact
  // where the window is whole (rows 5..10), and wrong by a known amount at the edges.
  {
    auto ranks = make_ramp_ranks(shape, 1, value);
    set_dq(ranks, nir_dq);
    RefpixParams p;
    ASSERT_EQ(p.side_smoothing_length, 11);
    run_like_engine<tessera::steps::Refpix>(p, ranks);
    auto ramp = ranks[0].frames<float>("ramp");
    for (std::size_t t = 0; t < 2; ++t)
      for (std::size_t g = 0; g < 3; ++g)
        for (std::size_t y = 0; y < kNy; ++y)
          for (std::size_t x = 4; x < kNx - 4; ++x) {
            // Window rows [max(0,y-5), min(15,y+5)]; the median of 2y' over it is y0 + y1.
            const float y0 = y >= 5 ? y - 5.0f : 0.0f, y1 = std::min(15.0f, y + 5.0f);
            const float expected = nir_signal(g, y, x) + 2.0f * y - (y0 + y1);
            ASSERT_EQ(ramp(t, g, y, x), expected) << t << " " << g << " " << y << " " << x;
            if (y >= 5 && y <= 10) {
              ASSERT_EQ(ramp(t, g, y, x), nir_signal(g, y, x));
            }
          }
  }
  // side_gain scales the row signal: with 0 only the top correction is done.
  {
    auto ranks = make_ramp_ranks(shape, 1, value);
    set_dq(ranks, nir_dq);
    RefpixParams p;
    p.side_gain = 0.0;
    run_like_engine<tessera::steps::Refpix>(p, ranks);
    auto ramp = ranks[0].frames<float>("ramp");
    EXPECT_EQ(ramp(1, 2, 3, 10), nir_signal(2, 3, 10) + row_signal(1, 2, 3) - (27.0f + 2.0f + 3.0f));
  }
}

TEST(Refpix, PartitionInvariant) {
  RefpixParams p;
  expect_partition_invariant<tessera::steps::Refpix>(
      p, CubeShape{5, kNy, kNx, 3},
      [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
        return nir_signal(g, y, x) + amp_offset(t, g, x) + row_signal(t, g, y) + 3.0f * noise(t, g, y, x);
      },
      nir_dq);
}

TEST(Refpix, ClearErrors) {
  CubeShape shape{1, kNy, kNx, 2};
  auto value = [](std::size_t, std::size_t, std::size_t, std::size_t) { return 1.0f; };
  {
    auto ranks = make_ramp_ranks(shape, 1, value);  // dq all zero: dq_init not run
    try {
      run_like_engine<tessera::steps::Refpix>(RefpixParams{}, ranks);
      FAIL() << "expected a StepError";
    } catch (const StepError& e) {
      EXPECT_NE(std::string(e.what()).find("reference_pixel"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("dq_init"), std::string::npos) << e.what();
    }
  }
  {
    auto ranks = make_ramp_ranks(shape, 1, value);
    set_dq(ranks, nir_dq);
    RefpixParams p;
    p.amplifiers = 5;
    try {
      run_like_engine<tessera::steps::Refpix>(p, ranks);
      FAIL() << "expected a StepError";
    } catch (const StepError& e) {
      EXPECT_NE(std::string(e.what()).find("amplifiers"), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------
// refpix_miri. 20 rows x 16 columns, reference columns 0..3, amplifier x % 4.

constexpr std::size_t mNy = 20, mNx = 16;

/// Drift of amplifier a, row parity, by integration and group (integers; nonzero at group 0).
float miri_offset(std::size_t t, std::size_t g, std::size_t x, std::size_t y) {
  return 50.0f + 4.0f * static_cast<float>(x % 4) + static_cast<float>(y % 2) * (5.0f + g) + 9.0f * g + 2.0f * t;
}
float miri_static(std::size_t g, std::size_t y, std::size_t x) {
  const float bias = static_cast<float>((3 * y + 5 * x) % 17);
  return bias + (x < 4 ? 0.0f : static_cast<float>((x + y) % 7) * g);
}

TEST(RefpixMiri, RemovesDriftSinceGroupZeroPerAmplifierAndRowParity) {
  CubeShape shape{2, mNy, mNx, 4};
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    if (x == 2 && y == 3 && g == 2) return NAN;  // flagged reference pixel: left out
    return miri_static(g, y, x) + miri_offset(t, g, x, y);
  });
  set_dq(ranks, [](std::size_t, std::size_t y, std::size_t x) {
    return (x < 4 ? dq::reference_pixel : 0u) | (x == 2 && y == 3 ? dq::bad_ref_pixel : 0u);
  });
  run_like_engine<tessera::steps::RefpixMiri>(RefpixMiriParams{}, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t g = 0; g < 4; ++g)
      for (std::size_t y = 0; y < mNy; ++y)
        for (std::size_t x = 0; x < mNx; ++x) {
          if (x == 2 && y == 3 && g == 2) continue;
          // Every group ends with group 0's offsets; group 0 itself is untouched.
          ASSERT_EQ(ramp(t, g, y, x), miri_static(g, y, x) + miri_offset(t, 0, x, y)) << t << g << " " << y << " " << x;
        }
}

TEST(RefpixMiri, WithoutOddEvenRowsOneMedianOverAllRows) {
  CubeShape shape{1, mNy, mNx, 3};
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return miri_static(g, y, x) + miri_offset(t, g, x, y);
  });
  RefpixMiriParams p;
  p.odd_even_rows = false;
  run_like_engine<tessera::steps::RefpixMiri>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  // Drift since group 0: 9g on even rows, 10g on odd rows, ten rows each: the median of the
  // twenty is their midpoint 9.5g, which is what every row loses.
  for (std::size_t g = 0; g < 3; ++g)
    for (std::size_t y = 0; y < mNy; ++y)
      for (std::size_t x = 0; x < mNx; ++x)
        ASSERT_EQ(ramp(0, g, y, x),
                  miri_static(g, y, x) + miri_offset(0, g, x, y) - 9.5f * static_cast<float>(g))
            << g << " " << y << " " << x;
}

TEST(RefpixMiri, SmoothingLengthIsARunningMedianWithinEachParity) {
  CubeShape shape{1, mNy, mNx, 3};
  // A drift that grows along the rows: g * y on even rows, 3 g y on odd rows.
  auto drift = [](std::size_t g, std::size_t y) { return static_cast<float>(g * y * (y % 2 ? 3 : 1)); };
  auto ranks = make_ramp_ranks(shape, 1, [&](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return miri_static(g, y, x) + miri_offset(t, 0, x, y) + drift(g, y);
  });
  RefpixMiriParams p;
  p.smoothing_length = 5;  // radius 2 along each parity: rows y-4, y-2, y, y+2, y+4
  run_like_engine<tessera::steps::RefpixMiri>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  for (std::size_t g = 0; g < 3; ++g)
    for (std::size_t y = 0; y < mNy; ++y)
      for (std::size_t x = 0; x < mNx; ++x) {
        // Window rows of the same parity, cut at the edges; the median of a linear drift over
        // them is the drift at the window's middle row.
        const std::size_t first = y % 2;
        const std::size_t k = y / 2, n = 10;
        const std::size_t k0 = k >= 2 ? k - 2 : 0, k1 = std::min(n - 1, k + 2);
        const float middle = 0.5f * (drift(g, first + 2 * k0) + drift(g, first + 2 * k1));
        ASSERT_EQ(ramp(0, g, y, x), miri_static(g, y, x) + miri_offset(0, 0, x, y) + drift(g, y) - middle)
            << g << " " << y << " " << x;
        if (y >= 4 && y < 16) {
          ASSERT_EQ(ramp(0, g, y, x), miri_static(g, y, x) + miri_offset(0, 0, x, y));
        }
      }
}

TEST(RefpixMiri, PartitionInvariant) {
  RefpixMiriParams p;
  p.smoothing_length = 3;
  expect_partition_invariant<tessera::steps::RefpixMiri>(
      p, CubeShape{5, mNy, mNx, 4},
      [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
        return miri_static(g, y, x) + miri_offset(t, g, x, y) + noise(t, g, y, x);
      },
      [](std::size_t, std::size_t, std::size_t x) { return x < 4 ? dq::reference_pixel : 0u; });
}

// ---------------------------------------------------------------------------------------
// one_over_f. 20 rows x 24 columns; rows 18, 19 reference pixels; a narrow trace on rows
// 6..9 of every column, and a wide one (rows 0..11) on columns 10..13; column 23 unusable.

constexpr std::size_t fNy = 20, fNx = 24;

/// 1/f stripe of a column in a group (integers), plus a background that grows with the group.
float stripe(std::size_t t, std::size_t g, std::size_t x) {
  return static_cast<float>((x * 7 + g * 3 + t * 5) % 11) - 5.0f + 2.0f * g;
}
bool wide(std::size_t x) { return x >= 10 && x <= 13; }
bool illuminated(std::size_t y, std::size_t x) { return (y >= 6 && y <= 9) || (wide(x) && y <= 11); }
/// Static sky on the dark rows: its median over rows 0..17 minus the trace rows is 0.
float sky(std::size_t y) {
  static const float rows[18] = {-6, -5, -4, -3, -2, -1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6};
  return y < 18 && !(y >= 6 && y <= 9) ? rows[y] : 0.0f;
}
/// What the step must leave: the light, the sky and the reference pixels' own level.
float scene(std::size_t g, std::size_t y, std::size_t x) {
  if (y >= 18) return 9999.0f;
  return sky(y) + (illuminated(y, x) ? 500.0f * (g + 1) : 0.0f);
}
std::uint32_t f_dq(std::size_t, std::size_t y, std::size_t x) {
  return (y >= 18 ? dq::reference_pixel : 0u) | (x == 23 || (x == 5 && y == 2) ? dq::do_not_use : 0u);
}
float f_value(std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
  if (x == 5 && y == 2) return 1.0e6f;  // flagged: never used
  return scene(g, y, x) + stripe(t, g, x);
}

std::vector<Dataset> one_over_f_ranks(std::size_t nt = 2, int n = 1) {
  auto ranks = make_ramp_ranks(CubeShape{nt, fNy, fNx, 3}, n, f_value);
  set_dq(ranks, f_dq);
  // A saturated sample in column 7 (group 1) with a wild value: left out through groupdq.
  for (auto& d : ranks) {
    auto r = d.frames<float>("ramp");
    auto gq = d.frames<std::uint8_t>("groupdq");
    for (std::size_t t = r.t_begin; t < r.t_end; ++t) {
      r(t, 1, 15, 7) = -4.0e5f;
      gq(t, 1, 15, 7) = dq::group(dq::saturated);
    }
  }
  return ranks;
}

TEST(OneOverF, ColumnMedianOfUnilluminatedPixels) {
  // Threshold 3: the trace rows (last - first = 1000 above the column) are left out, the
  // median of the remaining sky is 0, so each column loses exactly its stripe.
  auto ranks = one_over_f_ranks();
  OneOverFParams p;
  p.threshold = 3.0;
  run_like_engine<tessera::steps::OneOverF>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t y = 0; y < fNy; ++y)
        for (std::size_t x = 0; x < fNx; ++x) {
          if ((x == 5 && y == 2) || (x == 7 && y == 15 && g == 1)) continue;
          if (x == 23) {  // no usable pixel: left as it is
            ASSERT_EQ(ramp(t, g, y, x), f_value(t, g, y, x));
            continue;
          }
          if (wide(x)) continue;  // the trace covers most of these columns: see the mask test
          ASSERT_EQ(ramp(t, g, y, x), scene(g, y, x)) << t << g << " " << y << " " << x;
        }
  // Without a threshold the trace rows pull the median up (to 1.5 above the stripe).
  auto plain = one_over_f_ranks();
  run_like_engine<tessera::steps::OneOverF>(OneOverFParams{}, plain);
  EXPECT_EQ(plain[0].frames<float>("ramp")(0, 1, 0, 3), scene(1, 0, 3) - 1.5f);
}

TEST(OneOverF, RowsRestrictTheEstimate) {
  // Rows [12, 18): sky 1..6, median 3.5; every column (the wide trace too) loses stripe + 3.5.
  auto ranks = one_over_f_ranks();
  OneOverFParams p;
  p.rows = std::vector<std::int64_t>{12, 18};
  run_like_engine<tessera::steps::OneOverF>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t y = 0; y < fNy; ++y)
        for (std::size_t x = 0; x < fNx - 1; ++x) {
          if ((x == 5 && y == 2) || (x == 7 && y == 15 && g == 1)) continue;
          // Column 7, group 1: its saturated row 15 (sky 4) is left out too: median of 1,2,3,5,6.
          const float level = x == 7 && g == 1 ? 3.0f : 3.5f;
          ASSERT_EQ(ramp(t, g, y, x), scene(g, y, x) - level) << t << g << " " << y << " " << x;
        }
}

TEST(OneOverF, TraceMaskFromAnImage) {
  // mask = "@trace": an image an upstream step wrote, nonzero on the trace (both traces).
  auto ranks = one_over_f_ranks();
  for (auto& d : ranks) {
    Image mask{{"trace", "1", "trace mask"}, "y", "x", fNy, fNx, std::vector<float>(fNy * fNx, 0.0f)};
    for (std::size_t y = 0; y < fNy; ++y)
      for (std::size_t x = 0; x < fNx; ++x) mask.values[y * fNx + x] = illuminated(y, x) ? 1.0f : 0.0f;
    d.images()["trace"] = mask;
  }
  OneOverFParams p;
  p.mask = "@trace";
  auto io = tessera::steps::OneOverF::io(p);
  bool declared = false;
  for (const auto& r : io.reads) declared = declared || (r.kind == DataKind::Image && r.name == "trace");
  EXPECT_TRUE(declared) << "mask = \"@trace\" must be declared as a read";
  run_like_engine<tessera::steps::OneOverF>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t g = 0; g < 3; ++g)
      for (std::size_t y = 0; y < fNy; ++y)
        for (std::size_t x = 0; x < fNx - 1; ++x) {
          if ((x == 5 && y == 2) || (x == 7 && y == 15 && g == 1)) continue;
          // Wide columns: sky of rows 12..17 only (median 3.5) is what remains usable.
          const float left = wide(x) ? 3.5f : 0.0f;
          ASSERT_EQ(ramp(t, g, y, x), scene(g, y, x) - left) << t << g << " " << y << " " << x;
        }
}

TEST(OneOverF, IntegrationModeCorrectsTheRates) {
  auto ranks = one_over_f_ranks();
  for (auto& d : ranks) {
    d.add_cube({"data", "DN/s", "rate"}, ElementType::Float32);
    auto c = d.frames<float>("data");
    for (std::size_t t = c.t_begin; t < c.t_end; ++t)
      for (std::size_t y = 0; y < fNy; ++y)
        for (std::size_t x = 0; x < fNx; ++x) c(t, y, x) = f_value(t, 0, y, x);
  }
  OneOverFParams p;
  p.mode = "integration";
  p.threshold = 3.0;
  auto before = gather(ranks, "ramp");
  run_like_engine<tessera::steps::OneOverF>(p, ranks);
  EXPECT_EQ(gather(ranks, "ramp"), before) << "integration mode must not touch the ramps";
  auto data = ranks[0].frames<float>("data");
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t y = 0; y < fNy; ++y)
      for (std::size_t x = 0; x < fNx - 1; ++x) {
        if ((x == 5 && y == 2) || wide(x)) continue;
        ASSERT_EQ(data(t, y, x), scene(0, y, x)) << t << " " << y << " " << x;
      }
}

TEST(OneOverF, PartitionInvariant) {
  OneOverFParams p;
  p.threshold = 2.0;
  auto value = [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return f_value(t, g, y, x) + 4.0f * noise(t, g, y, x);
  };
  expect_partition_invariant<tessera::steps::OneOverF>(p, CubeShape{5, fNy, fNx, 3}, value, f_dq);
  p.mode = "integration";
  expect_partition_invariant<tessera::steps::OneOverF>(p, CubeShape{5, fNy, fNx, 3}, value, f_dq, "data");
}

TEST(OneOverF, ClearErrors) {
  for (auto rows : {std::vector<std::int64_t>{5}, std::vector<std::int64_t>{10, 5}, std::vector<std::int64_t>{0, 21}}) {
    auto ranks = one_over_f_ranks();
    OneOverFParams p;
    p.rows = rows;
    try {
      run_like_engine<tessera::steps::OneOverF>(p, ranks);
      FAIL() << "expected a StepError";
    } catch (const StepError& e) {
      EXPECT_NE(std::string(e.what()).find("rows"), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------
// group_background. MIRI LRS width: 24 rows x 72 columns, trace on columns 30..40.

constexpr std::size_t bNy = 24, bNx = 72;

float trace(std::size_t g, std::size_t y, std::size_t x) {
  return x >= 30 && x <= 40 ? 100.0f * (g + 1) + static_cast<float>(y) : 0.0f;
}
std::uint32_t b_dq(std::size_t, std::size_t y, std::size_t x) {
  return (x < 4 ? dq::reference_pixel : 0u) | (y == 4 && x == 60 ? dq::do_not_use : 0u);
}
/// A flagged pixel with a wild value and a NaN, both inside the background regions, on rows
/// where the col_wise test plane is flat (y % 3 == 1), so the regions' medians stay exact.
float spoil(std::size_t y, std::size_t x, float v) {
  if (y == 4 && x == 60) return 1.0e6f;
  if (y == 7 && x == 10) return NAN;
  return v;
}
bool spoiled(std::size_t y, std::size_t x) { return (y == 4 && x == 60) || (y == 7 && x == 10); }

void check_background(const GroupBackgroundParams& p,
                      const std::function<float(std::size_t, std::size_t, std::size_t, std::size_t)>& bkg,
                      const std::function<bool(std::size_t)>& exact_row, float tolerance = 0.0f) {
  CubeShape shape{2, bNy, bNx, 2};
  auto ranks = make_ramp_ranks(shape, 1, [&](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return spoil(y, x, trace(g, y, x) + bkg(t, g, y, x));
  });
  set_dq(ranks, b_dq);
  run_like_engine<tessera::steps::GroupBackground>(p, ranks);
  auto ramp = ranks[0].frames<float>("ramp");
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t g = 0; g < 2; ++g)
      for (std::size_t y = 0; y < bNy; ++y) {
        if (!exact_row(y)) continue;
        for (std::size_t x = 0; x < bNx; ++x) {
          if (spoiled(y, x)) continue;
          ASSERT_NEAR(ramp(t, g, y, x), trace(g, y, x), tolerance) << p.method << " " << t << g << " " << y << " " << x;
        }
      }
}

TEST(GroupBackground, ConstantRowWiseAndColWiseRemoveTheirBackgrounds) {
  auto all = [](std::size_t) { return true; };
  GroupBackgroundParams p;
  p.method = "constant";
  check_background(p, [](std::size_t t, std::size_t g, std::size_t, std::size_t) { return 5.0f * g + 7.0f * t + 3.0f; },
                   all);
  p.method = "row_wise";
  check_background(p, [](std::size_t t, std::size_t g, std::size_t y, std::size_t) { return 3.0f * y + 5.0f * g + 7.0f * t; },
                   all);
  // col_wise: a plane tilted along x, its tilt changing from row to row. The line goes through
  // the region medians at their true centres (12 and 63.5), so the plane goes exactly.
  p.method = "col_wise";
  check_background(
      p,
      [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
        return 10.0f * y + 3.0f * g + t + (static_cast<float>(y % 3) - 1.0f) * static_cast<float>(x);
      },
      all, 1e-3f);
}

TEST(GroupBackground, SmoothingLengthIsARunningMedianOverRows) {
  GroupBackgroundParams p;
  p.smoothing_length = 5;  // rows y-2 .. y+2
  auto linear = [](std::size_t t, std::size_t g, std::size_t y, std::size_t) { return 3.0f * y + 5.0f * g + t; };
  // Whole windows (rows 2..21): the median of a linear background is its value at row y.
  check_background(p, linear, [](std::size_t y) { return y >= 2 && y <= 21; });
  p.method = "col_wise";
  check_background(p, linear, [](std::size_t y) { return y >= 2 && y <= 21; }, 1e-3f);
  // Cut windows at the edge: row 0 gets the median of rows 0..2, i.e. row 1's background.
  CubeShape shape{1, bNy, bNx, 1};
  auto ranks = make_ramp_ranks(shape, 1, [&](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return trace(g, y, x) + linear(t, g, y, x);
  });
  p.method = "row_wise";
  run_like_engine<tessera::steps::GroupBackground>(p, ranks);
  EXPECT_EQ(ranks[0].frames<float>("ramp")(0, 0, 0, 50), -3.0f);
}

TEST(GroupBackground, PartitionInvariant) {
  for (std::string method : {"constant", "row_wise", "col_wise"}) {
    GroupBackgroundParams p;
    p.method = method;
    p.smoothing_length = 3;
    expect_partition_invariant<tessera::steps::GroupBackground>(
        p, CubeShape{5, bNy, bNx, 2},
        [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
          return trace(g, y, x) + 2.0f * y + 0.1f * x + noise(t, g, y, x);
        },
        b_dq);
  }
}

TEST(GroupBackground, ClearErrors) {
  auto expect_error = [](GroupBackgroundParams p, const std::string& word) {
    auto ranks = make_ramp_ranks(CubeShape{1, bNy, bNx, 1}, 1,
                                 [](std::size_t, std::size_t, std::size_t, std::size_t) { return 0.0f; });
    try {
      run_like_engine<tessera::steps::GroupBackground>(p, ranks);
      ADD_FAILURE() << "expected a StepError about " << word;
    } catch (const StepError& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  GroupBackgroundParams p;
  p.bkg_col_right_end = 80;
  expect_error(p, "bkg_col_right_end");
  p = {};
  p.bkg_col_left_start = 20;
  expect_error(p, "bkg_col_left_start");
  p = {};
  p.method = "col_wise";
  p.bkg_col_right_start = p.bkg_col_right_end;
  expect_error(p, "col_wise");
}

TEST(GroupCorrections, DeclareTheRampsAsGroupedCubes) {
  auto check = [](const StepIO& io, const std::string& cube, bool grouped) {
    // The cube first; one_over_f in group mode also writes the rate it removed (an image).
    ASSERT_GE(io.writes.size(), 1u);
    for (std::size_t i = 1; i < io.writes.size(); ++i) EXPECT_EQ(io.writes[i].kind, DataKind::Image);
    EXPECT_EQ(io.writes[0].info.name, cube);
    EXPECT_EQ(io.writes[0].grouped, grouped) << cube;
    EXPECT_FALSE(io.writes[0].integer);
    bool reads_dq = false;
    for (const auto& r : io.reads) reads_dq = reads_dq || r.name == "dq";
    EXPECT_TRUE(reads_dq);
  };
  check(tessera::steps::Refpix::io(RefpixParams{}), "ramp", true);
  check(tessera::steps::RefpixMiri::io(RefpixMiriParams{}), "ramp", true);
  check(tessera::steps::GroupBackground::io(GroupBackgroundParams{}), "ramp", true);
  check(tessera::steps::OneOverF::io(OneOverFParams{}), "ramp", true);
  OneOverFParams rates;
  rates.mode = "integration";
  check(tessera::steps::OneOverF::io(rates), "data", false);
}

// ---------------------------------------------------------------------------------------
// Throughput (not a timed test; run with --gtest_also_run_disabled_tests).

template <class S>
void time_step(const char* label, const typename S::Params& p, CubeShape shape, const DqValue& dqv) {
  auto ranks = make_ramp_ranks(shape, 1, [](std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
    return 1000.0f + 10.0f * noise(t, g, y, x) + (y > 100 && y < 130 ? 500.0f * g : 0.0f);
  });
  set_dq(ranks, dqv);
  // CPU time of this thread: the machine is shared, wall time would measure the others too.
  auto cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  const double start = cpu();
  run_like_engine<S>(p, ranks);
  const double s = cpu() - start;
  const double samples = static_cast<double>(shape.nt * shape.ng * shape.ny * shape.nx);
  std::printf("%-40s %8.1f M samples/s (%.3f s CPU)\n", label, samples / s / 1e6, s);
}

TEST(DISABLED_GroupCorrections, Throughput) {
  const CubeShape soss{4, 256, 2048, 6};
  auto soss_dq = [](std::size_t, std::size_t y, std::size_t x) {
    return x < 4 || x >= 2044 || y >= 252 ? dq::reference_pixel : 0u;
  };
  time_step<tessera::steps::Refpix>("refpix (256x2048, 6 groups)", RefpixParams{}, soss, soss_dq);
  time_step<tessera::steps::OneOverF>("one_over_f (256x2048, 6 groups)", OneOverFParams{}, soss, soss_dq);
  OneOverFParams threshold;
  threshold.threshold = 3.0;
  time_step<tessera::steps::OneOverF>("one_over_f threshold 3", threshold, soss, soss_dq);
  const CubeShape lrs{20, 416, 72, 40};
  auto lrs_dq = [](std::size_t, std::size_t, std::size_t x) { return x < 4 ? dq::reference_pixel : 0u; };
  time_step<tessera::steps::RefpixMiri>("refpix_miri (416x72, 40 groups)", RefpixMiriParams{}, lrs, lrs_dq);
  RefpixMiriParams smooth;
  smooth.smoothing_length = 11;
  time_step<tessera::steps::RefpixMiri>("refpix_miri smoothing 11", smooth, lrs, lrs_dq);
  time_step<tessera::steps::GroupBackground>("group_background row_wise", GroupBackgroundParams{}, lrs, lrs_dq);
  GroupBackgroundParams col;
  col.method = "col_wise";
  col.smoothing_length = 11;
  time_step<tessera::steps::GroupBackground>("group_background col_wise smooth 11", col, lrs, lrs_dq);
}

}  // namespace

namespace {

// In group mode one_over_f also reports, per integration and column, the rate its corrections
// took away: columns whose unilluminated pixels collect x DN/s, plus 1/f offsets with no trend
// over the groups, give exactly x (tgroup 10 s).
TEST(OneOverF, ReportsTheRateItRemovedPerIntegrationAndColumn) {
  const CubeShape shape{2, 20, 8, 4};
  const float offsets[4] = {1, -1, -1, 1};
  auto ranks = make_ramp_ranks(shape, 2, [&](std::size_t t, std::size_t g, std::size_t, std::size_t x) {
    return static_cast<float>((x + t) * 10 * (g + 1)) + offsets[g];
  });
  run_like_engine<tessera::steps::OneOverF>(OneOverFParams{}, ranks);
  const Image& rate = ranks[0].image("one_over_f_rate");
  ASSERT_EQ(rate.ny, 2u);
  ASSERT_EQ(rate.nx, 8u);
  for (std::size_t t = 0; t < 2; ++t)
    for (std::size_t x = 0; x < 8; ++x) EXPECT_NEAR(rate.values[t * 8 + x], static_cast<float>(x + t), 1e-5) << t << "," << x;
  EXPECT_EQ(rate.values, ranks[1].image("one_over_f_rate").values);
}

}  // namespace
