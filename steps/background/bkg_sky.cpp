#include "steps/background/bkg_sky.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "steps/common/select.hpp"
#include "tessera/io/fits.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

namespace fs = std::filesystem;

/// Medians and the first guess of the scale use at most this many evenly spaced pixels.
constexpr std::size_t kMaxSamples = std::size_t{1} << 18;

std::size_t sample_stride(std::size_t pixels) { return std::max<std::size_t>(1, (pixels + kMaxSamples - 1) / kMaxSamples); }

/// The FITS file path_to_Pagul names: the file itself, or the only *.fits in a directory.
std::string resolve_sky_path(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw InputError("bkg_sky: path_to_Pagul: '" + path + "' does not exist");
  if (!fs::is_directory(p, ec)) return path;
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(p, ec)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (entry.is_regular_file(ec) && ext == ".fits") found.push_back(entry.path().string());
  }
  if (ec) throw InputError("bkg_sky: path_to_Pagul: cannot list '" + path + "': " + ec.message());
  std::sort(found.begin(), found.end());
  if (found.size() == 1) return found.front();
  if (found.empty())
    throw InputError("bkg_sky: path_to_Pagul: the directory '" + path +
                     "' holds no *.fits file; give the G280 sky image's path");
  std::string names;
  for (std::size_t i = 0; i < found.size() && i < 4; ++i) names += (i ? ", " : "") + fs::path(found[i]).filename().string();
  if (found.size() > 4) names += ", ...";
  throw InputError("bkg_sky: path_to_Pagul: the directory '" + path + "' holds " + std::to_string(found.size()) +
                   " *.fits files (" + names + "); name the sky image itself");
}

/// Median of every stride-th value of `values` that passes `keep(i)`; NaN when none.
template <class Keep, class Value>
float sampled_median(std::size_t count, Keep keep, Value value, std::vector<float>& buffer) {
  buffer.clear();
  const std::size_t stride = sample_stride(count);
  for (std::size_t i = 0; i < count; i += stride)
    if (keep(i)) buffer.push_back(value(i));
  return median_of(buffer);
}

/// Median over the pixels fit_sky_scale left unmasked (finite frame and sky), of frame − s·sky.
float background_median(std::span<const float> frame, std::span<const float> sky, double scale,
                        const std::vector<std::uint8_t>& mask, std::vector<float>& buffer) {
  return sampled_median(
      frame.size(), [&](std::size_t i) { return !mask[i] && std::isfinite(frame[i]) && std::isfinite(sky[i]); },
      [&](std::size_t i) { return static_cast<float>(frame[i] - scale * sky[i]); }, buffer);
}

}  // namespace

