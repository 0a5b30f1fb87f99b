#include "steps/lightcurves/lightcurves.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Names {
  std::string flux, flux_error, wavelength, lc, lc_error, white, white_error, white_replaced, binned, binned_error,
      bin_wavelength, bin_lo, bin_hi;
  explicit Names(const std::string& s)
      : flux("flux" + s), flux_error("flux_error" + s), wavelength("wavelength" + s), lc("lc" + s),
        lc_error("lc_error" + s), white("white_light" + s), white_error("white_light_error" + s),
        white_replaced("white_light_replaced" + s), binned("lc_binned" + s), binned_error("lc_binned_error" + s),
        bin_wavelength("bin_wavelength" + s), bin_lo("bin_lo" + s), bin_hi("bin_hi" + s) {}
};

const Image& find_image(StepContext& context, const std::string& name) {
  const auto& images = context.data().images();
  auto it = images.find(name);
  if (it == images.end())
    throw StepError("lightcurves: there is no image '" + name +
                    "'; run an extraction step (extract_box, extract_optimal) with the same suffix first");
  return it->second;
}

/// Gives a declared image its run-time shape (the number of wavelengths and bins is only
/// known from the data), keeping its dimension names.
Image& shaped(StepContext& context, const std::string& name, std::size_t ny, std::size_t nx, float fill) {
  Image& image = context.image(name);
  image.ny = ny;
  image.nx = nx;
  image.values.assign(ny * nx, fill);
  return image;
}

/// Wavelength bins: [lo, hi) and the used columns (indices into CorrectedSpectra::columns)
/// falling in each.
struct Bins {
  std::vector<double> lo, hi;
  std::vector<std::vector<std::size_t>> members;
};

Bins make_bins(const LightcurvesParams& params, const std::vector<double>& wavelength) {
  Bins bins;
  if (params.bins) {
    for (const auto& pair : *params.bins) {
      if (pair.size() != 2 || !(pair[0] < pair[1]))
        throw ConfigError("lightcurves: bins: each bin must be [low, high] with low < high (micron), got " +
                          std::to_string(pair.size()) + " numbers" +
                          (pair.size() == 2 ? " [" + std::to_string(pair[0]) + ", " + std::to_string(pair[1]) + "]" : ""));
      bins.lo.push_back(pair[0]);
      bins.hi.push_back(pair[1]);
    }
    bins.members.resize(bins.lo.size());
    for (std::size_t b = 0; b < bins.lo.size(); ++b)
      for (std::size_t k = 0; k < wavelength.size(); ++k)
        if (wavelength[k] >= bins.lo[b] && wavelength[k] < bins.hi[b]) bins.members[b].push_back(k);
    return bins;
  }
  if (wavelength.empty()) return bins;
  const auto [lo_it, hi_it] = std::minmax_element(wavelength.begin(), wavelength.end());
  const double lo = *lo_it, hi = *hi_it;
  std::size_t n = static_cast<std::size_t>(params.n_bins);
  double width = (hi - lo) / static_cast<double>(n);
  if (params.bin_width) {
    width = *params.bin_width;
    n = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil((hi - lo) / width - 1e-9)));
  }
  if (!(width > 0)) {  // a single wavelength
    n = 1;
    width = 1e-6;
  }
  for (std::size_t b = 0; b < n; ++b) {
    bins.lo.push_back(lo + width * static_cast<double>(b));
    bins.hi.push_back(lo + width * static_cast<double>(b + 1));
  }
  bins.members.resize(n);
  // The longest wavelength belongs to the last bin (its upper edge would exclude it).
  for (std::size_t k = 0; k < wavelength.size(); ++k)
    bins.members[std::min(n - 1, static_cast<std::size_t>((wavelength[k] - lo) / width))].push_back(k);
  return bins;
}

}  // namespace

double nan_median(std::vector<double>& v) {
  const auto end = std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); });
  const auto n = static_cast<std::size_t>(end - v.begin());
  if (n == 0) return kNaN;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(v.begin(), mid, end);
  if (n % 2) return *mid;
  return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

