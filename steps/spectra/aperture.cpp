#include "steps/spectra/aperture.hpp"

#include <algorithm>
#include <cmath>

#include "steps/common/reference.hpp"
#include "steps/common/running_median.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"

namespace tessera::spectra {

LineAperture ApertureShape::at(double centre, std::size_t n) const {
  LineAperture a;
  if (!std::isfinite(centre) || n == 0) return a;
  const auto last = static_cast<std::int64_t>(n) - 1;
  if (!radius) {
    // ExoTiC-MIRI's box: whole pixels around the nearest pixel to the centre.
    const auto k = static_cast<std::int64_t>(std::llround(centre));
    a.lo = std::max<std::int64_t>(k - left_width, 0);
    a.hi = std::min<std::int64_t>(k + right_width, last) + 1;
    if (a.hi < a.lo) a.hi = a.lo;
    return a;
  }
  // The notebook's [c - r, c + r], cut to the line's outer edges.
  const double lo_edge = std::max(centre - *radius, -0.5);
  const double hi_edge = std::min(centre + *radius, static_cast<double>(n) - 0.5);
  if (!(hi_edge > lo_edge)) return a;
  // Pixel j lies wholly inside when j - 0.5 >= lo_edge and j + 0.5 <= hi_edge.
  const auto lo = static_cast<std::int64_t>(std::ceil(lo_edge + 0.5));
  const auto hi = static_cast<std::int64_t>(std::floor(hi_edge - 0.5)) + 1;
  if (hi < lo) {  // both edges inside one pixel (only for radii below 0.5 pixel)
    const auto j = static_cast<std::int64_t>(std::floor(lo_edge + 0.5));
    a.lo = a.hi = j;
    a.left = j;
    a.left_weight = hi_edge - lo_edge;
    return a;
  }
  a.lo = lo;
  a.hi = hi;
  const double left_weight = (static_cast<double>(lo) - 0.5) - lo_edge;
  if (lo - 1 >= 0 && left_weight > 1e-12) {
    a.left = lo - 1;
    a.left_weight = left_weight;
  }
  const double right_weight = hi_edge - (static_cast<double>(hi) - 0.5);
  if (hi <= last && right_weight > 1e-12) {
    a.right = hi;
    a.right_weight = right_weight;
  }
  return a;
}

namespace {

/// Solves the 3 × 3 symmetric system a x = b by Cramer's rule; false when singular.
bool solve3(const double a[3][3], const double b[3], double x[3]) {
  const double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
                     a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                     a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  if (!(std::abs(det) > 0) || !std::isfinite(det)) return false;
  for (int k = 0; k < 3; ++k) {
    double m[3][3];
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) m[i][j] = j == k ? b[i] : a[i][j];
    x[k] = (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
            m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])) /
           det;
  }
  return true;
}

double chi2_of(std::span<const double> x, std::span<const double> y, double amp, double mu, double sigma) {
  double chi2 = 0;
  const double inv = 1.0 / (2.0 * sigma * sigma);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - mu;
    const double r = y[i] - amp * std::exp(-d * d * inv);
    chi2 += r * r;
  }
  return chi2;
}

}  // namespace

GaussianFit fit_gaussian(std::span<const double> x, std::span<const double> y) {
  GaussianFit fit;
  const std::size_t n = x.size();
  if (n < 4 || y.size() != n) return fit;
  // Start: moments of the positive part.
  double s0 = 0, s1 = 0, peak = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (y[i] > 0) {
      s0 += y[i];
      s1 += y[i] * x[i];
      peak = std::max(peak, y[i]);
    }
  if (!(s0 > 0)) return fit;
  double mu = s1 / s0, s2 = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (y[i] > 0) s2 += y[i] * (x[i] - mu) * (x[i] - mu);
  const double span = x[n - 1] - x[0];
  double sigma = std::clamp(std::sqrt(s2 / s0), 0.5, 0.5 * span);
  double amp = peak;
  double chi2 = chi2_of(x, y, amp, mu, sigma), lambda = 1e-3;
  for (int iteration = 0; iteration < 30; ++iteration) {
    double jtj[3][3] = {}, jtr[3] = {};
    const double inv2 = 1.0 / (sigma * sigma);
    for (std::size_t i = 0; i < n; ++i) {
      const double d = x[i] - mu;
      const double g = std::exp(-0.5 * d * d * inv2);
      const double r = y[i] - amp * g;
      const double jac[3] = {g, amp * g * d * inv2, amp * g * d * d * inv2 / sigma};
      for (int a = 0; a < 3; ++a) {
        jtr[a] += jac[a] * r;
        for (int b = 0; b < 3; ++b) jtj[a][b] += jac[a] * jac[b];
      }
    }
    double damped[3][3], step[3];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) damped[a][b] = jtj[a][b] * (a == b ? 1.0 + lambda : 1.0);
    if (!solve3(damped, jtr, step)) break;
    const double amp_new = amp + step[0], mu_new = mu + step[1], sigma_new = sigma + step[2];
    const double chi2_new = sigma_new > 0 ? chi2_of(x, y, amp_new, mu_new, sigma_new) : INFINITY;
    if (chi2_new <= chi2) {
      // 1e-4 pixel is far below any centre's noise; tighter only costs iterations.
      const bool converged = std::abs(step[1]) < 1e-4 && std::abs(step[2]) < 1e-4;
      amp = amp_new;
      mu = mu_new;
      sigma = sigma_new;
      chi2 = chi2_new;
      lambda = std::max(lambda * 0.1, 1e-12);
      if (converged) break;
    } else {
      lambda *= 10;
      if (lambda > 1e8) break;
    }
  }
  fit.amplitude = amp;
  fit.centre = mu;
  fit.sigma = std::abs(sigma);
  fit.ok = std::isfinite(mu) && std::isfinite(sigma) && amp > 0 && mu >= x[0] && mu <= x[n - 1] && fit.sigma > 0.2 &&
           fit.sigma < span;
  return fit;
}

