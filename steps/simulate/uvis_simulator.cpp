#include "steps/simulate/uvis_simulator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <vector>

#include "steps/simulate/xoshiro.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"

namespace tessera::sim {
namespace {

namespace fs = std::filesystem;

constexpr double kMinutesPerDay = 24.0 * 60.0;
constexpr double kOrbitMinutes = 96.0;       // HST orbital period
constexpr double kVisibilityMinutes = 50.0;  // target visible per orbit (the rest is Earth occultation)
constexpr double kVisitStartMjd = 60123.25;
constexpr double kZerothSigma = 1.7;  // px, 0th order core
constexpr double kTraceSigma = 1.5;   // px, cross-dispersion profile of the traces
constexpr double kStarSigma = kZerothSigma;  // px, field stars' 0th orders: the same optics
constexpr std::uint16_t kDqHot = 16;          // WFC3 "hot pixel" (from the bad-pixel table)
constexpr std::uint16_t kDqSaturated = 256;   // WFC3 "full-well saturation"
// Stream numbers for generators that do not belong to one frame.
constexpr std::uint64_t kHotStream = 0x8000000000000001ULL;
constexpr std::uint64_t kDirectStream = 0x8000000000000002ULL;

/// The simulator's generator: xoshiro256** (steps/simulate/xoshiro.hpp) with Box–Muller
/// normal and PTRS Poisson deviates.
class Rng : public Xoshiro256 {
 public:
  /// An independent stream for (seed, stream): both go through splitmix64 before use.
  Rng(std::uint64_t seed, std::uint64_t stream) : Xoshiro256(start_state(seed, stream)) {}

  /// Standard normal (Box–Muller, the second value kept for the next call).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u = 1.0 - uniform();  // (0, 1]: log(u) is finite
    const double r = std::sqrt(-2.0 * std::log(u));
    const double phi = 2.0 * std::numbers::pi * uniform();
    spare_ = r * std::sin(phi);
    has_spare_ = true;
    return r * std::cos(phi);
  }

  /// Poisson deviate: inversion for small means, else Hörmann's PTRS (transformed rejection
  /// with squeeze; W. Hörmann 1993, Insurance: Mathematics and Economics 12, 39).
  double poisson(double mean) {
    if (!(mean > 0)) return 0;
    if (mean < 10) {
      double p = std::exp(-mean), cumulative = p, k = 0;
      const double u = uniform();
      while (u > cumulative && k < 200) {
        k += 1;
        p *= mean / k;
        cumulative += p;
      }
      return k;
    }
    const double slam = std::sqrt(mean), loglam = std::log(mean);
    const double b = 0.931 + 2.53 * slam;
    const double a = -0.059 + 0.02483 * b;
    const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
      const double u = uniform() - 0.5;
      const double v = uniform();
      const double us = 0.5 - std::fabs(u);
      const double k = std::floor((2 * a / us + b) * u + mean + 0.43);
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (std::log(v) + std::log(inv_alpha) - std::log(a / (us * us) + b) <= -mean + k * loglam - std::lgamma(k + 1))
        return k;
    }
  }

 private:
  static std::uint64_t start_state(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t mix = seed;
    return splitmix64(mix) ^ (stream * 0xD1B54A32D192ED03ULL + 0x2545F4914F6CDD1DULL);
  }
  double spare_ = 0;
  bool has_spare_ = false;
};

/// When each exposure happens: frames fill orbits in contiguous, nearly equal shares.
struct Timing {
  std::vector<double> start, end, mid;  // MJD
  std::vector<std::size_t> orbit, frame_in_orbit;
};

Timing make_timing(const UvisSimOptions& o) {
  Timing t;
  const double cadence_minutes = (o.exptime + o.overhead) / 60.0;
  for (std::size_t f = 0; f < o.frames; ++f) {
    const std::size_t orbit = f * o.orbits / o.frames;
    const std::size_t first = (orbit * o.frames + o.orbits - 1) / o.orbits;  // first frame with this orbit
    const std::size_t in_orbit = f - first;
    const double start = kVisitStartMjd + (static_cast<double>(orbit) * kOrbitMinutes +
                                           static_cast<double>(in_orbit) * cadence_minutes) / kMinutesPerDay;
    t.start.push_back(start);
    t.end.push_back(start + o.exptime / 86400.0);
    t.mid.push_back(0.5 * (t.start.back() + t.end.back()));
    t.orbit.push_back(orbit);
    t.frame_in_orbit.push_back(in_orbit);
  }
  return t;
}

