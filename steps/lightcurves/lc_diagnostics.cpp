#include "steps/lightcurves/lc_diagnostics.hpp"

#include <plplot/plplot.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <system_error>

#include "steps/common/lomb_scargle.hpp"
#include "steps/common/png_plot.hpp"
#include "steps/lightcurves/lightcurves.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();

struct Names {
  std::string lc, lc_error, wavelength, white, white_error, white_replaced, binned, binned_error, bin_wavelength,
      sensitivity, sensitivity_smoothed, bin_size, rms, rms_expected, rms_predicted, frequency, power, depth,
      depth_error, binned_depth, binned_depth_error, white_depth, white_depth_error;
  std::string suffix;
  explicit Names(const std::string& s)
      : lc("lc" + s), lc_error("lc_error" + s), wavelength("wavelength" + s), white("white_light" + s),
        white_error("white_light_error" + s), white_replaced("white_light_replaced" + s), binned("lc_binned" + s),
        binned_error("lc_binned_error" + s), bin_wavelength("bin_wavelength" + s), sensitivity("sensitivity" + s),
        sensitivity_smoothed("sensitivity_smoothed" + s), bin_size("bin_size" + s), rms("rms" + s),
        rms_expected("rms_expected" + s), rms_predicted("rms_predicted" + s),
        frequency("periodogram_frequency" + s), power("periodogram_power" + s), depth("depth" + s),
        depth_error("depth_error" + s), binned_depth("binned_depth" + s), binned_depth_error("binned_depth_error" + s),
        white_depth("white_light_depth" + s), white_depth_error("white_light_depth_error" + s), suffix(s) {}
};

const Image& find_image(StepContext& context, const std::string& name) {
  const auto& images = context.data().images();
  auto it = images.find(name);
  if (it == images.end())
    throw StepError("lc_diagnostics: there is no image '" + name + "'; run lightcurves with the same suffix first");
  return it->second;
}

const FrameVector& find_vector(StepContext& context, const std::string& name, const std::string& hint) {
  const auto& vectors = context.data().frame_vectors();
  auto it = vectors.find(name);
  if (it == vectors.end()) throw StepError("lc_diagnostics: there is no per-integration vector '" + name + "'; " + hint);
  return it->second;
}

Image& shaped(StepContext& context, const std::string& name, std::size_t nx) {
  Image& image = context.image(name);
  image.ny = 1;
  image.nx = nx;
  image.values.assign(nx, kNaNf);
  return image;
}

/// Column j of an image given column-major (see transposed) as doubles.
void column_of(const std::vector<float>& by_column, std::size_t nt, std::size_t j, std::vector<double>& out) {
  out.assign(by_column.begin() + static_cast<std::ptrdiff_t>(j * nt),
             by_column.begin() + static_cast<std::ptrdiff_t>((j + 1) * nt));
}

// ---------------------------------------------------------------------------------------
// Plots. png_plot draws linear axes only; the log-log plots (RMS vs bin size, periodogram)
// are drawn here with PLplot directly, in the same manner (own stream, errors as IoError).

int throw_on_plplot_exit(const char* message) { throw IoError(std::string("PLplot: ") + (message ? message : "")); }

struct LogSeries {
  std::string label;
  std::vector<double> x, y;
  bool points = false;
  int colour = 0;      ///< index into png_plot's series palette
  int line_style = 1;  ///< PLplot pllsty: 1 solid, 2 dashed, ...
};

/// One PLplot stream from plinit to plend1; restores the caller's stream.
class LogStream {
 public:
  LogStream(const std::string& file, int width, int height) : exceptions_(std::uncaught_exceptions()) {
    plsexit(throw_on_plplot_exit);
    plgstrm(&previous_);
    plmkstrm(&stream_);
    if (stream_ < 0) throw IoError("PLplot: no free plot stream");
    open_ = true;
    plsdev("pngcairo");
    plsfnam(file.c_str());
    plspage(0.0, 0.0, width, height, 0, 0);
    plscolbg(255, 255, 255);
    plscmap0n(16);
    plscol0(0, 255, 255, 255);
    plscol0(1, 0, 0, 0);
    for (int i = 0; i < 10; ++i) {
      const auto c = plot::series_colour(i);
      plscol0(2 + i, c[0], c[1], c[2]);
    }
    plinit();
    pladv(0);
    PLFLT xmin, xmax, ymin, ymax;
    plgspa(&xmin, &xmax, &ymin, &ymax);
    plschr(15.0 / (static_cast<double>(width) / (xmax - xmin)), 1.0);
  }
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;
  ~LogStream() {
    if (open_ && std::uncaught_exceptions() == exceptions_) plend1();
    plsstrm(previous_);
  }

