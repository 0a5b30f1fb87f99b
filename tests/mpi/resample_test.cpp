// Resampling steps (drop_integrations, regroup) through the engine on 1, 2 and 3 ranks: the
// cubes (grouped and not), per-frame vectors and attributes they leave, checked value by
// value against what the steps define, so the result is the same for every rank count and
// tile shape. A frames step afterwards (drop_groups) checks the new axes survive a transpose.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <filesystem>

#include "steps/common/jwst_dq.hpp"
#include "support/memory_input.hpp"
#include "support/mpi_world.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/io/hdf5_writer.hpp"
#include "tessera/runner.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tessera;

int rank() { return tessera::testing::world_rank(); }
int nranks() { return tessera::testing::world_size(); }

constexpr std::size_t kNt = 7, kNg = 6, kNy = 5, kNx = 9;
constexpr double kTgroup = 2.0;  // s
constexpr double kDay = 86400.0;

float ramp_value(std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
  return static_cast<float>(t * 10000 + g * 100 + y * 10 + x);
}
std::uint8_t groupdq_value(std::size_t t, std::size_t g, std::size_t y, std::size_t x) {
  return static_cast<std::uint8_t>(((t * 7 + g * 3 + y + x) % 64) * 2);  // bit 0 (do_not_use) clear
}
std::uint32_t dq_value(std::size_t t, std::size_t y, std::size_t x) {
  return static_cast<std::uint32_t>(t * 100 + y * 10 + x) << 4;
}
double start_of(std::size_t t) { return 60000.0 + static_cast<double>(t) * (kNg * kTgroup + 1.0) / kDay; }
double end_of(std::size_t t) { return start_of(t) + kNg * kTgroup / kDay; }
double mid_of(std::size_t t) { return 0.5 * (start_of(t) + end_of(t)); }

/// Test input kind "ramp_memory": JWST-like ramps computed from the coordinates, with the
/// vectors and attributes jwst_uncal provides.
struct RampMemoryParams {
  static Schema<RampMemoryParams> schema() { return tessera::schema<RampMemoryParams>(); }
};

class RampMemorySource : public FrameSource {
 public:
  std::vector<std::string> units() override {
    std::vector<std::string> u;
    for (std::size_t t = 0; t < kNt; ++t) u.push_back("int" + std::to_string(t));
    return u;
  }
  UnitHeader read_header(std::size_t) override { return {static_cast<double>(kNy), static_cast<double>(kNx), {}}; }
  FrameOrder arrange(const std::vector<UnitHeader>& headers) override {
    FrameOrder o;
    o.shape = {headers.size(), kNy, kNx, kNg};
    FrameVector time{{"time", "d", "mid-integration time"}, {}, false}, start{{"int_start", "d", "start"}, {}, false},
        end{{"int_end", "d", "end"}, {}, false}, number{{"integration", "1", "integration number"}, {}, true},
        segment{{"segment", "1", "segment"}, {}, true};
    for (std::size_t t = 0; t < headers.size(); ++t) {
      o.units.push_back(t);
      time.values.push_back(mid_of(t));
      start.values.push_back(start_of(t));
      end.values.push_back(end_of(t));
      number.values.push_back(static_cast<double>(t + 1));
      segment.values.push_back(t < 4 ? 1.0 : 2.0);
    }
    o.vectors = {time, start, end, number, segment};
    return o;
  }
  std::vector<DataOut> cubes() const override {
    DataOut ramp{DataKind::Cube, {"ramp", "DN", "ramps"}, ElementType::Float32};
    ramp.grouped = true;
    DataOut groupdq{DataKind::Cube, {"groupdq", "1", "group dq"}, ElementType::UInt8};
    groupdq.grouped = true;
    return {ramp, groupdq, {DataKind::Cube, {"dq", "1", "pixel dq"}, ElementType::UInt32}};
  }
  void read_frame(std::size_t unit, std::size_t t, Dataset& data) override {
    auto ramp = data.frames<float>("ramp");
    auto groupdq = data.frames<std::uint8_t>("groupdq");
    auto dq = data.frames<std::uint32_t>("dq");
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x) {
        dq(t, y, x) = dq_value(unit, y, x);
        for (std::size_t g = 0; g < kNg; ++g) {
          ramp(t, g, y, x) = ramp_value(unit, g, y, x);
          groupdq(t, g, y, x) = groupdq_value(unit, g, y, x);
        }
      }
  }
  void read_extras(Dataset& data) override {
    data.attributes()["tgroup"] = kTgroup;
    data.attributes()["ngroups"] = static_cast<std::int64_t>(kNg);
    data.attributes()["nints"] = static_cast<std::int64_t>(kNt);
  }
  std::vector<DataOut> provides() const override {
    auto out = cubes();
    for (const char* v : {"time", "int_start", "int_end", "integration", "segment"})
      out.push_back({DataKind::FrameVector, {v, "", ""}});
    return out;
  }
};

