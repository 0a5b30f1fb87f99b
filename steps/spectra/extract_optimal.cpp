#include "steps/spectra/extract_optimal.hpp"

#include <algorithm>
#include <cmath>

#include "steps/common/reference.hpp"
#include "steps/common/select.hpp"
#include "tessera/errors.hpp"

namespace tessera::steps {

using spectra::LineAperture;

PixelNoise pixel_noise(std::span<const float> data, std::span<const float> err, std::span<const float> var_poisson,
                       std::span<const float> var_rnoise, std::span<const std::uint32_t> dq, std::uint32_t skip_bits,
                       std::optional<float> read_noise, std::span<float> scratch) {
  PixelNoise noise;
  const std::size_t nt = data.size();
  auto usable = [&](std::size_t t) {
    return std::isfinite(data[t]) && std::isfinite(err[t]) && !(!dq.empty() && (dq[t] & skip_bits));
  };
  // Median over the usable samples of value(t) (skipping non-finite values); NaN if none.
  auto median_over = [&](auto&& value) {
    std::size_t n = 0;
    for (std::size_t t = 0; t < nt; ++t)
      if (usable(t)) {
        const float v = value(t);
        if (std::isfinite(v)) scratch[n++] = v;
      }
    return median_of(scratch.subspan(0, n));
  };
  if (var_poisson.empty()) {
    // Without a Poisson variance the model is the pixel's typical total variance, fixed in time.
    noise.floor = median_over([&](std::size_t t) { return err[t] * err[t]; });
    noise.factor = 0;
    return noise;
  }
  std::size_t good = 0, bright = 0;
  for (std::size_t t = 0; t < nt; ++t) {
    if (!usable(t)) continue;
    ++good;
    if (data[t] > 3.0f * err[t] && std::isfinite(var_poisson[t])) scratch[bright++] = var_poisson[t] / data[t];
  }
  if (good == 0) return noise;
  noise.factor = 2 * bright >= good && bright > 0 ? median_of(scratch.subspan(0, bright)) : 0.0f;
  // What var_poisson holds beyond factor · data: the Poisson variance of signal removed from
  // the data upstream (background subtraction), or of all the signal in a faint pixel.
  const float factor = noise.factor;
  const float rest = median_over([&](std::size_t t) { return var_poisson[t] - factor * data[t]; });
  float read = NAN;
  if (!var_rnoise.empty())
    read = median_over([&](std::size_t t) { return var_rnoise[t]; });
  else if (read_noise)
    read = *read_noise * *read_noise;
  else
    read = median_over([&](std::size_t t) { return err[t] * err[t] - var_poisson[t]; });
  noise.floor = std::max(read, 0.0f) + std::max(rest, 0.0f);
  if (!std::isfinite(noise.floor)) noise.floor = NAN;
  return noise;
}

OptimalLine extract_optimal_line(std::span<const double> data, std::span<double> profile,
                                 std::span<const double> floor, std::span<const double> factor,
                                 std::span<std::uint8_t> usable, double threshold) {
  OptimalLine line;
  const std::size_t n = data.size();
  double norm = 0;
  for (std::size_t j = 0; j < n; ++j) norm += profile[j];
  if (!(norm > 0) || !std::isfinite(norm)) return line;
  for (std::size_t j = 0; j < n; ++j) profile[j] /= norm;
  // Horne's first estimate: the profile-corrected sum of the usable pixels.
  double sum_d = 0, sum_p = 0;
  std::size_t left = 0;
  for (std::size_t j = 0; j < n; ++j)
    if (usable[j]) {
      sum_d += data[j];
      sum_p += profile[j];
      ++left;
    }
  if (!(sum_p > 0)) return line;
  double f = sum_d / sum_p;
  const double threshold2 = threshold * threshold;
  for (int revisions = 1;; ++revisions) {
    double s0 = 0, s1 = 0, s2 = 0, worst = -1;
    std::size_t worst_j = n;
    // Variances from the model f P (not from the data, whose noise would bias f).
    for (std::size_t j = 0; j < n; ++j) {
      if (!usable[j]) continue;
      const double v = floor[j] + factor[j] * std::max(f * profile[j], 0.0);
      if (!(v > 0)) continue;
      s0 += profile[j];
      s1 += profile[j] * data[j] / v;
      s2 += profile[j] * profile[j] / v;
    }
    if (!(s2 > 0)) return line;
    const double f_new = s1 / s2;
    line.variance = s0 / s2;
    for (std::size_t j = 0; j < n; ++j) {
      if (!usable[j]) continue;
      const double v = floor[j] + factor[j] * std::max(f * profile[j], 0.0);
      if (!(v > 0)) continue;
      const double r = data[j] - f_new * profile[j];
      const double z = r * r / v;
      if (z > worst) {
        worst = z;
        worst_j = j;
      }
    }
    f = f_new;
    // Horne's step 7: the single worst pixel beyond the threshold goes, then revise again.
    if (worst > threshold2 && worst_j < n && left > 1) {
      usable[worst_j] = 0;
      --left;
      ++line.rejected;
      continue;
    }
    if (revisions >= 2) break;
  }
  line.flux = f;
  return line;
}

namespace {

struct Names {
  std::string profile, floor, factor, rejected;
};

Names names_of(const spectra::ExtractionSetup& s) {
  return {s.name("optimal_profile"), s.name("optimal_variance_floor"), s.name("optimal_poisson_factor"),
          s.name("extract_rejected")};
}

bool profile_image_used(const ExtractOptimalParams& p) { return p.profile == "median_image" || p.median_spatial_profile; }

/// Phase 0 (pixel time series): the median profile image and each pixel's noise model, for
/// the pixels any integration's aperture may touch (NaN elsewhere). Each pixel belongs to
/// one rank, which writes it; the others hold 0, so the engine's sum is exact.
void pixels_phase(const ExtractOptimalParams& params, const spectra::ExtractionSetup& setup, StepContext& context) {
  const CubeShape& shape = context.shape();
  const std::size_t nw = spectra::n_wave(setup, shape), ns = spectra::n_spatial(setup, shape), nt = shape.nt;
  const Names names = names_of(setup);
  Dataset& dataset = context.data();

  // The spatial range [lo, hi) per dispersion index that apertures may touch, from
  // replicated data (the trace image), the same on every rank.
  std::vector<std::int64_t> lo(nw, 0), hi(nw, 0);
  {
    std::vector<double> cmin(nw, setup.aperture_center), cmax(nw, setup.aperture_center);
    if (setup.position == spectra::TracePosition::trace) {
      const Image& trace = dataset.image(setup.trace_image);
      std::fill(cmin.begin(), cmin.end(), INFINITY);
      std::fill(cmax.begin(), cmax.end(), -INFINITY);
      for (std::size_t t = 0; t < nt; ++t)
        for (std::size_t w = 0; w < nw; ++w) {
          const double c = trace.values[t * nw + w];
          if (!std::isfinite(c)) continue;
          cmin[w] = std::min(cmin[w], c);
          cmax[w] = std::max(cmax[w], c);
        }
    } else if (setup.position == spectra::TracePosition::gaussian_fits) {
      for (std::size_t w = 0; w < nw; ++w) {
        cmin[w] -= static_cast<double>(setup.fit_half_width);
        cmax[w] += static_cast<double>(setup.fit_half_width);
      }
    }
    for (std::size_t w = 0; w < nw; ++w) {
      if (!(cmax[w] >= cmin[w])) continue;  // never traced: empty
      lo[w] = std::max<std::int64_t>(static_cast<std::int64_t>(std::floor(cmin[w] - setup.shape.reach_below())), 0);
      hi[w] = std::min<std::int64_t>(static_cast<std::int64_t>(std::ceil(cmax[w] + setup.shape.reach_above())) + 1,
                                     static_cast<std::int64_t>(ns));
    }
  }

  const bool use_dq = setup.skip_bits != 0;
  const bool has_poisson = dataset.has_cube("var_poisson"), has_rnoise = dataset.has_cube("var_rnoise");
  std::optional<jwst::ReferenceImage> read_noise;
  if (params.read_noise && !has_rnoise)
    read_noise = jwst::load_reference_image(*params.read_noise, "read_noise", context);
  const bool image_profile = profile_image_used(params);
  const bool cube_profile = params.profile == "cube";

  auto data = context.tiles<float>("data");
  auto err = context.tiles<float>("err");
  std::vector<TileBlock<std::uint32_t>> dq;
  std::vector<TileBlock<float>> var_p, var_r, prof;
  if (use_dq) dq = context.tiles<std::uint32_t>("dq");
  if (has_poisson) var_p = context.tiles<float>("var_poisson");
  if (has_rnoise) var_r = context.tiles<float>("var_rnoise");
  if (image_profile && cube_profile) prof = context.tiles<float>("profile");

  const std::string units = dataset.cube("data").info.units;
  Image* profile = image_profile ? &context.image(names.profile) : nullptr;
  if (profile) profile->info.units = cube_profile ? "1" : units;
  Image& floor = context.image(names.floor);
  Image& factor = context.image(names.factor);
  floor.info.units = spectra::squared_units(units);
  factor.info.units = units;

  std::vector<float> scratch(nt);
  for (std::size_t b = 0; b < data.size(); ++b) {
    const Tile& tile = data[b].tile;
    for (std::size_t i = 0; i < data[b].pixels(); ++i) {
      const std::size_t y = tile.y0 + i / tile.width(), x = tile.x0 + i % tile.width();
      const std::size_t pixel = y * shape.nx + x;
      const std::size_t w = setup.dispersion == spectra::Dispersion::x ? x : y;
      const auto s = static_cast<std::int64_t>(setup.dispersion == spectra::Dispersion::x ? y : x);
      if (s < lo[w] || s >= hi[w]) {
        if (profile) profile->values[pixel] = NAN;
        floor.values[pixel] = NAN;
        factor.values[pixel] = NAN;
        continue;
      }
      const std::span<const float> d = data[b].series(i), e = err[b].series(i);
      const std::span<const std::uint32_t> q = use_dq ? std::span<const std::uint32_t>(dq[b].series(i))
                                                      : std::span<const std::uint32_t>();
      if (profile) {
        std::size_t n = 0;
        if (cube_profile) {
          const std::span<const float> p = prof[b].series(i);
          for (std::size_t t = 0; t < nt; ++t)
            if (std::isfinite(p[t])) scratch[n++] = p[t];
        } else {
          for (std::size_t t = 0; t < nt; ++t)
            if (std::isfinite(d[t]) && !(use_dq && (q[t] & setup.skip_bits))) scratch[n++] = d[t];
        }
        profile->values[pixel] = median_of(std::span<float>(scratch.data(), n));
      }
      std::optional<float> rn;
      if (read_noise) rn = read_noise->at(pixel);
      const PixelNoise noise =
          pixel_noise(d, e, has_poisson ? std::span<const float>(var_p[b].series(i)) : std::span<const float>(),
                      has_rnoise ? std::span<const float>(var_r[b].series(i)) : std::span<const float>(), q,
                      setup.skip_bits, rn, scratch);
      floor.values[pixel] = noise.floor;
      factor.values[pixel] = noise.factor;
    }
    context.advance(data[b].pixels());
  }
}

/// Phase 1 (integrations): Horne's extraction of every line.
void frames_phase(const ExtractOptimalParams& params, const spectra::ExtractionSetup& setup, StepContext& context) {
  const CubeShape& shape = context.shape();
  const std::size_t nw = spectra::n_wave(setup, shape), ns = spectra::n_spatial(setup, shape);
  const Names names = names_of(setup);
  auto data = context.frames<float>("data");
  const bool use_dq = setup.skip_bits != 0;
  FrameSlab<std::uint32_t> dq;
  if (use_dq) dq = context.frames<std::uint32_t>("dq");
  const bool image_profile = profile_image_used(params);
  FrameSlab<float> profile_cube;
  if (!image_profile) profile_cube = context.frames<float>("profile");
  const float* profile_image = image_profile ? context.image(names.profile).values.data() : nullptr;
  const float* floor_image = context.image(names.floor).values.data();
  const float* factor_image = context.image(names.factor).values.data();

  const std::string units = context.data().cube("data").info.units;
  Image& flux = context.image(setup.name("flux"));
  Image& flux_error = context.image(setup.name("flux_error"));
  flux.info.units = flux_error.info.units = units;
  Image* fit = setup.position == spectra::TracePosition::gaussian_fits ? &context.image(setup.fit_image()) : nullptr;
  auto& psf_sigma = context.frame_vector(setup.name("psf_sigma")).values;
  auto& bad_pixels = context.frame_vector(setup.name("extract_bad_pixels")).values;
  auto& rejected = context.frame_vector(names.rejected).values;

  spectra::CentreFinder finder(setup, context.data());
  std::vector<double> centre(nw), d(ns), p(ns), v0(ns), k(ns);
  std::vector<std::uint8_t> usable(ns);
  std::vector<float> widths(nw);
  const auto probe = spectra::dispersed<const float>(nullptr, shape.ny, shape.nx, setup.dispersion);
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    const float* frame = data.frame(t).data();
    const std::uint32_t* q = use_dq ? dq.frame(t).data() : nullptr;
    const float* pframe = image_profile ? profile_image : profile_cube.frame(t).data();
    finder.centres(t, spectra::dispersed<const float>(frame, shape.ny, shape.nx, setup.dispersion),
                   use_dq ? std::span<const std::uint32_t>(q, shape.ny * shape.nx) : std::span<const std::uint32_t>(),
                   centre);
    std::size_t bad = 0, n_rejected = 0, n_width = 0;
    for (std::size_t w = 0; w < nw; ++w) {
      const std::size_t row = t * nw + w;
      if (fit) fit->values[row] = static_cast<float>(centre[w]);
      const LineAperture aperture = setup.shape.at(centre[w], ns);
      if (aperture.empty()) {
        flux.values[row] = flux_error.values[row] = NAN;
        continue;
      }
      const std::int64_t first = aperture.first();
      const auto m = static_cast<std::size_t>(aperture.end() - first);
      for (std::size_t a = 0; a < m; ++a) {
        const std::size_t i = probe.index(w, static_cast<std::size_t>(first) + a);
        const float pv = pframe[i];
        d[a] = frame[i];
        p[a] = std::isfinite(pv) && pv > 0 ? pv : 0.0;
        v0[a] = floor_image[i];
        k[a] = std::isfinite(factor_image[i]) ? factor_image[i] : 0.0;
        usable[a] = std::isfinite(frame[i]) && std::isfinite(floor_image[i]) && !(q && (q[i] & setup.skip_bits));
        bad += usable[a] ? 0 : 1;
      }
      const OptimalLine line = extract_optimal_line(std::span<const double>(d.data(), m), std::span<double>(p.data(), m),
                                                    std::span<const double>(v0.data(), m),
                                                    std::span<const double>(k.data(), m),
                                                    std::span<std::uint8_t>(usable.data(), m), params.outlier_threshold);
      flux.values[row] = static_cast<float>(line.flux);
      flux_error.values[row] = static_cast<float>(std::sqrt(line.variance));
      n_rejected += line.rejected;
      if (std::isfinite(line.flux) && line.flux > 5.0 * std::sqrt(line.variance)) {
        const double width2 = spectra::second_moment_variance(aperture, [&](std::int64_t j) {
          const auto a = static_cast<std::size_t>(j - first);
          return usable[a] ? d[a] : NAN;
        });
        if (std::isfinite(width2)) widths[n_width++] = static_cast<float>(width2);
      }
    }
    psf_sigma[t] = spectra::sigma_from_variances(std::span<float>(widths.data(), n_width));
    bad_pixels[t] = static_cast<double>(bad);
    rejected[t] = static_cast<double>(n_rejected);
    context.advance(1);
  }
}

}  // namespace