/// Trapezoid transit (no limb darkening): depth `depth` between second and third contact,
/// linear ingress and egress of length `ingress`, total duration `duration` (days).
struct Transit {
  double mid = 0, duration = 0, ingress = 0, depth = 0;
  double flux(double t) const {
    const double inside = 0.5 * duration - std::fabs(t - mid);  // time to the nearest contact 1/4
    return 1.0 - depth * std::clamp(inside / ingress, 0.0, 1.0);
  }
};

/// Where the star's light lands (pixels), for a frame of ny × nx.
struct Geometry {
  double x0 = 0, y0 = 0;      // 0th order centre
  double gap = 0;             // px between the 0th order and where each trace starts
  double length = 0;          // px of the +1 order on the detector; sets the spectrum's scale
  double bend1 = 0, bend2 = 0;  // trace centre y = y0 + bend1·d + bend2·d², d = (x − x0) / nx
  double nx = 0;

  explicit Geometry(const UvisSimOptions& o) : nx(static_cast<double>(o.nx)) {
    const double ny = static_cast<double>(o.ny);
    x0 = std::round(0.35 * nx) + 0.3;  // off the pixel centre, as a real star would be
    y0 = std::round(0.5 * ny) - 0.2;
    gap = 12.0 + 0.02 * nx;
    length = nx - 1.0 - (x0 + gap);
    bend1 = 0.04 * ny;
    bend2 = 0.06 * ny;
  }
  double trace_y(double x) const {
    const double d = (x - x0) / nx;
    return y0 + bend1 * d + bend2 * d * d;
  }
  /// Smooth spectrum along a trace, 0 at its start, peak 1 at 30% of the +1 length.
  double spectrum(double distance) const {
    const double u = (distance - gap) / length;
    if (u <= 0) return 0;
    return (u / 0.3) * std::exp(1.0 - u / 0.3);
  }
};

/// A field star's 0th order: where it is at zero pointing shift, and its central electrons.
struct FieldStar {
  double x = 0, y = 0, peak = 0;
};

/// Field stars at fixed fractions of the frame (the same for every seed, so tests can find
/// them), off the pixel centres, above and below the band the traces and the 0th order occupy
/// (y0 − 0.06·ny to y0 + 0.06·ny), unsaturated: a few thousand electrons at the centre.
std::vector<FieldStar> field_stars(const UvisSimOptions& o) {
  struct Place {
    double fx, fy, dx, dy, peak;
  };
  static constexpr Place kPlaces[] = {
      {0.10, 0.20, 0.37, -0.21, 3000}, {0.56, 0.17, -0.18, 0.33, 4500}, {0.85, 0.26, 0.06, 0.44, 2500},
      {0.28, 0.80, -0.41, 0.12, 5000}, {0.70, 0.78, 0.25, -0.36, 3500}, {0.93, 0.85, -0.07, 0.29, 2000},
      {0.45, 0.88, 0.48, -0.04, 4000}, {0.05, 0.70, -0.29, -0.47, 3000}};
  std::vector<FieldStar> stars;
  for (std::size_t i = 0; i < o.stars && i < std::size(kPlaces); ++i) {
    const Place& p = kPlaces[i];
    stars.push_back({std::round(p.fx * static_cast<double>(o.nx)) + p.dx,
                     std::round(p.fy * static_cast<double>(o.ny)) + p.dy, p.peak});
  }
  return stars;
}