struct RampMemoryInput {
  static constexpr std::string_view name = "ramp_memory";
  static constexpr std::string_view summary = "synthetic JWST-like ramps (test)";
  using Params = RampMemoryParams;
  static std::unique_ptr<FrameSource> open(const Params&) { return std::make_unique<RampMemorySource>(); }
};

const Registry& registry() {
  static const Registry r = [] {
    Registry reg = tessera::testing::test_registry();
    reg.add_input(describe_input<RampMemoryInput>());
    return reg;
  }();
  return r;
}

Workflow workflow(const std::string& steps, std::vector<std::string> overrides = {}) {
  const std::string text = "[workflow]\nname='resample'\n[input]\nkind='ramp_memory'\n[output]\npath='unused.h5'\n" + steps;
  return parse_workflow(text, "resample.toml", std::move(overrides), registry());
}

/// The dataset a run would read, built on this rank in frame slabs (as runner_test's
/// input does), through the input's own functions.
Dataset read_here() {
  RampMemorySource source;
  std::vector<UnitHeader> headers;
  for (std::size_t i = 0; i < source.units().size(); ++i) headers.push_back(source.read_header(i));
  FrameOrder order = source.arrange(headers);
  Dataset data(order.shape, Partition::frames(order.shape, nranks()), rank());
  for (const auto& c : source.cubes()) data.add_cube(c.info, c.type, 0.0, c.grouped);
  for (auto& v : order.vectors) data.frame_vectors()[v.info.name] = v;
  for (std::size_t t = data.partition().frame_begin(rank()); t < data.partition().frame_end(rank()); ++t)
    source.read_frame(order.units[t], t, data);
  source.read_extras(data);
  return data;
}

/// Writes the dataset collectively and returns rank 0's view of the file (others: empty).
struct Gathered {
  std::vector<std::size_t> ramp_shape, dq_shape;
  std::vector<float> ramp;
  std::vector<std::uint32_t> groupdq, dq;
  std::vector<double> time, start, end, integration, segment;
};
Gathered gather(const Dataset& data, const std::string& name) {
  const std::string path = tessera::testing::per_rank_count_path("resample_test", name);
  write_dataset_hdf5(data, path, MPI_COMM_WORLD, {});
  Gathered g;
  if (rank() == 0) {
    h5::File file = h5::File::open(path);
    g.ramp_shape = file.shape("ramp");
    g.dq_shape = file.shape("dq");
    g.ramp = file.read_floats("ramp");
    g.groupdq = file.read_uints("groupdq");
    g.dq = file.read_uints("dq");
    g.time = file.read_doubles("time");
    g.start = file.read_doubles("int_start");
    g.end = file.read_doubles("int_end");
    g.integration = file.read_doubles("integration");
    g.segment = file.read_doubles("segment");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove(path);
  return g;
}

void run(Workflow& wf, Dataset& data) { run_steps(wf, data, MPI_COMM_WORLD, Logger(rank(), Verbosity::Quiet)); }

TEST(DropIntegrations, RemovesTheNamedIntegrationsAndKeepsTheirNumbers) {
  Workflow wf = workflow("[[step]]\nid='drop'\nuses='drop_integrations'\ndrop_integrations=[1, -2, 1]\n",
                         {"engine.tile_ny=2", "engine.tile_nx=4"});
  Dataset data = read_here();
  run(wf, data);
  const std::vector<std::size_t> kept = {0, 2, 3, 4, 6};
  EXPECT_EQ(data.shape().nt, kept.size());
  EXPECT_EQ(data.shape().ng, kNg);
  EXPECT_EQ(std::get<std::int64_t>(data.attributes().at("nints")), static_cast<std::int64_t>(kNt));  // the exposure's
  const Gathered got = gather(data, "drop");
  if (rank() != 0) return;
  ASSERT_EQ(got.ramp_shape, (std::vector<std::size_t>{kept.size(), kNg, kNy, kNx}));
  ASSERT_EQ(got.dq_shape, (std::vector<std::size_t>{kept.size(), kNy, kNx}));
  for (std::size_t t = 0; t < kept.size(); ++t) {
    const std::size_t k = kept[t];
    EXPECT_EQ(got.integration[t], static_cast<double>(k + 1));
    EXPECT_EQ(got.time[t], mid_of(k));
    EXPECT_EQ(got.start[t], start_of(k));
    EXPECT_EQ(got.end[t], end_of(k));
    EXPECT_EQ(got.segment[t], k < 4 ? 1.0 : 2.0);
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x) {
        ASSERT_EQ(got.dq[(t * kNy + y) * kNx + x], dq_value(k, y, x));
        for (std::size_t g = 0; g < kNg; ++g) {
          const std::size_t i = ((t * kNg + g) * kNy + y) * kNx + x;
          ASSERT_EQ(got.ramp[i], ramp_value(k, g, y, x));
          ASSERT_EQ(got.groupdq[i], groupdq_value(k, g, y, x));
        }
      }
  }
}

