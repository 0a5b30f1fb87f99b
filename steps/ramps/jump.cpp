#include "steps/ramps/jump.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <variant>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

/// Pixels of one row gathered at a time: ng × 64 samples (11.5 kB of ramp for 45 groups) stay
/// in L1 while the pixels are worked through one by one, and each group's row segment is read
/// contiguously from the frame.
constexpr std::size_t kBlock = 64;

constexpr std::uint8_t kUnusable = jwst::dq::group(jwst::dq::do_not_use | jwst::dq::saturated);
constexpr std::uint8_t kJump = jwst::dq::group(jwst::dq::jump_det);

/// The threshold for a pixel with n usable differences left (JWST: the three- and
/// four-group thresholds apply to ramps of 2 and 3 differences).
float threshold_for(std::size_t n, const JumpSettings& s) {
  return n >= 4 ? s.threshold : n == 3 ? s.four_group_threshold : s.three_group_threshold;
}

/// Median of w[0..k), k >= 1 (reorders w); the mean of the two middle values for even k.
float median_of(float* w, std::size_t k) {
  const std::size_t h = k / 2;
  std::nth_element(w, w + h, w + k);
  const float upper = w[h];
  if (k % 2 == 1) return upper;
  return 0.5f * (*std::max_element(w, w + h) + upper);
}

/// The centre the differences are measured from, by the JWST pipeline's rule (stcal
/// calc_med_first_diffs): with 4 or more differences the one of largest absolute value is
/// left out (a jump must not pull the median) and the median of the rest taken; with 3 the
/// median; with 2 the one of smaller absolute value (the median of two would sit halfway to
/// a jump and hide it).
float clipped_median(const float* d, std::size_t n, float* work) {
  if (n == 2) return std::fabs(d[0]) <= std::fabs(d[1]) ? d[0] : d[1];
  if (n == 3) return std::max(std::min(d[0], d[1]), std::min(std::max(d[0], d[1]), d[2]));
  std::size_t big = 0;
  float big_abs = std::fabs(d[0]);
  for (std::size_t i = 1; i < n; ++i) {
    const float a = std::fabs(d[i]);
    if (a > big_abs) {
      big_abs = a;
      big = i;
    }
  }
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (i != big) work[k++] = d[i];
  return median_of(work, k);
}

/// Everything the exact per-pixel test needs about the integration being worked on.
struct Frame {
  std::uint8_t* gdq;
  std::size_t ng, plane;
  const JumpSettings& s;
  JumpScratch& scratch;
};

/// The exact test of one pixel: Anderson & Gordon (2011) two-point differences, iterated as
/// the JWST pipeline does: flag the worst difference above the threshold, leave it out,
/// recompute the median and σ, repeat. `v` and `q` are the pixel's samples and group dq, one
/// every kBlock values. Returns the number of jumps flagged.
std::size_t exact_pixel(const float* v, const std::uint8_t* q, std::size_t p, float rvar, float ig, const Frame& f) {
  const JumpSettings& s = f.s;
  float* const d = f.scratch.diffs.data();
  float* const work = f.scratch.work.data();
  std::uint16_t* const gi = f.scratch.diff_group.data();
  // Differences of consecutive usable groups; a difference belongs to its later group.
  float prev = v[0];
  bool prev_ok = !(q[0] & kUnusable) && std::isfinite(prev);
  std::size_t usable = prev_ok, n = 0;
  for (std::size_t g = 1; g < f.ng; ++g) {
    const float cur = v[g * kBlock];
    const bool ok = !(q[g * kBlock] & kUnusable) && std::isfinite(cur);
    usable += ok;
    if (ok && prev_ok) {
      d[n] = cur - prev;
      gi[n] = static_cast<std::uint16_t>(g);
      ++n;
    }
    prev = cur;
    prev_ok = ok;
  }
  if (usable < s.minimum_groups || n < 2) return 0;

  std::size_t found = 0;
  float median = clipped_median(d, n, work);
  for (;;) {
    const float var = rvar + std::fabs(median) * ig;
    if (!(var > 0.0f)) break;  // no noise model (σ = 0): nothing can be judged
    std::size_t worst = 0;
    float worst_dev = -1.0f;
    for (std::size_t k = 0; k < n; ++k) {
      const float dev = std::fabs(d[k] - median);
      if (dev > worst_dev) {
        worst_dev = dev;
        worst = k;
      }
    }
    const float ratio = worst_dev / std::sqrt(var);
    if (!(ratio > threshold_for(n, s))) break;

    const std::size_t g = gi[worst];
    f.gdq[g * f.plane + p] |= kJump;
    ++found;
    if (s.flag_neighbors && ratio > s.min_neighbor_ratio && ratio < s.max_neighbor_ratio)
      f.scratch.neighbors.emplace_back(static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(p));
    const float excess = d[worst] - median;  // after-jump flags for positive jumps only, as in JWST
    for (int k = 0; k < 2; ++k) {
      if (s.after_groups[k] == 0 || !(excess >= s.after_dn[k])) continue;
      const std::size_t last = std::min(g + s.after_groups[k], f.ng - 1);
      for (std::size_t h = g + 1; h <= last; ++h) {
        std::uint8_t& flag = f.gdq[h * f.plane + p];
        if (!(flag & kUnusable)) flag |= kJump;
      }
    }
    --n;
    d[worst] = d[n];
    gi[worst] = gi[n];
    if (n < 2) break;
    median = clipped_median(d, n, work);
  }
  return found;
}

}  // namespace

