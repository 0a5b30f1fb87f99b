#pragma once
/// What extract_box and extract_optimal share: the aperture along one spatial line (the
/// notebook's fractional-edge aperture or ExoTiC-MIRI's whole-pixel box), where its centre is
/// in each integration (the trace step's image, a constant, or Gaussian fits), the
/// wavelength of each dispersion index, and a quick cross-dispersion width. See
/// docs/spectra-extraction.md.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steps/common/spectral_geometry.hpp"
#include "tessera/step.hpp"

namespace tessera::spectra {

/// The pixels of one spatial line an aperture covers: whole pixels [lo, hi) with weight 1,
/// and at most one fractional pixel on each side (index -1: none). Pixel j covers
/// [j - 0.5, j + 0.5] (centres on integers, as in the notebook).
struct LineAperture {
  std::int64_t lo = 0, hi = 0;
  std::int64_t left = -1, right = -1;
  double left_weight = 0, right_weight = 0;

  bool empty() const { return hi <= lo && left < 0 && right < 0; }
  /// Every pixel the aperture touches, whole or fractional: [first(), end()).
  std::int64_t first() const { return left >= 0 ? left : lo; }
  std::int64_t end() const { return right >= 0 ? right + 1 : hi; }
  std::size_t whole_pixels() const { return hi > lo ? static_cast<std::size_t>(hi - lo) : 0; }
  /// Weight of pixel j (0 outside).
  double weight(std::int64_t j) const {
    if (j >= lo && j < hi) return 1.0;
    if (j == left) return left_weight;
    if (j == right) return right_weight;
    return 0.0;
  }
  /// Calls f(j, weight) for every touched pixel in increasing j.
  template <class F>
  void for_each(F&& f) const {
    if (left >= 0) f(left, left_weight);
    for (std::int64_t j = lo; j < hi; ++j) f(j, 1.0);
    if (right >= 0) f(right, right_weight);
  }
};

/// The aperture's size: the notebook's radius (the interval [c - r, c + r] with the exact
/// fraction of each edge pixel inside it) or, when no radius is given, ExoTiC-MIRI's box of
/// whole pixels round(c) - left_width .. round(c) + right_width.
struct ApertureShape {
  std::optional<double> radius;
  std::int64_t left_width = 4, right_width = 4;

