#include "steps/simulate/jwst_simulator.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <numbers>
#include <thread>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/simulate/xoshiro.hpp"
#include "tessera/errors.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/io/hdf5_file.hpp"

namespace tessera::sim {
namespace {

namespace fs = std::filesystem;
namespace dq = jwst::dq;

constexpr double kExposureStartMjd = 60310.125;
constexpr double kSecondsPerDay = 86400.0;
constexpr double kTtMinusUtc = 69.184;  // s, TT - UTC since 2017
constexpr std::size_t kAmplifiers = 4;
constexpr std::size_t kCoefficients = 4;  // linearity: c0 + c1 r + c2 r^2 + c3 r^3 with c0 = 0, c1 = 1
constexpr double kMaxRaw = 65535.0;
// Stream numbers of generators that do not belong to one (integration, row).
constexpr std::uint64_t kDetectorStream = 0xA000000000000001ULL;
constexpr std::uint64_t kLevelStream = 0xA000000000000002ULL;
constexpr std::uint64_t kBadPixelStream = 0xA000000000000003ULL;
constexpr std::uint64_t kDriftStream = 0xA000000000000004ULL;

// ---------------------------------------------------------------------------------------------
// Random numbers: xoshiro256** (steps/simulate/xoshiro.hpp) with ziggurat normal deviates, so
// the same seed gives the same files with any standard library.

class Rng : public Xoshiro256 {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) : Xoshiro256(start_state(seed, stream)) {}
  /// Standard normal by the ziggurat method (Marsaglia & Tsang 2000, "The Ziggurat Method for
  /// Generating Random Variables"), 128 layers, with the layer taken from bits independent of the
  /// abscissa as Doornik (2005, "An Improved Ziggurat Method to Generate Normal Random Samples")
  /// recommends.
  double normal() {
    const Ziggurat& z = ziggurat();
    for (;;) {
      const std::uint64_t bits = next();
      const double u = 2.0 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1.0;
      const std::size_t i = bits & 0x7F;
      if (std::fabs(u) < z.ratio[i]) return u * z.x[i];
      if (i == 0) {  // the tail beyond R (Marsaglia 1964)
        double x, y;
        do {
          x = std::log(1.0 - uniform()) / Ziggurat::kR;
          y = std::log(1.0 - uniform());
        } while (-2.0 * y < x * x);
        return u < 0 ? x - Ziggurat::kR : Ziggurat::kR - x;
      }
      const double x = u * z.x[i];
      const double f0 = std::exp(-0.5 * (z.x[i] * z.x[i] - x * x));
      const double f1 = std::exp(-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x));
      if (f1 + uniform() * (f0 - f1) < 1.0) return x;
    }
  }

 private:
  /// Layer edges x[i] (x[0] is the base strip's equivalent width V/f(R), x[1] = R, x[128] = 0)
  /// and ratio[i] = x[i+1]/x[i], the part of layer i inside the curve for sure.
  struct Ziggurat {
    static constexpr int kLayers = 128;
    static constexpr double kR = 3.442619855899;       // start of the tail
    static constexpr double kV = 9.91256303526217e-3;  // area of each layer
    double x[kLayers + 1];
    double ratio[kLayers];
    Ziggurat() {
      double f = std::exp(-0.5 * kR * kR);
      x[0] = kV / f;
      x[1] = kR;
      x[kLayers] = 0;
      for (int i = 2; i < kLayers; ++i) {
        x[i] = std::sqrt(-2.0 * std::log(kV / x[i - 1] + f));
        f = std::exp(-0.5 * x[i] * x[i]);
      }
      for (int i = 0; i < kLayers; ++i) ratio[i] = x[i + 1] / x[i];
    }
  };
  static const Ziggurat& ziggurat() {
    static const Ziggurat table;
    return table;
  }
  static std::uint64_t start_state(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t state = seed ^ (stream * 0xD6E8FEB86659FD93ULL);
    return splitmix64(state) + stream;
  }
};

/// Poisson deviates of one mean, drawn many times (one pixel's ramp): the constants are worked
/// out once. Means below 100: inversion by sequential search starting from the mode (Devroye
/// 1986, "Non-Uniform Random Variate Generation", section X.3), about 0.8·sqrt(mean) steps of a
/// multiplication each. Larger means: Hörmann's PTRS (transformed rejection with squeeze;
/// W. Hörmann 1993, Insurance: Mathematics and Economics 12, 39).
class Poisson {
 public:
  static constexpr double kSearchBelow = 100;

  explicit Poisson(double mean) : mean_(mean > 0 ? mean : 0) {
    if (mean_ <= 0) return;
    if (mean_ < kSearchBelow) {
      mode_ = std::floor(mean_);
      inv_mean_ = 1.0 / mean_;
      double p = std::exp(-mean_), cumulative = p;
      for (int k = 1; k <= static_cast<int>(mode_); ++k) {
        p *= mean_ * inverse(k);
        cumulative += p;
      }
      p_mode_ = p;
      cdf_mode_ = cumulative;
      return;
    }
    loglam_ = std::log(mean_);
    b_ = 0.931 + 2.53 * std::sqrt(mean_);
    a_ = -0.059 + 0.02483 * b_;
    inv_alpha_ = 1.1239 + 1.1328 / (b_ - 3.4);
    vr_ = 0.9277 - 3.6224 / (b_ - 2);
  }

  double draw(Rng& rng) const {
    if (mean_ <= 0) return 0;
    if (mean_ < kSearchBelow) {
      const double u = rng.uniform();
      double k = mode_, p = p_mode_, cumulative = cdf_mode_;  // cumulative = P(X <= k)
      if (u <= cumulative) {
        while (k > 0) {
          const double below = cumulative - p;  // P(X <= k - 1)
          if (u > below) return k;
          cumulative = below;
          p *= k * inv_mean_;
          k -= 1;
        }
        return 0;
      }
      const double cap = mode_ + 400;  // far beyond any tail a double can tell apart
      while (k < cap) {
        k += 1;
        p *= mean_ * inverse(static_cast<int>(k));
        cumulative += p;
        if (u <= cumulative) return k;
      }
      return k;
    }
    for (;;) {
      const double u = rng.uniform() - 0.5;
      const double v = rng.uniform();
      const double us = 0.5 - std::fabs(u);
      const double k = std::floor((2 * a_ / us + b_) * u + mean_ + 0.43);
      if (us >= 0.07 && v <= vr_) return k;
      if (k < 0 || (us < 0.013 && v > us)) continue;
      if (std::log(v * inv_alpha_ / (a_ / (us * us) + b_)) <= -mean_ + k * loglam_ - log_factorial(k)) return k;
    }
  }

 private:
  /// 1/k from a table (the search multiplies by it at every step).
  static double inverse(int k) { return k < kInverses ? kInverse[k] : 1.0 / k; }
  static constexpr int kInverses = 1024;
  static constexpr std::array<double, kInverses> kInverse = [] {
    std::array<double, kInverses> t{};
    for (int i = 1; i < kInverses; ++i) t[static_cast<std::size_t>(i)] = 1.0 / i;
    return t;
  }();
  /// log(k!): a table below 10, else Stirling's series for log Γ(k + 1) (error below 1e-10).
  static double log_factorial(double k) {
    static constexpr double kTable[10] = {0.0, 0.0, 0.69314718055994531, 1.791759469228055, 3.1780538303479458,
                                          4.7874917427820458, 6.5792512120101012, 8.5251613610654147,
                                          10.604602902745251, 12.801827480081469};
    if (k < 10) return kTable[static_cast<int>(k)];
    const double n = k + 1, inv = 1.0 / n, inv2 = inv * inv;
    return (n - 0.5) * std::log(n) - n + 0.91893853320467274 + inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 / 1260));
  }
  double mean_ = 0;
  double mode_ = 0, p_mode_ = 0, cdf_mode_ = 0, inv_mean_ = 0;  // search
  double loglam_ = 0, b_ = 0, a_ = 0, inv_alpha_ = 0, vr_ = 0;  // PTRS
};

// ---------------------------------------------------------------------------------------------
// Instruments.

/// What differs between the two instruments: header values and the detector's typical numbers.
struct Spec {
  const char* instrume;
  const char* detector;
  const char* exp_type;
  const char* readpatt;
  const char* subarray;
  const char* filter;
  const char* pupil;
  const char* root;        // file name root
  const char* det_suffix;  // lower-case detector in file names
  double tframe;           // s (= tgroup: nframes 1, groupgap 0)
  double gain;             // electron/DN, mean
  double read_noise;       // DN per group read, mean
  double bias;             // DN, mean superbias
  double well;             // DN of raw signal above the bias at which a pixel saturates
  double dark_rate;        // DN/s, typical pixel
  double c2, c3;           // mean linearity coefficients (corrected = r + c2 r^2 + c3 r^3)
  bool miri;
};

