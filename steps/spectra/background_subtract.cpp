#include "steps/spectra/background_subtract.hpp"

#include <algorithm>
#include <cmath>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/running_median.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

struct Regions {
  std::size_t ls, le, rs, re;
  /// Centres of the two ranges ((start + end - 1) / 2 for the exclusive end): the median of a
  /// linear line over a range is its value there, so anchors at the centres are exact.
  double left_centre() const { return 0.5 * static_cast<double>(ls + le - 1); }
  double right_centre() const { return 0.5 * static_cast<double>(rs + re - 1); }
};

Regions regions_of(const BackgroundSubtractParams& p) {
  return {static_cast<std::size_t>(p.bkg_col_left_start), static_cast<std::size_t>(p.bkg_col_left_end),
          static_cast<std::size_t>(p.bkg_col_right_start), static_cast<std::size_t>(p.bkg_col_right_end)};
}

/// Copies the background pixels into `region` (line-major: nb values per dispersion line,
/// NaN where a pixel is flagged do_not_use or not finite) and their spatial indices into
/// `spatial`. Lines that are detector columns are read row by row, so the frame is walked in
/// memory order either way.
void gather_region(const spectra::DispersedView<const float>& frame, const spectra::DispersedView<const std::uint32_t>& dq,
                   const Regions& r, std::vector<float>& region, std::vector<double>& spatial) {
  spatial.clear();
  for (std::size_t s = r.ls; s < r.le; ++s) spatial.push_back(static_cast<double>(s));
  for (std::size_t s = r.rs; s < r.re; ++s) spatial.push_back(static_cast<double>(s));
  const std::size_t nb = spatial.size(), nw = frame.n_wave();
  region.resize(nw * nb);
  auto value = [&](std::size_t w, std::size_t s) {
    const std::size_t i = frame.index(w, s);
    const float v = frame.data[i];
    return (dq.data[i] & jwst::dq::do_not_use) || !std::isfinite(v) ? NAN : v;
  };
  if (frame.dispersion == spectra::Dispersion::y) {
    for (std::size_t w = 0; w < nw; ++w)
      for (std::size_t j = 0; j < nb; ++j) region[w * nb + j] = value(w, static_cast<std::size_t>(spatial[j]));
  } else {
    for (std::size_t j = 0; j < nb; ++j) {
      const auto s = static_cast<std::size_t>(spatial[j]);
      for (std::size_t w = 0; w < nw; ++w) region[w * nb + j] = value(w, s);
    }
  }
}

/// Appends the usable background pixels of dispersion line `w` (and, when `xs` is given,
/// their spatial indices) to `values`.
void gather_line(const std::vector<float>& region, const std::vector<double>& spatial, std::size_t w,
                 std::vector<float>& values, std::vector<double>* xs) {
  const std::size_t nb = spatial.size();
  const float* row = region.data() + w * nb;
  for (std::size_t j = 0; j < nb; ++j) {
    if (std::isnan(row[j])) continue;
    values.push_back(row[j]);
    if (xs) xs->push_back(spatial[j]);
  }
}

/// Least-squares line y = a + b (x - xc) through the points (xc: their mean). False when the
/// points do not span two spatial positions.
bool fit_line(const std::vector<double>& xs, const std::vector<float>& ys, double& xc, double& a, double& b) {
  const std::size_t n = xs.size();
  if (n < 2) return false;
  double sx = 0, sy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sx += xs[i];
    sy += ys[i];
  }
  xc = sx / static_cast<double>(n);
  const double yc = sy / static_cast<double>(n);
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = xs[i] - xc;
    sxx += dx * dx;
    sxy += dx * (static_cast<double>(ys[i]) - yc);
  }
  if (!(sxx > 0)) return false;
  b = sxy / sxx;
  a = yc;
  return true;
}

