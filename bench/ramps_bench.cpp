// ramps_bench: the JWST detector-level chain (through ramp_fit) on ramps made in memory, in
// the shapes the issue names. Prints, per step and for the chain: wall time (slowest rank),
// group-samples per second, and the ratio to one plain memory copy of the ramp cube measured
// in the same run (this rank's share; on 2 ranks the ranks copy their halves at once); then
// each rank's peak resident memory against its share of the ramps as float32.
//
//   mpirun -n 2 ramps_bench --shape niriss|miri-lrs|miri-imaging [--ints N] [--refs DIR]
//                           [--steps jump,ramp_fit] [--set STEP.PARAM=VALUE]...
//
// The ramps are synthetic (bias, a rate field with a bright trace, Poisson-like and read noise,
// a few cosmic-ray jumps, saturation in the brightest pixels), written straight into each
// rank's frames: the chain is measured, not FITS reading. Reference files (small: one image
// or one plane per group) are written once to --refs. bench/ramps_bench.sh runs all shapes on
// 1 and 2 ranks.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "steps/common/jwst_dq.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/logger.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"

namespace {

namespace fs = std::filesystem;
namespace dq = tessera::jwst::dq;

struct Shape {
  std::string name;
  std::size_t ints, groups, ny, nx;
  double tgroup;
  bool miri;
};

Shape shape_named(const std::string& name) {
  if (name == "niriss") return {"NIRISS-SOSS-like", 200, 6, 256, 2048, 5.494, false};
  if (name == "miri-lrs") return {"MIRI-LRS-like", 1000, 40, 416, 72, 0.15904, true};
  if (name == "miri-imaging") return {"MIRI-imaging-TSO segment", 50, 45, 512, 512, 2.775, true};
  throw tessera::ConfigError("--shape: expected niriss, miri-lrs or miri-imaging, not '" + name + "'");
}

constexpr float kBias = 12000.0f, kSaturation = 60000.0f, kGain = 2.0f, kReadNoise = 8.0f, kDarkRate = 0.02f;

bool is_reference(const Shape& s, std::size_t y, std::size_t x) {
  if (s.miri) return x < 4;
  return x < 4 || x >= s.nx - 4 || y >= s.ny - 4;
}

/// Count rate (DN/s) at a pixel: a faint sky plus a bright trace whose core saturates.
float rate_at(const Shape& s, std::size_t y, std::size_t x) {
  if (is_reference(s, y, x)) return 0.0f;
  const double along = s.miri ? static_cast<double>(x) - 0.5 * static_cast<double>(s.nx)
                              : static_cast<double>(y) - 0.4 * static_cast<double>(s.ny);
  const double core = std::exp(-0.5 * along * along / 9.0);
  const double full_well_rate = (kSaturation - kBias) / (s.tgroup * static_cast<double>(s.groups));
  return static_cast<float>(2.0 + 1.3 * full_well_rate * core);
}

/// Writes the reference files the chain reads (scalars would do, but files are what users have).
void write_references(const Shape& s, const fs::path& dir) {
  fs::create_directories(dir);
  const long ny = static_cast<long>(s.ny), nx = static_cast<long>(s.nx), ng = static_cast<long>(s.groups);
  const std::size_t n = s.ny * s.nx;
  std::vector<std::uint32_t> mask(n, 0);
  for (std::size_t y = 0; y < s.ny; ++y)
    for (std::size_t x = 0; x < s.nx; ++x)
      if (is_reference(s, y, x)) mask[y * s.nx + x] = dq::reference_pixel;
  auto write = [&](const std::string& file, auto&& body) {
    auto f = tessera::fits::File::create((dir / (file + ".partial")).string());
    body(f);
    f.close();
    fs::rename(dir / (file + ".partial"), dir / file);
  };
  write("mask.fits", [&](auto& f) { f.append_image_uint32("DQ", mask, {nx, ny}); });
  write("saturation.fits", [&](auto& f) { f.append_image_float("SCI", std::vector<float>(n, kSaturation), {nx, ny}); });
  write("superbias.fits", [&](auto& f) { f.append_image_float("SCI", std::vector<float>(n, kBias), {nx, ny}); });
  write("gain.fits", [&](auto& f) { f.append_image_float("SCI", std::vector<float>(n, kGain), {nx, ny}); });
  write("readnoise.fits", [&](auto& f) { f.append_image_float("SCI", std::vector<float>(n, kReadNoise), {nx, ny}); });
  write("linearity.fits", [&](auto& f) {
    std::vector<float> coeffs(3 * n, 0.0f);
    std::fill(coeffs.begin() + static_cast<long>(n), coeffs.begin() + static_cast<long>(2 * n), 1.0f);
    std::fill(coeffs.begin() + static_cast<long>(2 * n), coeffs.end(), 1e-7f);
    f.append_image_float("COEFFS", coeffs, {nx, ny, 3});
  });
  write("dark.fits", [&](auto& f) {
    std::vector<float> dark(static_cast<std::size_t>(ng) * n);
    for (long g = 0; g < ng; ++g)
      std::fill(dark.begin() + g * static_cast<long>(n), dark.begin() + (g + 1) * static_cast<long>(n),
                kDarkRate * static_cast<float>(s.tgroup * static_cast<double>(g + 1)));
    f.append_image_float("SCI", dark, {nx, ny, ng});
  });
}

/// Fills this rank's integrations: bias + accumulated charge + read noise + rare jumps, clipped.
void fill_ramps(tessera::Dataset& data, const Shape& s) {
  auto ramp = data.frames<float>("ramp");
  std::vector<float> rate(s.ny * s.nx);
  for (std::size_t y = 0; y < s.ny; ++y)
    for (std::size_t x = 0; x < s.nx; ++x) rate[y * s.nx + x] = rate_at(s, y, x);
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    std::uint64_t state = 0x9e3779b97f4a7c15ull * (t + 1);
    auto uniform = [&] {  // xorshift64*: cheap and good enough for benchmark noise
      state ^= state >> 12;
      state ^= state << 25;
      state ^= state >> 27;
      return static_cast<float>((state * 2685821657736338717ull) >> 40) * (1.0f / 16777216.0f);
    };
    for (std::size_t g = 0; g < s.groups; ++g) {
      float* out = ramp.group(t, g).data();
      const float elapsed = static_cast<float>(s.tgroup * static_cast<double>(g + 1));
      for (std::size_t i = 0; i < s.ny * s.nx; ++i) {
        const float noise = kReadNoise * 3.4641f * (uniform() - 0.5f);  // uniform with the read noise's sigma
        float value = kBias + (rate[i] + kDarkRate) * elapsed + noise;
        if (uniform() < 2e-5f) value += 2000.0f;  // a cosmic ray (this read only: cheap stand-in)
        out[i] = std::min(value, 65535.0f);
      }
    }
  }
}