  /// The aperture centred at `centre` on a line of n pixels, cut to the line's edges
  /// (-0.5 and n - 0.5); empty when the centre is not finite or it misses the line.
  LineAperture at(double centre, std::size_t n) const;
  /// How far (pixels) below and above the centre the touched pixels may reach.
  double reach_below() const { return radius ? *radius + 0.5 : static_cast<double>(left_width) + 0.5; }
  double reach_above() const { return radius ? *radius + 0.5 : static_cast<double>(right_width) + 0.5; }
};

/// Calls f(j) for the whole pixels j of the line (0 <= j < n) whose centres lie within
/// `radius` of `centre` and that the aperture does not touch: the background annulus.
template <class F>
void for_each_background_pixel(const LineAperture& aperture, double centre, double radius, std::size_t n, F&& f) {
  if (!std::isfinite(centre)) return;
  const double lo = std::max(std::ceil(centre - radius), 0.0);
  const double hi = std::min(std::floor(centre + radius), static_cast<double>(n) - 1.0);
  if (hi < lo) return;
  const std::int64_t first = aperture.empty() ? 0 : aperture.first(), end = aperture.empty() ? 0 : aperture.end();
  for (auto j = static_cast<std::int64_t>(lo); j <= static_cast<std::int64_t>(hi); ++j)
    if (j < first || j >= end) f(j);
}

/// The notebook's method 'average': mean of value(j) over the aperture's whole pixels
/// (finite values only); if it has no whole pixel, the weighted mean over its fractional
/// ones. NaN when nothing finite.
template <class F>
double aperture_mean(const LineAperture& aperture, F&& value) {
  double sum = 0, weight = 0;
  for (std::int64_t j = aperture.lo; j < aperture.hi; ++j) {
    const double v = value(j);
    if (std::isfinite(v)) {
      sum += v;
      weight += 1;
    }
  }
  if (weight == 0)
    aperture.for_each([&](std::int64_t j, double w) {
      const double v = value(j);
      if (std::isfinite(v) && w > 0) {
        sum += w * v;
        weight += w;
      }
    });
  return weight > 0 ? sum / weight : NAN;
}

/// Cross-dispersion variance (pixel^2) of one line: the weighted second moment of values(j)
/// (background-subtracted) about their own centroid, weighted by the aperture's fractions,
/// with Sheppard's correction (-1/12 pixel^2) for the pixel sampling. It may come out
/// negative on a noisy line (kept, so that a median over lines stays unbiased); NaN when the
/// summed signal is not positive. psf_sigma is the square root of its median over lines.
template <class F>
double second_moment_variance(const LineAperture& aperture, F&& value) {
  double m0 = 0, m1 = 0, m2 = 0;
  aperture.for_each([&](std::int64_t j, double w) {
    const double v = value(j);
    if (!std::isfinite(v)) return;
    const double x = static_cast<double>(j - aperture.lo);  // relative, for precision
    m0 += w * v;
    m1 += w * v * x;
    m2 += w * v * x * x;
  });
  if (!(m0 > 0)) return NAN;
  const double mean = m1 / m0;
  return m2 / m0 - mean * mean - 1.0 / 12.0;
}

/// psf_sigma from the per-line variances of one integration (reordered): sqrt of their
/// median, NaN when there are none or it is not positive.
double sigma_from_variances(std::span<float> variances);

/// A Gaussian A exp(-(x - centre)^2 / (2 sigma^2)) fitted by least squares (Levenberg 1944,
/// Marquardt 1963), started from the moments of the positive values.
struct GaussianFit {
  double amplitude = NAN, centre = NAN, sigma = NAN;
  bool ok = false;
};
/// Fits samples (x[i], y[i]); fails (ok = false) with fewer than 4 samples, a non-positive
/// peak, or a result outside [x.front(), x.back()] or with sigma outside (0.2, x range).
GaussianFit fit_gaussian(std::span<const double> x, std::span<const double> y);

/// "DN/s" -> "DN2/s2", "electron" -> "electron2": units of a variance.
std::string squared_units(const std::string& units);

// ---------------------------------------------------------------------------------------------
// The parameters and set-up both extraction steps share.

enum class TracePosition { trace, constant, gaussian_fits };

struct ExtractionSetup {
  Dispersion dispersion = Dispersion::x;
  std::string suffix;
  TracePosition position = TracePosition::trace;
  std::string trace_image;  ///< "trace_" + trace
  double aperture_center = 36;
  ApertureShape shape;
  std::string wavelength_map;
  std::uint32_t skip_bits = 0;  ///< dq bits that make a pixel unusable
  std::int64_t fit_half_width = 6, fit_smoothing = 10;
  std::string step;  ///< step kind, for messages