std::vector<float> transposed(std::span<const float> image, std::size_t ny, std::size_t nx) {
  std::vector<float> out(ny * nx);
  constexpr std::size_t block = 64;
  for (std::size_t y0 = 0; y0 < ny; y0 += block)
    for (std::size_t x0 = 0; x0 < nx; x0 += block)
      for (std::size_t x = x0; x < std::min(nx, x0 + block); ++x)
        for (std::size_t y = y0; y < std::min(ny, y0 + block); ++y) out[x * ny + y] = image[y * nx + x];
  return out;
}

std::vector<char> event_mask(const std::vector<std::vector<double>>& ranges, std::size_t nt, const std::string& what) {
  if (ranges.empty())
    throw ConfigError(what + ": give at least one [first, last) range of integrations, e.g. [[0, 40]]");
  std::vector<char> mask(nt, 0);
  for (const auto& r : ranges) {
    const bool whole = r.size() == 2 && r[0] == std::floor(r[0]) && r[1] == std::floor(r[1]);
    if (!whole || r[0] < 0 || r[0] >= r[1] || r[1] > static_cast<double>(nt)) {
      char text[256];
      if (r.size() == 2)
        std::snprintf(text, sizeof text, "[%g, %g]", r[0], r[1]);
      else
        std::snprintf(text, sizeof text, "%zu numbers", r.size());
      throw ConfigError(what + ": each range must be [first, last) integration indices with 0 <= first < last <= " +
                        std::to_string(nt) + " (the number of integrations), got " + text);
    }
    for (auto t = static_cast<std::size_t>(r[0]); t < static_cast<std::size_t>(r[1]); ++t) mask[t] = 1;
  }
  return mask;
}

void median_filter_reflect(std::span<const float> in, std::size_t size, std::span<float> out, std::vector<float>& ext,
                           std::vector<float>& window) {
  const std::size_t n = in.size();
  if (n == 0) return;
  const std::size_t r = size / 2;
  // Reflected copy: index k of the input, k in [−r, n + r), folded with period 2n.
  ext.resize(n + 2 * r);
  const auto period = static_cast<std::ptrdiff_t>(2 * n);
  for (std::size_t e = 0; e < ext.size(); ++e) {
    std::ptrdiff_t k = static_cast<std::ptrdiff_t>(e) - static_cast<std::ptrdiff_t>(r);
    k = ((k % period) + period) % period;
    if (k >= static_cast<std::ptrdiff_t>(n)) k = period - 1 - k;
    ext[e] = in[static_cast<std::size_t>(k)];
  }
  // The window ext[i, i + 2r] kept sorted (finite values only): one removal and one insertion
  // per step, each a short linear scan-and-shift (the windows are small: 11 or 41).
  window.assign(2 * r + 1, 0.0f);
  float* w = window.data();
  std::size_t m = 0;
  auto insert = [&](float v) {
    if (!std::isfinite(v)) return;
    std::size_t k = m++;
    while (k > 0 && w[k - 1] > v) {
      w[k] = w[k - 1];
      --k;
    }
    w[k] = v;
  };
  auto remove = [&](float v) {
    if (!std::isfinite(v)) return;
    std::size_t k = 0;
    while (w[k] != v) ++k;
    for (--m; k < m; ++k) w[k] = w[k + 1];
  };
  for (std::size_t e = 0; e < 2 * r; ++e) insert(ext[e]);
  for (std::size_t i = 0; i < n; ++i) {
    insert(ext[i + 2 * r]);
    out[i] = m == 0 ? std::numeric_limits<float>::quiet_NaN()
                    : (m % 2 ? w[m / 2] : 0.5f * (w[m / 2 - 1] + w[m / 2]));
    remove(ext[i]);
  }
}

std::vector<double> out_of_event_medians(std::span<const float> image, std::size_t nt, std::size_t nw,
                                         const std::vector<std::size_t>& columns,
                                         const std::vector<char>& out_of_event) {
  std::vector<double> medians(nw, kNaN), column;
  const std::vector<float> by_column = transposed(image, nt, nw);
  for (std::size_t j : columns) {
    column.clear();
    for (std::size_t t = 0; t < nt; ++t)
      if (out_of_event[t]) column.push_back(by_column[j * nt + t]);
    medians[j] = nan_median(column);
  }
  return medians;
}

