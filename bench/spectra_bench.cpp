// spectra_bench: the spectral stage (trace -> one_over_f_masked -> box extraction of orders 1
// and 2 -> optimal extraction of order 1 -> lightcurves -> lc_diagnostics) as one in-process
// workflow on NIRISS/SOSS-like rate cubes made in memory. Prints, per step and for the stage:
// wall time (slowest rank), integrations per second, and the ratio to one plain memory copy of
// this rank's data cube measured in the same run; then each rank's peak resident memory.
//
//   mpirun -n 2 spectra_bench [--ints 2000] [--ny 256] [--nx 2048] [--steps ID,ID...]
//                             [--refs DIR] [--dump FILE.h5 | --dump-only FILE.h5] [--set STEP.PARAM=VALUE]...
//
// The scene: two curved traces with the SOSS "horned" cross-dispersion profile (order 1 over
// the whole width, order 2 fainter, higher up and over part of it), a sky gradient, Gaussian
// noise with the err cube its sigma, per-column 1/f offsets, a few cosmic rays, and a grey-ish
// transit (depth ~1 %, a little chromatic) over the middle of the visit. Each rank fills only
// its own integrations, from the integration's global index, so the data do not depend on the
// rank count. The wavelength maps are written once to FITS files in --refs.
//
// --dump FILE.h5 (rank 0) also writes the same data (data and err as (nt*ny, nx) images, the
// wavelength maps, time) and the tracing/extraction parameters as attributes, for
// bench/notebook_reference.py, the notebook's Python loops timed on the same arrays;
// --dump-only FILE.h5 writes it and exits.
// bench/spectra_bench.sh runs both and prints the comparison.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/logger.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"
#include "tests/support/memory_input.hpp"

namespace {

namespace fs = std::filesystem;

constexpr double kIntegrationSeconds = 6 * 5.494;  // NISRAPID, 6 groups
constexpr double kProfileOffset = 6.5;             // horns at ±6.5 px from the trace centre
constexpr double kProfileSigma = 3.2;              // each horn's Gaussian sigma, px
constexpr double kReadNoise = 0.2;                 // DN/s: the noise floor of the err model below

/// Geometry and parameters of the synthetic SOSS-like scene, scaled from the 256 × 2048
/// subarray (the numbers in the notebook: order 1 starts at column 2043, row 70 and is traced
/// to column 4; order 2 from column 1838, row 220 to column 700 on the image cut at row 70).
struct Scene {
  std::size_t nt = 2000, ny = 256, nx = 2048;
  // Tracing start points and ends (column, row), order 2's cut row.
  std::size_t xstart1 = 0, xend1 = 0, xstart2 = 0, xend2 = 0, cut2 = 0;
  double ystart1 = 0, ystart2 = 0;
  double o2_x0 = 0, o2_x1 = 0;  // order 2 has light over [o2_x0, o2_x1]
  // Extraction and event parameters.
  std::int64_t nknots = 11, mask_aperture = 30;
  double aperture_radius = 15;
  std::vector<std::int64_t> out_of_event, in_event;  // [first, last) pairs, flattened