double sigma_from_variances(std::span<float> variances) {
  const double median = steps::median_of(variances);
  return median > 0 ? std::sqrt(median) : NAN;
}

std::string squared_units(const std::string& units) {
  if (units.empty() || units == "1") return units;
  const auto slash = units.find('/');
  if (slash == std::string::npos) return units + "2";
  return units.substr(0, slash) + "2/" + units.substr(slash + 1) + "2";
}

std::uint32_t bit_mask(const std::vector<std::int64_t>& bits, const std::string& param) {
  std::uint32_t mask = 0;
  for (std::int64_t b : bits) {
    if (b < 0 || b > 31) throw ConfigError(param + ": bit numbers must be in 0..31, got " + std::to_string(b));
    mask |= std::uint32_t{1} << b;
  }
  return mask;
}

StepIO extraction_io(const ExtractionSetup& s) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data", "rate cubes: ramp_fit or an input (tessera_h5, jwst_rateints) provides them"},
              {DataKind::Cube, "err", "rate cubes: ramp_fit or an input (tessera_h5, jwst_rateints) provides them"}};
  if (s.skip_bits) io.reads.push_back({DataKind::Cube, "dq", "ramp_fit or the input provides the dq cube"});
  if (s.position == TracePosition::trace)
    io.reads.push_back({DataKind::Image, s.trace_image,
                        "the trace step writes " + s.trace_image + " (orders = [\"" + s.trace_image.substr(6) +
                            "\"]); or set trace_position = 'constant' or 'gaussian_fits'"});
  if (auto ref = jwst::reference_read(s.wavelength_map, "wavelength_map")) io.reads.push_back(*ref);

  const std::string wave_dim = s.name("wavelength");
  auto per_integration = [&](const std::string& base, const std::string& units, const std::string& long_name) {
    DataOut out{DataKind::Image, {s.name(base), units, long_name}};
    out.image_ny = DataOut::frames;
    out.image_nx = dispersion_size(s.dispersion);
    out.dim_y = "time";
    out.dim_x = wave_dim;
    return out;
  };
  io.writes.push_back(per_integration("flux", "", "extracted flux per integration and wavelength"));
  io.writes.push_back(per_integration("flux_error", "", "1-sigma uncertainty of flux"));
  DataOut wavelength{DataKind::Image, {wave_dim, "micron", "wavelength averaged over the aperture"}};
  wavelength.image_nx = dispersion_size(s.dispersion);
  wavelength.dim_y = "";
  wavelength.dim_x = wave_dim;
  wavelength.combine = Combine::Identical;
  io.writes.push_back(wavelength);
  io.writes.push_back(
      {DataKind::FrameVector,
       {s.name("psf_sigma"), "pixel", "cross-dispersion sigma of the trace (median over wavelength)"}});
  DataOut bad{DataKind::FrameVector,
              {s.name("extract_bad_pixels"), "1",
               "aperture pixels left out (non-finite or dq_bits_to_skip), summed over wavelength"}};
  bad.integer = true;
  io.writes.push_back(bad);
  if (s.position == TracePosition::gaussian_fits) {
    DataOut fit{DataKind::Image, {s.fit_image(), "pixel", "aperture centre from Gaussian fits (smoothed)"}};
    fit.image_ny = DataOut::frames;
    fit.image_nx = dispersion_size(s.dispersion);
    fit.dim_y = "time";
    fit.dim_x = dispersion_dim(s.dispersion);
    io.writes.push_back(fit);
  }
  return io;
}