/// Noise-free sky pattern with mean exactly 1: gradients along both axes and a broad
/// hump, loosely like the G280 sky (Pagul et al. 2023).
std::vector<double> sky_pattern(std::size_t ny, std::size_t nx) {
  std::vector<double> p(ny * nx);
  double sum = 0;
  const double cy = 0.5 * static_cast<double>(ny - 1), cx = 0.5 * static_cast<double>(nx - 1);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      const double dx = (static_cast<double>(x) - cx) / static_cast<double>(nx);
      const double dy = (static_cast<double>(y) - cy) / static_cast<double>(ny);
      const double v = 1.0 + 0.25 * dx + 0.10 * dy + 0.15 * std::cos(std::numbers::pi * dx);
      p[y * nx + x] = v;
      sum += v;
    }
  const double mean = sum / static_cast<double>(p.size());
  for (double& v : p) v /= mean;
  return p;
}

struct HotPixel {
  std::size_t y = 0, x = 0;
  double rate = 0;  // e-/s
  bool flagged = false;
};

std::vector<HotPixel> make_hot_pixels(const UvisSimOptions& o) {
  Rng rng(o.seed, kHotStream);
  const std::size_t pixels = o.ny * o.nx;
  const auto count = static_cast<std::size_t>(std::llround(o.hot_fraction * static_cast<double>(pixels)));
  std::vector<bool> taken(pixels, false);
  std::vector<HotPixel> hot;
  while (hot.size() < std::min(count, pixels)) {
    const std::size_t i = rng.below(pixels);
    if (taken[i]) continue;
    taken[i] = true;
    // Log-uniform 0.5–20 e-/s: tens to about a thousand electrons in a typical exposure.
    const double rate = 0.5 * std::exp(rng.uniform() * std::log(40.0));
    hot.push_back({i / o.nx, i % o.nx, rate, rng.uniform() < 0.5});
  }
  std::sort(hot.begin(), hot.end(),
            [](const HotPixel& a, const HotPixel& b) { return a.y != b.y ? a.y < b.y : a.x < b.x; });
  return hot;
}

/// One cosmic-ray pixel of one frame.
struct CrPixel {
  std::size_t frame = 0, index = 0;  // index = y * nx + x
  double charge = 0;                 // e- added after full-well clipping
};

/// Random cosmic-ray hits of one frame: 1–3 adjacent pixels sharing a log-uniform
/// 50–5000 e- charge. Returns (pixel index, raw charge), duplicates merged.
std::vector<std::pair<std::size_t, double>> draw_cosmic_rays(Rng& rng, const UvisSimOptions& o, std::size_t& hits) {
  const double expected = o.cr_rate * static_cast<double>(o.ny * o.nx);
  hits = static_cast<std::size_t>(rng.poisson(expected));
  std::vector<std::pair<std::size_t, double>> out;
  auto deposit = [&](std::size_t index, double charge) {
    for (auto& [i, q] : out)
      if (i == index) {
        q += charge;
        return;
      }
    out.emplace_back(index, charge);
  };
  for (std::size_t h = 0; h < hits; ++h) {
    long y = static_cast<long>(rng.below(o.ny)), x = static_cast<long>(rng.below(o.nx));
    const std::size_t length = 1 + rng.below(3);
    const double total = 50.0 * std::exp(rng.uniform() * std::log(100.0));
    const long dy = static_cast<long>(rng.below(3)) - 1, dx = static_cast<long>(rng.below(3)) - 1;
    std::vector<double> weights(length);
    double sum = 0;
    for (double& w : weights) sum += (w = 0.3 + rng.uniform());
    for (std::size_t k = 0; k < length; ++k) {
      if (y >= 0 && x >= 0 && y < static_cast<long>(o.ny) && x < static_cast<long>(o.nx))
        deposit(static_cast<std::size_t>(y) * o.nx + static_cast<std::size_t>(x), total * weights[k] / sum);
      y += dy;  // a short straight track; (0, 0) keeps adding to one pixel
      x += dx;
    }
  }
  return out;
}