const Spec& spec_of(JwstInstrument instrument) {
  static const Spec niriss{"NIRISS", "NIS",    "NIS_SOSS", "NISRAPID", "SUBSTRIP256", "CLEAR",  "GR700XD",
                           "jw09999001001_04101_00001",   "nis",      5.494,      1.61,          8.0,
                           12500.0, 45000.0, 0.02, 2.0e-6, 1.0e-11, false};
  static const Spec miri{"MIRI",  "MIRIMAGE", "MIR_LRS-SLITLESS", "FASTR1", "SLITLESSPRISM", "P750L", "NONE",
                         "jw09999002001_04102_00001", "mirimage", 0.15904, 3.1, 6.0,
                         10000.0, 50000.0, 0.3, 2.5e-6, 1.2e-11, true};
  return instrument == JwstInstrument::miri_lrs ? miri : niriss;
}

/// 1-based subarray corner on the full detector (SUBSTRT1, SUBSTRT2).
std::pair<int, int> subarray_start(const JwstSimOptions& o) {
  if (o.instrument == JwstInstrument::miri_lrs) return {1, o.ny <= 496 ? 529 : static_cast<int>(1025 - o.ny)};
  return {1, o.ny <= 256 ? 1793 : static_cast<int>(2049 - o.ny)};
}

bool is_reference(const JwstSimOptions& o, std::size_t y, std::size_t x) {
  if (o.instrument == JwstInstrument::miri_lrs) return x < 4;
  return x < 4 || x + 4 >= o.nx || y + 4 >= o.ny;
}

/// Amplifier of column x: NIRISS four bands of nx/4 columns, MIRI interleaved (x % 4).
std::size_t amplifier(const JwstSimOptions& o, std::size_t x) {
  if (o.instrument == JwstInstrument::miri_lrs) return x % kAmplifiers;
  return std::min(kAmplifiers - 1, x / (o.nx / kAmplifiers));
}

// ---------------------------------------------------------------------------------------------
// The detector (reference data) and the scene.

enum PixelKind : std::uint8_t { kNormal = 0, kReference = 1, kDead = 2 };

struct Detector {
  std::vector<float> superbias, saturation, gain, read_noise, dark;  // dark: ng planes, cumulative
  std::vector<float> coeffs;                                        // kCoefficients planes
  std::vector<std::uint32_t> mask;
  std::vector<std::uint8_t> kind;
  std::vector<double> linear_cap;  // L(65535): above it the raw value is clipped anyway
  std::size_t dead = 0, hot = 0, reference = 0;
  // Fixed parts of the reference offsets: NIRISS level[amp][column parity], MIRI level[amp][row parity].
  double level[kAmplifiers][2] = {};
};

/// The linearity polynomial L(r) = r + c2 r^2 + c3 r^3.
inline double linearise(double r, double c2, double c3) { return r * (1.0 + r * (c2 + r * c3)); }

/// Solves L(r) = v. The inverse series r = v - c2 v^2 + (2 c2^2 - c3) v^3 + 5 c2 (c3 - c2^2) v^4
/// is within 1e-3 DN of the root for |v| < 3000 DN (the next term, 14 c2^4 v^5, is about
/// 1e-4 DN there), which is all we need from values rounded to whole DN; beyond, Newton's method
/// from the series to 1e-4 DN. With c2, c3 >= 0 and c2^2 < 3 c3 (checked when drawing them) L
/// is strictly increasing, so the root is unique.
inline double delinearise(double v, double c2, double c3) {
  double r = v * (1.0 + v * (-c2 + v * (2 * c2 * c2 - c3 + v * 5 * c2 * (c3 - c2 * c2))));
  if (std::fabs(v) < 3000.0) return r;
  if (!(std::fabs(r - v) <= 0.5 * std::fabs(v))) r = v;  // the series out of its range
  for (int k = 0; k < 40; ++k) {
    const double step = (linearise(r, c2, c3) - v) / (1.0 + r * (2 * c2 + 3 * c3 * r));
    r -= step;
    if (std::fabs(step) < 1e-4) break;
  }
  return r;
}

Detector make_detector(const JwstSimOptions& o, const Spec& s) {
  const std::size_t ny = o.ny, nx = o.nx, n = ny * nx, ng = o.groups;
  Detector d;
  d.superbias.resize(n);
  d.saturation.resize(n);
  d.gain.resize(n);
  d.read_noise.resize(n);
  d.dark.resize(ng * n);
  d.coeffs.assign(kCoefficients * n, 0.0f);
  d.mask.assign(n, 0);
  d.kind.assign(n, kNormal);
  d.linear_cap.resize(n);

  Rng rng(o.seed, kDetectorStream);
  // Superbias: a level per amplifier, a smooth column pattern, a gentle row gradient and pixel
  // scatter, as real superbias frames show.
  double amp_bias[kAmplifiers];
  for (double& b : amp_bias) b = 400.0 * rng.normal();
  std::vector<double> column_pattern(nx);
  const double phase = 2 * std::numbers::pi * rng.uniform();
  for (std::size_t x = 0; x < nx; ++x)
    column_pattern[x] = 60.0 * std::sin(0.043 * static_cast<double>(x) + phase) + 15.0 * rng.normal();
  std::vector<double> dark_rate(n);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      const std::size_t p = y * nx + x;
      const double bias = s.bias + amp_bias[amplifier(o, x)] + column_pattern[x] +
                          250.0 * (static_cast<double>(y) / static_cast<double>(ny) - 0.5) + 30.0 * rng.normal();
      d.superbias[p] = static_cast<float>(bias);
      // Saturation: an integer level (so a clipped sample equals it exactly) below 65535.
      const double well = s.well * (1.0 + 0.02 * rng.normal());
      d.saturation[p] = static_cast<float>(std::min(std::round(bias + well), kMaxRaw - 35.0));
      d.gain[p] = static_cast<float>(s.gain * (1.0 + 0.03 * rng.normal()));
      d.read_noise[p] = static_cast<float>(s.read_noise * std::max(0.5, 1.0 + 0.08 * rng.normal()));
      dark_rate[p] = s.dark_rate * std::exp(0.3 * rng.normal());
      // Linearity: c2 within ±25 % of the mean, c3 large enough that L stays monotonic (c2^2 < 3 c3).
      const double c2 = s.c2 * (1.0 + 0.1 * std::clamp(rng.normal(), -2.5, 2.5));
      const double c3 = std::max(s.c3 * (1.0 + 0.1 * std::clamp(rng.normal(), -2.5, 2.5)), 0.5 * c2 * c2);
      d.coeffs[1 * n + p] = 1.0f;
      d.coeffs[2 * n + p] = static_cast<float>(c2);
      d.coeffs[3 * n + p] = static_cast<float>(c3);
      if (is_reference(o, y, x)) {
        d.kind[p] = kReference;
        d.mask[p] = dq::reference_pixel | dq::do_not_use;
        ++d.reference;
      }
    }

  // A few dead (no response) and hot (large dark current) pixels among the light-sensitive ones.
  Rng bad(o.seed, kBadPixelStream);
  const std::size_t sensitive = n - d.reference;
  const std::size_t dead = std::max<std::size_t>(2, static_cast<std::size_t>(std::llround(2e-4 * sensitive)));
  const std::size_t hot = std::max<std::size_t>(3, static_cast<std::size_t>(std::llround(5e-4 * sensitive)));
  while (d.dead + d.hot < dead + hot) {
    const std::size_t p = bad.below(n);
    if (d.kind[p] != kNormal || d.mask[p] != 0) continue;
    if (d.dead < dead) {
      d.kind[p] = kDead;
      d.mask[p] = dq::dead | dq::do_not_use;
      dark_rate[p] = 0;
      ++d.dead;
    } else {
      d.mask[p] = dq::hot | dq::do_not_use;
      dark_rate[p] = 5.0 * std::exp(bad.uniform() * std::log(20.0));  // 5–100 DN/s
      ++d.hot;
    }
  }

  for (std::size_t p = 0; p < n; ++p) {
    if (d.kind[p] != kNormal) {  // no light, no dark, no non-linearity to speak of
      dark_rate[p] = 0;
      d.coeffs[2 * n + p] = d.coeffs[3 * n + p] = 0.0f;
    }
    for (std::size_t g = 0; g < ng; ++g)
      d.dark[g * n + p] = static_cast<float>(dark_rate[p] * s.tframe * static_cast<double>(g + 1));
    d.linear_cap[p] = linearise(kMaxRaw, d.coeffs[2 * n + p], d.coeffs[3 * n + p]);
  }

  Rng levels(o.seed, kLevelStream);
  for (auto& amp : d.level) {
    // Parity 1 (odd columns for NIRISS, odd rows for MIRI) differs by a step of either sign of
    // at least 0.4 times its typical size (6 DN MIRI, 25 DN NIRISS).
    amp[0] = 80.0 * levels.normal();
    const double sign = levels.uniform() < 0.5 ? -1.0 : 1.0;
    amp[1] = amp[0] + sign * (s.miri ? 6.0 : 25.0) * (1.0 + 0.3 * std::clamp(levels.normal(), -2.0, 2.0));
  }
  return d;
}

