#pragma once
/// Where the spectrum runs on the detector, shared by the spectral steps (trace, extraction,
/// cleaning, alignment). NIRISS/SOSS and NIRCam disperse along x: each column is one
/// wavelength and the cross-dispersion (spatial) profile runs down the column. MIRI/LRS
/// disperses along y: each row is one wavelength and the profile runs along the row. Steps
/// work in (wave, spatial) indices through DispersedView, so neither case is a fork in the code.
#include <cstddef>
#include <string>
#include <string_view>

#include "tessera/errors.hpp"
#include "tessera/step.hpp"

namespace tessera::spectra {

enum class Dispersion { x, y };

/// The parameter every spectral step declares (choices "x" and "y").
inline constexpr std::string_view dispersion_param = "dispersion_axis";
inline constexpr std::string_view dispersion_doc =
    "Detector axis along which wavelength changes: x (one wavelength per column: NIRISS, NIRCam) or y "
    "(one per row: MIRI LRS)";

inline Dispersion parse_dispersion(const std::string& text) {
  if (text == "x") return Dispersion::x;
  if (text == "y") return Dispersion::y;
  throw ConfigError("dispersion_axis: expected \"x\" or \"y\", got \"" + text + "\"");
}

/// Output dimension along the dispersion (the detector axis's own name) and the DataOut size
/// sentinel for images with one value per wavelength index.
inline std::string dispersion_dim(Dispersion d) { return d == Dispersion::x ? "x" : "y"; }
inline std::size_t dispersion_size(Dispersion d) { return d == Dispersion::x ? DataOut::columns : DataOut::rows; }
inline std::string spatial_dim(Dispersion d) { return d == Dispersion::x ? "y" : "x"; }
inline std::size_t spatial_size(Dispersion d) { return d == Dispersion::x ? DataOut::rows : DataOut::columns; }

/// One ny × nx row-major image seen as (wave, spatial).
template <class T>
struct DispersedView {
  T* data = nullptr;
  std::size_t ny = 0, nx = 0;
  Dispersion dispersion = Dispersion::x;

  std::size_t n_wave() const { return dispersion == Dispersion::x ? nx : ny; }
  std::size_t n_spatial() const { return dispersion == Dispersion::x ? ny : nx; }
  /// Distance in memory between neighbours along each axis.
  std::size_t wave_stride() const { return dispersion == Dispersion::x ? 1 : nx; }
  std::size_t spatial_stride() const { return dispersion == Dispersion::x ? nx : 1; }
  std::size_t index(std::size_t wave, std::size_t spatial) const {
    return wave * wave_stride() + spatial * spatial_stride();
  }
  T& operator()(std::size_t wave, std::size_t spatial) const { return data[index(wave, spatial)]; }
};

template <class T>
DispersedView<T> dispersed(T* data, std::size_t ny, std::size_t nx, Dispersion d) {
  return {data, ny, nx, d};
}

}  // namespace tessera::spectra