std::size_t detect_jumps(std::span<const float> ramp, std::span<std::uint8_t> groupdq, std::size_t ng,
                         std::size_t ny, std::size_t nx, std::span<const float> diff_read_var,
                         std::span<const float> inv_gain, const JumpSettings& s, JumpScratch& scratch) {
  const std::size_t plane = ny * nx;
  if (ng < 3 || ng < s.minimum_groups || plane == 0) return 0;
  if (ramp.size() != ng * plane || groupdq.size() != ng * plane || diff_read_var.size() != plane ||
      inv_gain.size() != plane)
    throw StepError("jump: internal error: array sizes do not match the integration's shape");
  if (ng > std::numeric_limits<std::uint16_t>::max()) throw StepError("jump: too many groups per integration");
  scratch.block.resize(ng * kBlock);
  scratch.block_dq.resize(ng * kBlock);
  scratch.diffs.resize(ng);
  scratch.work.resize(ng);
  scratch.diff_group.resize(ng);
  scratch.neighbors.clear();
  float* const block = scratch.block.data();
  std::uint8_t* const block_dq = scratch.block_dq.data();
  std::uint8_t* const gdq = groupdq.data();
  const Frame frame{gdq, ng, plane, s, scratch};

  // Screening (the proof is spelled out in the loop below) applies to ramps of 4 or more
  // differences, where the normal threshold holds; it proves "nothing to flag" for most pixels
  // without a median.
  const std::size_t nd = ng - 1;
  const bool screen = s.screen && nd >= 4;
  const std::size_t half = (nd - 2) / 2;  // (k − 1)/2 for the k = nd − 1 differences left after clipping
  // Float rounding must only ever send a pixel to the exact path, never past it: the proof's
  // limit keeps a 1e-3 margin (rounding errors here are below 1e-5 of it).
  const float limit_factor = s.threshold * (1.0f - 1e-3f);

  float sum[kBlock], lo[kBlock], hi[kBlock], a[kBlock], b[kBlock];
  std::int32_t below[kBlock], above[kBlock];
  std::uint8_t bad[kBlock];

  std::size_t found = 0;
  for (std::size_t y = 0; y < ny; ++y) {
    for (std::size_t x0 = 0; x0 < nx; x0 += kBlock) {
      const std::size_t width = std::min(kBlock, nx - x0);
      const std::size_t row = y * nx + x0;
      // Group-major frame → the block's samples, each group's row segment read contiguously.
      for (std::size_t g = 0; g < ng; ++g) {
        std::memcpy(block + g * kBlock, ramp.data() + g * plane + row, width * sizeof(float));
        std::memcpy(block_dq + g * kBlock, gdq + g * plane + row, width);
      }
      if (!screen) {
        for (std::size_t i = 0; i < width; ++i) {
          const std::size_t p = row + i;
          const float rvar = diff_read_var[p], ig = inv_gain[p];
          if (std::isfinite(rvar) && std::isfinite(ig)) found += exact_pixel(block + i, block_dq + i, p, rvar, ig, frame);
        }
        continue;
      }
      // Pass 1, across the block's pixels (vectorised): sum, min and max of the differences,
      // and whether any group is unusable. A non-finite sample makes the sums non-finite,
      // which fails every test below and so goes to the exact path.
      for (std::size_t i = 0; i < width; ++i) {
        sum[i] = 0.0f;
        lo[i] = std::numeric_limits<float>::infinity();
        hi[i] = -std::numeric_limits<float>::infinity();
        bad[i] = block_dq[i] & kUnusable;
      }
      for (std::size_t g = 1; g < ng; ++g) {
        const float* cur = block + g * kBlock;
        const float* prev = cur - kBlock;
        const std::uint8_t* q = block_dq + g * kBlock;
        for (std::size_t i = 0; i < width; ++i) {
          const float diff = cur[i] - prev[i];
          sum[i] += diff;
          lo[i] = diff < lo[i] ? diff : lo[i];
          hi[i] = diff > hi[i] ? diff : hi[i];
          bad[i] |= q[i] & kUnusable;
        }
      }
      // The widest bracket [a, b] = [max − L, min + L] that the median may be shown to lie in,
      // with L the threshold times the smallest σ any median could have: every median lies in
      // [min, max], so σ is at least its value at the point of [min, max] nearest zero. An
      // empty bracket (a spread wider than 2L) cannot be proved clean.
      for (std::size_t i = 0; i < width; ++i) {
        const float l = lo[i], h = hi[i];
        const float nearest = l <= 0.0f && h >= 0.0f ? 0.0f : std::min(std::fabs(l), std::fabs(h));
        const float reach = limit_factor * std::sqrt(std::fabs(diff_read_var[row + i] + nearest * inv_gain[row + i]));
        a[i] = h - reach;
        b[i] = l + reach;
        below[i] = 0;
        above[i] = 0;
      }
      // Pass 2 (vectorised): how many differences lie outside the bracket on each side.
      for (std::size_t g = 1; g < ng; ++g) {
        const float* cur = block + g * kBlock;
        const float* prev = cur - kBlock;
        for (std::size_t i = 0; i < width; ++i) {
          const float diff = cur[i] - prev[i];
          below[i] += diff < a[i] ? 1 : 0;
          above[i] += diff > b[i] ? 1 : 0;
        }
      }
      for (std::size_t i = 0; i < width; ++i) {
        const std::size_t p = row + i;
        const float rvar = diff_read_var[p], ig = inv_gain[p];
        if (!std::isfinite(rvar) || !std::isfinite(ig)) continue;  // the exact path skips these too
        if (!bad[i] && std::isfinite(sum[i]) && a[i] <= b[i]) {
          // The exact median leaves out the difference of largest |d|, which is the min or
          // the max (a tie between different values is left to the exact path). The median
          // of the other k lies in [a, b] when at most (k − 1)/2 of them are below a and at
          // most (k − 1)/2 above b. Every difference is then within L of it, and L is at most
          // the threshold times its σ: nothing can be flagged, as the exact test would find.
          const float l = lo[i], h = hi[i];
          const bool tie = std::fabs(h) == std::fabs(l) && h != l;
          const float clipped = std::fabs(h) >= std::fabs(l) ? h : l;
          const std::int32_t nb = below[i] - (clipped < a[i] ? 1 : 0);
          const std::int32_t na = above[i] - (clipped > b[i] ? 1 : 0);
          if (!tie && nb <= static_cast<std::int32_t>(half) && na <= static_cast<std::int32_t>(half)) continue;
        }
        found += exact_pixel(block + i, block_dq + i, p, rvar, ig, frame);
      }
    }
  }

  // The 4 adjacent pixels of mid-sized jumps, in the same group, unless saturated or
  // do_not_use there. Done after the whole integration so that the order of pixels does not
  // matter (the detection reads only saturated/do_not_use, which this never sets).
  for (const auto& [g, p] : scratch.neighbors) {
    const std::size_t y = p / nx, x = p % nx;
    std::uint8_t* const image = gdq + static_cast<std::size_t>(g) * plane;
    auto mark = [&](std::size_t pixel) {
      if (!(image[pixel] & kUnusable)) image[pixel] |= kJump;
    };
    if (y > 0) mark(p - nx);
    if (y + 1 < ny) mark(p + nx);
    if (x > 0) mark(p - 1);
    if (x + 1 < nx) mark(p + 1);
  }
  return found;
}