std::vector<float> load_sky_image(const BkgSkyParams& params, std::size_t ny, std::size_t nx) {
  const std::string path = resolve_sky_path(params.path_to_pagul);
  fits::File file = fits::File::open_read(path);
  file.goto_primary();
  std::vector<long> axes = file.axes();
  auto is_image = [](const std::vector<long>& a) { return a.size() == 2 && a[0] > 0 && a[1] > 0; };
  if (!is_image(axes)) {
    if (!file.goto_extension("SCI"))
      throw InputError(path + ": no 2D image in the primary HDU and no SCI extension (path_to_Pagul)");
    axes = file.axes();
    if (!is_image(axes)) throw InputError(path + ": SCI: not a 2D image (path_to_Pagul)");
  }
  const auto sky_nx = static_cast<std::size_t>(axes[0]), sky_ny = static_cast<std::size_t>(axes[1]);
  std::vector<float> full = file.read_image_float();

  if (params.median_columns) {
    // The template takes each column's median over the whole image, before cutting it.
    std::vector<float> column(sky_ny);
    for (std::size_t x = 0; x < sky_nx; ++x) {
      std::size_t n = 0;
      for (std::size_t y = 0; y < sky_ny; ++y)
        if (std::isfinite(full[y * sky_nx + x])) column[n++] = full[y * sky_nx + x];
      const float m = median_of(std::span<float>(column.data(), n));
      for (std::size_t y = 0; y < sky_ny; ++y) full[y * sky_nx + x] = m;
    }
  }

  std::size_t x0 = 0, y0 = 0;
  if (params.sky_origin) {
    if (params.sky_origin->size() != 2)
      throw ConfigError("bkg_sky: sky_origin: expected [x, y], got " + std::to_string(params.sky_origin->size()) +
                        " numbers");
    const double ox = (*params.sky_origin)[0], oy = (*params.sky_origin)[1];
    if (ox != std::floor(ox) || oy != std::floor(oy))
      throw ConfigError("bkg_sky: sky_origin: expected whole pixels [x, y]");
    x0 = static_cast<std::size_t>(ox);
    y0 = static_cast<std::size_t>(oy);
  }
  auto shape_text = [](std::size_t a, std::size_t b) { return std::to_string(a) + " x " + std::to_string(b); };
  if (!params.sky_origin && (sky_ny != ny || sky_nx != nx))
    throw InputError(path + ": the sky image is " + shape_text(sky_ny, sky_nx) + " (ny x nx) but the frames are " +
                     shape_text(ny, nx) + "; set sky_origin = [x, y] to cut them out of a larger image (path_to_Pagul)");
  if (x0 + nx > sky_nx || y0 + ny > sky_ny)
    throw InputError(path + ": frames of " + shape_text(ny, nx) + " at sky_origin = [" + std::to_string(x0) + ", " +
                     std::to_string(y0) + "] reach outside the " + shape_text(sky_ny, sky_nx) + " sky image");

  std::vector<float> sky(ny * nx);
  std::size_t bad = 0;
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      const float v = full[(y0 + y) * sky_nx + (x0 + x)];
      bad += std::isfinite(v) ? 0 : 1;
      sky[y * nx + x] = v;
    }
  if (bad > 0)
    throw InputError(path + ": " + std::to_string(bad) +
                     " non-finite sky values where the frames lie (path_to_Pagul); fill them or use median_columns");
  return sky;
}

double fit_sky_scale(std::span<const float> frame, std::span<const float> sky, std::size_t ny, std::size_t nx,
                     const BkgSkyParams& params, BkgSkyScratch& scratch) {
  const std::size_t pixels = ny * nx;
  const std::size_t stride = sample_stride(pixels);
  auto usable = [&](std::size_t i) { return std::isfinite(frame[i]) && std::isfinite(sky[i]); };

  // First guess: the median ratio of frame to sky (sources are a small share of the pixels).
  float scale0 = sampled_median(
      pixels, [&](std::size_t i) { return usable(i) && sky[i] > 0; },
      [&](std::size_t i) { return frame[i] / sky[i]; }, scratch.samples);
  if (!std::isfinite(scale0)) return std::numeric_limits<double>::quiet_NaN();

  // Sources: found in the frame minus the scaled sky, so the sky's own structure is not one.
  scratch.residual.resize(pixels);
  for (std::size_t i = 0; i < pixels; ++i) scratch.residual[i] = frame[i] - scale0 * sky[i];
  scratch.mask.resize(pixels);
  SourceMaskOptions options;
  options.snr = params.mask_snr;
  options.peak_fraction = params.mask_parameter;
  options.grow_y = options.grow_x = static_cast<std::size_t>(params.mask_grow);
  find_sources(scratch.residual, ny, nx, options, scratch.sources, scratch.mask);

  // Least squares with iterative rejection of pixels that do not follow the scaled sky.
  double scale = scale0;
  for (int iteration = 0; iteration < 30; ++iteration) {
    scratch.samples.clear();
    for (std::size_t i = 0; i < pixels; i += stride)
      if (!scratch.mask[i] && usable(i)) scratch.samples.push_back(static_cast<float>(frame[i] - scale * sky[i]));
    if (scratch.samples.empty()) return std::numeric_limits<double>::quiet_NaN();
    const float centre = median_of(scratch.samples);
    for (float& r : scratch.samples) r = std::fabs(r - centre);
    const double limit = params.clip_sigma * 1.4826 * median_of(scratch.samples);
    double numerator = 0, denominator = 0;
    for (std::size_t i = 0; i < pixels; ++i) {
      if (scratch.mask[i] || !usable(i)) continue;
      const double f = frame[i], s = sky[i];
      if (std::fabs(f - scale * s) > limit) continue;
      numerator += f * s;
      denominator += s * s;
    }
    if (!(denominator > 0)) return std::numeric_limits<double>::quiet_NaN();
    const double next = numerator / denominator;
    const bool settled = std::fabs(next - scale) <= 1e-7 * std::max(1.0, std::fabs(scale));  // float data
    scale = next;
    if (settled) break;
  }
  return scale;
}

