#pragma once
// Emulated ranks holding JWST ramp cubes in frame slabs (a frame is an integration), for unit
// tests of steps that read or write them; run steps on them with run_like_engine
// (emulated_ranks.hpp), which handles frame-access steps whatever cubes they touch.
#include <functional>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "tessera/dataset.hpp"

namespace tessera::testing {

/// Value of ramp sample (integration t, group g, row y, column x).
using RampValue = std::function<float(std::size_t t, std::size_t g, std::size_t y, std::size_t x)>;

/// `nranks` datasets of shape (nt integrations, ng groups, ny, nx) in frame slabs with the cubes
/// the jwst_uncal input provides: ramp (float32, grouped, DN), groupdq (uint8, grouped, zero)
/// and dq (uint32, zero); per-frame vector time (MJD); attributes tgroup, tframe, nframes,
/// groupgap as jwst_uncal sets them.
inline std::vector<Dataset> make_ramp_ranks(CubeShape shape, int nranks, const RampValue& value,
                                            double tgroup = 10.0) {
  std::vector<Dataset> ranks;
  for (int r = 0; r < nranks; ++r) {
    Dataset d(shape, Partition::frames(shape, nranks), r);
    d.add_cube({"ramp", "DN", "up-the-ramp reads"}, ElementType::Float32, 0.0, true);
    d.add_cube({"groupdq", "1", "group data quality (JWST bits)"}, ElementType::UInt8, 0.0, true);
    d.add_cube({"dq", "1", "pixel data quality (JWST bits)"}, ElementType::UInt32);
    auto ramp = d.frames<float>("ramp");
    for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t)
      for (std::size_t g = 0; g < shape.ng; ++g)
        for (std::size_t y = 0; y < shape.ny; ++y)
          for (std::size_t x = 0; x < shape.nx; ++x) ramp(t, g, y, x) = value(t, g, y, x);
    FrameVector time{{"time", "d", "mid-integration time (MJD UTC)"}, {}, false};
    for (std::size_t t = 0; t < shape.nt; ++t)
      time.values.push_back(60000.0 + tgroup * static_cast<double>(shape.ng * t) / 86400.0);
    d.frame_vectors()["time"] = time;
    d.attributes()["tgroup"] = tgroup;
    d.attributes()["tframe"] = tgroup;
    d.attributes()["nframes"] = std::int64_t{1};
    d.attributes()["groupgap"] = std::int64_t{0};
    ranks.push_back(std::move(d));
  }
  return ranks;
}

}  // namespace tessera::testing
