#pragma once
/// lightcurves: spectroscopic light curves (time × wavelength, ppm), the white-light curve
/// after replacing outlying wavelength bins, and light curves binned in wavelength — the JWST
/// TSO notebook's sections 5.4 and 5.6. See docs/lightcurves.md.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct LightcurvesParams {
  std::string suffix;
  std::vector<std::vector<double>> out_of_event;
  double outlier_sigma = 10.0;
  std::int64_t median_filter_width = 11;
  std::string outlier_reference = "median";
  std::optional<std::vector<double>> wavelength_range;
  std::optional<std::vector<std::vector<double>>> bins;
  std::optional<double> bin_width;
  std::int64_t n_bins = 20;

  static Schema<LightcurvesParams> schema() {
    return tessera::schema<LightcurvesParams>(
        field(&LightcurvesParams::suffix, "suffix",
              "Which spectra: reads flux{suffix}, flux_error{suffix}, wavelength{suffix}; products end in {suffix}"),
        field(&LightcurvesParams::out_of_event, "out_of_event",
              "Out-of-event integrations as [first, last) 0-based index pairs, e.g. [[0, 40], [160, 200]]; their "
              "median is the normalisation",
              Range::at_least(0), Required{}),
        field(&LightcurvesParams::outlier_sigma, "outlier_sigma",
              "White light: a bin further than this many errors from the scaled, median-filtered out-of-event "
              "spectrum is replaced by it (notebook: 10)",
              Range::above(0)),
        field(&LightcurvesParams::median_filter_width, "median_filter_width",
              "Width (odd, in wavelength bins) of the median filter applied to the spectra (notebook: 11)",
              Range::at_least(1)),
        field(&LightcurvesParams::outlier_reference, "outlier_reference",
              "White light: what a bin is compared with — median: the out-of-event median spectrum itself (a "
              "column that is always low, e.g. a bad pixel in the aperture, is not an outlier); filtered: its median "
              "filter, as the notebook (such columns are replaced in every integration)",
              Choices{{"median", "filtered"}}),
        field(&LightcurvesParams::wavelength_range, "wavelength_range",
              "[low, high) in micron: only these wavelengths make light curves, the white light and bins (e.g. "
              "MIRI LRS's 5-12 um, leaving out rows without starlight); unset: every finite wavelength"),
        field(&LightcurvesParams::bins, "bins",
              "Wavelength bins as [low, high) pairs in micron, e.g. [[0.9, 1.1], [1.1, 1.3]]; unset: uniform bins "
              "(bin_width or n_bins)"),
        field(&LightcurvesParams::bin_width, "bin_width",
              "When bins is unset: uniform bins this wide (micron) from the shortest wavelength; unset: n_bins bins",
              Range::above(0)),
        field(&LightcurvesParams::n_bins, "n_bins",
              "When bins and bin_width are unset: this many equal bins over the wavelength range", Range::at_least(1)));
  }
};

/// A mask over nt integrations (1 = in one of the ranges) from [first, last) pairs. Throws
/// ConfigError naming `what` (e.g. "lightcurves: out_of_event") for a pair that is not two
/// whole numbers with 0 <= first < last <= nt, and for an empty list.
std::vector<char> event_mask(const std::vector<std::vector<double>>& ranges, std::size_t nt, const std::string& what);

/// scipy.ndimage.median_filter(in, size) with its default 'reflect' edges (d c b a | a b c d |
/// d c b a), `size` odd; non-finite values are left out of each window (NaN where a window has
/// none). `ext` and `window` are scratch.
void median_filter_reflect(std::span<const float> in, std::size_t size, std::span<float> out, std::vector<float>& ext,
                           std::vector<float>& window);

/// Spectra after the notebook's outlier replacement (section 5.6), over the columns used.
struct CorrectedSpectra {
  std::size_t nt = 0;
  std::vector<std::size_t> columns;  ///< image columns used (finite wavelength and out-of-event medians)
  std::vector<float> flux, error;    ///< nt × columns.size()
  std::vector<char> replaced;        ///< nt × columns.size(): 1 where the bin was replaced
  std::vector<double> replaced_count;///< per integration
};

/// For every integration: m = median_filter(flux_t), the out-of-event median spectrum's
/// median filter M scaled by 1/median(M/m) (errors alike with their own ratio), and every bin
/// with |flux − scaled M| / scaled M_err > sigma — or a non-finite flux — replaced by the
/// scaled M and its error. `flux` and `error` are nt × nw row-major; `candidates` the columns
/// to consider (finite wavelength); columns whose out-of-event median flux or error is not
/// finite are dropped. The median filters run over the used columns in order. With
/// `compare_filtered` false, bins are compared with (and replaced by) the unfiltered
/// out-of-event median spectrum under the same scaling, so only transient outliers count.
CorrectedSpectra replace_outlying_bins(std::span<const float> flux, std::span<const float> error, std::size_t nt,
                                       std::size_t nw, const std::vector<std::size_t>& candidates,
                                       const std::vector<char>& out_of_event, double sigma, std::size_t width,
                                       bool compare_filtered = true);
/// The same with the out-of-event medians of every column given (see out_of_event_medians).
CorrectedSpectra replace_outlying_bins(std::span<const float> flux, std::span<const float> error, std::size_t nt,
                                       std::size_t nw, const std::vector<std::size_t>& candidates,
                                       const std::vector<double>& flux_medians, const std::vector<double>& error_medians,
                                       double sigma, std::size_t width, bool compare_filtered = true);

/// numpy.nanmedian over the out-of-event integrations of each of `columns` of an nt × nw
/// image; NaN for the other columns.
std::vector<double> out_of_event_medians(std::span<const float> image, std::size_t nt, std::size_t nw,
                                         const std::vector<std::size_t>& columns, const std::vector<char>& out_of_event);

/// Σ flux over some used columns (indices into CorrectedSpectra::columns), errors in
/// quadrature, both divided by the out-of-event median of the sum (NaN if it is not > 0).
struct SummedCurve {
  std::vector<double> value, error;
};
SummedCurve summed_curve(const CorrectedSpectra& spectra, const std::vector<std::size_t>& which,
                         const std::vector<char>& out_of_event);

/// Median of the finite values (numpy.nanmedian); NaN if none. Reorders `v`.
double nan_median(std::vector<double>& v);

/// The ny × nx row-major image as nx × ny (columns contiguous), in cache-sized blocks.
std::vector<float> transposed(std::span<const float> image, std::size_t ny, std::size_t nx);

struct Lightcurves {
  static constexpr std::string_view name = "lightcurves";
  static constexpr std::string_view summary =
      "Spectroscopic light curves (ppm), the white-light curve with outlying bins replaced, and wavelength-binned "
      "curves, normalised by the out-of-event median";
  using Params = LightcurvesParams;
  static Access access(const Params&) { return Access::Reduce; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
