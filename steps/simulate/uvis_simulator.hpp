#pragma once
/// A simulated HST WFC3/UVIS G280 time-series visit with known truth, for tests, benchmarks
/// and demonstrations. `tessera simulate uvis --out sim/` calls it.
///
/// Writes, under out_dir:
///   specimages/orNNfmMMM_flt.fits   one exposure each (orbit NN, frame MMM of that orbit), in
///                                   calwf3 flt form: empty primary HDU with EXPSTART, EXPEND,
///                                   EXPTIME, TARGNAME, INSTRUME, DETECTOR, FILTER; then SCI
///                                   (float32), ERR (float32), DQ (int16) with EXTNAME, EXTVER=1, BUNIT
///   directimages/or00di000_flt.fits one undispersed image of the star, before the first exposure
///   sky/g280_sky.fits               the sky's spatial pattern (mean 1; extension SCI), like the
///                                   Pagul et al. (2023) G280 sky image; frame f's sky is
///                                   truth background[f] times it
///   truth.h5                        what went in (see simulate_uvis)
#include <cstddef>
#include <cstdint>
#include <string>

namespace tessera::sim {

/// Everything that shapes the simulated visit. The same options and seed give the same files.
struct UvisSimOptions {
  std::string out_dir;
  std::size_t frames = 40, ny = 256, nx = 512;
  std::uint64_t seed = 1;
  std::size_t orbits = 4;       ///< HST orbits the frames are spread over (contiguous, nearly equal shares)
  double transit_depth = 0.01;  ///< fractional loss of stellar flux at mid-transit
  double exptime = 60;          ///< s
  double sky = 15;              ///< mean sky per pixel per frame (electrons)
  double read_noise = 3;        ///< electrons rms
  double cr_rate = 2e-4;        ///< cosmic-ray hits per pixel per frame
  double hot_fraction = 1e-3;   ///< fraction of pixels that are hot
  double drift_px = 0.12;       ///< pointing drift scale (pixels)
  double overhead = 40;         ///< s between one exposure's end and the next one's start (readout)
  double full_well = 63000;     ///< electrons; above it a pixel is clipped and flagged 256
  double zeroth_peak = 2.5e5;   ///< electrons at the 0th order's centre before clipping (saturates)
  double trace_peak = 1500;     ///< electrons at the +1 order's brightest point; the -1 order has half
  std::size_t stars = 5;        ///< field stars (their unsaturated 0th orders) at fixed places; 0 to 8
};

/// Counts of what simulate_uvis put in.
struct UvisSimSummary {
  std::size_t frames = 0, orbits = 0;
  std::size_t stars = 0;              ///< field stars drawn (truth star_*)
  std::size_t cosmic_ray_hits = 0;    ///< events (each 1–3 pixels)
  std::size_t cosmic_ray_pixels = 0;  ///< entries of truth cr_* (pixels that gained charge)
  std::size_t hot_pixels = 0, hot_flagged = 0;
  std::size_t saturated_pixels = 0;   ///< flagged 256, summed over frames
  /// One line per count, for the command line.
  std::string str() const;
};

/// Writes the visit described above and returns what it contains. Prints nothing.
///
/// Scene (all stellar light multiplied by a trapezoid transit; see uvis_simulator.cpp):
/// a 2D Gaussian 0th order at (zeroth_x, zeroth_y), +1 and -1 order traces on either side
/// (gently curved in y, Gaussian cross-profile of 1.5 px), up to 8 field stars (compact,
/// unsaturated 2D Gaussians of a few thousand e- at fixed fractions of the frame, away from the
/// traces; not dimmed by the transit), a sky with a spatial gradient and a slow change in time,
/// sub-pixel pointing drift (moving the whole scene, field stars included), Poisson and read
/// noise, cosmic rays and hot pixels. Each frame draws from its own generator seeded by (seed, frame), so frames do not
/// depend on each other.
///
/// truth.h5: per frame (dim "time"): time (mid-exposure MJD), orbit, background (mean sky, e-),
/// shift_x, shift_y (px), flux (relative stellar flux); per cosmic-ray pixel (dim "cosmic_ray"):
/// cr_frame, cr_y, cr_x, cr_charge (e- actually added, after full-well clipping); per hot pixel
/// (dim "hot_pixel"): hot_y, hot_x, hot_rate (e-/s), hot_flagged (0/1, DQ 16); per field star
/// (dim "star"): star_x, star_y (px, centre at zero shift: frame f has it at star_x + shift_x[f],
/// star_y + shift_y[f]), star_peak (e- at the centre); the noise-free
/// sky image background_image (y, x; mean over frames); attributes transit_depth,
/// transit_mid, transit_duration, transit_ingress, zeroth_x, zeroth_y, seed, frames, ny, nx,
/// exptime, full_well, read_noise, transit_model.
///
/// Throws ConfigError for options that cannot describe a visit, IoError when writing fails.
UvisSimSummary simulate_uvis(const UvisSimOptions& options);

}  // namespace tessera::sim