CorrectedSpectra replace_outlying_bins(std::span<const float> flux, std::span<const float> error, std::size_t nt,
                                       std::size_t nw, const std::vector<std::size_t>& candidates,
                                       const std::vector<char>& out_of_event, double sigma, std::size_t width,
                                       bool compare_filtered) {
  return replace_outlying_bins(flux, error, nt, nw, candidates, out_of_event_medians(flux, nt, nw, candidates, out_of_event),
                               out_of_event_medians(error, nt, nw, candidates, out_of_event), sigma, width,
                               compare_filtered);
}

CorrectedSpectra replace_outlying_bins(std::span<const float> flux, std::span<const float> error, std::size_t nt,
                                       std::size_t nw, const std::vector<std::size_t>& candidates,
                                       const std::vector<double>& flux_medians, const std::vector<double>& error_medians,
                                       double sigma, std::size_t width, bool compare_filtered) {
  CorrectedSpectra out;
  out.nt = nt;
  std::vector<float> median_flux, median_error;
  for (std::size_t j : candidates) {
    if (!std::isfinite(flux_medians[j]) || !std::isfinite(error_medians[j])) continue;
    out.columns.push_back(j);
    median_flux.push_back(static_cast<float>(flux_medians[j]));
    median_error.push_back(static_cast<float>(error_medians[j]));
  }
  const std::size_t nc = out.columns.size();
  out.flux.assign(nt * nc, kNaNf);
  out.error.assign(nt * nc, kNaNf);
  out.replaced.assign(nt * nc, 0);
  out.replaced_count.assign(nt, 0.0);
  if (nc == 0) return out;

  std::vector<float> ext, window, master(nc), master_error(nc), row(nc), row_error(nc), filtered(nc),
      filtered_error(nc);
  std::vector<double> ratios;
  median_filter_reflect(median_flux, width, master, ext, window);
  median_filter_reflect(median_error, width, master_error, ext, window);
  for (std::size_t t = 0; t < nt; ++t) {
    for (std::size_t k = 0; k < nc; ++k) {
      row[k] = flux[t * nw + out.columns[k]];
      row_error[k] = error[t * nw + out.columns[k]];
    }
    median_filter_reflect(row, width, filtered, ext, window);
    median_filter_reflect(row_error, width, filtered_error, ext, window);
    // The master filtered spectrum scaled to this integration by the median ratio.
    ratios.clear();
    for (std::size_t k = 0; k < nc; ++k) ratios.push_back(static_cast<double>(master[k]) / filtered[k]);
    const double ratio = nan_median(ratios);
    ratios.clear();
    for (std::size_t k = 0; k < nc; ++k) ratios.push_back(static_cast<double>(master_error[k]) / filtered_error[k]);
    const double ratio_error = nan_median(ratios);
    float* f = out.flux.data() + t * nc;
    float* e = out.error.data() + t * nc;
    char* hit = out.replaced.data() + t * nc;
    for (std::size_t k = 0; k < nc; ++k) {
      // The notebook compares with the filtered master; the unfiltered one keeps permanent
      // features of the spectrum (a bad column) out of the outliers.
      const double model = (compare_filtered ? master[k] : median_flux[k]) / ratio;
      const double model_error = (compare_filtered ? master_error[k] : median_error[k]) / ratio_error;
      const double deviation = std::fabs(row[k] - model) / model_error;
      // A non-finite flux counts as outlying (the notebook has none); so does everything
      // when the scaling itself failed, which leaves NaN.
      if (deviation <= sigma) {
        f[k] = row[k];
        e[k] = row_error[k];
      } else {
        f[k] = static_cast<float>(model);
        e[k] = static_cast<float>(model_error);
        hit[k] = 1;
        out.replaced_count[t] += 1;
      }
    }
  }
  return out;
}

