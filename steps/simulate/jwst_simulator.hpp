#pragma once
/// Simulated JWST time-series exposures with known truth: a NIRISS SOSS (SUBSTRIP256, NISRAPID)
/// or MIRI LRS slitless (SLITLESSPRISM, FASTR1) exposure written as uncal segments, the reference
/// files that describe its detector, and a truth file. `tessera simulate niriss-soss|miri-lrs`
/// calls it; docs/simulator.md describes the scenes, the detector model and the truth.
///
/// Writes, under out_dir:
///   uncal/<root>_segNNN_<det>_uncal.fits  segments of one exposure: primary keywords (TELESCOP,
///                                         INSTRUME, DETECTOR, EXP_TYPE, READPATT, SUBARRAY, NINTS,
///                                         NGROUPS, NFRAMES, GROUPGAP, TFRAME, TGROUP, EXSEGNUM,
///                                         EXSEGTOT, INTSTART, INTEND, SUBSTRT1/2, SUBSIZE1/2,
///                                         EXPSTART), SCI (uint16, NAXIS = nx, ny, groups,
///                                         integrations) and the INT_TIMES table (whole exposure)
///   refs/{mask,saturation,superbias,linearity,dark,gain,readnoise}.fits
///   refs/wavelength_order1.fits, refs/wavelength_order2.fits (NIRISS) or refs/wavelength.fits
///                                         (MIRI): SCI float32 (ny, nx), micron per pixel
///   truth.h5                              star_rate (and per order), background_rate, flux, time,
///                                         jumps, trace centres, pointing shifts, ...
///
/// Detector model, per pixel, integration and group g = 0..ng-1 (read at tgroup·(g+1)):
///   linear = dark[g] + electrons(g) / gain + jumps(g) + read_noise · N(0,1)
///   raw    = superbias + reference offset(g) + 1/f(g) + L⁻¹(linear)   (reference pixels: no
///            light, dark or jumps), clipped to [0, saturation] and rounded to uint16,
/// where L(r) = Σ c_k r^k is the linearity reference polynomial, inverted numerically, so the
/// usual chain (superbias, refpix, linearity, dark_current) gives back `linear`.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::sim {

enum class JwstInstrument { niriss_soss, miri_lrs };

/// "niriss-soss" or "miri-lrs".
std::string_view jwst_instrument_name(JwstInstrument instrument);

/// Everything that shapes a simulated exposure. Same options and seed, same files (whatever
/// `threads` is). Start from jwst_defaults(instrument) and change what you need.
struct JwstSimOptions {
  JwstInstrument instrument = JwstInstrument::niriss_soss;
  std::string out_dir;
  std::size_t ny = 256, nx = 2048;    ///< subarray rows and columns (NIRISS 256 x 2048, MIRI 416 x 72)
  std::size_t ints = 200;             ///< integrations in the exposure (NINTS)
  std::size_t groups = 6;             ///< groups per integration (NGROUPS)
  std::size_t ints_per_segment = 50;  ///< integrations per uncal segment (the last may hold fewer)
  std::uint64_t seed = 1;
  double transit_depth = 0.01;  ///< fractional loss of stellar flux between 2nd and 3rd contact
  double cr_rate = 2e-3;        ///< cosmic-ray hits per light-sensitive pixel per integration
  /// Stellar count rate (DN/s) at the trace's brightest pixel out of transit; 0 picks one that
  /// saturates that pixel in group max(1, ng - 1 - max(1, ng/3)) (0-based; one or more groups
  /// before the last unless ng = 2).
  double peak_rate = 0;
  double background = 2.0;  ///< mean sky rate (DN/s) over the light-sensitive pixels
  double one_over_f = 4.0;  ///< rms (DN) of the per-group, per-column 1/f offsets (NIRISS; MIRI has none)
  /// Spectral orders drawn: NIRISS 1 or 2 (order 2 fainter, in the upper rows, over part of x);
  /// MIRI has one.
  std::size_t orders = 2;
  /// Pointing drift: rms (pixels, in x and in y) of the per-integration scene shifts; 0: none.
  double drift = 0;
  std::size_t threads = 0;  ///< worker threads (0: all hardware threads); does not change the output
};

/// The defaults of one instrument (shape, groups, background, 1/f).
JwstSimOptions jwst_defaults(JwstInstrument instrument);

/// Counts of what simulate_jwst put in.
struct JwstSimSummary {
  std::string instrument;
  std::size_t ints = 0, groups = 0, ny = 0, nx = 0, segments = 0;
  double tgroup = 0;
  double peak_rate = 0;                ///< DN/s at the brightest trace pixel (flux 1)
  std::size_t orders = 1;              ///< spectral orders drawn
  double drift = 0;                    ///< rms of the pointing shifts (pixels; truth shift_x, shift_y)
  std::size_t jumps = 0;               ///< cosmic-ray hits (entries of truth jump_*)
  std::size_t saturating_pixels = 0;   ///< pixels whose truth saturation_group >= 0
  std::size_t reference_pixels = 0, dead_pixels = 0, hot_pixels = 0;
  /// One line per count, for the command line.
  std::string str() const;
};

/// Writes the exposure described above and returns what it contains. Prints nothing.
/// Throws ConfigError (naming the option) for options that cannot describe an exposure, IoError
/// when writing fails. Memory: the references, a few images of the scene and one segment's SCI.
JwstSimSummary simulate_jwst(const JwstSimOptions& options);

/// The noise-free stellar count rate (DN/s at flux 1, row-major ny × nx) that simulate_jwst puts
/// on the detector when the scene is shifted by (shift_x, shift_y) pixels: integration t receives
/// flux[t] times this image at the truth's (shift_x[t], shift_y[t]). `order` 0 gives every drawn
/// order, 1 or 2 one order. At zero shift it equals truth star_rate (star_rate_order1/2) exactly.
/// Zero on reference and dead pixels. For tests; throws ConfigError like simulate_jwst.
std::vector<float> jwst_star_rate(const JwstSimOptions& options, double shift_x, double shift_y, int order = 0);

}  // namespace tessera::sim