TEST(Regroup, DropThenRegroupThenFlagGivesEveryPieceItsGroupsAndTimes) {
  // 7 integrations of 6 groups; drop 1 and 5; split each into 3 of 2 groups; then flag group
  // 0 of every new integration in frames (a transpose of the new axes).
  Workflow wf = workflow(
      "[[step]]\nid='drop'\nuses='drop_integrations'\ndrop_integrations=[5, 1]\n"
      "[[step]]\nid='regroup'\nuses='regroup'\nn_groups=2\n"
      "[[step]]\nid='flag'\nuses='drop_groups'\ndrop_groups=[0]\n",
      {"engine.tile_ny=3", "engine.tile_nx=2", "engine.transpose_chunk_mb=0.001"});
  Dataset data = read_here();
  run(wf, data);
  const std::vector<std::size_t> kept = {0, 2, 3, 4, 6};
  constexpr std::size_t n = 2, pieces = kNg / n;
  const std::size_t nt = kept.size() * pieces;
  EXPECT_EQ(data.shape().nt, nt);
  EXPECT_EQ(data.shape().ng, n);
  EXPECT_EQ(std::get<std::int64_t>(data.attributes().at("ngroups")), static_cast<std::int64_t>(n));
  EXPECT_EQ(std::get<std::int64_t>(data.attributes().at("nints")), static_cast<std::int64_t>(nt));
  const Gathered got = gather(data, "regroup");
  if (rank() != 0) return;
  ASSERT_EQ(got.ramp_shape, (std::vector<std::size_t>{nt, n, kNy, kNx}));
  const double tg = kTgroup / kDay;
  for (std::size_t t = 0; t < nt; ++t) {
    const std::size_t k = kept[t / pieces], j = t % pieces;
    EXPECT_EQ(got.integration[t], static_cast<double>(t + 1));
    EXPECT_EQ(got.segment[t], k < 4 ? 1.0 : 2.0);
    // Piece j holds old groups 2j, 2j+1, read at start + (g + 1)·tgroup with the old
    // integration spanning [start, start + 6 tgroup].
    EXPECT_NEAR(got.start[t], start_of(k) + static_cast<double>(j * n) * tg, 1e-9);
    EXPECT_NEAR(got.end[t], start_of(k) + static_cast<double>((j + 1) * n) * tg, 1e-9);
    EXPECT_NEAR(got.time[t], start_of(k) + (static_cast<double>(j * n) + 1.0) * tg, 1e-9);
    for (std::size_t y = 0; y < kNy; ++y)
      for (std::size_t x = 0; x < kNx; ++x) {
        ASSERT_EQ(got.dq[(t * kNy + y) * kNx + x], dq_value(k, y, x));
        for (std::size_t g = 0; g < n; ++g) {
          const std::size_t i = ((t * n + g) * kNy + y) * kNx + x;
          ASSERT_EQ(got.ramp[i], ramp_value(k, j * n + g, y, x)) << "t " << t << " g " << g;
          const std::uint8_t flag = g == 0 ? jwst::dq::group(jwst::dq::do_not_use) : 0;
          ASSERT_EQ(got.groupdq[i], groupdq_value(k, j * n + g, y, x) | flag) << "t " << t << " g " << g;
        }
      }
  }
}