std::string chain_toml(const Shape& s, const fs::path& refs, const std::vector<std::string>& only) {
  const std::string r = refs.string() + "/";
  std::vector<std::pair<std::string, std::string>> steps;
  if (s.miri) steps.push_back({"group_scale", ""});
  steps.push_back({"dq_init", "mask = \"" + r + "mask.fits\"\n"});
  steps.push_back({"saturation", "saturation = \"" + r + "saturation.fits\"\n"});
  if (!s.miri) steps.push_back({"superbias", "superbias = \"" + r + "superbias.fits\"\n"});
  steps.push_back({s.miri ? "refpix_miri" : "refpix", ""});
  steps.push_back({"linearity", "linearity = \"" + r + "linearity.fits\"\n"});
  steps.push_back({"dark_current", "dark = \"" + r + "dark.fits\"\n"});
  if (!s.miri) steps.push_back({"one_over_f", ""});
  const std::string noise = "gain = \"" + r + "gain.fits\"\nread_noise = \"" + r + "readnoise.fits\"\n";
  steps.push_back({"jump", noise});
  steps.push_back({"ramp_fit", noise});
  steps.push_back({"gain_scale", "gain = \"" + r + "gain.fits\"\n"});
  std::ostringstream text;
  text << "[workflow]\nname = \"ramps_bench\"\n[input]\nkind = \"jwst_uncal\"\npath = \"" << r
       << "\"\n[output]\npath = \"/dev/null\"\nsave = false\ncopy_workflow = false\n";
  for (const auto& [kind, params] : steps) {
    if (!only.empty() && std::find(only.begin(), only.end(), kind) == only.end()) continue;
    text << "\n[[step]]\nid = \"" << kind << "\"\nuses = \"" << kind << "\"\n" << params;
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

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  std::string shape_name = "niriss", refs_dir = "/dev/shm/tessera_ramps_bench";
  std::vector<std::string> only, overrides;
  std::size_t ints = 0;
  int code = 0;
  try {
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string flag = argv[i], value = argv[i + 1];
      if (flag == "--shape") shape_name = value;
      else if (flag == "--ints") ints = std::stoul(value);
      else if (flag == "--refs") refs_dir = value;
      else if (flag == "--steps") only = split(value);
      else if (flag == "--set") overrides.push_back(value);
      else throw tessera::ConfigError("ramps_bench: unknown option " + flag);
    }
    Shape s = shape_named(shape_name);
    if (ints) s.ints = ints;
    const fs::path refs = fs::path(refs_dir) / (shape_name + "_" + std::to_string(s.groups));
    if (rank == 0 && !fs::exists(refs / "dark.fits")) write_references(s, refs);
    MPI_Barrier(MPI_COMM_WORLD);

    tessera::Workflow wf = tessera::parse_workflow(chain_toml(s, refs, only), "ramps_bench.toml", overrides,
                                                   tessera::builtin_registry());
    const tessera::CubeShape shape{s.ints, s.ny, s.nx, s.groups};
    tessera::Dataset data(shape, tessera::Partition::frames(shape, nranks), rank);
    data.add_cube({"ramp", "DN", "up-the-ramp reads"}, tessera::ElementType::Float32, 0.0, true);
    data.add_cube({"groupdq", "1", "group data quality"}, tessera::ElementType::UInt8, 0.0, true);
    data.add_cube({"dq", "1", "pixel data quality"}, tessera::ElementType::UInt32);
    std::vector<double> time(s.ints);
    for (std::size_t t = 0; t < s.ints; ++t)
      time[t] = 60000.0 + s.tgroup * static_cast<double>(s.groups * t) / 86400.0;
    data.frame_vectors()["time"] = {{"time", "d", "mid-integration time"}, time, false};
    auto& attrs = data.attributes();
    attrs["tgroup"] = s.tgroup;
    attrs["tframe"] = s.tgroup;
    attrs["nframes"] = std::int64_t{1};
    attrs["groupgap"] = std::int64_t{0};
    attrs["ngroups"] = static_cast<std::int64_t>(s.groups);
    attrs["nints"] = static_cast<std::int64_t>(s.ints);
    attrs["substrt1"] = std::int64_t{1};
    attrs["substrt2"] = std::int64_t{1};
    attrs["instrument"] = std::string(s.miri ? "MIRI" : "NIRISS");
    fill_ramps(data, s);

    const std::size_t share = data.partition().local_elements(rank) * s.groups;  // this rank's ramp samples
    const double share_mb = static_cast<double>(share) * 4.0 / 1048576.0;

    tessera::RunSummary summary;
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = std::chrono::steady_clock::now();
    tessera::run_steps(wf, data, MPI_COMM_WORLD, tessera::Logger(rank, tessera::Verbosity::Quiet), &summary);
    double chain = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MPI_Allreduce(MPI_IN_PLACE, &chain, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

    // Peak memory before the copy below allocates its own two buffers.
    const double peak = tessera::bench::peak_rss_mb();
    const double copy = tessera::bench::memcpy_seconds(share);
    const double samples = static_cast<double>(s.ints * s.groups * s.ny * s.nx);
    if (rank == 0) {
      std::printf("%s: %zu ints x %zu groups x %zu x %zu = %.3g group-samples (%.2f GB as float32), %d rank%s\n",
                  s.name.c_str(), s.ints, s.groups, s.ny, s.nx, samples, samples * 4 / 1e9, nranks,
                  nranks == 1 ? "" : "s");
      std::printf("memory copy of this rank's ramps (%.0f MB): %.3f s\n", share_mb, copy);
      std::printf("  %-16s %9s %14s %12s\n", "step", "seconds", "Msamples/s", "x memcpy");
    }
    for (const auto& stage : summary.stages) {
      double seconds = stage.seconds;
      MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (rank == 0)
        std::printf("  %-16s %9.3f %14.1f %12.2f\n", stage.label.c_str(), seconds, samples / seconds / 1e6,
                    seconds / copy);
    }
    if (rank == 0)
      std::printf("  %-16s %9.3f %14.1f %12.2f\n", "chain", chain, samples / chain / 1e6, chain / copy);
    std::vector<double> peaks(static_cast<std::size_t>(nranks)), shares(static_cast<std::size_t>(nranks));
    MPI_Gather(&peak, 1, MPI_DOUBLE, peaks.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Gather(&share_mb, 1, MPI_DOUBLE, shares.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank == 0)
      for (int r = 0; r < nranks; ++r)
        std::printf("rank %d: peak resident %.0f MB = %.2f x its ramp share (%.0f MB as float32); "
                    "above 2.5 x share: %.0f MB\n",
                    r, peaks[r], peaks[r] / shares[r], shares[r], std::max(0.0, peaks[r] - 2.5 * shares[r]));
  } catch (const std::exception& e) {
    if (rank == 0) std::fprintf(stderr, "ramps_bench: %s\n", e.what());
    code = 1;
  }
  MPI_Finalize();
  return code;
}