 private:
  PLINT previous_ = 0, stream_ = -1;
  bool open_ = false;
  int exceptions_ = 0;
};

void write_loglog_png(const std::filesystem::path& path, const std::string& title, const std::string& x_label,
                      const std::string& y_label, const std::vector<LogSeries>& series) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const auto& s : series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (s.x[i] > 0 && s.y[i] > 0 && std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xlo = std::min(xlo, s.x[i]);
        xhi = std::max(xhi, s.x[i]);
        ylo = std::min(ylo, s.y[i]);
        yhi = std::max(yhi, s.y[i]);
      }
  if (!std::isfinite(xlo)) xlo = 1, xhi = 10, ylo = 1, yhi = 10;
  auto padded = [](double lo, double hi) {
    double a = std::log10(lo), b = std::log10(hi);
    if (!(b - a > 1e-3)) return std::pair{a - 0.5, b + 0.5};
    const double d = 0.04 * (b - a);
    return std::pair{a - d, b + d};
  };
  const auto [wx0, wx1] = padded(xlo, xhi);
  auto [wy0, wy1] = padded(ylo, yhi);
  wy1 += 0.08 * static_cast<double>(series.size()) * (wy1 - wy0);  // room for the legend

  const std::string partial = path.string() + ".partial";
  {
    std::FILE* probe = std::fopen(partial.c_str(), "wb");
    if (!probe) throw IoError(path.string() + ": cannot write the plot: " + std::generic_category().message(errno));
    std::fclose(probe);
  }
  {
    LogStream stream(partial, 900, 600);
    plvpor(0.12, 0.96, 0.13, 0.91);
    plwind(wx0, wx1, wy0, wy1);
    plcol0(1);
    plwidth(1.0);
    plschr(0, 0.9);
    plbox("bcnstl", 0, 0, "bcnstvl", 0, 0);
    plschr(0, 1.05);
    plmtex("t", 1.2, 0.5, 0.5, title.c_str());
    plschr(0, 0.95);
    plmtex("b", 3.0, 0.5, 0.5, x_label.c_str());
    plmtex("l", 5.2, 0.5, 0.5, y_label.c_str());
    std::vector<PLFLT> xs, ys;
    for (const auto& s : series) {
      xs.clear();
      ys.clear();
      for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        if (s.x[i] > 0 && s.y[i] > 0 && std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
          xs.push_back(std::log10(s.x[i]));
          ys.push_back(std::log10(s.y[i]));
        }
      if (xs.empty()) continue;
      plcol0(2 + s.colour % 10);
      plwidth(1.8);
      pllsty(s.line_style);
      if (xs.size() >= 2) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      pllsty(1);
      if (s.points) {
        plschr(0, 0.5);
        plstring(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), "\u25CF");
        plschr(0, 0.9);
      }
    }
    // Legend, top right, in viewport fractions.
    plwind(0, 1, 0, 1);
    plschr(0, 0.85);
    double y = 0.95;
    for (const auto& s : series) {
      if (s.label.empty()) continue;
      plcol0(2 + s.colour % 10);
      plwidth(1.8);
      pllsty(s.line_style);
      pljoin(0.52, y, 0.58, y);
      pllsty(1);
      plcol0(1);
      plptex(0.60, y, 1.0, 0.0, 0.0, s.label.c_str());
      y -= 0.06;
    }
  }
  std::error_code ec;
  if (std::filesystem::file_size(partial, ec) == 0 || ec) {
    std::filesystem::remove(partial, ec);
    throw IoError(path.string() + ": PLplot wrote no image");
  }
  std::filesystem::rename(partial, path, ec);
  if (ec) throw IoError(path.string() + ": cannot rename from " + partial + ": " + ec.message());
}