/// col_wise estimate of one line: the fitted line's values at the two anchors (NaN when no
/// usable pixel). Fewer than two distinct spatial positions: the median, flat.
void line_fit(BackgroundScratch& s, double clip_sigma, double c1, double c2, float& v1, float& v2) {
  double xc = 0, a = 0, b = 0;
  if (!fit_line(s.xs, s.values, xc, a, b)) {
    v1 = v2 = median_of(s.values);
    return;
  }
  if (clip_sigma > 0 && s.values.size() > 2) {
    // One robust refit: residuals about the first line, their scale from the median absolute
    // deviation (1.4826 MAD estimates a Gaussian sigma), points beyond clip_sigma of it dropped.
    auto& res = s.first_residuals;
    res.resize(s.values.size());
    for (std::size_t i = 0; i < res.size(); ++i)
      res[i] = static_cast<float>(static_cast<double>(s.values[i]) - (a + b * (s.xs[i] - xc)));
    auto& work = s.second_residuals;
    work.assign(res.begin(), res.end());
    const float centre = median_of(work);
    for (std::size_t i = 0; i < res.size(); ++i) work[i] = std::fabs(res[i] - centre);
    const double scale = 1.4826 * static_cast<double>(median_of(work));
    if (scale > 0) {
      std::size_t kept = 0;
      for (std::size_t i = 0; i < res.size(); ++i)
        if (std::fabs(static_cast<double>(res[i] - centre)) <= clip_sigma * scale) {
          s.xs[kept] = s.xs[i];
          s.values[kept] = s.values[i];
          ++kept;
        }
      if (kept < res.size()) {
        s.xs.resize(kept);
        s.values.resize(kept);
        double xc2 = 0, a2 = 0, b2 = 0;
        if (fit_line(s.xs, s.values, xc2, a2, b2)) {
          xc = xc2;
          a = a2;
          b = b2;
        }
      }
    }
  }
  v1 = static_cast<float>(a + b * (c1 - xc));
  v2 = static_cast<float>(a + b * (c2 - xc));
}

void smooth(const std::vector<float>& in, std::vector<float>& out, std::size_t radius, std::vector<float>& window) {
  out.resize(in.size());
  if (in.empty()) return;
  running_median(
      in.size(), [&](std::size_t k) { return in[k]; }, [&](std::size_t k, float m) { out[k] = m; }, radius, window);
}

}  // namespace

void validate_background(const BackgroundSubtractParams& p, std::size_t n_spatial) {
  auto check = [&](std::int64_t start, std::int64_t end, const char* start_name, const char* end_name) {
    if (start > end)
      throw StepError(std::string("background_subtract: ") + start_name + " = " + std::to_string(start) +
                      " is after " + end_name + " = " + std::to_string(end));
    if (end > static_cast<std::int64_t>(n_spatial))
      throw StepError(std::string("background_subtract: ") + end_name + " = " + std::to_string(end) +
                      " is beyond the " + std::to_string(n_spatial) +
                      " spatial positions of the data (the end is exclusive; check dispersion_axis)");
    if (p.method == "col_wise" && start == end)
      throw StepError(std::string("background_subtract: method col_wise needs both background regions; ") +
                      start_name + " = " + end_name + " leaves one empty");
  };
  check(p.bkg_col_left_start, p.bkg_col_left_end, "bkg_col_left_start", "bkg_col_left_end");
  check(p.bkg_col_right_start, p.bkg_col_right_end, "bkg_col_right_start", "bkg_col_right_end");
  if (p.bkg_col_left_start == p.bkg_col_left_end && p.bkg_col_right_start == p.bkg_col_right_end)
    throw StepError("background_subtract: both background regions are empty (bkg_col_left_start = "
                    "bkg_col_left_end and bkg_col_right_start = bkg_col_right_end)");
  if (p.method == "col_wise" &&
      p.bkg_col_left_start + p.bkg_col_left_end == p.bkg_col_right_start + p.bkg_col_right_end)
    throw StepError("background_subtract: method col_wise needs the left and right regions to have different "
                    "centres");
  if (p.smoothing_length && *p.smoothing_length % 2 == 0)
    throw StepError("background_subtract: smoothing_length = " + std::to_string(*p.smoothing_length) +
                    " must be odd (a window centred on each line)");
}