/// Adds a 2D Gaussian of `peak` centred at (xc, yc) to the ny × nx image.
void add_gaussian(std::vector<double>& image, std::size_t ny, std::size_t nx, double xc, double yc, double peak,
                  double sigma) {
  const double reach = 8 * sigma;
  const long x_lo = std::max(0L, static_cast<long>(std::floor(xc - reach)));
  const long x_hi = std::min(static_cast<long>(nx) - 1, static_cast<long>(std::ceil(xc + reach)));
  const long y_lo = std::max(0L, static_cast<long>(std::floor(yc - reach)));
  const long y_hi = std::min(static_cast<long>(ny) - 1, static_cast<long>(std::ceil(yc + reach)));
  if (x_lo > x_hi || y_lo > y_hi) return;
  std::vector<double> gx(static_cast<std::size_t>(x_hi - x_lo + 1));  // separable: one exp per row and column
  for (long x = x_lo; x <= x_hi; ++x) {
    const double d = (static_cast<double>(x) - xc) / sigma;
    gx[static_cast<std::size_t>(x - x_lo)] = std::exp(-0.5 * d * d);
  }
  for (long y = y_lo; y <= y_hi; ++y) {
    const double d = (static_cast<double>(y) - yc) / sigma;
    const double gy = peak * std::exp(-0.5 * d * d);
    double* row = image.data() + static_cast<std::size_t>(y) * nx;
    for (long x = x_lo; x <= x_hi; ++x) row[x] += gy * gx[static_cast<std::size_t>(x - x_lo)];
  }
}

/// Expected electrons of one frame without noise, cosmic rays or hot pixels: sky plus the
/// star (0th order and ±1 traces) scaled by `flux` and the field stars (not scaled), all
/// shifted by (sx, sy) pixels.
void render_scene(std::vector<double>& image, const UvisSimOptions& o, const Geometry& g,
                  const std::vector<FieldStar>& stars, const std::vector<double>& pattern, double sky, double flux,
                  double sx, double sy) {
  for (std::size_t i = 0; i < image.size(); ++i) image[i] = sky * pattern[i];
  add_gaussian(image, o.ny, o.nx, g.x0 + sx, g.y0 + sy, flux * o.zeroth_peak, kZerothSigma);
  for (const FieldStar& s : stars) add_gaussian(image, o.ny, o.nx, s.x + sx, s.y + sy, s.peak, kStarSigma);
  const double reach = 6 * kTraceSigma;
  for (std::size_t x = 0; x < o.nx; ++x) {
    const double xs = static_cast<double>(x) - sx;  // the scene position seen by this column
    const double distance = std::fabs(xs - g.x0);
    const double order_scale = xs > g.x0 ? 1.0 : 0.5;  // the -1 order is fainter
    const double amplitude = flux * o.trace_peak * order_scale * g.spectrum(distance);
    if (amplitude <= 0) continue;
    const double yc = g.trace_y(xs) + sy;
    const long y_lo = std::max(0L, static_cast<long>(std::floor(yc - reach)));
    const long y_hi = std::min(static_cast<long>(o.ny) - 1, static_cast<long>(std::ceil(yc + reach)));
    for (long y = y_lo; y <= y_hi; ++y) {
      const double d = (static_cast<double>(y) - yc) / kTraceSigma;
      image[static_cast<std::size_t>(y) * o.nx + x] += amplitude * std::exp(-0.5 * d * d);
    }
  }
}

/// Writes one exposure in calwf3 flt form.
void write_flt(const std::string& path, double start, double end, double exptime, const std::string& filter,
               const std::vector<float>& sci, const std::vector<float>& err, const std::vector<std::uint16_t>& dq,
               std::size_t ny, std::size_t nx) {
  fits::File file = fits::File::create(path);
  file.write_key("ROOTNAME", fs::path(path).stem().string().substr(0, 9), "simulated exposure");
  file.write_key("TARGNAME", std::string("SIM-UVIS"), "target (simulated by tessera)");
  file.write_key("INSTRUME", std::string("WFC3"), "instrument");
  file.write_key("DETECTOR", std::string("UVIS"), "detector");
  file.write_key("FILTER", filter, "element selected");
  file.write_key("EXPSTART", start, "exposure start time (MJD)");
  file.write_key("EXPEND", end, "exposure end time (MJD)");
  file.write_key("EXPTIME", exptime, "exposure duration (seconds)");
  const long y = static_cast<long>(ny), x = static_cast<long>(nx);
  file.append_image_float("SCI", sci, y, x);
  file.write_key("EXTVER", 1, "extension version");
  file.write_key("BUNIT", std::string("ELECTRONS"), "units of the data");
  file.append_image_float("ERR", err, y, x);
  file.write_key("EXTVER", 1, "extension version");
  file.write_key("BUNIT", std::string("ELECTRONS"), "units of the data");
  file.append_image_int16("DQ", dq, y, x);
  file.write_key("EXTVER", 1, "extension version");
  file.write_key("BUNIT", std::string("UNITLESS"), "bitwise data quality flags");
  file.close();
}

