#pragma once
/// bkg_sky: scale a G280 sky image (Pagul et al. 2023, "UVIS G280 sky images") to each frame
/// and subtract it (ExoTiC-UVIS / HUSTLE-tools stage 1, "do_Pagul").
///
/// Phase 0 (frames): per frame, the scale s_t of data = s_t · sky by least squares over the
/// pixels that are neither near a source nor outliers. Phase 1 (frames, after every rank has
/// every frame's raw scale): with smooth_fits, scales that stand out from their orbit's trend
/// are replaced by it (the same on every rank); then s_t · sky is subtracted.
///
/// Meaning of the template's parameters here (compare hustle_tools bckg_subtract.Pagul_bckg_subtraction):
/// - mask_parameter: the reference masks pixels with |frame − mode| > mask_parameter × std(frame),
///   the frame's std being set by its bright sources; a symmetric window that narrow keeps
///   only pixels near the mode, so its fit returns about the mode whatever the sky's shape.
///   Here, pixels are masked down to mask_parameter × the brightest source's level above the
///   fitted sky (after a 5-pixel median along rows and a 5-row mean), and never below
///   mask_snr times the noise, then grown by mask_grow pixels. As in the template, smaller
///   values mask more.
/// - smoothing_param: the reference replaces scales further than smoothing_param × std from
///   the median of all scales by that median. Here the threshold is smoothing_param robust σ
///   (1.4826 × median absolute deviation) from a quadratic trend fitted per orbit with
///   iterative rejection, and rejected scales take the trend's value, so a sky that changes
///   along an orbit is not flattened. Smaller values reject (smooth) more.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steps/common/source_mask.hpp"
#include "tessera/step.hpp"

namespace tessera::steps {

struct BkgSkyParams {
  std::string path_to_pagul = "./";
  double mask_parameter = 0.001;
  bool smooth_fits = true;
  double smoothing_param = 2.5;
  bool median_columns = true;
  // Ours.
  std::optional<std::vector<double>> sky_origin;  // whole pixels
  double mask_snr = 5;
  std::int64_t mask_grow = 3;
  double clip_sigma = 5;

  static Schema<BkgSkyParams> schema() {
    return tessera::schema<BkgSkyParams>(
        field(&BkgSkyParams::path_to_pagul, "path_to_Pagul",
              "The G280 sky image (FITS; data in the primary HDU or a SCI extension), or a directory holding "
              "exactly one *.fits"),
        field(&BkgSkyParams::mask_parameter, "mask_parameter",
              "Mask sources down to this fraction of the brightest source's level above the sky (never below "
              "mask_snr sigma); smaller values mask more",
              Range::above(0)),
        field(&BkgSkyParams::smooth_fits, "smooth_fits",
              "Replace scale factors that stand out from their orbit's trend in time by the trend"),
        field(&BkgSkyParams::smoothing_param, "smoothing_param",
              "With smooth_fits: rejection threshold in robust sigma about the per-orbit quadratic trend; "
              "smaller values smooth more",
              Range::above(0)),
        field(&BkgSkyParams::median_columns, "median_columns",
              "Replace the sky image by the median of each of its columns (helps undersampled sky images)"),
        field(&BkgSkyParams::sky_origin, "sky_origin",
              "[x, y] of the sky image pixel under the frames' pixel (0, 0), to cut a subarray out of a larger "
              "image; unset: the image must have the frames' shape",
              Range::at_least(0)),
        field(&BkgSkyParams::mask_snr, "mask_snr",
              "Sources are masked only where significant at this many sigma (after smoothing)", Range::above(0)),
        field(&BkgSkyParams::mask_grow, "mask_grow", "Pixels masked around each source pixel, on every side",
              Range::at_least(0)),
        field(&BkgSkyParams::clip_sigma, "clip_sigma",
              "Pixels deviating from the scaled sky by more than this many robust sigma (cosmic rays, hot "
              "pixels) are left out of the fit",
              Range::above(0)));
  }
};

/// The sky image for frames of ny × nx: read from params.path_to_pagul (see the parameter),
/// column-medianed if asked (over the whole image, as the template does), then cut at
/// sky_origin. Throws InputError naming the path for a missing file, a directory without
/// exactly one *.fits, no 2D image, a shape that does not fit, or non-finite values.
std::vector<float> load_sky_image(const BkgSkyParams& params, std::size_t ny, std::size_t nx);

/// Buffers reused from frame to frame.
struct BkgSkyScratch {
  SourceMaskScratch sources;
  std::vector<std::uint8_t> mask;  ///< after fit_sky_scale: 1 = source (row-major)
  std::vector<float> residual, samples;
};

/// Least-squares scale s of frame ≈ s · sky over the pixels not masked as sources (see
/// BkgSkyParams) and within clip_sigma robust σ of the scaled sky, iterated until s settles.
/// Both images are ny × nx, row-major. NaN when no pixel is usable.
double fit_sky_scale(std::span<const float> frame, std::span<const float> sky, std::size_t ny, std::size_t nx,
                     const BkgSkyParams& params, BkgSkyScratch& scratch);

/// The smooth_fits rule on a series of scales: within each segment (frames with equal
/// `segment`, e.g. one HST orbit; empty = one segment), fit a polynomial in `time` (degree
/// 2, or less for short segments) by least squares, iteratively leaving out scales further
/// than `sigma` × 1.4826 × the median absolute residual (over all segments) from their
/// segment's fit; the scales left out are replaced by the fit. Returns the new series.
std::vector<double> smooth_scales(std::span<const double> scales, std::span<const double> time,
                                  std::span<const double> segment, double sigma);

struct BkgSky {
  static constexpr std::string_view name = "bkg_sky";
  static constexpr std::string_view summary =
      "Scale a G280 sky image (Pagul et al. 2023) to each frame by least squares and subtract it";
  using Params = BkgSkyParams;
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Frames}; }
  static StepIO io(const Params&);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
