// workflow_bench: runs a whole workflow on a simulated visit (made once, then reused) and
// prints, per stage (read, each step, each transpose, write) and for the whole run, the wall
// time (slowest rank), pixel-samples per second and the ratio to a plain memory copy of this
// rank's share of the cube measured in the same run; and the peak memory of every rank.
//
//   mpirun -n 2 workflow_bench [--workflow workflows/uvis_stage1.toml] [--sim bench_sim]
//                              [--frames 74] [--ny 600] [--nx 2100] [--set STEP.PARAM=VALUE]...
//
// bench/stage1_bench.sh runs it on 1 and 2 ranks with the step list and prints the
// speed-up.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "steps/simulate/uvis_simulator.hpp"
#include "bench/bench_support.hpp"
#include "tessera/errors.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"

namespace {

struct Options {
  std::string workflow = "workflows/uvis_stage1.toml";
  std::string sim = "bench_sim";
  std::vector<std::string> overrides;
  std::size_t frames = 74, ny = 600, nx = 2100;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--workflow") o.workflow = value;
    else if (flag == "--sim") o.sim = value;
    else if (flag == "--set") o.overrides.push_back(value);
    else if (flag == "--frames") o.frames = std::stoul(value);
    else if (flag == "--ny") o.ny = std::stoul(value);
    else if (flag == "--nx") o.nx = std::stoul(value);
    else {
      if (rank == 0) std::fprintf(stderr, "workflow_bench: unknown option %s\n", flag.c_str());
      MPI_Finalize();
      return 2;
    }
  }

  int code = 0;
  try {
    // The visit is simulated once (by rank 0) and reused by later runs with the same shape.
    const std::string marker = o.sim + "/bench_shape_" + std::to_string(o.frames) + "x" + std::to_string(o.ny) + "x" +
                               std::to_string(o.nx);
    if (rank == 0 && !std::filesystem::exists(marker)) {
      std::fprintf(stderr, "workflow_bench: simulating %zu x %zu x %zu into %s ...\n", o.frames, o.ny, o.nx,
                   o.sim.c_str());
      tessera::sim::UvisSimOptions sim;
      sim.out_dir = o.sim;
      sim.frames = o.frames;
      sim.ny = o.ny;
      sim.nx = o.nx;
      tessera::sim::simulate_uvis(sim);
      std::FILE* f = std::fopen(marker.c_str(), "w");
      if (f) std::fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    std::vector<std::string> overrides = {"input.path=" + o.sim, "output.path=" + o.sim + "/bench_out/clean_obs.h5",
                                          "output.save_plots=0", "output.show_plots=0", "output.copy_workflow=false"};
    overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
    tessera::Workflow wf = tessera::load_workflow(o.workflow, overrides, tessera::builtin_registry());
    tessera::RunSummary summary = tessera::run_workflow(wf, MPI_COMM_WORLD, {tessera::Verbosity::Quiet});

    // Every rank has the same stages; report the slowest rank's time for each.
    std::vector<double> seconds;
    for (const auto& s : summary.stages) seconds.push_back(s.seconds);
    seconds.push_back(summary.seconds);
    MPI_Allreduce(MPI_IN_PLACE, seconds.data(), static_cast<int>(seconds.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

    const tessera::CubeShape shape{o.frames, o.ny, o.nx};
    const double samples = static_cast<double>(shape.elements());
    const auto frames = tessera::Partition::frames(shape, nranks);
    const double copy = tessera::bench::memcpy_seconds((frames.frame_end(0) - frames.frame_begin(0)) * o.ny * o.nx);

    std::vector<double> rss(static_cast<std::size_t>(nranks));
    double mine = tessera::bench::peak_rss_mb();
    MPI_Gather(&mine, 1, MPI_DOUBLE, rss.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank == 0) {
      std::printf("workflow_bench: %s on %d rank%s, %zu x %zu x %zu = %.4g pixel-samples\n", o.workflow.c_str(), nranks,
                  nranks == 1 ? "" : "s", o.frames, o.ny, o.nx, samples);
      std::printf("  %-26s %9s %14s %10s\n", "stage", "seconds", "samples/s", "x memcpy");
      std::printf("  %-26s %9.3f %14.4g %10.1f\n", "memcpy of this rank's cube", copy, samples / copy, 1.0);
      for (std::size_t i = 0; i < summary.stages.size(); ++i)
        std::printf("  %-26s %9.3f %14.4g %10.1f\n", summary.stages[i].label.c_str(), seconds[i],
                    samples / seconds[i], seconds[i] / copy);
      std::printf("  %-26s %9.3f %14.4g %10.1f\n", "whole workflow", seconds.back(), samples / seconds.back(),
                  seconds.back() / copy);
      std::printf("  peak memory per rank (MB):");
      for (double r : rss) std::printf(" %.0f", r);
      std::printf("   (cube: %.0f MB per float cube in all)\n", samples * 4 / 1e6);
      std::printf("RESULT ranks=%d total_s=%.3f\n", nranks, seconds.back());
    }
  } catch (const tessera::Error& e) {
    if (rank == 0) std::fprintf(stderr, "workflow_bench: %s\n", e.what());
    code = 1;
  }
  MPI_Finalize();
  return code;
}