std::vector<double> smooth_scales(std::span<const double> scales, std::span<const double> time,
                                  std::span<const double> segment, double sigma) {
  const std::size_t n = scales.size();
  std::vector<double> out(scales.begin(), scales.end());
  if (n == 0) return out;
  std::map<double, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < n; ++i) groups[segment.empty() ? 0.0 : segment[i]].push_back(i);
  auto t_of = [&](std::size_t i) { return time.empty() ? static_cast<double>(i) : time[i]; };

  std::vector<bool> rejected(n), next(n);
  for (std::size_t i = 0; i < n; ++i) rejected[i] = !std::isfinite(scales[i]);
  std::vector<double> fit(n, std::numeric_limits<double>::quiet_NaN()), residuals;
  double typical = 0;  // a floor for the spread, so a noise-free series is not all "outliers"
  {
    std::vector<double> magnitudes;
    for (double s : scales)
      if (std::isfinite(s)) magnitudes.push_back(std::fabs(s));
    if (magnitudes.empty()) return out;
    std::nth_element(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(magnitudes.size() / 2),
                     magnitudes.end());
    typical = magnitudes[magnitudes.size() / 2];
  }
  for (int pass = 0; pass < 30; ++pass) {
    // Polynomial per segment through the scales not rejected, in time centred and scaled to [-1, 1].
    for (const auto& [key, members] : groups) {
      std::vector<std::size_t> kept;
      for (std::size_t i : members)
        if (!rejected[i]) kept.push_back(i);
      if (kept.empty()) continue;  // no fit: the members keep NaN and fall back below
      double lo = t_of(kept.front()), hi = lo;
      for (std::size_t i : kept) {
        lo = std::min(lo, t_of(i));
        hi = std::max(hi, t_of(i));
      }
      const double mid = 0.5 * (lo + hi), half = hi > lo ? 0.5 * (hi - lo) : 1.0;
      const int degree = kept.size() >= 6 ? 2 : kept.size() >= 3 ? 1 : 0;
      Eigen::MatrixXd a(static_cast<Eigen::Index>(kept.size()), degree + 1);
      Eigen::VectorXd b(static_cast<Eigen::Index>(kept.size()));
      for (std::size_t k = 0; k < kept.size(); ++k) {
        const double u = (t_of(kept[k]) - mid) / half;
        double power = 1;
        for (int d = 0; d <= degree; ++d, power *= u) a(static_cast<Eigen::Index>(k), d) = power;
        b(static_cast<Eigen::Index>(k)) = scales[kept[k]];
      }
      const Eigen::VectorXd c = a.colPivHouseholderQr().solve(b);
      for (std::size_t i : members) {
        const double u = (t_of(i) - mid) / half;
        double value = 0, power = 1;
        for (int d = 0; d <= degree; ++d, power *= u) value += c(d) * power;
        fit[i] = value;
      }
    }
    residuals.clear();
    for (std::size_t i = 0; i < n; ++i)
      if (!rejected[i] && std::isfinite(fit[i])) residuals.push_back(std::fabs(scales[i] - fit[i]));
    if (residuals.empty()) break;
    std::nth_element(residuals.begin(), residuals.begin() + static_cast<std::ptrdiff_t>(residuals.size() / 2),
                     residuals.end());
    const double spread = std::max(1.4826 * residuals[residuals.size() / 2], 1e-12 * typical);
    for (std::size_t i = 0; i < n; ++i)
      next[i] = !std::isfinite(scales[i]) || (std::isfinite(fit[i]) && std::fabs(scales[i] - fit[i]) > sigma * spread);
    if (next == rejected) break;
    rejected = next;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (rejected[i] && std::isfinite(fit[i])) out[i] = fit[i];
  return out;
}

