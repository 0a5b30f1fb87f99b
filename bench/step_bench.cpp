// step_bench: times one step (any registered kind, with its parameters) on a synthetic cube
// held in frame slabs, as the runner would run it: the transpose into the step's layout
// and the step itself, against a plain memcpy of each rank's share of the data cube.
//
//   mpirun -n 2 step_bench [--step fixed_iter] [--set fixed_sigmas=[5,5]] [--frames 74] [--ny 600]
//                          [--nx 2100] [--reps 3]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "tessera/errors.hpp"
#include "tessera/runner.hpp"

namespace {

struct Options {
  std::string step = "fixed_iter";
  std::vector<std::string> params;
  std::size_t frames = 74, ny = 600, nx = 2100;
  int reps = 3;
};

/// A cheap, deterministic stand-in for shot noise and cosmic rays: a smooth level per pixel,
/// pseudo-random scatter from an integer hash, and about one hit in 2000 samples.
float synthetic(std::size_t t, std::size_t y, std::size_t x) {
  std::uint64_t h = (t * 0x9E3779B97F4A7C15ull) ^ (y * 0xC2B2AE3D27D4EB4Full) ^ (x * 0x165667B19E3779F9ull);
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  const double u = static_cast<double>(h & 0xFFFFFF) / double(0x1000000);
  const double level = 50.0 + 0.01 * static_cast<double>(x) + 0.05 * static_cast<double>(y);
  const double scatter = (u - 0.5) * 2.0 * std::sqrt(level);
  const double hit = (h >> 40) % 2000 == 0 ? 500.0 : 0.0;
  return static_cast<float>(level + scatter + hit);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--step") o.step = value;
    else if (flag == "--set") o.params.push_back(value);
    else if (flag == "--frames") o.frames = std::stoul(value);
    else if (flag == "--ny") o.ny = std::stoul(value);
    else if (flag == "--nx") o.nx = std::stoul(value);
    else if (flag == "--reps") o.reps = std::stoi(value);
    else {
      if (rank == 0) std::fprintf(stderr, "step_bench: unknown option %s\n", flag.c_str());
      MPI_Finalize();
      return 2;
    }
  }

  try {
    std::vector<std::string> overrides;
    for (const auto& p : o.params) overrides.push_back("bench." + p);
    tessera::Workflow wf = tessera::parse_workflow(
        "[input]\nkind = 'hst_flt_dir'\npath = '.'\n[output]\npath = 'unused.h5'\n[[step]]\nid = 'bench'\nuses = '" +
            o.step + "'\n",
        "step_bench", overrides, tessera::builtin_registry());
    const tessera::CubeShape shape{o.frames, o.ny, o.nx};
    const double samples = static_cast<double>(shape.elements());

    double best_transpose = 1e30, best_step = 1e30, best_copy = 1e30;
    for (int rep = 0; rep < o.reps; ++rep) {
      tessera::Dataset data(shape, tessera::Partition::frames(shape, nranks), rank);
      data.add_cube({"data", "electron", ""}, tessera::ElementType::Float32);
      data.add_cube({"err", "electron", ""}, tessera::ElementType::Float32);
      data.add_cube({"dq", "1", ""}, tessera::ElementType::UInt32);
      auto slab = data.frames<float>("data");
      auto err = data.frames<float>("err");
      for (std::size_t t = slab.t_begin; t < slab.t_end; ++t)
        for (std::size_t y = 0; y < o.ny; ++y)
          for (std::size_t x = 0; x < o.nx; ++x) {
            slab(t, y, x) = synthetic(t, y, x);
            // Shot noise of the smooth level plus 3 e- read noise, as calwf3's ERR would say.
            err(t, y, x) = std::sqrt(50.0f + 0.01f * static_cast<float>(x) + 0.05f * static_cast<float>(y) + 9.0f);
          }
      auto& values = std::get<std::vector<float>>(data.cube("data").values);
      std::vector<float> copy(values.size());
      MPI_Barrier(MPI_COMM_WORLD);
      auto start = std::chrono::steady_clock::now();
      std::memcpy(copy.data(), values.data(), values.size() * sizeof(float));
      double copy_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      MPI_Allreduce(MPI_IN_PLACE, &copy_s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      best_copy = std::min(best_copy, copy_s);

      tessera::RunSummary summary;
      tessera::Logger log(rank, tessera::Verbosity::Quiet);
      MPI_Barrier(MPI_COMM_WORLD);
      tessera::run_steps(wf, data, MPI_COMM_WORLD, log, &summary);
      double transpose_s = 0, step_s = 0;
      for (const auto& s : summary.stages) (s.label == "transpose" ? transpose_s : step_s) += s.seconds;
      best_transpose = std::min(best_transpose, transpose_s);
      best_step = std::min(best_step, step_s);
    }
    double rss = tessera::bench::peak_rss_mb(), max_rss = 0;
    MPI_Reduce(&rss, &max_rss, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      std::printf("step_bench: %s on %d rank%s, %zu x %zu x %zu = %.4g pixel-samples, best of %d\n", o.step.c_str(),
                  nranks, nranks == 1 ? "" : "s", o.frames, o.ny, o.nx, samples, o.reps);
      std::printf("  %-22s %9s %14s %12s\n", "stage", "seconds", "samples/s", "x memcpy");
      std::printf("  %-22s %9.3f %14.4g %12.1f\n", "memcpy of data cube", best_copy, samples / best_copy, 1.0);
      std::printf("  %-22s %9.3f %14.4g %12.1f\n", "transpose (3 cubes)", best_transpose, samples / best_transpose,
                  best_transpose / best_copy);
      std::printf("  %-22s %9.3f %14.4g %12.1f\n", o.step.c_str(), best_step, samples / best_step, best_step / best_copy);
      std::printf("  peak RSS per rank (max): %.0f MB\n", max_rss);
    }
  } catch (const tessera::Error& e) {
    if (rank == 0) std::fprintf(stderr, "step_bench: %s\n", e.what());
    MPI_Finalize();
    return 1;
  }
  MPI_Finalize();
  return 0;
}