TEST(Regroup, TheWholeGroupCountIsANoOp) {
  Workflow wf = workflow("[[step]]\nid='regroup'\nuses='regroup'\nn_groups=6\n");
  Dataset data = read_here();
  run(wf, data);
  const Gathered got = gather(data, "identity");
  if (rank() != 0) return;
  for (std::size_t t = 0; t < kNt; ++t) {
    EXPECT_EQ(got.time[t], mid_of(t));
    EXPECT_EQ(got.start[t], start_of(t));
    EXPECT_EQ(got.end[t], end_of(t));
  }
  for (std::size_t i = 0; i < got.ramp.size(); ++i) {
    const std::size_t x = i % kNx, y = i / kNx % kNy, g = i / (kNx * kNy) % kNg, t = i / (kNx * kNy * kNg);
    ASSERT_EQ(got.ramp[i], ramp_value(t, g, y, x));
  }
}

template <class F>
void expect_step_error(F&& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected a StepError containing '" << fragment << "'";
  } catch (const StepError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Resampling, BadParametersFailOnEveryRankWithAClearMessage) {
  expect_step_error(
      [] {
        Workflow wf = workflow("[[step]]\nid='regroup'\nuses='regroup'\nn_groups=4\n");
        Dataset data = read_here();
        run(wf, data);
      },
      "n_groups = 4 does not divide the 6 groups per integration of the data; valid values: 1, 2, 3, 6");
  expect_step_error(
      [] {
        Workflow wf = workflow("[[step]]\nid='d'\nuses='drop_integrations'\ndrop_integrations=[7]\n");
        Dataset data = read_here();
        run(wf, data);
      },
      "drop_integrations: integration index 7 is outside the 7 integrations");
  expect_step_error(
      [] {
        Workflow wf = workflow("[[step]]\nid='d'\nuses='drop_integrations'\ndrop_integrations=[0,1,2,3,4,5,-1]\n");
        Dataset data = read_here();
        run(wf, data);
      },
      "every one of the 7 integrations would be dropped");
}

TEST(Resampling, WholeRunWritesTheResampledCubes) {
  // The same through run_workflow (read, steps, write), for the output file's shapes.
  const std::string path = tessera::testing::per_rank_count_path("resample_test", "run");
  const std::string text = "[workflow]\nname='resample'\n[input]\nkind='ramp_memory'\n[output]\npath='" + path +
                           "'\n[[step]]\nid='regroup'\nuses='regroup'\nn_groups=3\n";
  Workflow wf = parse_workflow(text, "resample.toml", {}, registry());
  run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
  if (rank() == 0) {
    h5::File file = h5::File::open(path);
    EXPECT_EQ(file.shape("ramp"), (std::vector<std::size_t>{2 * kNt, 3, kNy, kNx}));
    EXPECT_EQ(file.shape("dq"), (std::vector<std::size_t>{2 * kNt, kNy, kNx}));
    const auto ramp = file.read_floats("ramp");
    // New integration 3 is old integration 1, groups 3..5.
    EXPECT_EQ(ramp[((3 * 3 + 0) * kNy + 2) * kNx + 4], ramp_value(1, 3, 2, 4));
    EXPECT_EQ(ramp[((3 * 3 + 2) * kNy + 2) * kNx + 4], ramp_value(1, 5, 2, 4));
    EXPECT_EQ(std::get<std::int64_t>(file.read_attribute("ngroups")), 3);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove(path);
}

}  // namespace
