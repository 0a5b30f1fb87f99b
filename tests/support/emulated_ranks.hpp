#pragma once
// Steps run phase by phase on several emulated ranks in one process, combined the way the
// runner combines them (engine/src/runner.cpp), so unit tests can check partition invariance
// without MPI: outputs created from io(); after each phase, what each rank changed in a summed
// image is added up over ranks on top of what was there when the phase started (an erased
// image is left out, a reshaped one counts from nothing); per-frame vectors come from the rank
// that owns each frame; Combine::Identical outputs are left as each rank computed them.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "tessera/logger.hpp"
#include "tessera/runner.hpp"
#include "tessera/step.hpp"

namespace tessera::testing {

using FrameFill = std::function<void(std::size_t t, std::span<float> data, std::span<std::uint32_t> dq)>;

/// `nranks` datasets in frame slabs with cubes data and dq filled by `fill`, and a time vector.
inline std::vector<Dataset> make_ranks(CubeShape shape, int nranks, const FrameFill& fill) {
  std::vector<Dataset> ranks;
  for (int r = 0; r < nranks; ++r) {
    Dataset d(shape, Partition::frames(shape, nranks), r);
    d.add_cube({"data", "electron", "signal"}, ElementType::Float32);
    d.add_cube({"dq", "1", "flags"}, ElementType::UInt32);
    auto data = d.frames<float>("data");
    auto dq = d.frames<std::uint32_t>("dq");
    for (std::size_t t = data.t_begin; t < data.t_end; ++t) fill(t, data.frame(t), dq.frame(t));
    FrameVector time{{"time", "d", "frame time"}, {}, false};
    for (std::size_t t = 0; t < shape.nt; ++t) time.values.push_back(60000.0 + 0.01 * static_cast<double>(t));
    d.frame_vectors()["time"] = time;
    ranks.push_back(std::move(d));
  }
  return ranks;
}

/// Runs step S on every emulated rank, phase by phase; rank 0 writes the plots.
template <class S>
void run_like_engine(const typename S::Params& params, std::vector<Dataset>& ranks,
                     const std::filesystem::path& plots = {}, int level = 0) {
  const StepIO io = S::io(params);
  for (auto& d : ranks) prepare_outputs(d, io);
  const auto phases = phases_of<S>(params);
  Logger log(0, Verbosity::Quiet);
  for (std::size_t phase = 0; phase < phases.size(); ++phase) {
    std::vector<std::map<std::string, std::vector<float>>> before(ranks.size());
    for (std::size_t r = 0; r < ranks.size(); ++r)
      for (const auto& w : io.writes)
        if (w.kind == DataKind::Image && ranks[r].images().count(w.info.name))
          before[r][w.info.name] = ranks[r].image(w.info.name).values;
    for (std::size_t r = 0; r < ranks.size(); ++r) {
      PlotSettings settings{plots, level, r == 0};
      StepContext context(ranks[r], log, nullptr, settings, phase);
      S::run(params, context);
    }
    for (const auto& w : io.writes) {
      if (w.combine == Combine::Identical) continue;
      if (w.kind == DataKind::Image) {
        if (!ranks[0].images().count(w.info.name)) continue;  // erased by the step
        const std::vector<float>& old = before[0][w.info.name];
        const std::size_t n = ranks[0].image(w.info.name).values.size();
        const bool had = old.size() == n;
        std::vector<float> sum(n, 0.0f);
        for (std::size_t r = 0; r < ranks.size(); ++r) {
          const auto& v = ranks[r].image(w.info.name).values;
          ASSERT_EQ(v.size(), n) << w.info.name << ": ranks disagree on the shape";
          for (std::size_t i = 0; i < n; ++i) sum[i] += had ? v[i] - old[i] : v[i];
        }
        for (auto& d : ranks) {
          auto& values = d.image(w.info.name).values;
          values = sum;
          if (had)
            for (std::size_t i = 0; i < n; ++i) values[i] += old[i];
        }
      } else if (w.kind == DataKind::FrameVector) {
        std::vector<double> own(ranks[0].shape().nt, 0.0);
        for (auto& d : ranks) {
          const auto& v = d.frame_vector(w.info.name).values;
          for (std::size_t t = d.partition().frame_begin(d.rank()); t < d.partition().frame_end(d.rank()); ++t)
            own[t] = v[t];
        }
        for (auto& d : ranks) d.frame_vector(w.info.name).values = own;
      }
    }
  }
  for (auto& d : ranks)
    for (const auto& name : io.removes) d.cubes().erase(name);
}

}  // namespace tessera::testing