/// Removes *_flt.fits left in `dir` by an earlier run, so that a smaller visit is not mixed
/// with old frames, and makes sure `dir` exists.
void prepare_directory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create the directory: " + ec.message());
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().ends_with("_flt.fits")) fs::remove(entry.path(), ec);
  if (ec) throw IoError(dir.string() + ": cannot clear old frames: " + ec.message());
}

void check_options(const UvisSimOptions& o) {
  auto bad = [](const std::string& what) { throw ConfigError("simulate uvis: " + what); };
  if (o.out_dir.empty()) bad("no output directory");
  if (o.frames == 0) bad("frames must be at least 1");
  if (o.ny < 16 || o.nx < 64) bad("frames must be at least 16 x 64 pixels (ny x nx)");
  if (o.orbits == 0 || o.orbits > o.frames) bad("orbits must be between 1 and the number of frames");
  if (!(o.exptime > 0) || !(o.overhead >= 0)) bad("exptime must be > 0 and overhead >= 0");
  const std::size_t per_orbit = (o.frames + o.orbits - 1) / o.orbits;
  const double span = (static_cast<double>(per_orbit - 1) * (o.exptime + o.overhead) + o.exptime) / 60.0;
  if (span > kVisibilityMinutes) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "%zu frames per orbit take %.0f min, but HST sees the target about %.0f min per orbit: "
                  "use more orbits, fewer frames or a shorter exptime",
                  per_orbit, span, kVisibilityMinutes);
    bad(text);
  }
  if (o.stars > 8) bad("at most 8 field stars (stars)");
  if (o.sky < 0 || o.read_noise < 0 || o.cr_rate < 0 || o.hot_fraction < 0 || o.hot_fraction > 1 ||
      o.transit_depth < 0 || o.transit_depth >= 1 || !(o.full_well > 0))
    bad("sky, read noise, rates and depth must be non-negative (hot fraction and depth below 1)");
}

/// The transit is centred on the middle orbit and lasts 1.2 orbital periods, so with 3 or
/// more orbits there is out-of-transit baseline on both sides, as HST programmes plan it.
Transit make_transit(const UvisSimOptions& o, const Timing& timing) {
  const std::size_t mid_orbit = o.orbits / 2;
  double first = 0, last = 0;
  bool seen = false;
  for (std::size_t f = 0; f < o.frames; ++f)
    if (timing.orbit[f] == mid_orbit) {
      if (!seen) first = timing.start[f];
      last = timing.end[f];
      seen = true;
    }
  Transit transit;
  transit.mid = 0.5 * (first + last);
  transit.duration = 1.2 * kOrbitMinutes / kMinutesPerDay;
  transit.ingress = 0.12 * transit.duration;
  transit.depth = o.transit_depth;
  return transit;
}

/// What changes from frame to frame, as written to truth.h5.
struct FrameTruth {
  std::vector<double> background, shift_x, shift_y, flux;
  std::vector<CrPixel> cosmic_rays;
};

/// The sky's spatial pattern (mean 1) as a sky image like Pagul et al. (2023)'s G280 sky:
/// a primary HDU with no data, then one float32 image extension "SCI".
void write_sky_image(const UvisSimOptions& o, const std::vector<double>& pattern) {
  std::vector<float> values(pattern.begin(), pattern.end());
  fits::File file = fits::File::create((fs::path(o.out_dir) / "sky" / "g280_sky.fits").string());
  file.write_key("TELESCOP", std::string("HST"), "simulated by tessera");
  file.write_key("FILTER", std::string("G280"), "element selected");
  file.append_image_float("SCI", values, static_cast<long>(o.ny), static_cast<long>(o.nx));
  file.write_key("BUNIT", std::string("UNITLESS"), "sky pattern normalised to mean 1");
  file.close();
}