/// Horned SOSS-like cross-dispersion profile, about 20 px wide (two peaks 12 px apart and a
/// fainter core); its maximum is 1. Symmetric about d = 0: the trace centre.
double soss_profile(double d) {
  auto gauss = [](double z) { return std::exp(-0.5 * z * z); };
  static const double peak = [&] {
    double best = 0;
    for (int i = -2000; i <= 2000; ++i) {
      const double z = 0.01 * i;
      best = std::max(best, gauss((z - 6.0) / 3.0) + gauss((z + 6.0) / 3.0) + 0.5 * gauss(z / 5.0));
    }
    return best;
  }();
  return (gauss((d - 6.0) / 3.0) + gauss((d + 6.0) / 3.0) + 0.5 * gauss(d / 5.0)) / peak;
}

/// MIRI LRS cross-dispersion profile: a Gaussian of σ = 1.3 px with 5 % wings of σ = 4 px,
/// symmetric about dx = 0.
double lrs_profile(double dx) {
  return std::exp(-0.5 * std::pow(dx / 1.3, 2)) + 0.05 * std::exp(-0.5 * std::pow(dx / 4.0, 2));
}

/// NIRISS order-1 trace centre (row) at column x: curved, from about row 84 at x = 0 down to
/// 55 at 60 % of the width and back up to 68 on a 256-row subarray.
double soss_trace_y(const JwstSimOptions& o, double x) {
  const double u = (x + 0.5) / static_cast<double>(o.nx);
  return 26.0 + (static_cast<double>(o.ny) - 60.0) * (0.15 + 0.4 * (u - 0.6) * (u - 0.6));
}

// NIRISS order 2: light over u = (x + 0.5)/nx in (kOrder2Start, kOrder2End), its spectrum
// kOrder2Brightness times order 1's shape (stretched over that range), its centre kOrder2Gap
// rows above order 1's where it starts (the wings of the two orders touch there) and rising
// to row ny - 34 (222 of 256) at its blue end, as the real SOSS order 2 does.
constexpr double kOrder2Start = 0.34, kOrder2End = 0.9;
constexpr double kOrder2Brightness = 0.35;
constexpr double kOrder2Gap = 28.0;
constexpr double kOrder2Taper = 0.07;  // smooth start and end of order 2's light, in units of its range
// Wavelength maps: micron per pixel of cross-dispersion distance from the trace centre.
constexpr double kWavelengthTilt = 0.002;
// Trace-centre truth: NaN where an order's spectrum is below this fraction of its maximum.
constexpr double kNoLight = 1e-3;

/// Position along order 2's range: 0 at u = kOrder2Start, 1 at u = kOrder2End (unclamped).
double soss_order2_w(const JwstSimOptions& o, double x) {
  const double u = (x + 0.5) / static_cast<double>(o.nx);
  return (u - kOrder2Start) / (kOrder2End - kOrder2Start);
}

/// NIRISS order-2 trace centre (row) at column x: start + (end − start)·(1 − (1 − w)²) with w
/// clamped to [0, 1] (flat beyond its range), start = order 1's centre at the range's start +
/// kOrder2Gap, end = max(ny − 34, order 1's centre at the range's end + kOrder2Gap):
/// about 89 → 222 on 256 rows; about 28 rows above order 1 throughout on small subarrays.
double soss_order2_y(const JwstSimOptions& o, double x) {
  const double nx = static_cast<double>(o.nx);
  const double start = soss_trace_y(o, kOrder2Start * nx - 0.5) + kOrder2Gap;
  const double end =
      std::max(static_cast<double>(o.ny) - 34.0, soss_trace_y(o, kOrder2End * nx - 0.5) + kOrder2Gap);
  const double w = std::clamp(soss_order2_w(o, x), 0.0, 1.0);
  return start + (end - start) * (1.0 - (1.0 - w) * (1.0 - w));
}

/// MIRI LRS trace centre (column) at row y: near the middle column (36.3 of 72), slightly tilted.
double lrs_trace_x(const JwstSimOptions& o, double y) {
  const double v = (y + 0.5) / static_cast<double>(o.ny);
  return 0.5 * static_cast<double>(o.nx) + 0.3 + 0.6 * (v - 0.5);
}

