// The spectral extraction steps through the engine on 1, 2 and 3 ranks: a small in-memory
// visit (a Gaussian trace that moves, noise, cosmic rays, a NaN and a flagged pixel, the
// var_poisson / var_rnoise / profile cubes, a trace image and a wavelength map) goes through
// extract_optimal (pixel-tile phase, frame phase, reduce phase) in three configurations and
// extract_box, with many small tiles; every image and per-frame vector must equal, bit for
// bit, what the same workflow gives on one process.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "support/memory_input.hpp"
#include "support/mpi_world.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"
#include "tessera/runner.hpp"

namespace {

using namespace tessera;

constexpr std::size_t kNt = 11, kNy = 16, kNx = 13;  // dispersion along x: 13 columns

double centre(std::size_t t, std::size_t x) {
  return 7.3 + 0.08 * static_cast<double>(x) + 0.15 * std::sin(0.9 * static_cast<double>(t));
}
double gauss_pixel(double j, double c, double s) {
  const double k = 1.0 / (s * std::sqrt(2.0));
  return 0.5 * (std::erf((j + 0.5 - c) * k) - std::erf((j - 0.5 - c) * k));
}
/// Deterministic noise in [-1, 1) from the coordinates.
double noise(std::size_t t, std::size_t y, std::size_t x) {
  std::uint64_t h = (t * 0x9E3779B97F4A7C15ull) ^ (y * 0xC2B2AE3D27D4EB4Full) ^ (x * 0x165667B19E3779F9ull);
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return 2.0 * static_cast<double>(h & 0xFFFFFF) / double(0x1000000) - 1.0;
}
double star(std::size_t t, std::size_t y, std::size_t x) {
  return 4000.0 * gauss_pixel(static_cast<double>(y), centre(t, x), 1.4) * (t >= 4 && t < 7 ? 0.99 : 1.0);
}
bool cosmic_ray(std::size_t t, std::size_t y, std::size_t x) {
  return (t == 3 && y == 7 && x == 4) || (t == 9 && y == 8 && x == 11);
}
float data_value(std::size_t t, std::size_t y, std::size_t x) {
  if (t == 6 && y == 8 && x == 9) return NAN;
  const double s = star(t, y, x);
  return static_cast<float>(s + 1.7 * std::sqrt(100.0 + s) * noise(t, y, x) + (cosmic_ray(t, y, x) ? 3000.0 : 0.0));
}

class SpectraSource : public FrameSource {
 public:
  std::vector<std::string> units() override {
    std::vector<std::string> u;
    for (std::size_t t = 0; t < kNt; ++t) u.push_back("int" + std::to_string(t));
    return u;
  }
  UnitHeader read_header(std::size_t) override { return {static_cast<double>(kNy), static_cast<double>(kNx), {}}; }
  FrameOrder arrange(const std::vector<UnitHeader>& headers) override {
    FrameOrder o;
    o.shape = {headers.size(), kNy, kNx};
    FrameVector time{{"time", "d", "mid-integration time"}, {}, false};
    for (std::size_t t = 0; t < headers.size(); ++t) {
      o.units.push_back(t);
      time.values.push_back(60000.0 + 0.001 * static_cast<double>(t));
    }
    o.vectors = {time};
    return o;
  }
  std::vector<DataOut> cubes() const override {
    return {{DataKind::Cube, {"data", "DN/s", "rate"}, ElementType::Float32},
            {DataKind::Cube, {"err", "DN/s", "rate error"}, ElementType::Float32},
            {DataKind::Cube, {"var_poisson", "DN2/s2", "Poisson variance"}, ElementType::Float32},
            {DataKind::Cube, {"var_rnoise", "DN2/s2", "read-noise variance"}, ElementType::Float32},
            {DataKind::Cube, {"profile", "1", "spatial profile"}, ElementType::Float32},
            {DataKind::Cube, {"dq", "1", "pixel dq"}, ElementType::UInt32}};
  }
  void read_frame(std::size_t unit, std::size_t t, Dataset& data) override {
    auto d = data.frames<float>("data");
    auto e = data.frames<float>("err");
    auto vp = data.frames<float>("var_poisson");
    auto vr = data.frames<float>("var_rnoise");
    auto p = data.frames<float>("profile");
    auto q = data.frames<std::uint32_t>("dq");
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x) {
        const float v = data_value(unit, y, x);
        d(t, y, x) = v;
        vp(t, y, x) = std::isfinite(v) ? std::max(v, 0.0f) : NAN;
        vr(t, y, x) = 100.0f;
        e(t, y, x) = std::sqrt(vp(t, y, x) + 100.0f);
        p(t, y, x) = static_cast<float>(gauss_pixel(static_cast<double>(y), centre(unit, x), 1.4));
        q(t, y, x) = unit == 2 && y == 7 && x == 5 ? 1u : 0u;
      }
  }
  void read_extras(Dataset& data) override {
    Image trace;
    trace.info = {"trace_order1", "pixel", "trace centre"};
    trace.ny = kNt;
    trace.nx = kNx;
    trace.dim_y = "time";
    trace.dim_x = "x";
    for (std::size_t t = 0; t < kNt; ++t)
      for (std::size_t x = 0; x < kNx; ++x) trace.values.push_back(static_cast<float>(centre(t, x)));
    data.images()["trace_order1"] = trace;
    Image map;
    map.info = {"wavemap", "micron", "wavelength map"};
    map.ny = kNy;
    map.nx = kNx;
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x)
        map.values.push_back(static_cast<float>(0.6 + 0.2 * static_cast<double>(x) / kNx + 0.001 * static_cast<double>(y)));
    data.images()["wavemap"] = map;
  }
  std::vector<DataOut> provides() const override {
    auto out = cubes();
    out.push_back({DataKind::FrameVector, {"time", "d", ""}});
    out.push_back({DataKind::Image, {"trace_order1", "pixel", ""}});
    out.push_back({DataKind::Image, {"wavemap", "micron", ""}});
    return out;
  }
};