  std::string name(const std::string& base) const { return base + suffix; }
  /// Output image of the per-integration fitted centres (gaussian_fits only).
  std::string fit_image() const { return name("trace_fit"); }
};

/// dq_bits_to_skip as a mask; ConfigError for a bit outside 0..31.
std::uint32_t bit_mask(const std::vector<std::int64_t>& bits, const std::string& param);

/// From any parameter struct with the shared members.
template <class P>
ExtractionSetup setup_of(const P& p, std::string step) {
  ExtractionSetup s;
  s.dispersion = parse_dispersion(p.dispersion_axis);
  s.suffix = p.suffix;
  s.position = p.trace_position == "constant"        ? TracePosition::constant
               : p.trace_position == "gaussian_fits" ? TracePosition::gaussian_fits
                                                     : TracePosition::trace;
  s.trace_image = "trace_" + p.trace;
  s.aperture_center = p.aperture_center;
  s.shape.radius = p.aperture_radius;
  s.shape.left_width = p.aperture_left_width;
  s.shape.right_width = p.aperture_right_width;
  s.wavelength_map = p.wavelength_map;
  s.skip_bits = bit_mask(p.dq_bits_to_skip, "dq_bits_to_skip");
  s.fit_half_width = p.fit_half_width;
  s.fit_smoothing = p.fit_smoothing;
  s.step = std::move(step);
  return s;
}

/// Schema fields of the shared members, in the order help and docs show them.
template <class P>
std::vector<Field<P>> extraction_fields() {
  return {
      field(&P::dispersion_axis, std::string(dispersion_param), std::string(dispersion_doc), Choices{{"x", "y"}}),
      field(&P::suffix, "suffix",
            "Appended to every product name (flux{suffix}, wavelength{suffix}, ...), e.g. \"_order1\""),
      field(&P::trace_position, "trace_position",
            "Aperture centre per integration and dispersion index: 'trace' (the image trace_{trace} from the trace "
            "step), 'constant' (aperture_center), 'gaussian_fits' (a Gaussian fitted to each line of each "
            "integration near aperture_center, smoothed along the dispersion by a running median)",
            Choices{{"trace", "constant", "gaussian_fits"}}),
      field(&P::trace, "trace", "Order (trace name) whose image trace_{trace} gives the centres with trace_position = 'trace'"),
      field(&P::aperture_center, "aperture_center",
            "Spatial centre (pixel index along the cross-dispersion axis) for 'constant', and where "
            "'gaussian_fits' looks (ExoTiC-MIRI: column 36)",
            Range::at_least(0)),
      field(&P::aperture_radius, "aperture_radius",
            "Aperture [c - r, c + r] with exact fractions of the edge pixels (the notebook's aperture_extraction); "
            "unset: the whole-pixel box of aperture_left_width / aperture_right_width",
            Range::at_least(0.5)),
      field(&P::aperture_left_width, "aperture_left_width",
            "Box aperture without aperture_radius: whole pixels from round(c) - this (ExoTiC-MIRI)", Range::at_least(0)),
      field(&P::aperture_right_width, "aperture_right_width",
            "Box aperture without aperture_radius: whole pixels up to round(c) + this (ExoTiC-MIRI)",
            Range::at_least(0)),
      field(&P::wavelength_map, "wavelength_map",
            "Wavelength (micron) per pixel: a FITS file (SCI), @image or a number; averaged over the aperture's whole "
            "pixels at the time-median centre",
            Required{}),
      field(&P::dq_bits_to_skip, "dq_bits_to_skip",
            "JWST dq bit numbers (0 = do_not_use) that leave a pixel out of the extraction, like non-finite values; "
            "empty: only non-finite values are left out",
            Range::closed(0, 31)),
      field(&P::fit_half_width, "fit_half_width",
            "gaussian_fits: the fit uses the pixels within this many of aperture_center", Range::at_least(2)),
      field(&P::fit_smoothing, "fit_smoothing",
            "gaussian_fits: half-width (dispersion indices) of the running median through the fitted centres; 0: none",
            Range::at_least(0)),
  };
}

/// The reads and writes both steps declare: data, err, dq when bits are skipped, the trace
/// image, the wavelength map; flux, flux_error, wavelength, psf_sigma, extract_bad_pixels,
/// and trace_fit for gaussian_fits.
StepIO extraction_io(const ExtractionSetup& setup);

/// Checks the setup against the data (trace image shape, centre within the line, ...);
/// StepError naming the parameter.
void check_setup(const ExtractionSetup& setup, const Dataset& data);

/// Where the aperture is centred in each integration.
class CentreFinder {
 public:
  CentreFinder(const ExtractionSetup& setup, const Dataset& data);
  /// Centres of integration t (one per dispersion index) into `out`; `frame` is the data
  /// of that integration (used by gaussian_fits), `dq` its bits (or empty). NaN where none.
  void centres(std::size_t t, DispersedView<const float> frame, std::span<const std::uint32_t> dq,
               std::span<double> out);

 private:
  const ExtractionSetup& setup_;
  const Image* trace_ = nullptr;
  std::vector<double> xs_, ys_;
  std::vector<float> raw_, window_;
};

/// The time-median centre of every dispersion index, the same on every rank (from
/// replicated images: the trace image, or trace_fit for gaussian_fits).
std::vector<double> median_centres(const ExtractionSetup& setup, const Dataset& data);

/// Computes and writes the 1D image wavelength{suffix} (Combine::Identical) from the
/// wavelength map averaged over the aperture's whole pixels at the time-median centres.
void write_wavelengths(const ExtractionSetup& setup, StepContext& context);

/// Number of dispersion indices and spatial pixels per line.
inline std::size_t n_wave(const ExtractionSetup& s, const CubeShape& shape) {
  return s.dispersion == Dispersion::x ? shape.nx : shape.ny;
}
inline std::size_t n_spatial(const ExtractionSetup& s, const CubeShape& shape) {
  return s.dispersion == Dispersion::x ? shape.ny : shape.nx;
}

}  // namespace tessera::spectra