double smoothstep(double t) {
  t = std::clamp(t, 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

/// The light of one order in one dispersion line (NIRISS: a column, MIRI: a row) at dispersion
/// coordinate a (x or y, possibly shifted): the spectrum (relative brightness) and the
/// cross-dispersion centre of the profile (row or column).
struct Line {
  double spectrum = 0, centre = 0;
};

Line line_of(const JwstSimOptions& o, int order, double a) {
  Line line;
  if (o.instrument == JwstInstrument::miri_lrs) {
    const double v = (a + 0.5) / static_cast<double>(o.ny);
    const double width = v <= 0.78 ? 0.12 : 0.05;
    const double taper = std::clamp((v - 0.25) / 0.15, 0.0, 1.0);
    line.spectrum = std::exp(-0.5 * std::pow((v - 0.78) / width, 2)) * taper * taper * (3 - 2 * taper);
    line.centre = lrs_trace_x(o, a);
  } else if (order == 1) {
    const double u = (a + 0.5) / static_cast<double>(o.nx);
    line.spectrum = 0.25 + 0.75 * std::exp(-0.5 * std::pow((u - 0.35) / 0.3, 2));
    line.centre = soss_trace_y(o, a);
  } else {
    const double w = soss_order2_w(o, a);
    line.centre = soss_order2_y(o, a);
    if (w > 0 && w < 1)
      line.spectrum = kOrder2Brightness * (0.25 + 0.75 * std::exp(-0.5 * std::pow((w - 0.35) / 0.3, 2))) *
                      smoothstep(w / kOrder2Taper) * smoothstep((1 - w) / kOrder2Taper);
  }
  return line;
}

/// One order's light (before the brightness scale) at cross-dispersion coordinate `cross`.
double light(const JwstSimOptions& o, const Line& line, double cross) {
  if (line.spectrum == 0) return 0;
  const double d = cross - line.centre;
  return line.spectrum * (o.instrument == JwstInstrument::miri_lrs ? lrs_profile(d) : soss_profile(d));
}

/// Each order's lines over the dispersion axis (nx columns for NIRISS, ny rows for MIRI) with the
/// scene shifted by `shift` along it; lines[k] is order k + 1.
struct Lines {
  std::vector<Line> order[2];
};

Lines make_lines(const JwstSimOptions& o, double shift) {
  Lines lines;
  const bool miri = o.instrument == JwstInstrument::miri_lrs;
  const std::size_t count = miri ? o.ny : o.nx;
  for (int k = 0; k < static_cast<int>(o.orders); ++k) {
    lines.order[k].resize(count);
    for (std::size_t a = 0; a < count; ++a) lines.order[k][a] = line_of(o, k + 1, static_cast<double>(a) - shift);
  }
  return lines;
}

/// The stellar light (before the brightness scale) at pixel (y, x) of the scene shifted by
/// (shift_x, shift_y): the analytic profiles evaluated at (x − shift_x, y − shift_y). `lines`
/// must come from make_lines with the shift along the dispersion. order 0: all drawn orders.
double star_light(const JwstSimOptions& o, const Lines& lines, std::size_t y, std::size_t x, double shift_x,
                  double shift_y, int order) {
  if (o.instrument == JwstInstrument::miri_lrs)
    return light(o, lines.order[0][y], static_cast<double>(x) - shift_x);
  const double cross = static_cast<double>(y) - shift_y;
  double value = 0;
  for (int k = 0; k < static_cast<int>(o.orders); ++k)
    if (order == 0 || order == k + 1) value += light(o, lines.order[k][x], cross);
  return value;
}

/// Wavelength (micron) of order `order` at pixel position (x, y): NIRISS order 1 from 2.83 µm at
/// x = 0 to 0.85 µm at x = nx − 1 (2.83 − 1.98 t − 0.1 t(1 − t), t = x/(nx − 1)), order 2 from
/// 1.4 µm at the start of its range to 0.6 µm at its end (linear, extrapolated beyond); MIRI
/// 5 + 9·((1 − v)/0.7)^1.3 with v = (y + 0.5)/ny (14 µm at v = 0.3, 7 µm at the brightest row,
/// about 5.3 µm at v = 0.95). Plus kWavelengthTilt per pixel of cross-dispersion distance from
/// the trace centre, so at the centre the map holds the line's wavelength.
double wavelength(const JwstSimOptions& o, int order, double x, double y) {
  if (o.instrument == JwstInstrument::miri_lrs) {
    const double v = (y + 0.5) / static_cast<double>(o.ny);
    return 5.0 + 9.0 * std::pow((1.0 - v) / 0.7, 1.3) + kWavelengthTilt * (x - lrs_trace_x(o, y));
  }
  if (order == 1) {
    const double t = x / static_cast<double>(o.nx - 1);
    return 2.83 - 1.98 * t - 0.1 * t * (1 - t) + kWavelengthTilt * (y - soss_trace_y(o, x));
  }
  return 1.4 - 0.8 * soss_order2_w(o, x) + kWavelengthTilt * (y - soss_order2_y(o, x));
}

struct Scene {
  std::vector<float> star, background;  // DN/s at flux 1; zero on reference and dead pixels
  std::vector<float> order_star[2];     // each order's part of star (NIRISS)
  double peak_rate = 0;
  double star_max = 0;  // the brightest pixel's light before scaling: rate = peak_rate · light / star_max
  /// The rate of `light` (a star_light value) as the detector receives it.
  float rate(double light) const { return static_cast<float>(star_max > 0 ? peak_rate * light / star_max : 0.0); }
};

Scene make_scene(const JwstSimOptions& o, const Spec& s, const Detector& d) {
  const std::size_t ny = o.ny, nx = o.nx, n = ny * nx;
  const Lines lines = make_lines(o, 0.0);
  const std::size_t orders = s.miri ? 1 : o.orders;
  std::vector<double> star(n, 0.0), sky(n, 0.0), order_star[2];
  for (std::size_t k = 0; k < orders && !s.miri; ++k) order_star[k].assign(n, 0.0);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      const std::size_t p = y * nx + x;
      if (d.kind[p] != kNormal) continue;
      const double u = (static_cast<double>(x) + 0.5) / static_cast<double>(nx);
      const double v = (static_cast<double>(y) + 0.5) / static_cast<double>(ny);
      star[p] = star_light(o, lines, y, x, 0.0, 0.0, 0);
      if (!s.miri) {
        for (std::size_t k = 0; k < orders; ++k)
          order_star[k][p] = star_light(o, lines, y, x, 0.0, 0.0, static_cast<int>(k + 1));
        // Zodiacal light with the SOSS-like step in x where the order-0 images of the sky begin.
        const double step = 1.0 + 0.4 / (1.0 + std::exp(-(static_cast<double>(x) - 0.34 * static_cast<double>(nx)) /
                                                         (0.01 * static_cast<double>(nx))));
        sky[p] = (1.0 + 0.25 * u) * step * (1.0 + 0.1 * (v - 0.5));
      } else {
        // Thermal background rising to long wavelengths (small rows), nearly flat across.
        sky[p] = (0.4 + 1.2 * (1 - v) * (1 - v)) * (1.0 + 0.1 * (u - 0.5));
      }
    }
  double star_max = 0, sky_sum = 0;
  std::size_t sky_count = 0;
  for (std::size_t p = 0; p < n; ++p) {
    star_max = std::max(star_max, star[p]);
    if (d.kind[p] == kNormal) {
      sky_sum += sky[p];
      ++sky_count;
    }
  }
  Scene scene;
  scene.star_max = star_max;
  scene.peak_rate = o.peak_rate;
  if (scene.peak_rate == 0) {
    // The brightest pixel crosses the mean saturation level halfway between reads gs-1 and gs
    // (at tframe·(gs + 0.5)), so it saturates in group gs (0-based).
    const std::size_t ng = o.groups;
    const std::size_t gs = std::max<std::size_t>(1, ng - 1 - std::max<std::size_t>(1, ng / 3));
    const double linear_at_saturation = linearise(s.well, s.c2, s.c3);
    scene.peak_rate = linear_at_saturation / (s.tframe * (static_cast<double>(gs) + 0.5));
  }
  scene.star.resize(n);
  scene.background.resize(n);
  const double sky_scale = sky_count ? o.background * static_cast<double>(sky_count) / sky_sum : 0.0;
  for (std::size_t p = 0; p < n; ++p) {
    scene.star[p] = scene.rate(star[p]);
    scene.background[p] = static_cast<float>(sky_scale * sky[p]);
  }
  for (std::size_t k = 0; k < 2 && !s.miri; ++k) {
    scene.order_star[k].assign(n, 0.0f);
    for (std::size_t p = 0; p < order_star[k].size(); ++p) scene.order_star[k][p] = scene.rate(order_star[k][p]);
  }
  return scene;
}

/// The trace-centre truth of one order (1D over the dispersion axis): the cross-dispersion
/// centre of its profile at zero shift, NaN where its spectrum is below kNoLight of its maximum,
/// on reference pixels (NIRISS columns 0-3 and nx-4.., a centre on the top reference rows) or
/// off the subarray. Also the map's wavelength there (the line's wavelength).
void trace_truth(const JwstSimOptions& o, int order, std::vector<double>& centre, std::vector<double>& wave) {
  const bool miri = o.instrument == JwstInstrument::miri_lrs;
  const std::size_t count = miri ? o.ny : o.nx;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  centre.assign(count, nan);
  wave.assign(count, nan);
  if (order > static_cast<int>(o.orders)) return;
  std::vector<Line> lines(count);
  double max_spectrum = 0;
  for (std::size_t a = 0; a < count; ++a) {
    lines[a] = line_of(o, order, static_cast<double>(a));
    max_spectrum = std::max(max_spectrum, lines[a].spectrum);
  }
  for (std::size_t a = 0; a < count; ++a) {
    const Line& line = lines[a];
    if (!(line.spectrum >= kNoLight * max_spectrum) || max_spectrum <= 0) continue;
    if (miri) {
      if (line.centre < 4.0 || line.centre > static_cast<double>(o.nx) - 1) continue;
    } else {
      if (a < 4 || a + 4 >= o.nx || line.centre < 0 || line.centre > static_cast<double>(o.ny) - 5) continue;
    }
    centre[a] = line.centre;
    wave[a] = miri ? wavelength(o, order, line.centre, static_cast<double>(a))
                   : wavelength(o, order, static_cast<double>(a), line.centre);
  }
}

/// Per-integration pointing shifts (pixels) along one axis: a slow sinusoid (period 0.6–1.4 times
/// the exposure, random phase) plus a random walk and a little white jitter, made zero-mean and
/// scaled to an rms of exactly `rms` over the exposure (zero with fewer than two integrations).
std::vector<double> drift_series(Rng& rng, std::size_t ints, double rms) {
  std::vector<double> shift(ints, 0.0);
  if (!(rms > 0) || ints < 2) return shift;
  const double n = static_cast<double>(ints);
  const double period = n * (0.6 + 0.8 * rng.uniform());
  const double phase = 2 * std::numbers::pi * rng.uniform();
  double walk = 0;
  for (std::size_t i = 0; i < ints; ++i) {
    walk += rng.normal() / std::sqrt(n);
    shift[i] = std::sin(2 * std::numbers::pi * static_cast<double>(i) / period + phase) + 0.5 * walk +
               0.1 * rng.normal();
  }
  double mean = 0;
  for (double v : shift) mean += v / n;
  double sum2 = 0;
  for (double& v : shift) {
    v -= mean;
    sum2 += v * v;
  }
  const double scale = sum2 > 0 ? rms / std::sqrt(sum2 / n) : 0.0;
  for (double& v : shift) v *= scale;
  return shift;
}

struct Drift {
  std::vector<double> x, y;  // per integration (pixels)
  bool on = false;
};

Drift make_drift(const JwstSimOptions& o) {
  Drift drift;
  Rng rng(o.seed, kDriftStream);
  drift.x = drift_series(rng, o.ints, o.drift);
  drift.y = drift_series(rng, o.ints, o.drift);
  drift.on = o.drift > 0 && o.ints >= 2;
  return drift;
}

// ---------------------------------------------------------------------------------------------
// Time and the transit.

struct Timing {
  std::vector<double> start, mid, end;  // MJD UTC
};

Timing make_timing(const JwstSimOptions& o, const Spec& s) {
  Timing t;
  // One reset frame between integrations (NISRAPID and FASTR1 both have nresets = 1).
  const double cadence = static_cast<double>(o.groups + 1) * s.tframe / kSecondsPerDay;
  const double duration = static_cast<double>(o.groups) * s.tframe / kSecondsPerDay;
  for (std::size_t i = 0; i < o.ints; ++i) {
    const double start = kExposureStartMjd + static_cast<double>(i) * cadence;
    t.start.push_back(start);
    t.end.push_back(start + duration);
    t.mid.push_back(start + 0.5 * duration);
  }
  return t;
}

/// MJD (UTC) to BJD_TDB in the same MJD form JWST's INT_TIMES uses: TT - UTC plus an
/// illustrative barycentric light-time correction (about 5 min, varying over the year).
double bjd_tdb(double mjd_utc) {
  const double light_time = 300.0 * std::cos(2 * std::numbers::pi * (mjd_utc - 60000.0) / 365.25 + 0.7);
  return mjd_utc + (kTtMinusUtc + light_time) / kSecondsPerDay;
}

/// Trapezoid transit (no limb darkening): depth between 2nd and 3rd contact, linear ingress and
/// egress of `ingress` days, total duration `duration` (days) centred on `mid`.
struct Transit {
  double mid = 0, duration = 0, ingress = 0, depth = 0;
  double flux(double t) const {
    const double inside = 0.5 * duration - std::fabs(t - mid);
    return 1.0 - depth * std::clamp(inside / ingress, 0.0, 1.0);
  }
};

Transit make_transit(const JwstSimOptions& o, const Timing& t) {
  Transit transit;
  transit.mid = 0.5 * (t.start.front() + t.end.back());
  transit.duration = 0.5 * (t.end.back() - t.start.front());
  transit.ingress = 0.15 * transit.duration;
  transit.depth = o.transit_depth;
  return transit;
}

// ---------------------------------------------------------------------------------------------
// One integration's random ingredients that are not per pixel.

struct Hit {
  std::size_t pixel = 0, group = 0;
  double dn = 0;
};

struct IntegrationPlan {
  double flux = 1;
  double shift_x = 0, shift_y = 0;  // pointing drift (pixels)
  Lines lines;                        // with drift: the orders' lines at this integration's shift
  std::vector<double> column_offset;  // ng × nx: NIRISS reference offsets (amp, column parity) + 1/f
  std::vector<double> row_offset;     // ng × ny × 4: MIRI reference offsets (amp, row parity, drift)
  std::vector<Hit> hits;              // sorted by (pixel, group)
};

std::uint64_t integration_stream(std::size_t integration, std::uint64_t row) {
  return (static_cast<std::uint64_t>(integration + 1) << 32) | row;
}

/// Per-column noise with a 1/f spectrum along x: octaves of linearly interpolated random
/// values (spacing 1, 2, 4, ... columns), each octave the same variance, so the power per
/// logarithmic frequency interval is flat, i.e. P(f) ∝ 1/f.
void add_one_over_f(Rng& rng, double rms, std::size_t nx, double* out) {
  std::size_t octaves = 1;
  while ((std::size_t{1} << (octaves - 1)) < nx) ++octaves;
  const double sigma = rms / std::sqrt(static_cast<double>(octaves));
  std::vector<double> nodes;
  for (std::size_t k = 0; k < octaves; ++k) {
    const std::size_t spacing = std::size_t{1} << k;
    nodes.resize(nx / spacing + 2);
    for (double& v : nodes) v = sigma * rng.normal();
    for (std::size_t x = 0; x < nx; ++x) {
      const std::size_t j = x / spacing;
      const double w = static_cast<double>(x % spacing) / static_cast<double>(spacing);
      out[x] += (1 - w) * nodes[j] + w * nodes[j + 1];
    }
  }
}

IntegrationPlan plan_integration(const JwstSimOptions& o, const Detector& d, const Transit& transit,
                                 const Drift& pointing, double mid_time, std::size_t integration) {
  const std::size_t ny = o.ny, nx = o.nx, ng = o.groups, n = ny * nx;
  Rng rng(o.seed, integration_stream(integration, 0xFFFFFFFFULL));
  IntegrationPlan plan;
  plan.flux = transit.flux(mid_time);
  if (pointing.on) {
    plan.shift_x = pointing.x[integration];
    plan.shift_y = pointing.y[integration];
    plan.lines = make_lines(o, o.instrument == JwstInstrument::miri_lrs ? plan.shift_y : plan.shift_x);
  }
  if (o.instrument == JwstInstrument::niriss_soss) {
    plan.column_offset.assign(ng * nx, 0.0);
    for (std::size_t g = 0; g < ng; ++g) {
      double* row = plan.column_offset.data() + g * nx;
      double amp_offset[kAmplifiers][2];
      const double common = 10.0 * rng.normal();  // all amplifiers drift together a little
      for (std::size_t a = 0; a < kAmplifiers; ++a)
        for (int parity = 0; parity < 2; ++parity) amp_offset[a][parity] = d.level[a][parity] + common + 12.0 * rng.normal();
      for (std::size_t x = 0; x < nx; ++x) row[x] = amp_offset[amplifier(o, x)][x % 2];
      if (o.one_over_f > 0) add_one_over_f(rng, o.one_over_f, nx, row);
    }
  } else {
    plan.row_offset.assign(ng * ny * kAmplifiers, 0.0);
    for (std::size_t g = 0; g < ng; ++g) {
      double base[kAmplifiers], odd[kAmplifiers];
      for (std::size_t a = 0; a < kAmplifiers; ++a) {
        base[a] = d.level[a][0] + 6.0 * rng.normal();
        odd[a] = d.level[a][1] - d.level[a][0] + 2.0 * rng.normal();
      }
      const double drift = 4.0 * rng.normal(), drift_phase = 2 * std::numbers::pi * rng.uniform();
      for (std::size_t y = 0; y < ny; ++y) {
        // A slow drift along the rows (one cycle over the subarray), the same for all amplifiers.
        const double slow = drift * std::cos(2 * std::numbers::pi * static_cast<double>(y) / static_cast<double>(ny) +
                                             drift_phase);
        for (std::size_t a = 0; a < kAmplifiers; ++a)
          plan.row_offset[(g * ny + y) * kAmplifiers + a] = base[a] + (y % 2 ? odd[a] : 0.0) + slow;
      }
    }
  }

  // Cosmic rays: Poisson-many hits on light-sensitive pixels, each at a uniformly drawn group
  // (the charge arrives before that group's read, so it is in that group and every later one),
  // with a log-uniform 25–2500 DN.
  const std::size_t sensitive = n - d.reference - d.dead;
  const auto count = static_cast<std::size_t>(Poisson(o.cr_rate * static_cast<double>(sensitive)).draw(rng));
  for (std::size_t k = 0; k < count && sensitive > 0; ++k) {
    std::size_t p;
    do p = rng.below(n);
    while (d.kind[p] != kNormal);
    const std::size_t g = rng.below(ng);
    const double dn = 25.0 * std::exp(rng.uniform() * std::log(100.0));
    plan.hits.push_back({p, g, dn});
  }
  std::sort(plan.hits.begin(), plan.hits.end(), [](const Hit& a, const Hit& b) {
    return a.pixel != b.pixel ? a.pixel < b.pixel : a.group < b.group;
  });
  return plan;
}

/// Simulates row y of every integration of a segment (plans[l] is integration first + l; its
/// ng group images start at out + l·ng·ny·nx, group g at + g·ny·nx). Integration i's row draws
/// from its own generator (seed, i, y) in the order x, then g, so neither the threads nor the
/// segment length change the result. Looping over integrations inside the pixel loop lets a
/// pixel keep its Poisson set-up while its mean stays the same (all but the transiting trace).
/// With pointing drift the star's rate of each integration is the scene at its shift (the same
/// star_light / Scene::rate as the truth's star_rate, so a zero shift gives the same rates).
void simulate_row(const JwstSimOptions& o, const Spec& s, const Detector& d, const Scene& scene, bool drifting,
                  const std::vector<IntegrationPlan>& plans, std::size_t first, std::size_t y, std::uint16_t* out) {
  const std::size_t nx = o.nx, ny = o.ny, ng = o.groups, n = ny * nx, count = plans.size();
  std::vector<double> shifted_star;  // count × nx: the row's stellar rate in each integration
  if (drifting) {
    shifted_star.assign(count * nx, 0.0);
    for (std::size_t l = 0; l < count; ++l)
      for (std::size_t x = 0; x < nx; ++x)
        if (d.kind[y * nx + x] == kNormal)
          shifted_star[l * nx + x] =
              scene.rate(star_light(o, plans[l].lines, y, x, plans[l].shift_x, plans[l].shift_y, 0));
  }
  std::vector<Rng> rngs;
  std::vector<std::vector<Hit>::const_iterator> hits;
  rngs.reserve(count);
  for (std::size_t l = 0; l < count; ++l) {
    rngs.emplace_back(o.seed, integration_stream(first + l, y));
    hits.push_back(std::lower_bound(plans[l].hits.begin(), plans[l].hits.end(), y * nx,
                                    [](const Hit& h, std::size_t p) { return h.pixel < p; }));
  }
  const float* c2s = d.coeffs.data() + 2 * n;
  const float* c3s = d.coeffs.data() + 3 * n;
  const bool miri = o.instrument == JwstInstrument::miri_lrs;
  for (std::size_t x = 0; x < nx; ++x) {
    const std::size_t p = y * nx + x;
    const bool sensitive = d.kind[p] == kNormal;
    const double gain = d.gain[p], inv_gain = 1.0 / gain, rn = d.read_noise[p], bias = d.superbias[p];
    const double sat = d.saturation[p], c2 = c2s[p], c3 = c3s[p], cap = d.linear_cap[p];
    const double star = scene.star[p], sky = scene.background[p];
    const float* dark = d.dark.data() + p;
    double mean = -1;
    Poisson poisson(0.0);
    for (std::size_t l = 0; l < count; ++l) {
      const IntegrationPlan& plan = plans[l];
      Rng& rng = rngs[l];
      auto& hit = hits[l];
      if (sensitive) {
        const double m = ((drifting ? shifted_star[l * nx + x] : star) * plan.flux + sky) * s.tframe * gain;
        if (m != mean) {
          poisson = Poisson(m);
          mean = m;
        }
      }
      // Reference offsets (+ 1/f): NIRISS per (group, column), MIRI per (group, row, amplifier).
      const double* offset = miri ? plan.row_offset.data() + y * kAmplifiers + x % kAmplifiers
                                  : plan.column_offset.data() + x;
      const std::size_t offset_stride = miri ? ny * kAmplifiers : nx;
      std::uint16_t* pixel_out = out + l * ng * n + p;
      double electrons = 0, jumps = 0;
      for (std::size_t g = 0; g < ng; ++g) {
        double linear = rn * rng.normal();
        if (sensitive) {
          electrons += poisson.draw(rng);
          while (hit != plan.hits.end() && hit->pixel == p && hit->group == g) jumps += (hit++)->dn;
          linear += dark[g * n] + electrons * inv_gain + jumps;
        }
        double raw = bias + offset[g * offset_stride] + (linear >= cap ? kMaxRaw : delinearise(linear, c2, c3));
        raw = std::clamp(raw, 0.0, sat);
        pixel_out[g * n] = static_cast<std::uint16_t>(raw + 0.5);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Files.

/// Writes a FITS file through `<path>.partial`, renamed when complete.
void write_fits(const fs::path& path, const std::function<void(fits::File&)>& body) {
  const fs::path partial = path.string() + ".partial";
  fits::File file = fits::File::create(partial.string());
  body(file);
  file.close();
  std::error_code ec;
  fs::rename(partial, path, ec);
  if (ec) throw IoError(path.string() + ": cannot rename from .partial: " + ec.message());
}

void write_common_keys(fits::File& f, const JwstSimOptions& o, const Spec& s) {
  const auto [start1, start2] = subarray_start(o);
  f.write_key("TELESCOP", std::string("JWST"), "simulated by tessera");
  f.write_key("INSTRUME", std::string(s.instrume), "instrument");
  f.write_key("DETECTOR", std::string(s.detector), "detector");
  f.write_key("SUBARRAY", std::string(s.subarray), "subarray (nominal; --ny/--nx may shrink it)");
  f.write_key("SUBSTRT1", start1, "subarray start column (1-based)");
  f.write_key("SUBSTRT2", start2, "subarray start row (1-based)");
  f.write_key("SUBSIZE1", static_cast<int>(o.nx), "subarray columns");
  f.write_key("SUBSIZE2", static_cast<int>(o.ny), "subarray rows");
}

void prepare_directory(const fs::path& dir, const std::string& suffix) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir.string() + ": cannot create the directory: " + ec.message());
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(suffix) || name.ends_with(suffix + ".partial")) fs::remove(entry.path(), ec);
  }
  if (ec) throw IoError(dir.string() + ": cannot clear old files: " + ec.message());
}

void write_references(const JwstSimOptions& o, const Spec& s, const Detector& d) {
  const fs::path refs = fs::path(o.out_dir) / "refs";
  const long ny = static_cast<long>(o.ny), nx = static_cast<long>(o.nx);
  auto image = [&](const std::string& file, const std::string& reftype, const std::string& extname,
                   const std::vector<float>& values, const std::vector<long>& axes, const std::string& bunit) {
    write_fits(refs / file, [&](fits::File& f) {
      write_common_keys(f, o, s);
      f.write_key("REFTYPE", reftype, "reference file type");
      f.append_image_float(extname, values, axes);
      f.write_key("BUNIT", bunit, "units");
    });
  };
  write_fits(refs / "mask.fits", [&](fits::File& f) {
    write_common_keys(f, o, s);
    f.write_key("REFTYPE", std::string("MASK"), "reference file type");
    f.append_image_uint32("DQ", d.mask, {nx, ny});
  });
  image("saturation.fits", "SATURATION", "SCI", d.saturation, {nx, ny}, "DN");
  image("superbias.fits", "SUPERBIAS", "SCI", d.superbias, {nx, ny}, "DN");
  image("linearity.fits", "LINEARITY", "COEFFS", d.coeffs, {nx, ny, static_cast<long>(kCoefficients)}, "DN");
  write_fits(refs / "dark.fits", [&](fits::File& f) {
    write_common_keys(f, o, s);
    f.write_key("REFTYPE", std::string("DARK"), "reference file type");
    f.write_key("NGROUPS", static_cast<int>(o.groups), "groups (planes of SCI)");
    f.write_key("TGROUP", s.tframe, "s between group reads");
    f.append_image_float("SCI", d.dark, {nx, ny, static_cast<long>(o.groups)});
    f.write_key("BUNIT", std::string("DN"), "cumulative dark at each group");
  });
  image("gain.fits", "GAIN", "SCI", d.gain, {nx, ny}, "electron/DN");
  image("readnoise.fits", "READNOISE", "SCI", d.read_noise, {nx, ny}, "DN");

  // Wavelength maps (micron per pixel), one per order, over the whole subarray (a smooth
  // extrapolation away from the order's light).
  const bool miri = o.instrument == JwstInstrument::miri_lrs;
  for (int order = 1; order <= (miri ? 1 : 2); ++order) {
    std::vector<float> map(o.ny * o.nx);
    for (std::size_t y = 0; y < o.ny; ++y)
      for (std::size_t x = 0; x < o.nx; ++x)
        map[y * o.nx + x] =
            static_cast<float>(wavelength(o, order, static_cast<double>(x), static_cast<double>(y)));
    const std::string file = miri ? "wavelength.fits" : "wavelength_order" + std::to_string(order) + ".fits";
    write_fits(refs / file, [&](fits::File& f) {
      write_common_keys(f, o, s);
      f.write_key("REFTYPE", std::string("WAVELENGTH"), "reference file type (simulated wavelength map)");
      f.write_key("SPORDER", order, "spectral order");
      f.append_image_float("SCI", map, {nx, ny});
      f.write_key("BUNIT", std::string("micron"), "wavelength of each pixel");
    });
  }
}

void write_segment(const JwstSimOptions& o, const Spec& s, const Timing& t, std::size_t segment,
                   std::size_t segments, std::size_t first, std::size_t count, const std::vector<std::uint16_t>& sci) {
  char name[160];
  std::snprintf(name, sizeof name, "%s_seg%03zu_%s_uncal.fits", s.root, segment + 1, s.det_suffix);
  std::vector<double> number(o.ints), bjd_start(o.ints), bjd_mid(o.ints), bjd_end(o.ints);
  for (std::size_t i = 0; i < o.ints; ++i) {
    number[i] = static_cast<double>(i + 1);
    bjd_start[i] = bjd_tdb(t.start[i]);
    bjd_mid[i] = bjd_tdb(t.mid[i]);
    bjd_end[i] = bjd_tdb(t.end[i]);
  }
  write_fits(fs::path(o.out_dir) / "uncal" / name, [&](fits::File& f) {
    f.write_key("FILENAME", std::string(name), "name of the file");
    write_common_keys(f, o, s);
    f.write_key("TARGNAME", std::string("SIM-TRANSIT"), "target (simulated by tessera)");
    f.write_key("EXP_TYPE", std::string(s.exp_type), "exposure type");
    f.write_key("READPATT", std::string(s.readpatt), "readout pattern");
    f.write_key("FILTER", std::string(s.filter), "filter");
    f.write_key("PUPIL", std::string(s.pupil), "pupil");
    f.write_key("NINTS", static_cast<int>(o.ints), "integrations in the exposure");
    f.write_key("NGROUPS", static_cast<int>(o.groups), "groups per integration");
    f.write_key("NFRAMES", 1, "frames per group");
    f.write_key("GROUPGAP", 0, "frames dropped between groups");
    f.write_key("NRESETS", 1, "reset frames between integrations");
    f.write_key("TFRAME", s.tframe, "s per frame");
    f.write_key("TGROUP", s.tframe, "s per group");
    f.write_key("EXSEGNUM", static_cast<int>(segment + 1), "segment number");
    f.write_key("EXSEGTOT", static_cast<int>(segments), "segments in the exposure");
    f.write_key("INTSTART", static_cast<int>(first + 1), "first integration of this segment (1-based)");
    f.write_key("INTEND", static_cast<int>(first + count), "last integration of this segment (1-based)");
    f.write_key("EXPSTART", t.start.front(), "exposure start (MJD UTC)");
    f.write_key("EXPMID", 0.5 * (t.start.front() + t.end.back()), "exposure middle (MJD UTC)");
    f.write_key("EXPEND", t.end.back(), "exposure end (MJD UTC)");
    f.append_image_uint16("SCI", sci,
                          {static_cast<long>(o.nx), static_cast<long>(o.ny), static_cast<long>(o.groups),
                           static_cast<long>(count)});
    f.write_key("BUNIT", std::string("DN"), "raw counts");
    f.append_table("INT_TIMES", {{"integration_number", number},
                                 {"int_start_MJD_UTC", t.start},
                                 {"int_mid_MJD_UTC", t.mid},
                                 {"int_end_MJD_UTC", t.end},
                                 {"int_start_BJD_TDB", bjd_start},
                                 {"int_mid_BJD_TDB", bjd_mid},
                                 {"int_end_BJD_TDB", bjd_end}});
  });
}

/// First group (0-based) at which the noise-free ramp at flux 1 reaches the saturation level,
/// or -1: superbias + the fixed reference level + L⁻¹(dark + rate·t), without read noise,
/// per-group offsets, 1/f noise or cosmic rays.
std::vector<float> saturation_groups(const JwstSimOptions& o, const Spec& s, const Detector& d, const Scene& scene) {
  const std::size_t nx = o.nx, n = o.ny * nx;
  std::vector<float> first(n, -1.0f);
  for (std::size_t p = 0; p < n; ++p) {
    if (d.kind[p] != kNormal) continue;
    const std::size_t x = p % nx, y = p / nx;
    const double level = s.miri ? d.level[x % 4][y % 2] : d.level[amplifier(o, x)][x % 2];
    const double rate = scene.star[p] + scene.background[p];
    for (std::size_t g = 0; g < o.groups; ++g) {
      const double linear = d.dark[g * n + p] + rate * s.tframe * static_cast<double>(g + 1);
      const double raw = d.superbias[p] + level +
                         (linear >= d.linear_cap[p] ? kMaxRaw : delinearise(linear, d.coeffs[2 * n + p], d.coeffs[3 * n + p]));
      if (raw >= d.saturation[p]) {
        first[p] = static_cast<float>(g);
        break;
      }
    }
  }
  return first;
}

void write_truth(const JwstSimOptions& o, const Spec& s, const Detector& d, const Scene& scene, const Timing& t,
                 const Transit& transit, const Drift& drift, const std::vector<double>& flux,
                 const std::vector<Hit>& hits, const std::vector<std::size_t>& hit_integration,
                 const std::vector<float>& saturation_group) {
  const fs::path path = fs::path(o.out_dir) / "truth.h5";
  const fs::path partial = path.string() + ".partial";
  {
    h5::File truth = h5::File::create(partial.string());
    truth.write_vector("time", t.mid, "time", {"time", "d", "mid-integration time (MJD UTC, int_mid_MJD_UTC)"});
    truth.write_vector("flux", flux, "time", {"flux", "1", "stellar flux relative to out of transit"});
    std::vector<std::int64_t> integration(o.ints);
    for (std::size_t i = 0; i < o.ints; ++i) integration[i] = static_cast<std::int64_t>(i + 1);
    truth.write_vector("integration", integration, "time", {"integration", "1", "integration number (1-based)"});
    truth.write_image("star_rate", scene.star, o.ny, o.nx, "y", "x",
                      {"star_rate", "DN/s", "stellar count rate out of transit (multiply by flux)"});
    truth.write_image("background_rate", scene.background, o.ny, o.nx, "y", "x",
                      {"background_rate", "DN/s", "sky count rate (constant in time)"});
    truth.write_image("saturation_group", saturation_group, o.ny, o.nx, "y", "x",
                      {"saturation_group", "1",
                       "first saturated group (0-based) of the noise-free ramp at flux 1, or -1"});
    truth.write_vector("shift_x", drift.x, "time",
                       {"shift_x", "pixel", "pointing drift: the scene's shift along x in each integration"});
    truth.write_vector("shift_y", drift.y, "time",
                       {"shift_y", "pixel", "pointing drift: the scene's shift along y in each integration"});
    std::vector<double> centre, wave;
    if (s.miri) {
      trace_truth(o, 1, centre, wave);
      truth.write_vector("trace_center", centre, "y",
                         {"trace_center", "pixel",
                          "true centre column of the trace's profile in each row at zero shift (NaN: no light)"});
      truth.write_vector("trace_wavelength", wave, "y",
                         {"trace_wavelength", "micron", "wavelength map at the trace centre (NaN: no light)"});
    } else {
      for (int order = 1; order <= 2; ++order) {
        const std::string k = std::to_string(order);
        trace_truth(o, order, centre, wave);
        truth.write_vector("trace_center_order" + k, centre, "x",
                           {"trace_center_order" + k, "pixel",
                            "true centre row of order " + k +
                                "'s profile in each column at zero shift (NaN: no light)"});
        truth.write_vector("trace_wavelength_order" + k, wave, "x",
                           {"trace_wavelength_order" + k, "micron",
                            "order " + k + " wavelength map at the trace centre (NaN: no light)"});
        truth.write_image("star_rate_order" + k, scene.order_star[order - 1], o.ny, o.nx, "y", "x",
                          {"star_rate_order" + k, "DN/s",
                           "order " + k + "'s part of star_rate (out of transit, zero shift)"});
      }
    }

    std::vector<std::int64_t> jint, jgroup, jy, jx;
    std::vector<double> jdn;
    for (std::size_t k = 0; k < hits.size(); ++k) {
      jint.push_back(static_cast<std::int64_t>(hit_integration[k]));
      jgroup.push_back(static_cast<std::int64_t>(hits[k].group));
      jy.push_back(static_cast<std::int64_t>(hits[k].pixel / o.nx));
      jx.push_back(static_cast<std::int64_t>(hits[k].pixel % o.nx));
      jdn.push_back(hits[k].dn);
    }
    truth.write_vector("jump_int", jint, "jump", {"jump_int", "1", "integration of the hit (0-based)"});
    truth.write_vector("jump_group", jgroup, "jump",
                       {"jump_group", "1", "first group holding the charge (0-based; 0: before the first read)"});
    truth.write_vector("jump_y", jy, "jump", {"jump_y", "pixel", "row of the hit"});
    truth.write_vector("jump_x", jx, "jump", {"jump_x", "pixel", "column of the hit"});
    truth.write_vector("jump_dn", jdn, "jump", {"jump_dn", "DN", "charge added (linear DN, before non-linearity)"});

    double gain = 0, rn = 0;
    std::size_t count = 0;
    for (std::size_t p = 0; p < d.gain.size(); ++p)
      if (d.kind[p] != kReference) {
        gain += d.gain[p];
        rn += d.read_noise[p];
        ++count;
      }
    truth.set_attribute("instrument", std::string(jwst_instrument_name(o.instrument)));
    truth.set_attribute("transit_model", std::string("trapezoid"));
    truth.set_attribute("transit_depth", o.transit_depth);
    truth.set_attribute("transit_mid", transit.mid);
    truth.set_attribute("transit_duration", transit.duration);
    truth.set_attribute("transit_ingress", transit.ingress);
    truth.set_attribute("tgroup", s.tframe);
    truth.set_attribute("gain", gain / static_cast<double>(count));
    truth.set_attribute("read_noise", rn / static_cast<double>(count));
    truth.set_attribute("ngroups", static_cast<std::int64_t>(o.groups));
    truth.set_attribute("nints", static_cast<std::int64_t>(o.ints));
    truth.set_attribute("ints_per_segment", static_cast<std::int64_t>(o.ints_per_segment));
    truth.set_attribute("ny", static_cast<std::int64_t>(o.ny));
    truth.set_attribute("nx", static_cast<std::int64_t>(o.nx));
    truth.set_attribute("seed", static_cast<std::int64_t>(o.seed));
    truth.set_attribute("peak_rate", scene.peak_rate);
    truth.set_attribute("background", o.background);
    truth.set_attribute("one_over_f", s.miri ? 0.0 : o.one_over_f);
    truth.set_attribute("cr_rate", o.cr_rate);
    truth.set_attribute("orders", static_cast<std::int64_t>(s.miri ? 1 : o.orders));
    truth.set_attribute("drift", drift.on ? o.drift : 0.0);
  }
  std::error_code ec;
  fs::rename(partial, path, ec);
  if (ec) throw IoError(path.string() + ": cannot rename from .partial: " + ec.message());
}

void check_options(const JwstSimOptions& o) {
  const std::string who = "simulate " + std::string(jwst_instrument_name(o.instrument)) + ": ";
  auto bad = [&](const std::string& what) { throw ConfigError(who + what); };
  if (o.out_dir.empty()) bad("no output directory (--out)");
  if (o.instrument == JwstInstrument::niriss_soss) {
    if (o.ny < 48 || o.ny > 2048) bad("--ny must be between 48 and 2048 (the trace is about 20 px wide)");
    if (o.nx < 64 || o.nx > 2048 || o.nx % 8 != 0)
      bad("--nx must be a multiple of 8 between 64 and 2048 (4 amplifiers, even and odd columns)");
  } else {
    if (o.ny < 32 || o.ny > 1024) bad("--ny must be between 32 and 1024");
    if (o.nx < 24 || o.nx > 1032) bad("--nx must be between 24 and 1032 (reference columns 0-3, trace in the middle)");
  }
  if (o.ints == 0) bad("--ints must be at least 1");
  if (o.ints >= (std::size_t{1} << 31)) bad("--ints is too large");
  if (o.groups < 2 || o.groups > 1000) bad("--groups must be between 2 and 1000");
  if (o.ints_per_segment == 0) bad("--ints-per-segment must be at least 1");
  if (!(o.transit_depth >= 0 && o.transit_depth <= 0.5)) bad("--depth must be between 0 and 0.5");
  if (!(o.cr_rate >= 0 && o.cr_rate <= 0.1)) bad("--cr-rate must be between 0 and 0.1 hits per pixel per integration");
  if (!(o.peak_rate >= 0 && o.peak_rate < 1e7)) bad("--peak-rate must be >= 0 DN/s (0: automatic)");
  if (!(o.background >= 0 && o.background < 1e6)) bad("--background must be >= 0 DN/s");
  if (!(o.one_over_f >= 0 && o.one_over_f < 1e4)) bad("--one-over-f must be >= 0 DN");
  if (o.instrument == JwstInstrument::niriss_soss) {
    if (o.orders < 1 || o.orders > 2) bad("--orders must be 1 or 2");
  } else if (o.orders != 1) {
    bad("--orders must be 1 for miri-lrs (one order)");
  }
  if (!(o.drift >= 0 && o.drift <= 5)) bad("--drift must be between 0 and 5 pixels");
  const double bytes = static_cast<double>(std::min(o.ints, o.ints_per_segment)) * static_cast<double>(o.groups) *
                       static_cast<double>(o.ny) * static_cast<double>(o.nx) * 2.0;
  if (bytes > 8e9) bad("one segment would hold more than 8 GB: lower --ints-per-segment");
}

}  // namespace

