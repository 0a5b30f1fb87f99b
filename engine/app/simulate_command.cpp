#include "simulate_command.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "tessera/errors.hpp"

namespace tessera::app {

CLI::App* add_simulate_command(CLI::App& app, SimulateArgs& args) {
  auto* simulate = app.add_subcommand("simulate", "Write a simulated visit with its truth file");
  simulate->add_option("instrument", args.instrument, "What to simulate")->required()->check(CLI::IsMember({"uvis"}));
  auto& o = args.uvis;
  simulate->add_option("--out", o.out_dir, "Directory to write (specimages/, directimages/, truth.h5)")->required();
  simulate->add_option("--frames", o.frames, "Number of exposures")->capture_default_str()->check(CLI::PositiveNumber);
  simulate->add_option("--ny", o.ny, "Rows per frame")->capture_default_str()->check(CLI::Range(16, 100000));
  simulate->add_option("--nx", o.nx, "Columns per frame")->capture_default_str()->check(CLI::Range(64, 100000));
  simulate->add_option("--seed", o.seed, "Random seed (same seed, same files)")->capture_default_str();
  simulate->add_option("--orbits", o.orbits, "HST orbits the frames are spread over")->capture_default_str()
      ->check(CLI::PositiveNumber);
  simulate->add_option("--depth", o.transit_depth, "Transit depth (fraction of flux)")->capture_default_str()
      ->check(CLI::Range(0.0, 0.5));
  simulate->add_option("--exptime", o.exptime, "Exposure time per frame (s)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  simulate->add_option("--sky", o.sky, "Mean sky background per pixel per frame (electrons)")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  simulate->add_option("--read-noise", o.read_noise, "Read noise (electrons rms)")->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  simulate->add_option("--cr-rate", o.cr_rate, "Cosmic-ray hits per pixel per frame")->capture_default_str()
      ->check(CLI::Range(0.0, 0.1));
  simulate->add_option("--hot-fraction", o.hot_fraction, "Fraction of pixels that are hot")->capture_default_str()
      ->check(CLI::Range(0.0, 0.1));
  simulate->add_option("--drift", o.drift_px, "Pointing drift amplitude (pixels)")->capture_default_str()
      ->check(CLI::Range(0.0, 5.0));
  simulate->add_option("--stars", o.stars, "Field stars to draw (0 to 8), for track_stars")->capture_default_str()
      ->check(CLI::Range(0, 8));
  return simulate;
}

int simulate_command(const SimulateArgs& args) {
  try {
    const auto start = std::chrono::steady_clock::now();
    std::fprintf(stderr, "simulating a UVIS visit: %zu frames of %zu x %zu pixels, seed %llu -> %s\n", args.uvis.frames,
                 args.uvis.ny, args.uvis.nx, static_cast<unsigned long long>(args.uvis.seed), args.uvis.out_dir.c_str());
    const sim::UvisSimSummary summary = sim::simulate_uvis(args.uvis);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::filesystem::path out(args.uvis.out_dir);
    std::fprintf(stderr, "%s\nwrote %s, %s and %s in %.1f s\n", summary.str().c_str(), (out / "specimages").c_str(),
                 (out / "directimages").c_str(), (out / "truth.h5").c_str(), seconds);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "tessera: error: %s\n", e.what());
    return static_cast<int>(e.exit_code());
  }
}

}  // namespace tessera::app