/// The undispersed star where the 0th order falls, taken 10 min before the first exposure,
/// with the field stars as much fainter than it as in the spectral frames.
void write_direct_image(const UvisSimOptions& o, const Geometry& geometry, const std::vector<FieldStar>& stars,
                        const std::vector<double>& pattern, double visit_start) {
  Rng rng(o.seed, kDirectStream);
  const std::size_t pixels = o.ny * o.nx;
  const double exptime = 10;
  std::vector<double> expected(pixels);
  for (std::size_t i = 0; i < pixels; ++i) expected[i] = 0.1 * o.sky * pattern[i];
  const double target_peak = 0.5 * o.full_well;
  add_gaussian(expected, o.ny, o.nx, geometry.x0, geometry.y0, target_peak, kZerothSigma);
  for (const FieldStar& s : stars)
    add_gaussian(expected, o.ny, o.nx, s.x, s.y, s.peak * target_peak / o.zeroth_peak, kStarSigma);
  std::vector<float> sci(pixels), err(pixels);
  for (std::size_t i = 0; i < pixels; ++i) {
    sci[i] = static_cast<float>(rng.poisson(expected[i]) + o.read_noise * rng.normal());
    err[i] = static_cast<float>(std::sqrt(expected[i] + o.read_noise * o.read_noise));
  }
  const double start = visit_start - 10.0 / kMinutesPerDay;
  write_flt((fs::path(o.out_dir) / "directimages" / "or00di000_flt.fits").string(), start, start + exptime / 86400.0,
            exptime, "F200LP", sci, err, std::vector<std::uint16_t>(pixels, 0), o.ny, o.nx);
}