std::string_view jwst_instrument_name(JwstInstrument instrument) {
  return instrument == JwstInstrument::miri_lrs ? "miri-lrs" : "niriss-soss";
}

JwstSimOptions jwst_defaults(JwstInstrument instrument) {
  JwstSimOptions o;
  o.instrument = instrument;
  if (instrument == JwstInstrument::miri_lrs) {
    o.ny = 416;
    o.nx = 72;
    o.ints = 200;
    o.groups = 40;
    o.background = 15.0;
    o.one_over_f = 0;
    o.orders = 1;
  }
  return o;
}

std::string JwstSimSummary::str() const {
  char text[896];
  std::snprintf(text, sizeof text,
                "instrument: %s\nintegrations: %zu of %zu groups (tgroup %.5g s) in %zu segments\n"
                "subarray: %zu x %zu pixels (%zu reference pixels, %zu dead, %zu hot)\n"
                "spectral orders: %zu; pointing drift: %.4g px rms\n"
                "brightest trace pixel: %.1f DN/s; %zu pixels saturate at full flux (truth saturation_group)\n"
                "cosmic-ray jumps: %zu",
                instrument.c_str(), ints, groups, tgroup, segments, ny, nx, reference_pixels, dead_pixels, hot_pixels,
                orders, drift, peak_rate, saturating_pixels, jumps);
  return text;
}

