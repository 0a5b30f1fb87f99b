#include "tessera/resample.hpp"

#include <variant>

#include "tessera/errors.hpp"

namespace tessera {

void check_resampling(const Resampling& r, const CubeShape& shape, const std::string& who) {
  const std::size_t n = r.nt * r.ng;
  if (r.ng == 0) throw StepError(who + ": resampled to 0 groups per frame");
  if (r.source_frame.size() != n || r.source_group.size() != n)
    throw InternalError(who + ": resampling maps " + std::to_string(r.source_frame.size()) + " samples, not " +
                        std::to_string(r.nt) + " x " + std::to_string(r.ng));
  for (std::size_t i = 0; i < n; ++i)
    if (r.source_frame[i] >= shape.nt || r.source_group[i] >= shape.ng)
      throw InternalError(who + ": resampling reads frame " + std::to_string(r.source_frame[i]) + " group " +
                          std::to_string(r.source_group[i]) + " of a cube of " + std::to_string(shape.nt) + " x " +
                          std::to_string(shape.ng));
}

void apply_resampling(Dataset& data, const Resampling& r) {
  const CubeShape old_shape = data.shape();
  const Partition& old = data.partition();
  if (old.layout() != Layout::PixelTiles) throw InternalError("resampling needs the cubes in pixel tiles");
  CubeShape shape = old_shape;
  shape.nt = r.nt;
  shape.ng = r.ng;
  const std::size_t pixels = old.local_work_units(data.rank());
  // Old sample index (within one pixel's series) of every new sample, for each depth.
  std::vector<std::size_t> grouped_from(r.nt * r.ng), single_from(r.nt);
  for (std::size_t i = 0; i < grouped_from.size(); ++i) grouped_from[i] = r.source_frame[i] * old_shape.ng + r.source_group[i];
  for (std::size_t t = 0; t < r.nt; ++t) single_from[t] = r.source_frame[t * r.ng];
  for (auto& [name, cube] : data.cubes()) {
    const std::vector<std::size_t>& from = cube.grouped ? grouped_from : single_from;
    const std::size_t old_len = old_shape.nt * (cube.grouped ? old_shape.ng : 1), len = from.size();
    std::visit(
        [&](auto& values) {
          using Vec = std::decay_t<decltype(values)>;
          if (values.size() != pixels * old_len)
            throw InternalError("cube '" + name + "' does not match its partition before resampling");
          Vec fresh(pixels * len);
          for (std::size_t p = 0; p < pixels; ++p) {
            const auto* in = values.data() + p * old_len;
            auto* out = fresh.data() + p * len;
            for (std::size_t i = 0; i < len; ++i) out[i] = in[from[i]];
          }
          values = std::move(fresh);
        },
        cube.values);
  }
  for (auto& [name, vector] : data.frame_vectors()) {
    std::vector<double> fresh(r.nt);
    for (std::size_t t = 0; t < r.nt; ++t) fresh[t] = vector.values.at(single_from[t]);
    vector.values = std::move(fresh);
  }
  data.set_shape(shape, Partition::tiles(shape, old.nranks(), old.tile_ny(), old.tile_nx()));
}

}  // namespace tessera