std::size_t subtract_background(std::span<float> image, std::span<const std::uint32_t> dqimg, std::size_t ny,
                                std::size_t nx, const BackgroundSubtractParams& p, std::span<float> line_background,
                                BackgroundScratch& s) {
  const auto d = spectra::parse_dispersion(p.dispersion_axis);
  const auto frame = spectra::dispersed<const float>(image.data(), ny, nx, d);
  const auto dq = spectra::dispersed<const std::uint32_t>(dqimg.data(), ny, nx, d);
  const std::size_t nw = frame.n_wave(), ns = frame.n_spatial();
  const Regions r = regions_of(p);
  const bool col_wise = p.method == "col_wise";
  const double c1 = r.left_centre(), c2 = r.right_centre();

  // Per-line estimates: `first` is the level (constant, row_wise) or the line's value at the
  // left anchor (col_wise), `second` its value at the right anchor.
  s.first.resize(nw);
  s.second.resize(nw);
  gather_region(frame, dq, r, s.region, s.spatial);
  if (p.method == "constant") {
    s.values.clear();
    for (std::size_t w = 0; w < nw; ++w) gather_line(s.region, s.spatial, w, s.values, nullptr);
    const float level = median_of(s.values);
    std::fill(s.first.begin(), s.first.end(), level);
  } else {
    for (std::size_t w = 0; w < nw; ++w) {
      s.values.clear();
      if (col_wise) {
        s.xs.clear();
        gather_line(s.region, s.spatial, w, s.values, &s.xs);
        line_fit(s, p.clip_sigma, c1, c2, s.first[w], s.second[w]);
      } else {
        gather_line(s.region, s.spatial, w, s.values, nullptr);
        s.first[w] = median_of(s.values);
      }
    }
    if (p.smoothing_length) {
      const auto radius = static_cast<std::size_t>((*p.smoothing_length - 1) / 2);
      smooth(s.first, s.smoothed_first, radius, s.values);
      s.first.swap(s.smoothed_first);
      if (col_wise) {
        smooth(s.second, s.smoothed_second, radius, s.values);
        s.second.swap(s.smoothed_second);
      }
    }
  }

  // The model of line w is intercept[w] + slope[w] * spatial index.
  s.intercept.resize(nw);
  s.slope.resize(nw);
  std::size_t missing = 0;
  const double centre = 0.5 * static_cast<double>(ns - 1);
  for (std::size_t w = 0; w < nw; ++w) {
    double a = s.first[w], b = 0;
    if (col_wise) {
      b = (static_cast<double>(s.second[w]) - a) / (c2 - c1);
      a -= b * c1;
    }
    if (!std::isfinite(a) || !std::isfinite(b)) {  // no usable background pixel for this line
      ++missing;
      a = b = 0;
    }
    s.intercept[w] = a;
    s.slope[w] = b;
    // The median along the spatial direction of a line is its value at the middle index.
    line_background[w] = static_cast<float>(a + b * centre);
  }

  for (std::size_t y = 0; y < ny; ++y) {
    float* row = image.data() + y * nx;
    if (d == spectra::Dispersion::y) {  // row y is line y; spatial index x
      const double a = s.intercept[y], b = s.slope[y];
      if (b == 0) {
        const auto level = static_cast<float>(a);
        for (std::size_t x = 0; x < nx; ++x) row[x] -= level;
      } else {
        for (std::size_t x = 0; x < nx; ++x) row[x] -= static_cast<float>(a + b * static_cast<double>(x));
      }
    } else {  // column x is line x; spatial index y
      const auto yy = static_cast<double>(y);
      for (std::size_t x = 0; x < nx; ++x) row[x] -= static_cast<float>(s.intercept[x] + s.slope[x] * yy);
    }
  }
  return missing;
}

StepIO BackgroundSubtract::io(const Params& p) {
  const auto d = spectra::parse_dispersion(p.dispersion_axis);
  StepIO io;
  io.reads = {{DataKind::Cube, "data", "background_subtract works on rate images (ramp_fit, tessera_h5 or jwst_rateints)"},
              {DataKind::Cube, "dq", "JWST pixel dq of the rate images"}};
  DataOut data{DataKind::Cube, {"data", "", ""}, ElementType::Float32};
  DataOut background{DataKind::Image,
                     {"background", "", "background model per integration and dispersion line (median along the "
                                        "spatial direction)"}};
  background.image_ny = DataOut::frames;
  background.image_nx = spectra::dispersion_size(d);
  background.dim_y = "time";
  background.dim_x = spectra::dispersion_dim(d);
  io.writes = {data, background};
  return io;
}

void BackgroundSubtract::run(const Params& p, StepContext& context) {
  const auto d = spectra::parse_dispersion(p.dispersion_axis);
  auto data = context.frames<float>("data");
  auto dqc = context.frames<std::uint32_t>("dq");
  const std::size_t ny = data.ny, nx = data.nx;
  const std::size_t ns = d == spectra::Dispersion::y ? nx : ny, nw = d == spectra::Dispersion::y ? ny : nx;
  validate_background(p, ns);
  Image& image = context.image("background");
  image.info.units = context.data().cube("data").info.units;
  BackgroundScratch scratch;
  std::size_t missing = 0;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    missing += subtract_background(data.frame(t), dqc.frame(t), ny, nx, p,
                                   std::span<float>(image.values.data() + t * nw, nw), scratch);
    context.advance(1);
  }
  if (missing > 0)
    context.log().warn("background_subtract: " + std::to_string(missing) +
                       " dispersion lines (over this rank's integrations) had no usable background pixel; nothing "
                       "was subtracted there");
}

}  // namespace tessera::steps
