// transpose_bench: times frames -> tiles and tiles -> frames of a float32 and a uint32 cube,
// against a plain memcpy of each rank's share of the same cubes, and prints a table on rank 0.
//
//   mpirun -n 2 transpose_bench [--frames 74] [--ny 600] [--nx 2100] [--tile 64x256]
//                               [--chunk-mb 64] [--reps 5]
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tessera/dataset.hpp"
#include "tessera/transpose.hpp"

namespace {

struct Options {
  std::size_t frames = 74, ny = 600, nx = 2100;
  std::size_t tile_ny = 64, tile_nx = 256;  // the engine's default tile (workflow.hpp)
  double chunk_mb = 64;                     // MiB, as engine.transpose_chunk_mb
  int reps = 5;
};

[[noreturn]] void usage(int rank, const std::string& problem) {
  if (rank == 0)
    std::fprintf(stderr,
                 "transpose_bench: %s\nusage: transpose_bench [--frames N] [--ny N] [--nx N] [--tile HxW] "
                 "[--chunk-mb MB] [--reps N]\n",
                 problem.c_str());
  MPI_Finalize();
  std::exit(2);
}

std::size_t positive(const std::string& text, int rank, const char* what) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value == 0) usage(rank, std::string(what) + ": expected a positive integer, got '" + text + "'");
  return static_cast<std::size_t>(value);
}

Options parse(int argc, char** argv, int rank) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage(rank, "times cube transposes");
    if (i + 1 >= argc) usage(rank, flag + ": missing value");
    const std::string value = argv[++i];
    if (flag == "--frames") {
      o.frames = positive(value, rank, "--frames");
    } else if (flag == "--ny") {
      o.ny = positive(value, rank, "--ny");
    } else if (flag == "--nx") {
      o.nx = positive(value, rank, "--nx");
    } else if (flag == "--tile") {
      const auto x = value.find('x');
      if (x == std::string::npos) usage(rank, "--tile: expected HxW, got '" + value + "'");
      o.tile_ny = positive(value.substr(0, x), rank, "--tile");
      o.tile_nx = positive(value.substr(x + 1), rank, "--tile");
    } else if (flag == "--chunk-mb") {
      o.chunk_mb = std::atof(value.c_str());
      if (!(o.chunk_mb > 0)) usage(rank, "--chunk-mb: expected a positive number, got '" + value + "'");
    } else if (flag == "--reps") {
      o.reps = static_cast<int>(positive(value, rank, "--reps"));
    } else {
      usage(rank, "unknown option '" + flag + "'");
    }
  }
  return o;
}

