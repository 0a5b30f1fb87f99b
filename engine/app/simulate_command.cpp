#include "simulate_command.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "tessera/errors.hpp"

namespace tessera::app {

namespace {

// Options that belong to one family of instruments; the others reject them.
// --drift is shared: it is parsed into the uvis options and copied to the JWST ones.
const std::set<std::string> kUvisOnly = {"--frames",     "--orbits",       "--exptime", "--sky",
                                         "--read-noise", "--hot-fraction", "--stars"};
const std::set<std::string> kJwstOnly = {"--ints",       "--groups",     "--ints-per-segment", "--peak-rate",
                                         "--background", "--one-over-f", "--threads",          "--orders"};

bool given(const SimulateArgs& args, const std::string& name) {
  const auto it = args.options.find(name);
  return it != args.options.end() && it->second->count() > 0;
}

int simulate_uvis(const SimulateArgs& args) {
  sim::UvisSimOptions o = args.uvis;
  o.out_dir = args.out_dir;
  if (given(args, "--ny")) o.ny = args.ny;
  if (given(args, "--nx")) o.nx = args.nx;
  if (given(args, "--seed")) o.seed = args.seed;
  if (given(args, "--depth")) o.transit_depth = args.depth;
  if (given(args, "--cr-rate")) o.cr_rate = args.cr_rate;
  const auto start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "simulating a UVIS visit: %zu frames of %zu x %zu pixels, seed %llu -> %s\n", o.frames, o.ny,
               o.nx, static_cast<unsigned long long>(o.seed), o.out_dir.c_str());
  const sim::UvisSimSummary summary = sim::simulate_uvis(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::filesystem::path out(o.out_dir);
  std::fprintf(stderr, "%s\nwrote %s, %s and %s in %.1f s\n", summary.str().c_str(), (out / "specimages").c_str(),
               (out / "directimages").c_str(), (out / "truth.h5").c_str(), seconds);
  return 0;
}

int simulate_jwst(const SimulateArgs& args, sim::JwstInstrument instrument) {
  sim::JwstSimOptions o = sim::jwst_defaults(instrument);
  const sim::JwstSimOptions& given_values = args.jwst;
  o.out_dir = args.out_dir;
  if (given(args, "--ny")) o.ny = args.ny;
  if (given(args, "--nx")) o.nx = args.nx;
  if (given(args, "--seed")) o.seed = args.seed;
  if (given(args, "--depth")) o.transit_depth = args.depth;
  if (given(args, "--cr-rate")) o.cr_rate = args.cr_rate;
  if (given(args, "--ints")) o.ints = given_values.ints;
  if (given(args, "--groups")) o.groups = given_values.groups;
  if (given(args, "--ints-per-segment")) o.ints_per_segment = given_values.ints_per_segment;
  if (given(args, "--peak-rate")) o.peak_rate = given_values.peak_rate;
  if (given(args, "--background")) o.background = given_values.background;
  if (given(args, "--one-over-f")) o.one_over_f = given_values.one_over_f;
  if (given(args, "--threads")) o.threads = given_values.threads;
  if (given(args, "--orders")) o.orders = given_values.orders;
  if (given(args, "--drift")) o.drift = args.uvis.drift_px;
  const auto start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "simulating a %s exposure: %zu integrations of %zu groups of %zu x %zu pixels, seed %llu -> %s\n",
               std::string(sim::jwst_instrument_name(instrument)).c_str(), o.ints, o.groups, o.ny, o.nx,
               static_cast<unsigned long long>(o.seed), o.out_dir.c_str());
  const sim::JwstSimSummary summary = sim::simulate_jwst(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::filesystem::path out(o.out_dir);
  std::fprintf(stderr, "%s\nwrote %s, %s and %s in %.1f s\n", summary.str().c_str(), (out / "uncal").c_str(),
               (out / "refs").c_str(), (out / "truth.h5").c_str(), seconds);
  return 0;
}

}  // namespace

CLI::App* add_simulate_command(CLI::App& app, SimulateArgs& args) {
  auto* simulate = app.add_subcommand("simulate", "Write a simulated visit or exposure with its truth file");
  simulate->add_option("instrument", args.instrument,
                       "What to simulate: uvis (HST WFC3/UVIS G280 flt files), niriss-soss or miri-lrs "
                       "(JWST uncal segments with reference files)")
      ->required()
      ->check(CLI::IsMember({"uvis", "niriss-soss", "miri-lrs"}));
  auto add = [&](CLI::Option* option) {
    args.options[option->get_name()] = option;
    return option;
  };
  // Shared by every instrument.
  add(simulate->add_option("--out", args.out_dir,
                           "Directory to write (uvis: specimages/, directimages/, sky/; JWST: uncal/, refs/; "
                           "all: truth.h5)"))
      ->required();
  add(simulate->add_option("--ny", args.ny, "Rows per frame (default: uvis 256, niriss-soss 256, miri-lrs 416)"))
      ->check(CLI::Range(16, 100000));
  add(simulate->add_option("--nx", args.nx, "Columns per frame (default: uvis 512, niriss-soss 2048, miri-lrs 72)"))
      ->check(CLI::Range(16, 100000));
  add(simulate->add_option("--seed", args.seed, "Random seed (same seed, same files)"))->capture_default_str();
  add(simulate->add_option("--depth", args.depth, "Transit depth (fraction of flux)"))
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.5));
  add(simulate->add_option("--cr-rate", args.cr_rate,
                           "Cosmic-ray hits per pixel per frame (an integration for JWST; default: uvis 2e-4, "
                           "JWST 2e-3)"))
      ->check(CLI::Range(0.0, 0.1));

  // uvis only.
  auto& u = args.uvis;
  add(simulate->add_option("--frames", u.frames, "uvis: number of exposures"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add(simulate->add_option("--orbits", u.orbits, "uvis: HST orbits the frames are spread over"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add(simulate->add_option("--exptime", u.exptime, "uvis: exposure time per frame (s)"))
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add(simulate->add_option("--sky", u.sky, "uvis: mean sky background per pixel per frame (electrons)"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add(simulate->add_option("--read-noise", u.read_noise, "uvis: read noise (electrons rms)"))
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  add(simulate->add_option("--hot-fraction", u.hot_fraction, "uvis: fraction of pixels that are hot"))
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.1));
  add(simulate->add_option("--drift", u.drift_px,
                           "Pointing drift (pixels): uvis: drift amplitude (default 0.12); niriss-soss, miri-lrs: "
                           "rms of the per-integration scene shifts in x and in y (default 0: none)"))
      ->check(CLI::Range(0.0, 5.0));
  add(simulate->add_option("--stars", u.stars, "uvis: field stars to draw (0 to 8), for track_stars"))
      ->capture_default_str()
      ->check(CLI::Range(0, 8));

  // niriss-soss and miri-lrs only.
  auto& j = args.jwst;
  add(simulate->add_option("--ints", j.ints, "JWST: integrations in the exposure (default 200)"))
      ->check(CLI::PositiveNumber);
  add(simulate->add_option("--groups", j.groups, "JWST: groups per integration (default: niriss-soss 6, miri-lrs 40)"))
      ->check(CLI::Range(2, 1000));
  add(simulate->add_option("--ints-per-segment", j.ints_per_segment,
                           "JWST: integrations per uncal segment (default 50; one segment is held in memory)"))
      ->check(CLI::PositiveNumber);
  add(simulate->add_option("--peak-rate", j.peak_rate,
                           "JWST: stellar rate at the brightest trace pixel (DN/s); default 0 picks one that "
                           "saturates it a few groups before the end"))
      ->check(CLI::NonNegativeNumber);
  add(simulate->add_option("--background", j.background,
                           "JWST: mean sky rate (DN/s; default: niriss-soss 2, miri-lrs 15)"))
      ->check(CLI::NonNegativeNumber);
  add(simulate->add_option("--one-over-f", j.one_over_f,
                           "JWST: rms of the per-group, per-column 1/f offsets (DN; default: niriss-soss 4, "
                           "miri-lrs 0)"))
      ->check(CLI::NonNegativeNumber);
  add(simulate->add_option("--orders", j.orders,
                           "JWST: spectral orders to draw (niriss-soss: 1 or 2, default 2; miri-lrs: 1)"))
      ->check(CLI::Range(1, 2));
  add(simulate->add_option("--threads", j.threads,
                           "JWST: worker threads (default 0: all cores); the files do not depend on it"))
      ->check(CLI::NonNegativeNumber);
  return simulate;
}

int simulate_command(const SimulateArgs& args) {
  try {
    const bool uvis = args.instrument == "uvis";
    for (const auto& [name, option] : args.options) {
      if (option->count() == 0) continue;
      if (uvis && kJwstOnly.contains(name))
        throw ConfigError("simulate uvis: " + name + " applies to niriss-soss and miri-lrs only");
      if (!uvis && kUvisOnly.contains(name))
        throw ConfigError("simulate " + args.instrument + ": " + name + " applies to uvis only");
    }
    if (uvis) return simulate_uvis(args);
    return simulate_jwst(args, args.instrument == "miri-lrs" ? sim::JwstInstrument::miri_lrs
                                                             : sim::JwstInstrument::niriss_soss);
  } catch (const Error& e) {
    std::fprintf(stderr, "tessera: error: %s\n", e.what());
    return static_cast<int>(e.exit_code());
  }
}

}  // namespace tessera::app