/// The light-curve image on an even wavelength axis: each display column shows the nearest
/// detector column in wavelength (the map may run either way and need not be linear).
plot::ImagePanel lightcurve_panel(const Image& lc, const Image& wavelength, const std::string& title) {
  std::vector<std::pair<double, std::size_t>> by_wavelength;
  for (std::size_t j = 0; j < wavelength.values.size(); ++j)
    if (std::isfinite(wavelength.values[j])) by_wavelength.emplace_back(wavelength.values[j], j);
  std::sort(by_wavelength.begin(), by_wavelength.end());
  plot::ImagePanel p;
  p.title = title;
  p.x_label = "wavelength [micron]";
  p.y_label = "integration";
  p.colorbar_label = "ppm";
  if (by_wavelength.empty()) {
    p.ny = p.nx = 1;
    p.values = {kNaNf};
    return p;
  }
  const double lo = by_wavelength.front().first, hi = by_wavelength.back().first;
  const std::size_t m = std::clamp<std::size_t>(by_wavelength.size(), 1, 800);
  const double dx = hi > lo ? (hi - lo) / static_cast<double>(m) : 1.0;
  std::vector<std::size_t> source(m);
  for (std::size_t k = 0; k < m; ++k) {
    const double w = lo + (static_cast<double>(k) + 0.5) * dx;
    auto it = std::lower_bound(by_wavelength.begin(), by_wavelength.end(), std::pair{w, std::size_t{0}});
    if (it == by_wavelength.end()) --it;
    if (it != by_wavelength.begin() && std::fabs(std::prev(it)->first - w) < std::fabs(it->first - w)) --it;
    source[k] = it->second;
  }
  p.ny = lc.ny;
  p.nx = m;
  p.values.resize(p.ny * m);
  for (std::size_t t = 0; t < lc.ny; ++t)
    for (std::size_t k = 0; k < m; ++k) p.values[t * m + k] = lc.values[t * lc.nx + source[k]];
  p.x0 = lo;
  p.dx = dx;
  return p;
}

}  // namespace

RmsCurve rms_vs_bin_size(std::span<const double> values, std::span<const double> errors, const std::vector<char>& mask,
                         std::size_t min_size, std::size_t max_size) {
  // The runs of consecutive masked integrations, finite values only.
  std::vector<std::vector<double>> runs;
  double error_squares = 0, error_count = 0;
  bool in_run = false;
  for (std::size_t t = 0; t < values.size(); ++t) {
    if (!mask[t]) {
      in_run = false;
      continue;
    }
    if (!in_run) runs.emplace_back();
    in_run = true;
    if (std::isfinite(values[t])) runs.back().push_back(values[t]);
    if (t < errors.size() && std::isfinite(errors[t])) {
      error_squares += errors[t] * errors[t];
      error_count += 1;
    }
  }
  RmsCurve curve;
  std::vector<double> means;
  for (std::size_t n = std::max<std::size_t>(min_size, 1); n <= max_size; ++n) {
    means.clear();
    for (const auto& run : runs)
      for (std::size_t start = 0; start + n <= run.size(); start += n) {
        double sum = 0;
        for (std::size_t i = start; i < start + n; ++i) sum += run[i];
        means.push_back(sum / static_cast<double>(n));
      }
    double rms = kNaN;
    if (means.size() >= 2) {
      double mean = 0;
      for (double m : means) mean += m;
      mean /= static_cast<double>(means.size());
      double var = 0;
      for (double m : means) var += (m - mean) * (m - mean);
      rms = std::sqrt(var / static_cast<double>(means.size()));  // numpy.var: population
    }
    curve.bin_size.push_back(static_cast<double>(n));
    curve.rms.push_back(rms);
    curve.predicted.push_back(error_count > 0 ? std::sqrt(error_squares / error_count / static_cast<double>(n)) : kNaN);
  }
  for (double n : curve.bin_size)
    curve.expected.push_back(curve.rms.empty() ? kNaN : curve.rms.front() * std::sqrt(curve.bin_size.front() / n));
  return curve;
}

Depth event_depth(std::span<const double> relative, const std::vector<char>& in_event,
                  const std::vector<char>& out_of_event) {
  auto moments = [&](const std::vector<char>& mask, double& mean, double& var, double& n) {
    mean = 0;
    n = 0;
    for (std::size_t t = 0; t < relative.size(); ++t)
      if (mask[t] && std::isfinite(relative[t])) {
        mean += relative[t];
        n += 1;
      }
    if (n < 2) return false;
    mean /= n;
    var = 0;
    for (std::size_t t = 0; t < relative.size(); ++t)
      if (mask[t] && std::isfinite(relative[t])) var += (relative[t] - mean) * (relative[t] - mean);
    var /= n - 1;
    return true;
  };
  double a, var_a, n_a, b, var_b, n_b;
  if (!moments(in_event, a, var_a, n_a) || !moments(out_of_event, b, var_b, n_b) || b == 0) return {kNaN, kNaN};
  return {1.0 - a / b, std::sqrt(var_a / (n_a * b * b) + a * a * var_b / (n_b * b * b * b * b))};
}