StepIO Jump::io(const Params& params) {
  StepIO io;
  io.reads = {{DataKind::Cube, "ramp", "the jwst_uncal input provides the ramps"},
              {DataKind::Cube, "groupdq", "the jwst_uncal input provides the group dq"}};
  for (const auto& [spec, name] : {std::pair{&params.gain, "gain"}, std::pair{&params.read_noise, "read_noise"}})
    if (auto ref = jwst::reference_read(*spec, name)) io.reads.push_back(*ref);
  io.writes = {{DataKind::Cube, {"groupdq", "", ""}, ElementType::UInt8, true},
               {DataKind::FrameVector, {"jumps", "1", "jumps detected by the jump step in each integration"},
                ElementType::Float32, true}};
  return io;
}

namespace {

double attribute_seconds(StepContext& context, const char* key, const char* needed_by) {
  const auto& attrs = context.data().attributes();
  const auto it = attrs.find(key);
  if (it == attrs.end())
    throw StepError(std::string("jump: ") + needed_by + " needs the dataset attribute '" + key +
                    "' (group time, s), which the input did not set");
  if (const double* v = std::get_if<double>(&it->second)) return *v;
  if (const std::int64_t* v = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*v);
  throw StepError(std::string("jump: dataset attribute '") + key + "' is not a number");
}

}  // namespace