/// Slowest rank's time: a collective step is as fast as its last rank.
double slowest(double seconds) {
  double most = 0;
  MPI_Allreduce(&seconds, &most, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return most;
}

struct Timings {
  std::vector<double> seconds;
  double best() const { return *std::min_element(seconds.begin(), seconds.end()); }
  double median() const {
    std::vector<double> s = seconds;
    std::sort(s.begin(), s.end());
    const std::size_t n = s.size();
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  }
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  const Options opt = parse(argc, argv, rank);

  const tessera::CubeShape shape{opt.frames, opt.ny, opt.nx};
  const tessera::Partition frames = tessera::Partition::frames(shape, nranks);
  const tessera::Partition tiles = tessera::Partition::tiles(shape, nranks, opt.tile_ny, opt.tile_nx);
  const auto chunk_bytes = static_cast<std::size_t>(opt.chunk_mb * 1024 * 1024);

  tessera::Dataset data(shape, frames, rank);
  data.add_cube({"flux", "electron", "flux"}, tessera::ElementType::Float32);
  data.add_cube({"dq", "1", "data quality"}, tessera::ElementType::UInt32);
  {
    auto flux = data.frames<float>("flux");
    auto dq = data.frames<std::uint32_t>("dq");
    for (std::size_t t = flux.t_begin; t < flux.t_end; ++t)
      for (std::size_t y = 0; y < shape.ny; ++y)
        for (std::size_t x = 0; x < shape.nx; ++x) {
          flux(t, y, x) = static_cast<float>(t + y + x);
          dq(t, y, x) = static_cast<std::uint32_t>(t ^ y ^ x);
        }
  }

  Timings to_tiles, to_frames;
  tessera::TransposeStats forward, backward;
  for (int r = 0; r < opt.reps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    forward = tessera::redistribute(data, tiles, MPI_COMM_WORLD, chunk_bytes);
    to_tiles.seconds.push_back(slowest(forward.seconds));
    MPI_Barrier(MPI_COMM_WORLD);
    backward = tessera::redistribute(data, frames, MPI_COMM_WORLD, chunk_bytes);
    to_frames.seconds.push_back(slowest(backward.seconds));
  }

  // The cubes made the round trip intact (a benchmark of wrong results is worthless).
  int intact = 1;
  {
    auto flux = data.frames<float>("flux");
    auto dq = data.frames<std::uint32_t>("dq");
    for (std::size_t t = flux.t_begin; t < flux.t_end; ++t)
      for (std::size_t y = 0; y < shape.ny; ++y)
        for (std::size_t x = 0; x < shape.nx; ++x)
          if (flux(t, y, x) != static_cast<float>(t + y + x) || dq(t, y, x) != static_cast<std::uint32_t>(t ^ y ^ x)) intact = 0;
  }
  MPI_Allreduce(MPI_IN_PLACE, &intact, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

  unsigned long long sent[2] = {forward.bytes_sent_to_other_ranks, backward.bytes_sent_to_other_ranks}, total_sent[2] = {};
  MPI_Reduce(sent, total_sent, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  // Peak memory of the transposes, taken before the baseline allocates its own copy.
  rusage usage_now{};
  getrusage(RUSAGE_SELF, &usage_now);
  const long peak_kib = usage_now.ru_maxrss;  // KiB on Linux
  std::vector<long> peaks(static_cast<std::size_t>(nranks));
  MPI_Gather(&peak_kib, 1, MPI_LONG, peaks.data(), 1, MPI_LONG, 0, MPI_COMM_WORLD);

  // Baseline: each rank copies its own share of both cubes into memory it has already touched.
  Timings copy;
  {
    const std::size_t n = frames.local_elements(rank);
    std::vector<float> flux_copy(n);
    std::vector<std::uint32_t> dq_copy(n);
    const auto& flux = std::get<std::vector<float>>(data.cube("flux").values);
    const auto& dq = std::get<std::vector<std::uint32_t>>(data.cube("dq").values);
    for (int r = 0; r < opt.reps; ++r) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double start = MPI_Wtime();
      if (n > 0) {
        std::memcpy(flux_copy.data(), flux.data(), n * sizeof(float));
        std::memcpy(dq_copy.data(), dq.data(), n * sizeof(std::uint32_t));
      }
      copy.seconds.push_back(slowest(MPI_Wtime() - start));
    }
  }

  if (rank == 0) {
    const std::size_t cubes = data.cubes().size();
    const double bytes = static_cast<double>(shape.elements() * 4 * cubes);
    std::printf("transpose_bench: %d rank%s, cube %zu x %zu x %zu (float32 + uint32: %.1f MB), %s, chunk %.0f MiB, "
                "%d repetitions\n\n",
                nranks, nranks == 1 ? "" : "s", shape.nt, shape.ny, shape.nx, bytes / 1e6, tiles.describe().c_str(),
                opt.chunk_mb, opt.reps);
    std::printf("%-17s %9s %9s %11s %10s %13s %16s\n", "", "best s", "median s", "GB/s best", "x memcpy", "rounds/cube",
                "MB between ranks");
    auto row = [&](const char* name, const Timings& t, std::size_t rounds, double moved) {
      std::printf("%-17s %9.3f %9.3f %11.2f %10.1f %13zu %16.1f\n", name, t.best(), t.median(), bytes / t.best() / 1e9,
                  t.best() / copy.best(), rounds, moved / 1e6);
    };
    row("frames -> tiles", to_tiles, forward.chunks / cubes, static_cast<double>(total_sent[0]));
    row("tiles -> frames", to_frames, backward.chunks / cubes, static_cast<double>(total_sent[1]));
    std::printf("%-17s %9.3f %9.3f %11.2f %10.1f %13s %16s\n", "memcpy own share", copy.best(), copy.median(),
                bytes / copy.best() / 1e9, 1.0, "-", "-");
    std::printf("\npeak RSS per rank (MB):");
    for (int r = 0; r < nranks; ++r) std::printf(" %d: %.0f", r, static_cast<double>(peaks[static_cast<std::size_t>(r)]) * 1024 / 1e6);
    std::printf("   (cube share per rank: %.0f MB)\n", bytes / nranks / 1e6);
    std::printf("round trip: %s\n", intact ? "cubes intact" : "CUBES CHANGED: the transposes are wrong");
  }
  MPI_Finalize();
  return intact ? 0 : 1;
}