  void finish() {
    const double fx = static_cast<double>(nx) / 2048.0, fy = static_cast<double>(ny) / 256.0;
    xstart1 = nx - 5;
    xend1 = 4;
    o2_x0 = 600 * fx;
    o2_x1 = 1900 * fx;
    xstart2 = static_cast<std::size_t>(std::lround(1838 * fx));
    xend2 = static_cast<std::size_t>(std::lround(700 * fx));
    cut2 = static_cast<std::size_t>(std::lround(70 * fy));
    ystart1 = std::round(order1_row(static_cast<double>(xstart1)));
    ystart2 = std::round(order2_row(static_cast<double>(xstart2)));
    const auto at = [&](double u) { return static_cast<std::int64_t>(std::lround(u * static_cast<double>(nt))); };
    out_of_event = {0, at(0.3), at(0.7), static_cast<std::int64_t>(nt)};
    in_event = {at(0.4), at(0.6)};
  }
  /// Centre row of order 1 at column x: row 70 at the right end curving down to row 95.
  double order1_row(double x) const {
    const double u = (static_cast<double>(nx) - 5.0 - x) / (static_cast<double>(nx) - 9.0);
    return static_cast<double>(ny) * (70.0 + 25.0 * u * u) / 256.0;
  }
  /// Centre row of order 2: row ~125 at its blue end rising to ~220 near column 1838.
  double order2_row(double x) const {
    const double u = std::max(0.0, (x - o2_x0) / (1838.0 * static_cast<double>(nx) / 2048.0 - o2_x0));
    return static_cast<double>(ny) * (125.0 + 95.0 * std::pow(u, 1.2)) / 256.0;
  }
  /// Wavelength (micron) at a pixel for each order: along x, with a slight tilt along y.
  double order1_wave(double x, double y) const {
    return 2.83 - 1.98 * x / static_cast<double>(nx - 1) + 4e-4 * (y - order1_row(x));
  }
  double order2_wave(double x, double y) const {
    return 1.40 - 0.80 * (x - o2_x0) / (o2_x1 - o2_x0) + 2e-4 * (y - order2_row(x));
  }
  /// Counts per column (DN/s summed over the profile).
  double order1_flux(double x) const {
    const double u = (x - 0.55 * static_cast<double>(nx)) / (0.35 * static_cast<double>(nx));
    return 9000.0 * (0.4 + 0.6 * std::exp(-u * u));
  }
  double order2_flux(double x) const {
    if (x < o2_x0 || x > o2_x1) return 0.0;
    const double taper = std::min({1.0, (x - o2_x0) / 50.0, (o2_x1 - x) / 50.0});
    return 3000.0 * taper;
  }
  /// Transit depth at a wavelength (a little chromatic), and the light-curve shape in [0, 1]:
  /// a trapezoid from 35 % to 65 % of the visit with 5 % ingress and egress.
  static double depth(double wave) { return 0.010 * (1.0 + 0.05 * std::sin(6.0 * wave)); }
  double transit_shape(std::size_t t) const {
    const double u = (static_cast<double>(t) + 0.5) / static_cast<double>(nt);
    const double edge = std::min(u - 0.35, 0.65 - u);
    return std::clamp(edge / 0.05, 0.0, 1.0);
  }
};

/// The horned profile at distance d from the trace centre (sums to ~1 over rows).
double profile(double d) {
  const double norm = 0.5 / (std::sqrt(2.0 * std::numbers::pi) * kProfileSigma);
  const double a = (d - kProfileOffset) / kProfileSigma, b = (d + kProfileOffset) / kProfileSigma;
  return norm * (std::exp(-0.5 * a * a) + std::exp(-0.5 * b * b));
}

std::uint64_t mix(std::uint64_t z) {  // splitmix64 finaliser: a hash for per-integration draws
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Precomputed static parts of the scene and a pool of standard normal draws; fill() makes
/// one integration from them (a few loads and one multiply-add per pixel).
class Maker {
 public:
  static constexpr std::size_t kPool = std::size_t{1} << 22;

  explicit Maker(const Scene& s) : s_(s) {
    const std::size_t n = s.ny * s.nx;
    order1_.assign(n, 0.0f);
    order2_.assign(n, 0.0f);
    sky_.assign(n, 0.0f);
    sigma_.assign(n, 0.0f);
    for (std::size_t x = 0; x < s.nx; ++x) {
      const double xd = static_cast<double>(x);
      const double c1 = s.order1_row(xd), c2 = s.order2_row(xd), f1 = s.order1_flux(xd), f2 = s.order2_flux(xd);
      for (std::size_t y = 0; y < s.ny; ++y) {
        const double yd = static_cast<double>(y);
        const std::size_t i = y * s.nx + x;
        order1_[i] = static_cast<float>(f1 * profile(yd - c1));
        order2_[i] = static_cast<float>(f2 * profile(yd - c2));
        sky_[i] = static_cast<float>(2.0 + 1.5 * yd / static_cast<double>(s.ny));
        const double rate = order1_[i] + order2_[i] + sky_[i];
        sigma_[i] = static_cast<float>(std::sqrt(rate / 50.0 + kReadNoise * kReadNoise));  // Poisson-like + read noise
      }
      depth1_.push_back(static_cast<float>(Scene::depth(s.order1_wave(xd, c1))));
      depth2_.push_back(static_cast<float>(Scene::depth(s.order2_wave(xd, c2))));
    }
    pool_.resize(kPool);
    std::uint64_t state = 12345;
    for (std::size_t k = 0; k < kPool; k += 2) {  // Box-Muller on hashed uniforms
      state = mix(state);
      const double u1 = (static_cast<double>(state >> 11) + 0.5) / 9007199254740992.0;
      state = mix(state);
      const double u2 = static_cast<double>(state >> 11) / 9007199254740992.0;
      const double r = std::sqrt(-2.0 * std::log(u1));
      pool_[k] = static_cast<float>(r * std::cos(2.0 * std::numbers::pi * u2));
      pool_[k + 1] = static_cast<float>(r * std::sin(2.0 * std::numbers::pi * u2));
    }
  }

  /// Integration t (global index) into data/err (ny*nx each).
  void fill(std::size_t t, float* data, float* err) const {
    const std::size_t nx = s_.nx, mask = kPool - 1;
    const float shape = static_cast<float>(s_.transit_shape(t));
    std::vector<float> f1(nx), f2(nx), column_offset(nx);
    const std::size_t column_draws = mix(t * 7919 + 17) & mask;
    for (std::size_t x = 0; x < nx; ++x) {
      f1[x] = 1.0f - depth1_[x] * shape;
      f2[x] = 1.0f - depth2_[x] * shape;
      column_offset[x] = 0.3f * pool_[(column_draws + 3 * x) & mask];  // 1/f: one offset per column
    }
    for (std::size_t y = 0; y < s_.ny; ++y) {
      const std::size_t offset = mix((t << 20) ^ y) & mask;
      const std::size_t row = y * nx;
      for (std::size_t x = 0; x < nx; ++x) {
        const std::size_t i = row + x;
        data[i] = sky_[i] + order1_[i] * f1[x] + order2_[i] * f2[x] + sigma_[i] * pool_[(offset + x) & mask] +
                  column_offset[x];
        err[i] = sigma_[i];
      }
    }
    for (std::size_t k = 0; k < 16; ++k) {  // cosmic rays
      const std::uint64_t h = mix((t << 8) + k + 0x5eed);
      data[(h >> 16) % (s_.ny * nx)] += 300.0f + static_cast<float>(h & 1023);
    }
  }

  /// The wavelength map of an order (micron per pixel).
  std::vector<float> wavelength_map(int order) const {
    std::vector<float> map(s_.ny * s_.nx);
    for (std::size_t y = 0; y < s_.ny; ++y)
      for (std::size_t x = 0; x < s_.nx; ++x)
        map[y * s_.nx + x] = static_cast<float>(order == 1 ? s_.order1_wave(double(x), double(y))
                                                           : s_.order2_wave(double(x), double(y)));
    return map;
  }

 private:
  const Scene& s_;
  std::vector<float> order1_, order2_, sky_, sigma_, depth1_, depth2_, pool_;
};

std::string list(const std::vector<std::int64_t>& flat) {  // [[a, b], [c, d]]
  std::string out = "[";
  for (std::size_t k = 0; k + 1 < flat.size(); k += 2)
    out += (k ? ", [" : "[") + std::to_string(flat[k]) + ", " + std::to_string(flat[k + 1]) + "]";
  return out + "]";
}

/// CPU seconds (user + system) this process has used so far.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

std::string fmt(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

/// The stage as a workflow; `only` keeps the listed step ids (or kinds).
std::string stage_toml(const Scene& s, const fs::path& refs, const std::vector<std::string>& only) {
  const std::string w1 = (refs / "wavelength_order1.fits").string(), w2 = (refs / "wavelength_order2.fits").string();
  struct Step {
    std::string id, kind, params;
  };
  std::vector<Step> steps = {
      {"trace", "trace",
       "dispersion_axis = \"x\"\norders = [\"order1\", \"order2\"]\nstart = [" + std::to_string(s.xstart1) + ", " +
           std::to_string(s.xstart2) + "]\nstart_position = [" + fmt(s.ystart1) + ", " + fmt(s.ystart2) +
           "]\nend = [" + std::to_string(s.xend1) + ", " + std::to_string(s.xend2) + "]\nspatial_min = [0, " +
           std::to_string(s.cut2) + "]\nnknots = " + std::to_string(s.nknots) + "\n"},
      {"one_over_f_masked", "one_over_f_masked",
       "dispersion_axis = \"x\"\norders = [\"order1\", \"order2\"]\nmask_aperture = " +
           std::to_string(s.mask_aperture) + "\n"},
      {"extract_box_order1", "extract_box",
       "dispersion_axis = \"x\"\ntrace = \"order1\"\nsuffix = \"_order1\"\naperture_radius = " +
           fmt(s.aperture_radius) + "\nwavelength_map = \"" + w1 + "\"\n"},
      {"extract_box_order2", "extract_box",
       "dispersion_axis = \"x\"\ntrace = \"order2\"\nsuffix = \"_order2\"\naperture_radius = " +
           fmt(s.aperture_radius) + "\nwavelength_map = \"" + w2 + "\"\n"},
      {"extract_optimal_order1", "extract_optimal",
       "dispersion_axis = \"x\"\ntrace = \"order1\"\nsuffix = \"_optimal_order1\"\naperture_radius = " +
           fmt(s.aperture_radius) + "\nwavelength_map = \"" + w1 + "\"\nread_noise = \"" + fmt(kReadNoise) + "\"\n"},
      {"lightcurves", "lightcurves", "suffix = \"_order1\"\nout_of_event = " + list(s.out_of_event) + "\n"},
      {"lc_diagnostics", "lc_diagnostics",
       "suffix = \"_order1\"\nout_of_event = " + list(s.out_of_event) + "\nin_event = " + list(s.in_event) + "\n"},
  };
  std::ostringstream text;
  text << "[workflow]\nname = \"spectra_bench\"\n[input]\nkind = \"memory\"\nnt = " << s.nt << "\nny = " << s.ny
       << "\nnx = " << s.nx << "\n[output]\npath = \"/dev/null\"\nsave = false\nsave_plots = 0\ncopy_workflow = false\n";
  for (const auto& step : steps) {
    if (!only.empty() && std::find(only.begin(), only.end(), step.id) == only.end() &&
        std::find(only.begin(), only.end(), step.kind) == only.end())
      continue;
    text << "\n[[step]]\nid = \"" << step.id << "\"\nuses = \"" << step.kind << "\"\n" << step.params;
  }
  return text.str();
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void write_wavelength_maps(const Maker& maker, const Scene& s, const fs::path& dir) {
  fs::create_directories(dir);
  for (int order : {1, 2}) {
    const std::string name = "wavelength_order" + std::to_string(order) + ".fits";
    auto f = tessera::fits::File::create((dir / (name + ".partial")).string());
    f.append_image_float("SCI", maker.wavelength_map(order), {static_cast<long>(s.nx), static_cast<long>(s.ny)});
    f.close();
    fs::rename(dir / (name + ".partial"), dir / name);
  }
}

/// The whole visit for the Python reference: data and err as (nt*ny, nx) images.
void write_dump(const Maker& maker, const Scene& s, const std::string& path) {
  const std::size_t n = s.ny * s.nx;
  std::vector<float> data(s.nt * n), err(s.nt * n);
  for (std::size_t t = 0; t < s.nt; ++t) maker.fill(t, data.data() + t * n, err.data() + t * n);
  auto f = tessera::h5::File::create(path);
  f.write_image("data", data, s.nt * s.ny, s.nx, "row", "x", {"data", "DN/s", "rate, integrations stacked along rows"});
  f.write_image("err", err, s.nt * s.ny, s.nx, "row", "x", {"err", "DN/s", "1-sigma error of data"});
  f.write_image("wavelength_order1", maker.wavelength_map(1), s.ny, s.nx, "y", "x", {"wavelength_order1", "um", ""});
  f.write_image("wavelength_order2", maker.wavelength_map(2), s.ny, s.nx, "y", "x", {"wavelength_order2", "um", ""});
  std::vector<double> time(s.nt);
  for (std::size_t t = 0; t < s.nt; ++t) time[t] = 60000.0 + kIntegrationSeconds * static_cast<double>(t) / 86400.0;
  f.write_vector("time", time, "time", {"time", "d", "mid-integration time"});
  const auto i64 = [](auto v) { return static_cast<std::int64_t>(v); };
  f.set_attribute("nt", i64(s.nt));
  f.set_attribute("ny", i64(s.ny));
  f.set_attribute("nx", i64(s.nx));
  f.set_attribute("xstart1", i64(s.xstart1));
  f.set_attribute("xend1", i64(s.xend1));
  f.set_attribute("ystart1", s.ystart1);
  f.set_attribute("xstart2", i64(s.xstart2));
  f.set_attribute("xend2", i64(s.xend2));
  f.set_attribute("ystart2", s.ystart2);
  f.set_attribute("cut2", i64(s.cut2));
  f.set_attribute("nknots", s.nknots);
  f.set_attribute("mask_aperture", s.mask_aperture);
  f.set_attribute("aperture_radius", s.aperture_radius);
  std::string oot, in;  // "a b c d" lists: attributes are scalars or strings here
  for (auto v : s.out_of_event) oot += std::to_string(v) + " ";
  for (auto v : s.in_event) in += std::to_string(v) + " ";
  f.set_attribute("out_of_event", oot);
  f.set_attribute("in_event", in);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  std::string refs_dir = "/dev/shm/tessera_spectra_bench", dump;
  bool dump_only = false;
  std::vector<std::string> only, overrides;
  Scene s;
  int code = 0;
  try {
    for (int i = 1; i < argc; i += 2) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) throw tessera::ConfigError("spectra_bench: " + flag + " needs a value");
      const std::string value = argv[i + 1];
      if (flag == "--ints") s.nt = std::stoul(value);
      else if (flag == "--ny") s.ny = std::stoul(value);
      else if (flag == "--nx") s.nx = std::stoul(value);
      else if (flag == "--refs") refs_dir = value;
      else if (flag == "--steps") only = split(value);
      else if (flag == "--dump") dump = value;
      else if (flag == "--dump-only") dump = value, dump_only = true;
      else if (flag == "--set") overrides.push_back(value);
      else throw tessera::ConfigError("spectra_bench: unknown option " + flag);
    }
    if (s.ny < 128 || s.nx < 256) throw tessera::ConfigError("spectra_bench: --ny >= 128 and --nx >= 256, please");
    if (s.nt < 10) throw tessera::ConfigError("spectra_bench: --ints >= 10, please");
    s.finish();
    const Maker maker(s);
    const fs::path refs = fs::path(refs_dir) / (std::to_string(s.ny) + "x" + std::to_string(s.nx));
    if (rank == 0) {
      write_wavelength_maps(maker, s, refs);
      if (!dump.empty()) write_dump(maker, s, dump);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (dump_only) {
      MPI_Finalize();
      return 0;
    }

    tessera::Workflow wf = tessera::parse_workflow(stage_toml(s, refs, only), "spectra_bench.toml", overrides,
                                                   tessera::testing::test_registry());
    const tessera::CubeShape shape{s.nt, s.ny, s.nx, 1};
    tessera::Dataset data(shape, tessera::Partition::frames(shape, nranks), rank);
    data.add_cube({"data", "DN/s", "count rate per integration"}, tessera::ElementType::Float32);
    data.add_cube({"err", "DN/s", "1-sigma error of data"}, tessera::ElementType::Float32);
    data.add_cube({"dq", "1", "pixel data quality"}, tessera::ElementType::UInt32);
    std::vector<double> time(s.nt), number(s.nt);
    for (std::size_t t = 0; t < s.nt; ++t) {
      time[t] = 60000.0 + kIntegrationSeconds * static_cast<double>(t) / 86400.0;
      number[t] = static_cast<double>(t + 1);
    }
    data.frame_vectors()["time"] = {{"time", "d", "mid-integration time"}, time, false};
    data.frame_vectors()["integration"] = {{"integration", "1", "integration number"}, number, true};
    auto& attrs = data.attributes();
    attrs["instrument"] = std::string("NIRISS");
    attrs["exp_type"] = std::string("NIS_SOSS");
    attrs["subarray"] = std::string("SUBSTRIP256");
    attrs["nints"] = static_cast<std::int64_t>(s.nt);

    auto fill_start = std::chrono::steady_clock::now();
    {
      auto d = data.frames<float>("data");
      auto e = data.frames<float>("err");
      for (std::size_t t = d.t_begin; t < d.t_end; ++t) maker.fill(t, d.frame(t).data(), e.frame(t).data());
    }
    const double fill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();
    const std::size_t share = data.partition().local_elements(rank);  // this rank's pixels of one cube
    const double share_mb = static_cast<double>(share) * 4.0 / 1048576.0;

    tessera::RunSummary summary;
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    double cpu = -cpu_seconds();
    tessera::run_steps(wf, data, MPI_COMM_WORLD, tessera::Logger(rank, tessera::Verbosity::Quiet), &summary);
    double stage = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    cpu += cpu_seconds();
    MPI_Allreduce(MPI_IN_PLACE, &stage, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &cpu, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);  // all ranks' CPU time
    const double peak = tessera::bench::peak_rss_mb();

    // One plain memory copy of this rank's data cube, every rank at once, into the err cube
    // (no longer needed): no extra allocation, so it fits next to the largest cases.
    double copy = 1e30;
    {
      auto d = data.frames<float>("data");
      auto e = data.frames<float>("err");
      for (int rep = 0; rep < 3; ++rep) {
        MPI_Barrier(MPI_COMM_WORLD);
        const auto c0 = std::chrono::steady_clock::now();
        std::memcpy(e.base, d.base, share * sizeof(float));
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
        MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        copy = std::min(copy, seconds);
      }
    }

    const double ints = static_cast<double>(s.nt);
    if (rank == 0) {
      std::printf("NIRISS-SOSS-like rate cubes: %zu ints x %zu x %zu (data+err+dq %.2f GB), %d rank%s; "
                  "made in %.2f s (not counted)\n",
                  s.nt, s.ny, s.nx, ints * double(s.ny * s.nx) * 12 / 1e9, nranks, nranks == 1 ? "" : "s",
                  fill_seconds);
      std::printf("memory copy of this rank's data cube (%.0f MB): %.4f s\n", share_mb, copy);
      std::printf("  %-30s %9s %10s %10s %10s\n", "step", "seconds", "ms/int", "ints/s", "x memcpy");
    }
    for (std::size_t k = 0; k < summary.stages.size(); ++k) {
      double seconds = summary.stages[k].seconds;
      MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      std::string label = summary.stages[k].label;
      if (label == "transpose") {  // name the step the layout move is for
        std::size_t next = k + 1;
        while (next < summary.stages.size() && summary.stages[next].label == "transpose") ++next;
        if (next < summary.stages.size()) label = "  move for " + summary.stages[next].label;
      }
      if (rank == 0)
        std::printf("  %-30s %9.3f %10.3f %10.1f %10.2f\n", label.c_str(), seconds, 1e3 * seconds / ints,
                    ints / seconds, seconds / copy);
    }
    if (rank == 0) {
      std::printf("  %-30s %9.3f %10.3f %10.1f %10.2f\n", "stage", stage, 1e3 * stage / ints, ints / stage,
                  stage / copy);
      std::printf("CPU time of all ranks: %.3f s = %.3f ms/int (wall x ranks = %.3f s)\n", cpu, 1e3 * cpu / ints,
                  stage * nranks);
      std::printf("RESULT ranks=%d ints=%zu seconds=%.6f ms_per_int=%.6f ints_per_s=%.3f cpu_ms_per_int=%.6f\n",
                  nranks, s.nt, stage, 1e3 * stage / ints, ints / stage, 1e3 * cpu / ints);
      // A check that the stage did its work: the white-light depth against the scene's.
      const auto& vectors = data.frame_vectors();
      if (auto it = vectors.find("white_light_order1"); it != vectors.end()) {
        double in = 0, n = 0;
        for (std::int64_t t = s.in_event[0]; t < s.in_event[1]; ++t, ++n) in += it->second.values[std::size_t(t)];
        std::printf("check: white-light depth %.0f ppm (scene: ~%.0f ppm, grey part)\n", (1.0 - in / n) * 1e6,
                    0.010 * 1e6);
      }
    }
    std::vector<double> peaks(static_cast<std::size_t>(nranks)), shares(static_cast<std::size_t>(nranks));
    MPI_Gather(&peak, 1, MPI_DOUBLE, peaks.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Gather(&share_mb, 1, MPI_DOUBLE, shares.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank == 0)
      for (int r = 0; r < nranks; ++r)
        std::printf("rank %d: peak resident %.0f MB = %.2f x its data+err+dq share (%.0f MB)\n", r, peaks[r],
                    peaks[r] / (3 * shares[r]), 3 * shares[r]);
  } catch (const std::exception& e) {
    if (rank == 0) std::fprintf(stderr, "spectra_bench: %s\n", e.what());
    code = 1;
  }
  MPI_Finalize();
  return code;
}