SummedCurve summed_curve(const CorrectedSpectra& spectra, const std::vector<std::size_t>& which,
                         const std::vector<char>& out_of_event) {
  const std::size_t nt = spectra.nt, nc = spectra.columns.size();
  SummedCurve curve{std::vector<double>(nt, kNaN), std::vector<double>(nt, kNaN)};
  if (which.empty()) return curve;
  for (std::size_t t = 0; t < nt; ++t) {
    double sum = 0, variance = 0;
    for (std::size_t k : which) {
      sum += spectra.flux[t * nc + k];
      variance += static_cast<double>(spectra.error[t * nc + k]) * spectra.error[t * nc + k];
    }
    curve.value[t] = sum;
    curve.error[t] = std::sqrt(variance);
  }
  std::vector<double> reference;
  for (std::size_t t = 0; t < nt; ++t)
    if (out_of_event[t]) reference.push_back(curve.value[t]);
  const double norm = nan_median(reference);
  for (std::size_t t = 0; t < nt; ++t) {
    curve.value[t] = norm > 0 ? curve.value[t] / norm : kNaN;
    curve.error[t] = norm > 0 ? curve.error[t] / norm : kNaN;
  }
  return curve;
}

StepIO Lightcurves::io(const Params& params) {
  const Names n(params.suffix);
  const std::string hint = "run extract_box or extract_optimal with the same suffix first";
  StepIO io;
  io.reads = {{DataKind::Image, n.flux, hint}, {DataKind::Image, n.flux_error, hint},
              {DataKind::Image, n.wavelength, hint}};
  // Per-wavelength and per-bin images are (time, wavelength) and (time, bin); their widths are
  // set when the step runs (image_nx = 1 is declared; the step resizes them identically on every rank).
  auto image = [](std::string name, std::string units, std::string long_name, std::string dim_y, std::string dim_x) {
    DataOut out{DataKind::Image, {std::move(name), std::move(units), std::move(long_name)}};
    out.combine = Combine::Identical;
    out.image_ny = dim_y.empty() ? 1 : DataOut::frames;
    out.image_nx = 1;
    out.dim_y = std::move(dim_y);
    out.dim_x = std::move(dim_x);
    return out;
  };
  auto vector = [](std::string name, std::string units, std::string long_name, bool integer) {
    DataOut out{DataKind::FrameVector, {std::move(name), std::move(units), std::move(long_name)}};
    out.combine = Combine::Identical;
    out.integer = integer;
    return out;
  };
  io.writes = {
      image(n.lc, "ppm", "relative flux per wavelength minus 1 (flux / out-of-event median - 1)", "time", n.wavelength),
      image(n.lc_error, "ppm", "error of lc", "time", n.wavelength),
      vector(n.white, "1", "white-light curve (relative to the out-of-event median)", false),
      vector(n.white_error, "1", "error of the white-light curve", false),
      vector(n.white_replaced, "1", "wavelength bins replaced in the white-light sum", true),
      image(n.bin_wavelength, "micron", "centre of the wavelength bin", "", n.bin_wavelength),
      image(n.bin_lo, "micron", "lower edge of the wavelength bin", "", n.bin_wavelength),
      image(n.bin_hi, "micron", "upper edge of the wavelength bin", "", n.bin_wavelength),
      image(n.binned, "ppm", "wavelength-binned light curve minus 1", "time", n.bin_wavelength),
      image(n.binned_error, "ppm", "error of lc_binned", "time", n.bin_wavelength),
  };
  return io;
}