double sensitivity_ratio(std::span<const double> values, std::span<const double> errors, const std::vector<char>& mask) {
  double sum = 0, n = 0;
  std::vector<double> e;
  for (std::size_t t = 0; t < values.size(); ++t) {
    if (!mask[t]) continue;
    if (std::isfinite(values[t])) {
      sum += values[t];
      n += 1;
    }
    e.push_back(errors[t]);
  }
  if (n < 2) return kNaN;
  const double mean = sum / n;
  double var = 0;
  for (std::size_t t = 0; t < values.size(); ++t)
    if (mask[t] && std::isfinite(values[t])) var += (values[t] - mean) * (values[t] - mean);
  const double median_error = nan_median(e);
  return std::sqrt(var / n) / median_error;
}

StepIO LcDiagnostics::io(const Params& params) {
  const Names n(params.suffix);
  const std::string hint = "run lightcurves with the same suffix first";
  StepIO io;
  io.reads = {{DataKind::Image, n.lc, hint},
              {DataKind::Image, n.lc_error, hint},
              {DataKind::Image, n.wavelength, "run an extraction step with the same suffix first"},
              {DataKind::FrameVector, n.white, hint},
              {DataKind::FrameVector, n.white_error, hint}};
  if (params.time) io.reads.push_back({DataKind::FrameVector, *params.time, "the input's per-integration times"});
  if (params.in_event)
    for (const auto& name : {n.binned, n.binned_error, n.bin_wavelength}) io.reads.push_back({DataKind::Image, name, hint});
  // 1D images; their lengths are set when the step runs (image_nx = 1 is declared; the step resizes them identically on every rank).
  auto line = [](std::string name, std::string units, std::string long_name, std::string dim) {
    DataOut out{DataKind::Image, {std::move(name), std::move(units), std::move(long_name)}};
    out.combine = Combine::Identical;
    out.image_ny = 1;
    out.image_nx = 1;
    out.dim_y = "";
    out.dim_x = std::move(dim);
    return out;
  };
  io.writes = {
      line(n.sensitivity, "1", "out-of-event scatter over median error, per wavelength", n.wavelength),
      line(n.sensitivity_smoothed, "1", "sensitivity median-filtered along the wavelengths", n.wavelength),
      line(n.bin_size, "1", "integrations per bin", n.bin_size),
      line(n.rms, "1", "RMS of the binned out-of-event white light", n.bin_size),
      line(n.rms_expected, "1", "1/sqrt(N) scaling of the RMS at the smallest bin size", n.bin_size),
      line(n.rms_predicted, "1", "white-noise RMS from the white-light errors", n.bin_size),
      line(n.frequency, "Hz", "periodogram frequency", n.frequency),
      line(n.power, "1", "Lomb-Scargle power (psd normalisation) of the out-of-event white light", n.frequency),
  };
  if (params.in_event) {
    io.writes.push_back(line(n.depth, "1", "event depth 1 - mean(in)/mean(out) per wavelength", n.wavelength));
    io.writes.push_back(line(n.depth_error, "1", "error of depth", n.wavelength));
    io.writes.push_back(line(n.binned_depth, "1", "event depth per wavelength bin", n.bin_wavelength));
    io.writes.push_back(line(n.binned_depth_error, "1", "error of binned_depth", n.bin_wavelength));
    io.writes.push_back({DataKind::Attribute, {n.white_depth, "1", "white-light event depth (lc_diagnostics)"}});
    io.writes.push_back({DataKind::Attribute, {n.white_depth_error, "1", "error of the white-light event depth"}});
  }
  return io;
}

