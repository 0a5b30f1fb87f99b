#pragma once
// Test-only input kind "memory": a small synthetic visit computed from (t, y, x), so that
// workflow and runner tests need no files. Values are exact functions of the coordinates,
// with a few injected outliers whose positions the tests know.
#include <cmath>

#include "tessera/input.hpp"
#include "tessera/registry.hpp"

namespace tessera::testing {

/// Smooth value at (t, y, x): a pixel-dependent level with a gentle time trend.
inline float memory_value(std::size_t t, std::size_t y, std::size_t x) {
  return 100.0f + static_cast<float>(y) * 3.0f + static_cast<float>(x) * 0.5f +
         2.0f * std::sin(0.7f * static_cast<float>(t) + 0.3f * static_cast<float>(x + 2 * y));
}
/// Injected outliers: pixels where (t*7 + y*5 + x*3) % 97 == 0 get +1000.
inline bool memory_is_outlier(std::size_t t, std::size_t y, std::size_t x) { return (t * 7 + y * 5 + x * 3) % 97 == 0; }

struct MemoryParams {
  std::int64_t nt = 12, ny = 9, nx = 11;
  bool fail_reading = false;
  static Schema<MemoryParams> schema() {
    return tessera::schema<MemoryParams>(field(&MemoryParams::nt, "nt", "frames", Range::at_least(1)),
                                         field(&MemoryParams::ny, "ny", "rows", Range::at_least(1)),
                                         field(&MemoryParams::nx, "nx", "columns", Range::at_least(1)),
                                         field(&MemoryParams::fail_reading, "fail_reading",
                                               "throw while reading the last frame (tests failure agreement)"));
  }
};

class MemorySource : public FrameSource {
 public:
  explicit MemorySource(MemoryParams p) : p_(p) {}
  std::vector<std::string> units() override {
    std::vector<std::string> u;
    for (std::int64_t t = 0; t < p_.nt; ++t) u.push_back("frame" + std::to_string(t));
    return u;
  }
  UnitHeader read_header(std::size_t unit) override {
    UnitHeader h;
    h.ny = static_cast<double>(p_.ny);
    h.nx = static_cast<double>(p_.nx);
    h.values[0] = 60000.0 + static_cast<double>(unit) * 0.001;
    return h;
  }
  FrameOrder arrange(const std::vector<UnitHeader>& headers) override {
    FrameOrder o;
    o.shape = {headers.size(), static_cast<std::size_t>(p_.ny), static_cast<std::size_t>(p_.nx)};
    FrameVector time{{"time", "d", "frame time"}, {}, false};
    for (std::size_t i = 0; i < headers.size(); ++i) {
      o.units.push_back(i);
      time.values.push_back(headers[i].values[0]);
    }
    o.vectors.push_back(time);
    return o;
  }
  std::vector<DataOut> cubes() const override {
    return {{DataKind::Cube, {"data", "electron", "signal"}, ElementType::Float32},
            {DataKind::Cube, {"err", "electron", "uncertainty"}, ElementType::Float32},
            {DataKind::Cube, {"dq", "1", "quality flags"}, ElementType::UInt32}};
  }
  void read_frame(std::size_t unit, std::size_t t, Dataset& data) override {
    if (p_.fail_reading && unit + 1 == static_cast<std::size_t>(p_.nt))
      throw InputError("frame" + std::to_string(unit) + ": simulated read failure");
    auto d = data.frames<float>("data");
    auto e = data.frames<float>("err");
    for (std::size_t y = 0; y < data.shape().ny; ++y)
      for (std::size_t x = 0; x < data.shape().nx; ++x) {
        d(t, y, x) = memory_value(unit, y, x) + (memory_is_outlier(unit, y, x) ? 1000.0f : 0.0f);
        e(t, y, x) = 1.0f;
      }
  }
  void read_extras(Dataset& data) override { data.attributes()["input_kind_test"] = std::string("memory"); }
  std::vector<DataOut> provides() const override {
    auto out = cubes();
    out.push_back({DataKind::FrameVector, {"time", "d", "frame time"}});
    return out;
  }

 private:
  MemoryParams p_;
};

struct MemoryInput {
  static constexpr std::string_view name = "memory";
  static constexpr std::string_view summary = "synthetic test visit";
  using Params = MemoryParams;
  static std::unique_ptr<FrameSource> open(const Params& p) { return std::make_unique<MemorySource>(p); }
};

/// A step that writes a per-frame vector from frames (for dependency tests).
struct FrameMeanStep {
  struct Params {
    static Schema<Params> schema() { return tessera::schema<Params>(); }
  };
  static constexpr std::string_view name = "frame_mean";
  static constexpr std::string_view summary = "mean of each frame";
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) {
    return {{{DataKind::Cube, "data"}}, {{DataKind::FrameVector, {"frame_mean", "electron", "mean of each frame"}}}};
  }
  static void run(const Params&, StepContext& c) {
    auto slab = c.frames<float>("data");
    auto& out = c.frame_vector("frame_mean").values;
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
      double sum = 0;
      for (float v : slab.frame(t)) sum += v;
      out[t] = sum / static_cast<double>(slab.ny * slab.nx);
    }
  }
};

/// A step that needs the frame_mean vector.
struct UsesMeanStep {
  struct Params {
    static Schema<Params> schema() { return tessera::schema<Params>(); }
  };
  static constexpr std::string_view name = "uses_mean";
  static constexpr std::string_view summary = "reads frame_mean";
  static Access access(const Params&) { return Access::Reduce; }
  static StepIO io(const Params&) { return {{{DataKind::FrameVector, "frame_mean"}}, {}}; }
  static void run(const Params&, StepContext&) {}
};

/// The built-ins plus the test kinds above.
inline Registry test_registry() {
  Registry r;
  register_builtins(r);
  r.add_input(describe_input<MemoryInput>());
  r.add_step(describe_step<FrameMeanStep>());
  r.add_step(describe_step<UsesMeanStep>());
  return r;
}

}  // namespace tessera::testing