void Lightcurves::run(const Params& params, StepContext& context) {
  const Names names(params.suffix);
  if (params.median_filter_width % 2 == 0)
    throw ConfigError("lightcurves: median_filter_width: expected an odd width, got " +
                      std::to_string(params.median_filter_width));
  const Image& flux = find_image(context, names.flux);
  const Image& error = find_image(context, names.flux_error);
  const Image& wavelength = find_image(context, names.wavelength);
  const std::size_t nt = flux.ny, nw = flux.nx;
  if (error.ny != nt || error.nx != nw)
    throw StepError("lightcurves: '" + names.flux_error + "' (" + std::to_string(error.ny) + " x " +
                    std::to_string(error.nx) + ") and '" + names.flux + "' (" + std::to_string(nt) + " x " +
                    std::to_string(nw) + ") differ in shape");
  if (wavelength.values.size() != nw)
    throw StepError("lightcurves: '" + names.wavelength + "' has " + std::to_string(wavelength.values.size()) +
                    " values, '" + names.flux + "' " + std::to_string(nw) + " wavelengths");
  const std::vector<char> out_of_event = event_mask(params.out_of_event, nt, "lightcurves: out_of_event");

  // Columns with a wavelength; the others (outside the trace) are skipped everywhere.
  double lowest = -std::numeric_limits<double>::infinity(), highest = std::numeric_limits<double>::infinity();
  if (params.wavelength_range) {
    if (params.wavelength_range->size() != 2 || !((*params.wavelength_range)[0] < (*params.wavelength_range)[1]))
      throw ConfigError("lightcurves: wavelength_range: expected [low, high] with low < high (micron)");
    lowest = (*params.wavelength_range)[0];
    highest = (*params.wavelength_range)[1];
  }
  std::vector<std::size_t> candidates;
  for (std::size_t j = 0; j < nw; ++j)
    if (std::isfinite(wavelength.values[j]) && wavelength.values[j] >= lowest && wavelength.values[j] < highest)
      candidates.push_back(j);

  // Section 5.4: each column divided by its out-of-event median, in ppm.
  Image& lc = shaped(context, names.lc, nt, nw, kNaNf);
  Image& lc_error = shaped(context, names.lc_error, nt, nw, kNaNf);
  const std::vector<double> flux_medians = out_of_event_medians(flux.values, nt, nw, candidates, out_of_event);
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t j : candidates) {
      const double median = flux_medians[j];
      if (!(median > 0)) continue;
      lc.values[t * nw + j] = static_cast<float>((flux.values[t * nw + j] / median - 1.0) * 1e6);
      lc_error.values[t * nw + j] = static_cast<float>(error.values[t * nw + j] / median * 1e6);
    }

  // Section 5.6: outlying bins replaced, then summed.
  const CorrectedSpectra spectra =
      replace_outlying_bins(flux.values, error.values, nt, nw, candidates, flux_medians,
                            out_of_event_medians(error.values, nt, nw, candidates, out_of_event), params.outlier_sigma,
                            static_cast<std::size_t>(params.median_filter_width), params.outlier_reference == "filtered");
  if (spectra.columns.empty())
    throw StepError("lightcurves: no wavelength has a finite wavelength, flux and error out of event in '" +
                    names.flux + "'");
  std::vector<std::size_t> all(spectra.columns.size());
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
  const SummedCurve white = summed_curve(spectra, all, out_of_event);
  auto& white_values = context.frame_vector(names.white).values;
  auto& white_errors = context.frame_vector(names.white_error).values;
  auto& replaced = context.frame_vector(names.white_replaced).values;
  white_values = white.value;
  white_errors = white.error;
  replaced = spectra.replaced_count;

  // Binned curves from the same corrected spectra.
  std::vector<double> used_wavelength;
  for (std::size_t j : spectra.columns) used_wavelength.push_back(wavelength.values[j]);
  const Bins bins = make_bins(params, used_wavelength);
  const std::size_t nb = bins.lo.size();
  Image& centre = shaped(context, names.bin_wavelength, 1, nb, kNaNf);
  Image& lo = shaped(context, names.bin_lo, 1, nb, kNaNf);
  Image& hi = shaped(context, names.bin_hi, 1, nb, kNaNf);
  Image& binned = shaped(context, names.binned, nt, nb, kNaNf);
  Image& binned_error = shaped(context, names.binned_error, nt, nb, kNaNf);
  std::size_t empty = 0;
  for (std::size_t b = 0; b < nb; ++b) {
    centre.values[b] = static_cast<float>(0.5 * (bins.lo[b] + bins.hi[b]));
    lo.values[b] = static_cast<float>(bins.lo[b]);
    hi.values[b] = static_cast<float>(bins.hi[b]);
    if (bins.members[b].empty()) {
      ++empty;
      continue;
    }
    const SummedCurve curve = summed_curve(spectra, bins.members[b], out_of_event);
    for (std::size_t t = 0; t < nt; ++t) {
      binned.values[t * nb + b] = static_cast<float>((curve.value[t] - 1.0) * 1e6);
      binned_error.values[t * nb + b] = static_cast<float>(curve.error[t] * 1e6);
    }
  }

  double total = 0;
  for (double r : spectra.replaced_count) total += r;
  char text[256];
  std::snprintf(text, sizeof text, "  %zu wavelengths used of %zu; %.0f bins replaced in the white light; %zu bins%s",
                spectra.columns.size(), nw, total, nb,
                empty ? (" (" + std::to_string(empty) + " without any wavelength)").c_str() : "");
  context.log().info(text);
}

}  // namespace tessera::steps
