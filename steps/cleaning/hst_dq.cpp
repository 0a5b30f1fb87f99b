#include "steps/cleaning/hst_dq.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "steps/common/dq_bits.hpp"
#include "steps/common/select.hpp"

namespace tessera::steps {
namespace {

/// HST DQ flags of 4096 and above change from frame to frame (cosmic rays, ghosts).
constexpr std::int64_t kFirstTemporalFlag = 4096;
/// The spatial median grows its box up to (2·3 + 1)² pixels.
constexpr std::size_t kMaxRadius = 3;

}  // namespace

HstDqMasks::HstDqMasks(const std::vector<std::int64_t>& flags) {
  for (std::int64_t f : flags) {
    if (f < 1 || f > 32768 || (f & (f - 1)) != 0)
      throw ConfigError("hst_dq: hst_flags: " + std::to_string(f) +
                        " is not a single HST DQ bit (one of 1, 2, 4, ..., 32768)");
    const auto bit = static_cast<std::uint32_t>(f);
    any |= bit;
    (f < kFirstTemporalFlag ? spatial : temporal) |= bit;
  }
}

std::size_t hst_dq_frame(std::span<float> data, std::span<std::uint32_t> dq, std::size_t ny, std::size_t nx,
                         const HstDqMasks& masks, bool replace) {
  std::size_t replaced = 0;
  std::array<float, (2 * kMaxRadius + 1) * (2 * kMaxRadius + 1)> box{};
  for (std::size_t y = 0; y < ny; ++y) {
    // Most rows carry no chosen flag: one OR over the row tells (a vectorised pass).
    std::uint32_t seen = 0;
    for (std::uint32_t d : dq.subspan(y * nx, nx)) seen |= d;
    if (!(seen & masks.any)) continue;
    for (std::size_t x = 0; x < nx; ++x) {
      const std::size_t i = y * nx + x;
      if (!(dq[i] & masks.any)) continue;
      dq[i] |= dq::hst_flagged;
      if (!replace || !(dq[i] & masks.spatial)) continue;
      // Neighbours with no chosen flag are usable; they are never replaced in this pass, so
      // replacing in place cannot feed one replaced value into another.
      for (std::size_t r = 1; r <= kMaxRadius; ++r) {
        const std::size_t y0 = y >= r ? y - r : 0, y1 = std::min(ny - 1, y + r);
        const std::size_t x0 = x >= r ? x - r : 0, x1 = std::min(nx - 1, x + r);
        std::size_t n = 0;
        for (std::size_t yy = y0; yy <= y1; ++yy)
          for (std::size_t xx = x0; xx <= x1; ++xx) {
            const std::size_t j = yy * nx + xx;
            if (!(dq[j] & masks.any) && std::isfinite(data[j])) box[n++] = data[j];
          }
        if (n == 0) continue;
        data[i] = median_of(std::span<float>(box.data(), n));
        ++replaced;
        break;
      }
    }
  }
  return replaced;
}

std::size_t hst_dq_series(std::span<float> series, std::span<const std::uint32_t> dq, const HstDqMasks& masks,
                          std::span<double> replaced_in_frame, std::vector<float>& scratch) {
  const std::size_t nt = series.size();
  // Most pixels carry no temporal flag in any frame: one OR over the series tells.
  std::uint32_t seen = 0;
  for (std::uint32_t d : dq) seen |= d;
  if (!(seen & masks.temporal)) return 0;

  scratch.resize(nt);
  std::size_t good = 0;
  for (std::size_t t = 0; t < nt; ++t)
    if (!(dq[t] & masks.any) && std::isfinite(series[t])) scratch[good++] = series[t];
  if (good == 0) return 0;  // no usable frame: values stay, flags say why
  const float median = median_of(std::span<float>(scratch.data(), good));
  std::size_t replaced = 0;
  for (std::size_t t = 0; t < nt; ++t)
    if ((dq[t] & masks.temporal) && !(dq[t] & masks.spatial)) {
      series[t] = median;
      replaced_in_frame[t] += 1;
      ++replaced;
    }
  return replaced;
}

std::vector<Access> HstDq::access(const Params& params) {
  const HstDqMasks masks(params.hst_flags);
  if (params.hst_replace && masks.temporal) return {Access::Frames, Access::Pixels};
  return {Access::Frames};
}

StepIO HstDq::io(const Params& params) {
  (void)HstDqMasks(params.hst_flags);  // a bad flag is reported when the workflow is read
  StepIO io;
  io.reads = {{DataKind::Cube, "dq"}};
  io.writes = {{DataKind::Cube, {"dq", "", ""}, ElementType::UInt32}};
  if (params.hst_replace) {
    io.reads.push_back({DataKind::Cube, "data"});
    io.writes.push_back({DataKind::Cube, {"data", "", ""}});
  }
  io.writes.push_back({DataKind::FrameVector,
                       {"hst_dq_replaced", "1", "pixels whose value hst_dq replaced in each frame"},
                       ElementType::Float32,
                       true});
  return io;
}

void HstDq::run(const Params& params, StepContext& context) {
  const HstDqMasks masks(params.hst_flags);
  std::vector<double>& counts = context.frame_vector("hst_dq_replaced").values;
  if (context.phase() == 0) {
    auto dq = context.frames<std::uint32_t>("dq");
    FrameSlab<float> data;  // not read when only recording
    if (params.hst_replace) data = context.frames<float>("data");
    for (std::size_t t = dq.t_begin; t < dq.t_end; ++t) {
      const std::span<float> values = params.hst_replace ? data.frame(t) : std::span<float>();
      counts[t] = static_cast<double>(hst_dq_frame(values, dq.frame(t), dq.ny, dq.nx, masks, params.hst_replace));
      context.advance(1);
    }
    return;
  }
  auto data_tiles = context.tiles<float>("data");
  auto dq_tiles = context.tiles<std::uint32_t>("dq");
  std::vector<float> scratch;
  for (std::size_t k = 0; k < data_tiles.size(); ++k) {
    for (std::size_t i = 0; i < data_tiles[k].pixels(); ++i)
      hst_dq_series(data_tiles[k].series(i), dq_tiles[k].series(i), masks, counts, scratch);
    context.advance(data_tiles[k].pixels());
  }
}

}  // namespace tessera::steps