StepIO BkgSky::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}};
  DataOut smoothed{DataKind::FrameVector, {"bkg_sky_scale", "1", "sky image scale subtracted from each frame"}};
  smoothed.combine = Combine::Identical;  // computed from all frames' raw scales, the same on every rank
  io.writes = {
      {DataKind::Cube, {"data", "", ""}},
      {DataKind::FrameVector, {"bkg_sky_scale_raw", "1", "least-squares scale of the sky image in each frame"}},
      smoothed,
      {DataKind::FrameVector,
       {"bkg_sky_median_before", "electron", "median of the unmasked (background) pixels before bkg_sky"}},
      {DataKind::FrameVector,
       {"bkg_sky_median_after", "electron", "median of the unmasked (background) pixels after bkg_sky"}}};
  return io;
}

void BkgSky::run(const Params& params, StepContext& context) {
  const CubeShape& shape = context.shape();
  const std::size_t ny = shape.ny, nx = shape.nx;
  const std::vector<float> sky = load_sky_image(params, ny, nx);
  auto slab = context.frames<float>("data");
  std::vector<double>& raw = context.frame_vector("bkg_sky_scale_raw").values;
  std::vector<double>& before = context.frame_vector("bkg_sky_median_before").values;
  std::vector<double>& after = context.frame_vector("bkg_sky_median_after").values;
  BkgSkyScratch scratch;
  std::vector<float> buffer;

  if (context.phase() == 0) {
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
      const std::span<const float> frame = slab.frame(t);
      const double scale = fit_sky_scale(frame, sky, ny, nx, params, scratch);
      if (!std::isfinite(scale))
        throw StepError("bkg_sky: frame " + std::to_string(t) +
                        " has no pixel left to fit the sky image to (all masked or non-finite); try a larger "
                        "mask_parameter or mask_snr");
      raw[t] = scale;
      before[t] = background_median(frame, sky, 0.0, scratch.mask, buffer);
      after[t] = background_median(frame, sky, scale, scratch.mask, buffer);
      context.advance(1);
    }
    return;
  }

  // Phase 1: every rank holds every frame's raw scale and smooths them the same way.
  std::vector<double>& scales = context.frame_vector("bkg_sky_scale").values;
  if (params.smooth_fits) {
    auto& vectors = context.data().frame_vectors();
    std::vector<double> time, orbit;
    if (auto it = vectors.find("time"); it != vectors.end()) time = it->second.values;
    if (auto it = vectors.find("orbit"); it != vectors.end()) orbit = it->second.values;
    scales = smooth_scales(raw, time, orbit, params.smoothing_param);
    std::size_t replaced = 0;
    for (std::size_t t = 0; t < raw.size(); ++t) replaced += scales[t] != raw[t] ? 1 : 0;
    context.log().info("bkg_sky: smooth_fits replaced " + std::to_string(replaced) + " of " +
                       std::to_string(raw.size()) + " scale factors by their orbit's trend");
  } else {
    scales = raw;
  }
  for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
    const std::span<float> frame = slab.frame(t);
    const double scale = scales[t];
    if (scale != raw[t]) {
      // The background pixels are those of phase 0's fit: find them again for this frame.
      fit_sky_scale(frame, sky, ny, nx, params, scratch);
      after[t] = background_median(frame, sky, scale, scratch.mask, buffer);
    }
    for (std::size_t i = 0; i < ny * nx; ++i) frame[i] = static_cast<float>(frame[i] - scale * sky[i]);
    context.advance(1);
  }
}

}  // namespace tessera::steps
