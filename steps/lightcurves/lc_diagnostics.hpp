#pragma once
/// lc_diagnostics: how the light curves behave — sensitivity per wavelength (scatter over
/// predicted error), RMS against bin size, the Lomb–Scargle power spectrum of the white light
/// (JWST TSO notebook sections 5.5 and 5.6) and, given the in-event integrations, the event
/// depth per wavelength, per bin and in white light; all as data and as PNG plots.
/// See docs/lightcurves.md.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct LcDiagnosticsParams {
  std::string suffix;
  std::vector<std::vector<double>> out_of_event;
  std::optional<std::vector<std::vector<double>>> in_event;
  std::int64_t sensitivity_filter_width = 41;
  std::int64_t min_bin_size = 1;
  std::int64_t max_bin_size = 29;
  std::int64_t n_frequencies = 1000;
  std::optional<std::string> time;

  static Schema<LcDiagnosticsParams> schema() {
    return tessera::schema<LcDiagnosticsParams>(
        field(&LcDiagnosticsParams::suffix, "suffix",
              "Which light curves: reads lc{suffix}, white_light{suffix}, ... (lightcurves' suffix)"),
        field(&LcDiagnosticsParams::out_of_event, "out_of_event",
              "Out-of-event integrations as [first, last) 0-based index pairs (as given to lightcurves)",
              Range::at_least(0), Required{}),
        field(&LcDiagnosticsParams::in_event, "in_event",
              "In-event integrations as [first, last) pairs (e.g. the full-depth part of a transit); set: event "
              "depths per wavelength, per bin and in white light",
              Range::at_least(0)),
        field(&LcDiagnosticsParams::sensitivity_filter_width, "sensitivity_filter_width",
              "Width (odd, in wavelengths) of the median filter giving sensitivity_smoothed (notebook: 41)",
              Range::at_least(1)),
        field(&LcDiagnosticsParams::min_bin_size, "min_bin_size",
              "Smallest number of integrations per bin in the RMS-vs-bin-size curve (the notebook starts at 2)",
              Range::at_least(1)),
        field(&LcDiagnosticsParams::max_bin_size, "max_bin_size",
              "Largest number of integrations per bin in the RMS-vs-bin-size curve (notebook: 29)", Range::at_least(1)),
        field(&LcDiagnosticsParams::n_frequencies, "n_frequencies",
              "Frequencies of the periodogram, evenly spaced from 1/T (T: out-of-event time span) to the Nyquist "
              "frequency (notebook: 1000)",
              Range::at_least(1)),
        field(&LcDiagnosticsParams::time, "time",
              "Per-integration time vector (days) for the periodogram; unset: int_mid_bjd when present, else time"));
  }
};

/// RMS of the means of consecutive groups of n integrations, for each n (the notebook's
/// "RMS vs bin size", with means of whole groups rather than medians of n − 1).
struct RmsCurve {
  std::vector<double> bin_size;   ///< n, from min to max
  std::vector<double> rms;        ///< population std of the group means (NaN with fewer than 2 groups)
  std::vector<double> expected;   ///< rms[0]·sqrt(bin_size[0]/n): the 1/√N line through the first point
  std::vector<double> predicted;  ///< sqrt(mean(error²)/n): white noise of the stated errors
};

/// Groups are formed inside each run of consecutive masked integrations (so no group spans an
/// event), from the run's start; a run's last incomplete group is left out, as are non-finite
/// values (dropped before grouping).
RmsCurve rms_vs_bin_size(std::span<const double> values, std::span<const double> errors, const std::vector<char>& mask,
                         std::size_t min_size, std::size_t max_size);

/// Event depth from a relative-flux series: d = 1 − mean(in)/mean(out), with error
/// sqrt(var_in/(n_in·b²) + a²·var_out/(n_out·b⁴)) (a, b the in- and out-of-event means,
/// sample variances) — for a, b ≈ 1 this is sqrt(var_in/n_in + var_out/n_out). NaN with fewer
/// than two finite values on either side.
struct Depth {
  double value, error;
};
Depth event_depth(std::span<const double> relative, const std::vector<char>& in_event,
                  const std::vector<char>& out_of_event);

/// Population standard deviation of the finite values over the median finite error: the
/// notebook's sensitivity, for one wavelength's series.
double sensitivity_ratio(std::span<const double> values, std::span<const double> errors, const std::vector<char>& mask);

struct LcDiagnostics {
  static constexpr std::string_view name = "lc_diagnostics";
  static constexpr std::string_view summary =
      "Light-curve diagnostics: sensitivity per wavelength, RMS vs bin size, Lomb-Scargle periodogram of the white "
      "light, event depths; data and plots";
  using Params = LcDiagnosticsParams;
  static Access access(const Params&) { return Access::Reduce; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