struct SpectraParams {
  static Schema<SpectraParams> schema() { return tessera::schema<SpectraParams>(); }
};
struct SpectraInput {
  static constexpr std::string_view name = "spectra_memory";
  static constexpr std::string_view summary = "synthetic spectral visit (test)";
  using Params = SpectraParams;
  static std::unique_ptr<FrameSource> open(const Params&) { return std::make_unique<SpectraSource>(); }
};

const Registry& registry() {
  static const Registry r = [] {
    Registry reg = tessera::testing::test_registry();
    reg.add_input(describe_input<SpectraInput>());
    return reg;
  }();
  return r;
}

const char* kSteps =
    "[[step]]\nid='optimal_trace'\nuses='extract_optimal'\nsuffix='_a'\naperture_radius=3.2\n"
    "wavelength_map='@wavemap'\ndq_bits_to_skip=[0]\n"
    "[[step]]\nid='optimal_cube'\nuses='extract_optimal'\nsuffix='_b'\ntrace_position='constant'\naperture_center=8\n"
    "profile='cube'\nmedian_spatial_profile=true\nwavelength_map='@wavemap'\n"
    "[[step]]\nid='optimal_fits'\nuses='extract_optimal'\nsuffix='_c'\ntrace_position='gaussian_fits'\n"
    "aperture_center=8\nprofile='cube'\nfit_smoothing=2\nwavelength_map='0.9'\n"
    "[[step]]\nid='box'\nuses='extract_box'\nsuffix='_d'\naperture_radius=2.5\nbackground_radius=6\n"
    "wavelength_map='@wavemap'\n";

Workflow workflow() {
  const std::string text =
      "[workflow]\nname='spectra'\n[input]\nkind='spectra_memory'\n[output]\npath='unused.h5'\n" + std::string(kSteps);
  return parse_workflow(text, "spectra.toml", {"engine.tile_ny=3", "engine.tile_nx=4"}, registry());
}