void write_truth(const UvisSimOptions& o, const Timing& timing, const FrameTruth& frames,
                 const std::vector<HotPixel>& hot, const std::vector<FieldStar>& stars,
                 const std::vector<double>& pattern, const Transit& transit, const Geometry& geometry) {
  h5::File truth = h5::File::create((fs::path(o.out_dir) / "truth.h5").string());
  truth.write_vector("time", timing.mid, "time", {"time", "d", "mid-exposure time (MJD)"});
  const std::vector<std::int64_t> orbit(timing.orbit.begin(), timing.orbit.end());
  truth.write_vector("orbit", orbit, "time", {"orbit", "1", "HST orbit (0-based)"});
  truth.write_vector("background", frames.background, "time", {"background", "electron", "mean sky per pixel"});
  truth.write_vector("shift_x", frames.shift_x, "time", {"shift_x", "pixel", "scene shift along x (dispersion)"});
  truth.write_vector("shift_y", frames.shift_y, "time", {"shift_y", "pixel", "scene shift along y"});
  truth.write_vector("flux", frames.flux, "time", {"flux", "1", "stellar flux relative to out of transit"});

  std::vector<std::int64_t> cr_frame, cr_y, cr_x;
  std::vector<double> cr_charge;
  for (const CrPixel& c : frames.cosmic_rays) {
    cr_frame.push_back(static_cast<std::int64_t>(c.frame));
    cr_y.push_back(static_cast<std::int64_t>(c.index / o.nx));
    cr_x.push_back(static_cast<std::int64_t>(c.index % o.nx));
    cr_charge.push_back(c.charge);
  }
  truth.write_vector("cr_frame", cr_frame, "cosmic_ray", {"cr_frame", "1", "frame (file in time order) of the hit"});
  truth.write_vector("cr_y", cr_y, "cosmic_ray", {"cr_y", "pixel", "row of the hit pixel"});
  truth.write_vector("cr_x", cr_x, "cosmic_ray", {"cr_x", "pixel", "column of the hit pixel"});
  truth.write_vector("cr_charge", cr_charge, "cosmic_ray",
                     {"cr_charge", "electron", "charge added to the pixel (after full-well clipping)"});

  std::vector<std::int64_t> hot_y, hot_x, hot_flagged;
  std::vector<double> hot_rate;
  for (const HotPixel& h : hot) {
    hot_y.push_back(static_cast<std::int64_t>(h.y));
    hot_x.push_back(static_cast<std::int64_t>(h.x));
    hot_rate.push_back(h.rate);
    hot_flagged.push_back(h.flagged ? 1 : 0);
  }
  truth.write_vector("hot_y", hot_y, "hot_pixel", {"hot_y", "pixel", "row of the hot pixel"});
  truth.write_vector("hot_x", hot_x, "hot_pixel", {"hot_x", "pixel", "column of the hot pixel"});
  truth.write_vector("hot_rate", hot_rate, "hot_pixel", {"hot_rate", "electron/s", "dark rate of the hot pixel"});
  truth.write_vector("hot_flagged", hot_flagged, "hot_pixel", {"hot_flagged", "1", "1 if flagged 16 in DQ"});

  std::vector<double> star_x, star_y, star_peak;
  for (const FieldStar& s : stars) {
    star_x.push_back(s.x);
    star_y.push_back(s.y);
    star_peak.push_back(s.peak);
  }
  truth.write_vector("star_x", star_x, "star",
                     {"star_x", "pixel", "field star centre column at zero shift (frame f: plus shift_x[f])"});
  truth.write_vector("star_y", star_y, "star",
                     {"star_y", "pixel", "field star centre row at zero shift (frame f: plus shift_y[f])"});
  truth.write_vector("star_peak", star_peak, "star",
                     {"star_peak", "electron", "field star electrons at its centre in a spectral frame"});

  double mean_sky = 0;
  for (double b : frames.background) mean_sky += b / static_cast<double>(frames.background.size());
  std::vector<float> sky_image(pattern.size());
  for (std::size_t i = 0; i < pattern.size(); ++i) sky_image[i] = static_cast<float>(mean_sky * pattern[i]);
  truth.write_image("background_image", sky_image, o.ny, o.nx, "y", "x",
                    {"background_image", "electron",
                     "noise-free sky, mean over frames (frame f: times background[f] / their mean)"});

  truth.set_attribute("transit_model", std::string("trapezoid"));
  truth.set_attribute("transit_depth", o.transit_depth);
  truth.set_attribute("transit_mid", transit.mid);
  truth.set_attribute("transit_duration", transit.duration);
  truth.set_attribute("transit_ingress", transit.ingress);
  truth.set_attribute("zeroth_x", geometry.x0);
  truth.set_attribute("zeroth_y", geometry.y0);
  truth.set_attribute("seed", static_cast<std::int64_t>(o.seed));
  truth.set_attribute("frames", static_cast<std::int64_t>(o.frames));
  truth.set_attribute("ny", static_cast<std::int64_t>(o.ny));
  truth.set_attribute("nx", static_cast<std::int64_t>(o.nx));
  truth.set_attribute("exptime", o.exptime);
  truth.set_attribute("full_well", o.full_well);
  truth.set_attribute("read_noise", o.read_noise);
}

}  // namespace

std::string UvisSimSummary::str() const {
  char text[512];
  std::snprintf(text, sizeof text,
                "frames: %zu in %zu orbits\nfield stars: %zu\ncosmic rays: %zu hits on %zu pixels\n"
                "hot pixels: %zu (%zu flagged 16 in DQ)\nsaturated pixels: %zu over all frames (flagged 256)",
                frames, orbits, stars, cosmic_ray_hits, cosmic_ray_pixels, hot_pixels, hot_flagged, saturated_pixels);
  return text;
}