StepIO ExtractOptimal::io(const Params& params) {
  const spectra::ExtractionSetup setup = spectra::setup_of(params, "extract_optimal");
  StepIO io = spectra::extraction_io(setup);
  const Names names = names_of(setup);
  if (params.profile == "cube")
    io.reads.push_back({DataKind::Cube, "profile",
                        "profile = 'cube' reads the profile cube of clean_outliers; or use profile = 'median_image'"});
  if (params.read_noise)
    if (auto ref = jwst::reference_read(*params.read_noise, "read_noise")) io.reads.push_back(*ref);
  if (profile_image_used(params))
    io.writes.push_back({DataKind::Image,
                         {names.profile, "", "per-pixel time median of the profile source (before normalisation)"}});
  io.writes.push_back({DataKind::Image, {names.floor, "", "optimal extraction: variance not proportional to the flux"}});
  io.writes.push_back(
      {DataKind::Image, {names.factor, "", "optimal extraction: Poisson variance per unit of flux (var_poisson/data)"}});
  DataOut count{DataKind::FrameVector, {names.rejected, "1", "pixels rejected as outliers (Horne 1986), summed over wavelength"}};
  count.integer = true;
  io.writes.push_back(count);
  return io;
}

void ExtractOptimal::run(const Params& params, StepContext& context) {
  const spectra::ExtractionSetup setup = spectra::setup_of(params, "extract_optimal");
  spectra::check_setup(setup, context.data());
  switch (context.phase()) {
    case 0:
      pixels_phase(params, setup, context);
      return;
    case 1:
      frames_phase(params, setup, context);
      return;
    default:
      spectra::write_wavelengths(setup, context);
      return;
  }
}

}  // namespace tessera::steps