void Jump::run(const Params& params, StepContext& context) {
  const CubeShape& shape = context.shape();
  if (shape.ng < static_cast<std::size_t>(params.minimum_groups) || shape.ng < 3) {
    context.log().info("jump: skipped, " + std::to_string(shape.ng) + " groups per integration is fewer than " +
                       "minimum_groups = " + std::to_string(params.minimum_groups));
    return;
  }
  if (params.min_jump_to_flag_neighbors > params.max_jump_to_flag_neighbors)
    throw StepError("jump: min_jump_to_flag_neighbors (" + std::to_string(params.min_jump_to_flag_neighbors) +
                    ") is above max_jump_to_flag_neighbors (" + std::to_string(params.max_jump_to_flag_neighbors) +
                    ")");

  JumpSettings s;
  s.threshold = static_cast<float>(params.rejection_threshold);
  s.four_group_threshold = static_cast<float>(params.four_group_rejection_threshold);
  s.three_group_threshold = static_cast<float>(params.three_group_rejection_threshold);
  s.minimum_groups = static_cast<std::size_t>(params.minimum_groups);
  s.flag_neighbors = params.flag_4_neighbors;
  s.min_neighbor_ratio = static_cast<float>(params.min_jump_to_flag_neighbors);
  s.max_neighbor_ratio = static_cast<float>(params.max_jump_to_flag_neighbors);
  const double times[2] = {params.after_jump_flag_time1, params.after_jump_flag_time2};
  const double dns[2] = {params.after_jump_flag_dn1, params.after_jump_flag_dn2};
  for (int k = 0; k < 2; ++k) {
    s.after_dn[k] = static_cast<float>(dns[k]);
    if (times[k] <= 0.0) continue;
    const char* which = k == 0 ? "after_jump_flag_time1" : "after_jump_flag_time2";
    const double tgroup = attribute_seconds(context, "tgroup", which);
    if (!(tgroup > 0.0)) throw StepError(std::string("jump: ") + which + " needs a positive tgroup");
    // Whole groups within the time after the jump (the JWST pipeline's time // group_time).
    s.after_groups[k] = static_cast<std::size_t>(std::floor(times[k] / tgroup * (1.0 + 1e-12)));
  }

  // Per-pixel noise terms, hoisted out of the loops: 2·rn² (a difference of two reads) and 1/gain.
  const std::size_t plane = shape.ny * shape.nx;
  std::vector<float> diff_read_var(plane), inv_gain(plane);
  {
    const jwst::ReferenceImage gain = jwst::load_reference_image(params.gain, "gain", context);
    const jwst::ReferenceImage rn = jwst::load_reference_image(params.read_noise, "read_noise", context);
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    for (std::size_t p = 0; p < plane; ++p) {
      const float g = gain.at(p), r = rn.at(p);
      inv_gain[p] = std::isfinite(g) && g > 0.0f ? 1.0f / g : nan;
      diff_read_var[p] = std::isfinite(r) && r >= 0.0f ? 2.0f * r * r : nan;
    }
  }

  auto ramp = context.frames<float>("ramp");
  auto gdq = context.frames<std::uint8_t>("groupdq");
  auto& jumps = context.frame_vector("jumps").values;
  JumpScratch scratch;
  std::size_t total = 0;
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    const std::size_t n = detect_jumps(ramp.frame(t), gdq.frame(t), shape.ng, shape.ny, shape.nx, diff_read_var,
                                       inv_gain, s, scratch);
    jumps[t] = static_cast<double>(n);
    total += n;
    context.advance(1);
  }
  context.log().debug("jump: " + std::to_string(total) + " jumps in integrations [" + std::to_string(ramp.t_begin) +
                      ", " + std::to_string(ramp.t_end) + ") of this rank");
}

}  // namespace tessera::steps