UvisSimSummary simulate_uvis(const UvisSimOptions& o) {
  check_options(o);
  const fs::path out(o.out_dir);
  prepare_directory(out / "specimages");
  prepare_directory(out / "directimages");
  prepare_directory(out / "sky");

  const std::size_t nx = o.nx, pixels = o.ny * o.nx;
  const Timing timing = make_timing(o);
  const Geometry geometry(o);
  const std::vector<double> pattern = sky_pattern(o.ny, nx);
  const std::vector<HotPixel> hot = make_hot_pixels(o);
  const std::vector<FieldStar> stars = field_stars(o);
  const Transit transit = make_transit(o, timing);

  UvisSimSummary summary;
  summary.frames = o.frames;
  summary.orbits = o.orbits;
  summary.stars = stars.size();
  summary.hot_pixels = hot.size();
  for (const HotPixel& h : hot) summary.hot_flagged += h.flagged ? 1 : 0;

  const double visit_start = timing.start.front(), visit_span = std::max(timing.end.back() - visit_start, 1e-9);
  FrameTruth truth;
  std::vector<double> expected(pixels), electrons(pixels);
  std::vector<float> sci(pixels), err(pixels);
  std::vector<std::uint16_t> dq(pixels);
  for (std::size_t f = 0; f < o.frames; ++f) {
    Rng rng(o.seed, f);
    const double t = timing.mid[f];
    const double phase = (t - visit_start) / visit_span;  // 0 → 1 over the visit
    const double orbit_phase = (t - kVisitStartMjd) * kMinutesPerDay / kOrbitMinutes;
    // Sky: slow drift over the visit plus an orbital (Earth-limb) modulation.
    const double sky = o.sky * (1.0 + 0.05 * (2 * phase - 1) + 0.08 * std::sin(2 * std::numbers::pi * orbit_phase));
    // Pointing: a slow drift across the visit, a settling ramp at each orbit start, and jitter.
    const double settle = std::exp(-static_cast<double>(timing.frame_in_orbit[f]) / 2.0);
    const double sx = o.drift_px * (0.5 * (2 * phase - 1) + 0.3 * settle + 0.15 * rng.normal());
    const double sy = o.drift_px * (-0.25 * (2 * phase - 1) + 0.2 * settle + 0.15 * rng.normal());
    const double flux = transit.flux(t);
    truth.background.push_back(sky);
    truth.shift_x.push_back(sx);
    truth.shift_y.push_back(sy);
    truth.flux.push_back(flux);

    render_scene(expected, o, geometry, stars, pattern, sky, flux, sx, sy);
    for (const HotPixel& h : hot) expected[h.y * nx + h.x] += h.rate * o.exptime;

    std::size_t hits = 0;
    const auto rays = draw_cosmic_rays(rng, o, hits);
    summary.cosmic_ray_hits += hits;
    for (std::size_t i = 0; i < pixels; ++i) electrons[i] = rng.poisson(expected[i]);
    for (const auto& [index, charge] : rays) {
      // Only the charge the full well can still hold shows; a hit on a saturated pixel is lost.
      const double before = std::min(electrons[index], o.full_well);
      electrons[index] += charge;
      const double added = std::min(electrons[index], o.full_well) - before;
      if (added > 0) truth.cosmic_rays.push_back({f, index, added});
    }

    std::fill(dq.begin(), dq.end(), std::uint16_t{0});
    for (const HotPixel& h : hot)
      if (h.flagged) dq[h.y * nx + h.x] |= kDqHot;
    for (std::size_t i = 0; i < pixels; ++i) {
      double value = electrons[i];
      if (value > o.full_well) {
        value = o.full_well;
        dq[i] |= kDqSaturated;
        ++summary.saturated_pixels;
      }
      sci[i] = static_cast<float>(value + o.read_noise * rng.normal());
      // The noise model's own variance, so ERR does not give away where cosmic rays hit.
      err[i] = static_cast<float>(std::sqrt(std::min(expected[i], o.full_well) + o.read_noise * o.read_noise));
    }

    char name[64];
    std::snprintf(name, sizeof name, "or%02zufm%03zu_flt.fits", timing.orbit[f], timing.frame_in_orbit[f]);
    write_flt((out / "specimages" / name).string(), timing.start[f], timing.end[f], o.exptime, "G280", sci, err, dq,
              o.ny, nx);
  }
  summary.cosmic_ray_pixels = truth.cosmic_rays.size();

  write_direct_image(o, geometry, stars, pattern, visit_start);
  write_sky_image(o, pattern);
  write_truth(o, timing, truth, hot, stars, pattern, transit, geometry);
  return summary;
}

}  // namespace tessera::sim
