#include "steps/spectra/extract_box.hpp"

#include <algorithm>
#include <cmath>
#include <span>

#include "steps/common/select.hpp"
#include "tessera/errors.hpp"

namespace tessera::steps {

using spectra::LineAperture;

BoxLine extract_box_line(const float* data, const float* err, const std::uint32_t* dq, std::size_t stride,
                         std::size_t n, double centre, const spectra::ApertureShape& shape,
                         std::optional<double> background_radius, std::uint32_t skip_bits, float* scratch) {
  BoxLine line;
  const LineAperture aperture = shape.at(centre, n);
  if (aperture.empty()) return line;
  auto usable = [&](std::int64_t j) {
    const std::size_t i = static_cast<std::size_t>(j) * stride;
    return std::isfinite(data[i]) && std::isfinite(err[i]) && !(dq && (dq[i] & skip_bits));
  };
  if (background_radius) {
    std::size_t count = 0;
    spectra::for_each_background_pixel(aperture, centre, *background_radius, n, [&](std::int64_t j) {
      if (usable(j)) scratch[count++] = data[static_cast<std::size_t>(j) * stride];
    });
    line.background = median_of(std::span<float>(scratch, count));  // NaN when empty
  }
  double flux = 0, variance = 0;
  std::size_t used = 0;
  aperture.for_each([&](std::int64_t j, double w) {
    if (!usable(j)) {
      ++line.bad;
      return;
    }
    const std::size_t i = static_cast<std::size_t>(j) * stride;
    const double e = err[i];
    flux += w * (static_cast<double>(data[i]) - line.background);
    variance += w * w * e * e;
    ++used;
  });
  if (used == 0) return line;
  line.flux = flux;
  line.variance = variance;
  if (std::isfinite(flux) && flux > 5.0 * std::sqrt(variance))
    line.width2 = spectra::second_moment_variance(aperture, [&](std::int64_t j) {
      return usable(j) ? static_cast<double>(data[static_cast<std::size_t>(j) * stride]) - line.background : NAN;
    });
  return line;
}

StepIO ExtractBox::io(const Params& params) {
  const spectra::ExtractionSetup setup = spectra::setup_of(params, "extract_box");
  StepIO io = spectra::extraction_io(setup);
  if (params.background_radius) {
    DataOut background{DataKind::Image, {setup.name("aperture_background"), "", "background annulus median"}};
    background.image_ny = DataOut::frames;
    background.image_nx = spectra::dispersion_size(setup.dispersion);
    background.dim_y = "time";
    background.dim_x = setup.name("wavelength");
    io.writes.push_back(background);
  }
  return io;
}

void ExtractBox::run(const Params& params, StepContext& context) {
  const spectra::ExtractionSetup setup = spectra::setup_of(params, "extract_box");
  spectra::check_setup(setup, context.data());
  if (params.background_radius && params.aperture_radius && !(*params.background_radius > *params.aperture_radius))
    throw StepError("background_radius: must exceed aperture_radius (" + std::to_string(*params.aperture_radius) +
                    "), got " + std::to_string(*params.background_radius));
  if (context.phase() == 1) {
    spectra::write_wavelengths(setup, context);
    return;
  }

  const CubeShape& shape = context.shape();
  const std::size_t nw = spectra::n_wave(setup, shape), ns = spectra::n_spatial(setup, shape);
  auto data = context.frames<float>("data");
  auto err = context.frames<float>("err");
  const bool use_dq = setup.skip_bits != 0;
  FrameSlab<std::uint32_t> dq;
  if (use_dq) dq = context.frames<std::uint32_t>("dq");
  const std::string units = context.data().cube("data").info.units;

  Image& flux = context.image(setup.name("flux"));
  Image& flux_error = context.image(setup.name("flux_error"));
  flux.info.units = flux_error.info.units = units;
  Image* background = nullptr;
  if (params.background_radius) {
    background = &context.image(setup.name("aperture_background"));
    background->info.units = units;
  }
  Image* fit = setup.position == spectra::TracePosition::gaussian_fits ? &context.image(setup.fit_image()) : nullptr;
  auto& psf_sigma = context.frame_vector(setup.name("psf_sigma")).values;
  auto& bad_pixels = context.frame_vector(setup.name("extract_bad_pixels")).values;

  spectra::CentreFinder finder(setup, context.data());
  std::vector<double> centre(nw);
  std::vector<float> scratch(ns), widths(nw);
  const spectra::DispersedView<const float> probe = spectra::dispersed<const float>(nullptr, shape.ny, shape.nx,
                                                                                   setup.dispersion);
  const std::size_t stride = probe.spatial_stride();
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    const float* d = data.frame(t).data();
    const float* e = err.frame(t).data();
    const std::uint32_t* q = use_dq ? dq.frame(t).data() : nullptr;
    finder.centres(t, spectra::dispersed<const float>(d, shape.ny, shape.nx, setup.dispersion),
                   use_dq ? std::span<const std::uint32_t>(q, shape.ny * shape.nx) : std::span<const std::uint32_t>(),
                   centre);
    std::size_t bad = 0, n_width = 0;
    for (std::size_t w = 0; w < nw; ++w) {
      const std::size_t start = probe.index(w, 0);
      const BoxLine line = extract_box_line(d + start, e + start, q ? q + start : nullptr, stride, ns, centre[w],
                                            setup.shape, params.background_radius, setup.skip_bits, scratch.data());
      flux.values[t * nw + w] = static_cast<float>(line.flux);
      flux_error.values[t * nw + w] = static_cast<float>(std::sqrt(line.variance));
      if (background) background->values[t * nw + w] = static_cast<float>(line.background);
      if (fit) fit->values[t * nw + w] = static_cast<float>(centre[w]);
      bad += line.bad;
      if (std::isfinite(line.width2)) widths[n_width++] = static_cast<float>(line.width2);
    }
    psf_sigma[t] = spectra::sigma_from_variances(std::span<float>(widths.data(), n_width));
    bad_pixels[t] = static_cast<double>(bad);
    context.advance(1);
  }
}

}  // namespace tessera::steps