void LcDiagnostics::run(const Params& params, StepContext& context) {
  const Names names(params.suffix);
  if (params.sensitivity_filter_width % 2 == 0)
    throw ConfigError("lc_diagnostics: sensitivity_filter_width: expected an odd width, got " +
                      std::to_string(params.sensitivity_filter_width));
  if (params.min_bin_size > params.max_bin_size)
    throw ConfigError("lc_diagnostics: min_bin_size (" + std::to_string(params.min_bin_size) +
                      ") is larger than max_bin_size (" + std::to_string(params.max_bin_size) + ")");
  const Image& lc = find_image(context, names.lc);
  const Image& lc_error = find_image(context, names.lc_error);
  const Image& wavelength = find_image(context, names.wavelength);
  const FrameVector& white = find_vector(context, names.white, "run lightcurves with the same suffix first");
  const FrameVector& white_error = find_vector(context, names.white_error, "run lightcurves with the same suffix first");
  const std::size_t nt = lc.ny, nw = lc.nx;
  if (lc_error.ny != nt || lc_error.nx != nw || wavelength.values.size() != nw || white.values.size() != nt)
    throw StepError("lc_diagnostics: '" + names.lc + "', '" + names.lc_error + "', '" + names.wavelength + "' and '" +
                    names.white + "' do not agree in shape");
  const std::vector<char> oot = event_mask(params.out_of_event, nt, "lc_diagnostics: out_of_event");
  std::vector<char> in_event;
  if (params.in_event) {
    in_event = event_mask(*params.in_event, nt, "lc_diagnostics: in_event");
    for (std::size_t t = 0; t < nt; ++t)
      if (in_event[t] && oot[t])
        throw ConfigError("lc_diagnostics: in_event: integration " + std::to_string(t) +
                          " is also in out_of_event; the two must not overlap");
  }

  // Section 5.5: sensitivity per wavelength, and its median filter along the used wavelengths.
  Image& sensitivity = shaped(context, names.sensitivity, nw);
  Image& smoothed = shaped(context, names.sensitivity_smoothed, nw);
  std::vector<double> values, errors;
  std::vector<std::size_t> used;
  std::vector<float> compact;
  const std::vector<float> lc_columns = transposed(lc.values, nt, nw);
  {
    const std::vector<float> error_columns = transposed(lc_error.values, nt, nw);
    for (std::size_t j = 0; j < nw; ++j) {
      if (!std::isfinite(wavelength.values[j])) continue;
      column_of(lc_columns, nt, j, values);
      column_of(error_columns, nt, j, errors);
      const double s = sensitivity_ratio(values, errors, oot);
      sensitivity.values[j] = static_cast<float>(s);
      if (std::isfinite(s)) {
        used.push_back(j);
        compact.push_back(static_cast<float>(s));
      }
    }
  }
  {
    std::vector<float> filtered(compact.size()), ext, window;
    median_filter_reflect(compact, static_cast<std::size_t>(params.sensitivity_filter_width), filtered, ext, window);
    for (std::size_t k = 0; k < used.size(); ++k) smoothed.values[used[k]] = filtered[k];
  }

  // Section 5.6: RMS against bin size of the out-of-event white light.
  const RmsCurve rms = rms_vs_bin_size(white.values, white_error.values, oot, static_cast<std::size_t>(params.min_bin_size),
                                       static_cast<std::size_t>(params.max_bin_size));
  const std::size_t nb = rms.bin_size.size();
  Image* rms_images[] = {&shaped(context, names.bin_size, nb), &shaped(context, names.rms, nb),
                         &shaped(context, names.rms_expected, nb), &shaped(context, names.rms_predicted, nb)};
  const std::vector<double>* rms_values[] = {&rms.bin_size, &rms.rms, &rms.expected, &rms.predicted};
  for (int k = 0; k < 4; ++k)
    for (std::size_t i = 0; i < nb; ++i) rms_images[k]->values[i] = static_cast<float>((*rms_values[k])[i]);

  // Section 5.6: Lomb–Scargle power of the out-of-event white light, times in seconds.
  std::string time_name = params.time ? *params.time : "time";
  if (!params.time && context.data().frame_vectors().count("int_mid_bjd")) time_name = "int_mid_bjd";
  const FrameVector& time = find_vector(context, time_name,
                                        params.time ? "check the parameter 'time'"
                                                    : "the input provides neither int_mid_bjd nor time; set 'time'");
  std::vector<double> t_oot, y_oot;
  for (std::size_t t = 0; t < nt; ++t)
    if (oot[t] && std::isfinite(white.values[t]) && std::isfinite(time.values[t])) {
      t_oot.push_back(time.values[t] * 86400.0);
      y_oot.push_back(white.values[t]);
    }
  std::vector<double> steps;
  for (std::size_t t = 1; t < nt; ++t) steps.push_back((time.values[t] - time.values[t - 1]) * 86400.0);
  const double cadence = nan_median(steps);
  const auto nf = static_cast<std::size_t>(params.n_frequencies);
  Image& frequency = shaped(context, names.frequency, nf);
  Image& power = shaped(context, names.power, nf);
  double span = 0;
  if (!t_oot.empty()) {
    const double first = t_oot.front();
    for (double& v : t_oot) v -= first;
    const auto [lo, hi] = std::minmax_element(t_oot.begin(), t_oot.end());
    span = *hi - *lo;
  }
  const double f_lo = span > 0 ? 1.0 / span : kNaN, f_hi = cadence > 0 ? 0.5 / cadence : kNaN;
  if (t_oot.size() >= 3 && f_hi > f_lo) {
    const std::vector<double> f = linspace(f_lo, f_hi, nf);
    const std::vector<double> p = lomb_scargle_psd(t_oot, y_oot, f);
    for (std::size_t k = 0; k < nf; ++k) {
      frequency.values[k] = static_cast<float>(f[k]);
      power.values[k] = static_cast<float>(p[k]);
    }
  } else {
    context.log().warn("lc_diagnostics: no periodogram: the out-of-event white light has " +
                       std::to_string(t_oot.size()) + " finite points over " + std::to_string(span) +
                       " s (need 3, and a time span longer than two cadences)");
  }

  // Event depths.
  Depth white_depth{kNaN, kNaN};
  if (params.in_event) {
    Image& depth = shaped(context, names.depth, nw);
    Image& depth_error = shaped(context, names.depth_error, nw);
    for (std::size_t j = 0; j < nw; ++j) {
      if (!std::isfinite(wavelength.values[j])) continue;
      column_of(lc_columns, nt, j, values);
      for (double& v : values) v = 1.0 + v * 1e-6;
      const Depth d = event_depth(values, in_event, oot);
      depth.values[j] = static_cast<float>(d.value);
      depth_error.values[j] = static_cast<float>(d.error);
    }
    const Image& binned = find_image(context, names.binned);
    const std::size_t nbins = binned.nx;
    Image& binned_depth = shaped(context, names.binned_depth, nbins);
    Image& binned_depth_error = shaped(context, names.binned_depth_error, nbins);
    if (binned.ny != nt)
      throw StepError("lc_diagnostics: '" + names.binned + "' has " + std::to_string(binned.ny) + " rows, not " +
                      std::to_string(nt));
    const std::vector<float> binned_columns = transposed(binned.values, nt, nbins);
    for (std::size_t b = 0; b < nbins; ++b) {
      column_of(binned_columns, nt, b, values);
      for (double& v : values) v = 1.0 + v * 1e-6;
      const Depth d = event_depth(values, in_event, oot);
      binned_depth.values[b] = static_cast<float>(d.value);
      binned_depth_error.values[b] = static_cast<float>(d.error);
    }
    white_depth = event_depth(white.values, in_event, oot);
    context.data().attributes()[names.white_depth] = white_depth.value;
    context.data().attributes()[names.white_depth_error] = white_depth.error;
  }

  {
    std::vector<double> s(used.size());
    for (std::size_t k = 0; k < used.size(); ++k) s[k] = sensitivity.values[used[k]];
    const double median_sensitivity = nan_median(s);
    char text[320];
    std::snprintf(text, sizeof text, "  median sensitivity %.3f; white-light RMS %.1f ppm (predicted %.1f)%s",
                  median_sensitivity, rms.rms.empty() ? kNaN : rms.rms.front() * 1e6,
                  rms.predicted.empty() ? kNaN : rms.predicted.front() * 1e6,
                  params.in_event ? ("; white-light depth " + std::to_string(white_depth.value * 1e6) + " +- " +
                                     std::to_string(white_depth.error * 1e6) + " ppm")
                                        .c_str()
                                  : "");
    context.log().info(text);
  }

  // Plots.
  const std::string& s = names.suffix;
  const std::string label = s.empty() ? "" : " (" + s + ")";
  if (auto path = context.plot_file("lightcurve_image" + s + ".png", 1)) {
    plot::Figure figure;
    figure.height = 700;
    figure.panels = {lightcurve_panel(lc, wavelength, "Spectroscopic light curves" + label)};
    plot::write_png(*path, figure);
  }
  if (auto path = context.plot_file("white_light" + s + ".png", 1)) {
    plot::LinePanel curve{.title = "White-light curve" + label, .x_label = "integration", .y_label = "relative flux"};
    plot::Series outside{"out of event", {}, {}, plot::Series::Style::Points, 0};
    plot::Series other{"in event / unused", {}, {}, plot::Series::Style::Points, 1};
    const FrameVector* replaced = context.data().frame_vectors().count(names.white_replaced)
                                      ? &context.data().frame_vectors().at(names.white_replaced)
                                      : nullptr;
    plot::LinePanel counts{.title = "Wavelength bins replaced", .x_label = "integration", .y_label = "bins"};
    plot::Series count{"", {}, {}, plot::Series::Style::Line, 2};
    for (std::size_t t = 0; t < nt; ++t) {
      plot::Series& target = oot[t] ? outside : other;
      target.x.push_back(static_cast<double>(t));
      target.y.push_back(white.values[t]);
      if (replaced) {
        count.x.push_back(static_cast<double>(t));
        count.y.push_back(replaced->values[t]);
      }
    }
    curve.series = {outside, other};
    counts.series = {count};
    plot::Figure figure;
    figure.height = 750;
    figure.panels = {curve};
    if (replaced) {
      figure.panels.push_back(counts);
      figure.heights = {3, 1};
    }
    plot::write_png(*path, figure);
  }
  if (auto path = context.plot_file("sensitivity" + s + ".png", 1)) {
    plot::LinePanel p{.title = "Sensitivity: out-of-event scatter / median error" + label,
                      .x_label = "wavelength [micron]",
                      .y_label = "x expected scatter"};
    plot::Series points{"per wavelength", {}, {}, plot::Series::Style::Points, 7};
    plot::Series line{"median filter (" + std::to_string(params.sensitivity_filter_width) + ")", {}, {},
                      plot::Series::Style::Line, 3};
    std::vector<double> finite;
    for (std::size_t j : used) {
      points.x.push_back(wavelength.values[j]);
      points.y.push_back(sensitivity.values[j]);
      line.x.push_back(wavelength.values[j]);
      line.y.push_back(smoothed.values[j]);
      finite.push_back(sensitivity.values[j]);
    }
    // Wavelength order for the line (the map may run backwards).
    std::vector<std::size_t> order(line.x.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return line.x[a] < line.x[b]; });
    plot::Series sorted{line.label, {}, {}, plot::Series::Style::Line, 3};
    for (std::size_t k : order) {
      sorted.x.push_back(line.x[k]);
      sorted.y.push_back(line.y[k]);
    }
    p.series = {points, sorted};
    if (!finite.empty()) {
      std::sort(finite.begin(), finite.end());
      const double top = finite[static_cast<std::size_t>(0.99 * static_cast<double>(finite.size() - 1))];
      p.y_range = std::pair{0.0, std::max(2.0, 1.3 * top)};
    }
    plot::write_png(*path, plot::Figure{.panels = {p}});
  }
  if (auto path = context.plot_file("rms_vs_bin" + s + ".png", 1)) {
    std::vector<double> ppm[3];
    const std::vector<double>* from[3] = {&rms.rms, &rms.expected, &rms.predicted};
    for (int k = 0; k < 3; ++k)
      for (double v : *from[k]) ppm[k].push_back(v * 1e6);
    write_loglog_png(*path, "White-light RMS vs bin size (out of event)" + label, "bin size [integrations]",
                     "RMS [ppm]",
                     {{"measured", rms.bin_size, ppm[0], true, 0, 1},
                      {"1/sqrt(N) through the first point", rms.bin_size, ppm[1], false, 1, 2},
                      {"white noise of the stated errors", rms.bin_size, ppm[2], false, 2, 3}});
  }
  if (auto path = context.plot_file("periodogram" + s + ".png", 1)) {
    std::vector<double> f(frequency.values.begin(), frequency.values.end()),
        p(power.values.begin(), power.values.end());
    write_loglog_png(*path, "Lomb-Scargle PSD of the out-of-event white light" + label, "frequency [Hz]", "PSD",
                     {{"", f, p, false, 0, 1}});
  }
}

}  // namespace tessera::steps
