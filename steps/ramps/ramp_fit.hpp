#pragma once
/// ramp_fit: count rates per integration (the JWST "rateints") from up-the-ramp reads, as the
/// JWST pipeline's ramp_fit step (stcal ordinary least squares) does it:
///   - per integration and pixel, the usable groups (group dq zero, or exactly JUMP_DET) are
///     split into segments: a JUMP_DET group starts a new segment, any other flagged group
///     ends one, SATURATED ends the ramp;
///   - each segment's slope by least squares with the "optimal" weights of Fixsen et al. 2000
///     (PASP 112, 1350) and Regan 2007 (JWST-STScI-001212): w_i = (|i - m| / m)^P with
///     m = (n - 1)/2 and P from the segment's signal-to-noise ratio, or unweighted;
///   - per-segment read-noise and Poisson variances, segments combined by inverse variance.
/// Outputs data (DN/s), err, var_poisson, var_rnoise and the dq; see docs/jwst-ramps.md.
#include <cstddef>
#include <cstdint>
#include <span>
#include <optional>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct RampFitParams {
  std::string gain;        // reference spec (electron/DN)
  std::string read_noise;  // reference spec (DN, one group read: CDS noise / sqrt 2)
  std::string weighting = "optimal";
  std::string variance_model = "pipeline";
  bool suppress_one_group = true;
  bool keep_ramps = false;
  std::optional<std::string> sky_rate;

  static Schema<RampFitParams> schema() {
    return tessera::schema<RampFitParams>(
        field(&RampFitParams::gain, "gain",
              "Gain (electron/DN): a number, a FITS file (SCI extension) or @image", Required{}),
        field(&RampFitParams::read_noise, "read_noise",
              "Read noise of one group read (DN; CDS noise / sqrt 2): a number, a FITS file (SCI) or @image", Required{}),
        field(&RampFitParams::weighting, "weighting",
              "Segment fits: 'optimal' (Fixsen et al. 2000 weights from the segment's SNR, as the JWST "
              "pipeline) or 'unweighted' (ordinary least squares)",
              Choices{{"optimal", "unweighted"}}),
        field(&RampFitParams::variance_model, "variance_model",
              "'pipeline': the JWST formulas (read noise 12 rn^2/((n^3-n) tgroup^2), Poisson rate/(tgroup gain "
              "(n-1))); 'propagated': the exact variances of the weighted fit actually used",
              Choices{{"pipeline", "propagated"}}),
        field(&RampFitParams::suppress_one_group, "suppress_one_group",
              "A ramp with a single usable group gets no rate (NaN, DO_NOT_USE) instead of group/time "
              "(JWST default true); ignored when the data have one group per integration"),
        field(&RampFitParams::keep_ramps, "keep_ramps",
              "Keep the ramp and groupdq cubes after fitting (they are dropped by default)"),
        field(&RampFitParams::sky_rate, "sky_rate",
              "Image (one row per integration, one value per column, DN/s) of signal an earlier step removed from "
              "the ramps, e.g. 'one_over_f_rate': added to the rate the Poisson variance is estimated from, since "
              "its photon noise is still in the data; unset: none"));
  }
};

/// Exposure timing the fits need, from the dataset attributes tgroup, nframes, groupgap.
struct RampTiming {
  double tgroup = 0;         ///< s between group starts
  std::int64_t nframes = 1;  ///< frames averaged per group
  std::int64_t groupgap = 0; ///< frames dropped between groups
  /// Mean time since reset of group g: tframe (g (nframes + groupgap) + (nframes + 1)/2).
  double group_time(std::size_t g) const {
    const double tframe = tgroup / static_cast<double>(nframes + groupgap);
    return tframe * (static_cast<double>(g) * static_cast<double>(nframes + groupgap) +
                     0.5 * static_cast<double>(nframes + 1));
  }
};

/// Fit choices resolved from the parameters.
struct RampFitOptions {
  bool optimal = true;
  bool propagated = false;
  bool suppress_one_group = true;
};

/// One integration of one pixel fitted.
struct RampRate {
  float rate = 0;         ///< DN/s; NaN when nothing usable
  float err = 0;          ///< DN/s
  float var_poisson = 0;  ///< DN²/s²
  float var_rnoise = 0;   ///< DN²/s²
  std::uint32_t dq = 0;   ///< bits to OR into the pixel dq (saturated, jump_det, do_not_use)
  bool usable = false;    ///< a rate was computed
};

/// The Fixsen et al. 2000 exponent for a segment signal-to-noise ratio S, as the JWST pipeline
/// tabulates it: 0 up to 5, 0.4 to 10, 1 to 20, 3 to 50, 6 to 100, 10 above (upper bounds
/// inclusive). Returns the index 0..5 into {0, 0.4, 1, 3, 6, 10}.
int power_index(double snr);
double power_of_index(int index);

/// Segment SNR as the JWST pipeline defines it: S = D g / sqrt(rn_e^2 + D g), D the last minus
/// the first read of the segment (DN), g the gain, rn_e = rn g the read noise of one group in
/// electrons; 0 where that is negative or undefined.
double segment_snr(double last_minus_first, double gain, double group_read_noise_dn);

/// Least-squares coefficients of a segment of n >= 2 reads: slope (DN/s) = sum_i c[i] y[i], for
/// weights (|i - m|/m)^P (P = power_of_index(p)) and reads tgroup apart.
void segment_coefficients(std::size_t n, int p, double tgroup, std::span<double> c);

/// Reusable memory for fit_ramp (no allocation once warmed up): the segments of the ramp being
/// fitted and the least-squares coefficients of each (length, exponent) met so far.
struct RampFitScratch {
  struct Segment {
    std::size_t first = 0, n = 0;
    double slope = 0, last_minus_first = 0, sum_c2 = 0, sum_cum2 = 0;
  };
  struct Coefficients {
    std::vector<double> c;
    double sum_c2 = 0, sum_cum2 = 0;  ///< sum c_i^2 and sum_{j>=1} (sum_{i>=j} c_i)^2
  };
  std::vector<Segment> segments;
  std::vector<Coefficients> cache;  ///< index n*6 + p, filled on first use
  std::vector<float> series;
  std::vector<std::uint8_t> flags;
  double tgroup = 0;  ///< the tgroup the cache was built for
  const Coefficients& coefficients(std::size_t n, int p, double tgroup);
};

/// Fits one integration of one pixel: `ramp` and `groupdq` hold its ng reads and group flags,
/// `gain` in electron/DN, `read_noise` in DN (the noise of one group read, as readnoise.fits
/// holds it). Follows the segment rules above; see docs/jwst-ramps.md.
RampRate fit_ramp(std::span<const float> ramp, std::span<const std::uint8_t> groupdq, double gain,
                  double read_noise, const RampTiming& timing, const RampFitOptions& options,
                  RampFitScratch& scratch);

struct RampFit {
  static constexpr std::string_view name = "ramp_fit";
  static constexpr std::string_view summary =
      "Count rates per integration from the ramps: segments between jumps, optimally weighted least squares "
      "(JWST ramp_fit); data, err, var_poisson, var_rnoise, dq";
  using Params = RampFitParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