void check_setup(const ExtractionSetup& s, const Dataset& data) {
  const std::size_t nw = n_wave(s, data.shape()), ns = n_spatial(s, data.shape());
  const std::string axis = s.dispersion == Dispersion::x ? "rows" : "columns";
  if (s.position != TracePosition::trace && !(s.aperture_center <= static_cast<double>(ns) - 1))
    throw StepError("aperture_center: " + std::to_string(s.aperture_center) + " is outside the " +
                    std::to_string(ns) + " " + axis + " across the dispersion (dispersion_axis = \"" +
                    dispersion_dim(s.dispersion) + "\")");
  if (s.position == TracePosition::trace) {
    auto it = data.images().find(s.trace_image);
    if (it == data.images().end())
      throw StepError("trace: the dataset has no image '" + s.trace_image + "' (run the trace step for this order)");
    const Image& trace = it->second;
    if (trace.ny != data.shape().nt || trace.nx != nw)
      throw StepError("trace: image '" + s.trace_image + "' is " + std::to_string(trace.ny) + " x " +
                      std::to_string(trace.nx) + " but extraction needs one centre per integration and dispersion "
                      "index: " + std::to_string(data.shape().nt) + " x " + std::to_string(nw) +
                      " (check dispersion_axis)");
  }
  if (s.position == TracePosition::gaussian_fits && static_cast<std::size_t>(2 * s.fit_half_width + 1) < 4)
    throw StepError("fit_half_width: the fit window must hold at least 4 pixels");
}

CentreFinder::CentreFinder(const ExtractionSetup& setup, const Dataset& data) : setup_(setup) {
  if (setup.position == TracePosition::trace) trace_ = &data.images().at(setup.trace_image);
  const std::size_t nw = n_wave(setup, data.shape());
  const auto window = static_cast<std::size_t>(2 * setup.fit_half_width + 1);
  xs_.reserve(window);
  ys_.reserve(window);
  raw_.assign(nw, NAN);
  window_.reserve(static_cast<std::size_t>(2 * setup.fit_smoothing + 2));
}

void CentreFinder::centres(std::size_t t, DispersedView<const float> frame, std::span<const std::uint32_t> dq,
                           std::span<double> out) {
  const std::size_t nw = out.size();
  switch (setup_.position) {
    case TracePosition::constant:
      std::fill(out.begin(), out.end(), setup_.aperture_center);
      return;
    case TracePosition::trace: {
      const float* row = trace_->values.data() + t * nw;
      for (std::size_t w = 0; w < nw; ++w) out[w] = row[w];
      return;
    }
    case TracePosition::gaussian_fits: {
      const auto ns = static_cast<std::int64_t>(frame.n_spatial());
      const auto c = static_cast<std::int64_t>(std::llround(setup_.aperture_center));
      const std::int64_t j0 = std::max<std::int64_t>(c - setup_.fit_half_width, 0);
      const std::int64_t j1 = std::min<std::int64_t>(c + setup_.fit_half_width, ns - 1);
      for (std::size_t w = 0; w < nw; ++w) {
        xs_.clear();
        ys_.clear();
        for (std::int64_t j = j0; j <= j1; ++j) {
          const std::size_t i = frame.index(w, static_cast<std::size_t>(j));
          const float v = frame.data[i];
          if (!std::isfinite(v) || (!dq.empty() && (dq[i] & setup_.skip_bits))) continue;
          xs_.push_back(static_cast<double>(j));
          ys_.push_back(v);
        }
        const GaussianFit fit = fit_gaussian(xs_, ys_);
        raw_[w] = fit.ok ? static_cast<float>(fit.centre) : NAN;
      }
      if (setup_.fit_smoothing == 0) {
        for (std::size_t w = 0; w < nw; ++w) out[w] = raw_[w];
        return;
      }
      steps::running_median(
          nw, [&](std::size_t k) { return raw_[k]; }, [&](std::size_t k, float v) { out[k] = v; },
          static_cast<std::size_t>(setup_.fit_smoothing), window_);
      return;
    }
  }
}

std::vector<double> median_centres(const ExtractionSetup& s, const Dataset& data) {
  const std::size_t nw = n_wave(s, data.shape()), nt = data.shape().nt;
  std::vector<double> centre(nw, s.aperture_center);
  if (s.position == TracePosition::constant) return centre;
  const Image& image = data.images().at(s.position == TracePosition::trace ? s.trace_image : s.fit_image());
  std::vector<float> column(nt);
  for (std::size_t w = 0; w < nw; ++w) {
    std::size_t n = 0;
    for (std::size_t t = 0; t < nt; ++t) {
      const float v = image.values[t * nw + w];
      if (std::isfinite(v)) column[n++] = v;
    }
    centre[w] = steps::median_of(std::span<float>(column.data(), n));
  }
  return centre;
}

void write_wavelengths(const ExtractionSetup& s, StepContext& context) {
  const Dataset& data = context.data();
  const std::size_t nw = n_wave(s, data.shape()), ns = n_spatial(s, data.shape());
  const jwst::ReferenceImage map = jwst::load_reference_image(s.wavelength_map, "wavelength_map", context);
  const std::vector<double> centre = median_centres(s, data);
  Image& out = context.image(s.name("wavelength"));
  const std::size_t nx = data.shape().nx;
  for (std::size_t w = 0; w < nw; ++w) {
    const LineAperture aperture = s.shape.at(centre[w], ns);
    out.values[w] = aperture.empty() ? NAN : static_cast<float>(aperture_mean(aperture, [&](std::int64_t j) {
      const auto sp = static_cast<std::size_t>(j);
      const std::size_t pixel = s.dispersion == Dispersion::x ? sp * nx + w : w * nx + sp;
      return static_cast<double>(map.at(pixel));
    }));
  }
}

}  // namespace tessera::spectra