/// The input as the runner reads it, in frame slabs over `nranks`.
Dataset read_visit(int nranks, int rank) {
  SpectraSource source;
  std::vector<UnitHeader> headers;
  for (std::size_t i = 0; i < source.units().size(); ++i) headers.push_back(source.read_header(i));
  FrameOrder order = source.arrange(headers);
  Dataset data(order.shape, Partition::frames(order.shape, nranks), rank);
  for (const auto& c : source.cubes()) data.add_cube(c.info, c.type, 0.0, c.grouped);
  for (auto& v : order.vectors) data.frame_vectors()[v.info.name] = v;
  for (std::size_t t = data.partition().frame_begin(rank); t < data.partition().frame_end(rank); ++t)
    source.read_frame(order.units[t], t, data);
  source.read_extras(data);
  return data;
}

bool same_bits(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, sizeof a) == 0;
}
bool same_bits(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, sizeof a) == 0;
}

TEST(SpectraSteps, ExtractionIsTheSameOnEveryRankCountAsOnOneProcess) {
  const int rank = tessera::testing::world_rank(), nranks = tessera::testing::world_size();
  Workflow wf = workflow();
  Dataset data = read_visit(nranks, rank);
  run_steps(wf, data, MPI_COMM_WORLD, Logger(rank, Verbosity::Quiet));

  // The reference: the same workflow on this process alone.
  Workflow wf_alone = workflow();
  Dataset alone = read_visit(1, 0);
  run_steps(wf_alone, alone, MPI_COMM_SELF, Logger(0, Verbosity::Quiet));

  ASSERT_EQ(data.images().size(), alone.images().size());
  std::size_t compared = 0;
  for (const auto& [name, reference] : alone.images()) {
    ASSERT_EQ(data.images().count(name), 1u) << name;
    const Image& got = data.images().at(name);
    ASSERT_EQ(got.values.size(), reference.values.size()) << name;
    EXPECT_EQ(got.info.units, reference.info.units) << name;
    std::size_t differ = 0;
    for (std::size_t i = 0; i < got.values.size(); ++i) differ += same_bits(got.values[i], reference.values[i]) ? 0 : 1;
    EXPECT_EQ(differ, 0u) << "image " << name << " on " << nranks << " ranks, rank " << rank;
    ++compared;
  }
  for (const auto& [name, reference] : alone.frame_vectors()) {
    ASSERT_EQ(data.frame_vectors().count(name), 1u) << name;
    const auto& got = data.frame_vectors().at(name).values;
    for (std::size_t t = 0; t < got.size(); ++t)
      EXPECT_TRUE(same_bits(got[t], reference.values[t])) << name << "[" << t << "] on " << nranks << " ranks";
  }
  EXPECT_GE(compared, 20u);  // 4 steps' products

  // And the result makes sense: fluxes near the star's light in the aperture, both cosmic
  // rays rejected by the optimal extraction, the flagged and the NaN pixel left out.
  const auto& flux = data.images().at("flux_a").values;
  const auto& error = data.images().at("flux_error_a").values;
  for (std::size_t t = 0; t < kNt; ++t)
    for (std::size_t x = 0; x < kNx; ++x) {
      const double c = centre(t, x);
      double truth = 0;
      for (std::size_t y = 0; y < kNy; ++y)
        if (std::abs(static_cast<double>(y) - c) < 3.2 + 0.5) truth += star(t, y, x);
      // Within 4 of the reported errors (the pixel noise here is a hash, about 1 sigma wide).
      EXPECT_NEAR(flux[t * kNx + x], truth, 4.0 * error[t * kNx + x]) << t << " " << x;
    }
  EXPECT_GE(data.frame_vectors().at("extract_rejected_a").values[3], 1.0);
  EXPECT_GE(data.frame_vectors().at("extract_rejected_a").values[9], 1.0);
  EXPECT_EQ(data.frame_vectors().at("extract_bad_pixels_a").values[2], 1.0);
  EXPECT_EQ(data.frame_vectors().at("extract_bad_pixels_a").values[6], 1.0);
  EXPECT_EQ(data.images().at("flux_a").info.units, "DN/s");
  EXPECT_EQ(data.images().at("optimal_variance_floor_a").info.units, "DN2/s2");
}

}  // namespace