JwstSimSummary simulate_jwst(const JwstSimOptions& o) {
  check_options(o);
  const Spec& s = spec_of(o.instrument);
  const fs::path out(o.out_dir);
  prepare_directory(out / "uncal", "_uncal.fits");
  prepare_directory(out / "refs", ".fits");

  const Detector detector = make_detector(o, s);
  const Scene scene = make_scene(o, s, detector);
  const Timing timing = make_timing(o, s);
  const Transit transit = make_transit(o, timing);
  const Drift drift = make_drift(o);
  write_references(o, s, detector);

  const std::size_t n = o.ny * o.nx, per_int = o.groups * n;
  const std::size_t segments = (o.ints + o.ints_per_segment - 1) / o.ints_per_segment;
  const std::size_t threads = std::max<std::size_t>(
      1, std::min<std::size_t>(o.threads ? o.threads : std::thread::hardware_concurrency(), 64));
  std::vector<double> flux(o.ints);
  std::vector<Hit> all_hits;
  std::vector<std::size_t> hit_integration;
  std::vector<std::uint16_t> sci;
  for (std::size_t seg = 0; seg < segments; ++seg) {
    const std::size_t first = seg * o.ints_per_segment;
    const std::size_t count = std::min(o.ints_per_segment, o.ints - first);
    std::vector<IntegrationPlan> plans;
    for (std::size_t i = first; i < first + count; ++i) {
      plans.push_back(plan_integration(o, detector, transit, drift, timing.mid[i], i));
      flux[i] = plans.back().flux;
      for (const Hit& h : plans.back().hits) {
        all_hits.push_back(h);
        hit_integration.push_back(i);
      }
    }
    sci.resize(count * per_int);
    // Work items are rows (all integrations of the segment); each (integration, row) draws from
    // its own generator, so the output does not depend on how many threads share the work.
    std::atomic<std::size_t> next{0};
    const std::size_t items = o.ny;
    auto work = [&] {
      for (std::size_t y = next++; y < items; y = next++)
        simulate_row(o, s, detector, scene, drift.on, plans, first, y, sci.data());
    };
    std::vector<std::thread> pool;
    for (std::size_t k = 1; k < std::min(threads, items); ++k) pool.emplace_back(work);
    work();
    for (auto& th : pool) th.join();
    write_segment(o, s, timing, seg, segments, first, count, sci);
  }
  std::vector<std::uint16_t>().swap(sci);

  const std::vector<float> saturation_group = saturation_groups(o, s, detector, scene);
  write_truth(o, s, detector, scene, timing, transit, drift, flux, all_hits, hit_integration, saturation_group);

  JwstSimSummary summary;
  summary.instrument = std::string(jwst_instrument_name(o.instrument));
  summary.ints = o.ints;
  summary.groups = o.groups;
  summary.ny = o.ny;
  summary.nx = o.nx;
  summary.segments = segments;
  summary.tgroup = s.tframe;
  summary.peak_rate = scene.peak_rate;
  summary.orders = s.miri ? 1 : o.orders;
  summary.drift = drift.on ? o.drift : 0.0;
  summary.jumps = all_hits.size();
  for (float g : saturation_group) summary.saturating_pixels += g >= 0 ? 1 : 0;
  summary.reference_pixels = detector.reference;
  summary.dead_pixels = detector.dead;
  summary.hot_pixels = detector.hot;
  return summary;
}

std::vector<float> jwst_star_rate(const JwstSimOptions& o, double shift_x, double shift_y, int order) {
  check_options(o);
  if (order < 0 || order > static_cast<int>(o.orders))
    throw ConfigError("jwst_star_rate: order " + std::to_string(order) + " is not drawn");
  const Spec& s = spec_of(o.instrument);
  const Detector detector = make_detector(o, s);
  const Scene scene = make_scene(o, s, detector);
  const Lines lines = make_lines(o, o.instrument == JwstInstrument::miri_lrs ? shift_y : shift_x);
  std::vector<float> rate(o.ny * o.nx, 0.0f);
  for (std::size_t y = 0; y < o.ny; ++y)
    for (std::size_t x = 0; x < o.nx; ++x)
      if (detector.kind[y * o.nx + x] == kNormal)
        rate[y * o.nx + x] = scene.rate(star_light(o, lines, y, x, shift_x, shift_y, order));
  return rate;
}

}  // namespace tessera::sim
