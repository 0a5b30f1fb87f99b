#pragma once
/// align_spectra (ExoTiC-MIRI AlignSpectraStep): the shift of every integration's spectrum
/// along the dispersion and of its spatial profile across it, each measured by
/// cross-correlation against the time median, and optionally the spectra re-aligned by the
/// dispersion shift. See docs/lightcurves.md.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steps/common/spectral_geometry.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct AlignSpectraParams {
  std::string dispersion_axis = "y";
  std::string suffix;
  bool align_spectra = true;
  std::optional<std::vector<std::int64_t>> spatial_range;
  std::optional<std::vector<std::int64_t>> dispersion_range;
  double max_shift = 5.0;
  std::int64_t highpass_width = 15;
  std::string interpolation = "linear";

  static Schema<AlignSpectraParams> schema() {
    return tessera::schema<AlignSpectraParams>(
        field(&AlignSpectraParams::dispersion_axis, std::string(spectra::dispersion_param),
              std::string(spectra::dispersion_doc), Choices{{"x", "y"}}),
        field(&AlignSpectraParams::suffix, "suffix",
              "Which spectra: reads flux{suffix}, flux_error{suffix}; writes x_shift{suffix}, y_shift{suffix}"),
        field(&AlignSpectraParams::align_spectra, "align_spectra",
              "Re-align flux{suffix} and flux_error{suffix} by the measured dispersion-direction shift (ExoTiC: "
              "align_spectra)"),
        field(&AlignSpectraParams::spatial_range, "spatial_range",
              "[first, last) spatial (cross-dispersion) indices of the profile that is cross-correlated; unset: all",
              Range::at_least(0)),
        field(&AlignSpectraParams::dispersion_range, "dispersion_range",
              "[first, last) dispersion indices summed into the spatial profile; unset: those where flux{suffix} is "
              "finite in some integration",
              Range::at_least(0)),
        field(&AlignSpectraParams::max_shift, "max_shift",
              "Largest shift searched for, in pixels, in either direction; a correlation peak beyond it gives NaN",
              Range::above(0)),
        field(&AlignSpectraParams::highpass_width, "highpass_width",
              "Spectra are cross-correlated after subtracting their running mean over this many pixels (keeps the "
              "spectral features, drops the continuum's shape); 1: no high-pass",
              Range::at_least(1)),
        field(&AlignSpectraParams::interpolation, "interpolation",
              "How spectra are re-sampled when re-aligned: linear, or cubic (Keys 1981 cubic convolution)",
              Choices{{"linear", "cubic"}}));
  }
};

/// Reusable buffers for cross_correlation_shift.
struct ShiftScratch {
  std::vector<double> coefficients, shifted;
};

/// `in` minus its running mean over `width` (odd; finite values only, window cut at the
/// ends), then minus the mean of the result; non-finite entries become 0 (no weight).
/// width 1 only subtracts the overall mean.
void highpass(std::span<const float> in, std::size_t width, std::vector<double>& out);

/// The shift s (in samples, |s| <= max_shift) with signal(i) ≈ reference(i − s), i.e. how far
/// `signal` has moved towards larger indices. Both are prepared series of equal length
/// (mean-subtracted, 0 where nothing is known, see highpass). The integer lag of the largest
/// cross-correlation Σ_i reference(i)·signal(i + k) is refined by a parabola through the
/// peak and its neighbours, then by iterating: the signal is re-sampled by the current
/// estimate (cubic B-spline interpolation, Unser 1999) and the residual shift measured with
/// the same parabola over interior samples, until it is below 1e-6 samples (at most 6 times).
/// The parabola alone is biased towards whole samples (0.02–0.03 px for a σ = 1 px peak); the
/// residual of an almost aligned pair is measured without that bias because the correlation
/// is then nearly symmetric. NaN when the largest correlation lies at the edge of the search
/// (|k| = floor(max_shift) + 1), the estimate leaves ±max_shift, or nothing overlaps.
double cross_correlation_shift(std::span<const double> reference, std::span<const double> signal, double max_shift,
                               ShiftScratch& scratch);

enum class Interpolation { linear, cubic };

/// out[i] = in(i + s), interpolated; NaN where i + s lies outside [0, n − 1] or a sample the
/// interpolation needs is not finite. `out` must not alias `in`.
void shift_series(std::span<const float> in, double s, Interpolation how, std::span<float> out);

struct AlignSpectra {
  static constexpr std::string_view name = "align_spectra";
  static constexpr std::string_view summary =
      "Measure each integration's dispersion and cross-dispersion shift by cross-correlation; optionally re-align "
      "the spectra";
  using Params = AlignSpectraParams;
  /// Frames: each integration's spatial profile from the data cube; Reduce: the shifts.
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Reduce}; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
