#pragma once
/// track_0th: the position of the 0th order in every frame, and its shift from the first
/// frame (ExoTiC-UVIS / HUSTLE-tools stage 1, "source center-of-mass tracking").
///
/// Why not the reference tool's plain centroid of a 140 × 140 box: the box takes in sky and the
/// start of the ±1 traces, which are not symmetric about the 0th order (the +1 order is the
/// brighter), so the centroid is pulled towards the +1 trace by pixels, and since that pull
/// hardly moves with the star, it does not follow the drift. Here the sky is subtracted (median
/// of an annulus), the window is small enough to keep the traces out and is re-centred on the
/// centroid until it settles, so whatever background is left is symmetric about the star and
/// adds no first moment. The saturated core (clipped at the full well, flagged 256) is flat and
/// symmetric: the centroid keeps it at the clipped value, which costs a pixel-phase error of up
/// to about 0.01 px; the default Gaussian fit leaves it out and uses the steep unsaturated wings.
/// On simulated visits the shifts come out within about 0.002 px rms (fit) and 0.005 px rms
/// (centroid) of the truth (tests/mpi/tracking_accuracy_test.cpp).
///
/// This header also holds the position measurements shared by locate and track_stars: a
/// background-subtracted, windowed centroid whose window follows the centroid, and a 2D
/// Gaussian fit that leaves saturated pixels out. Both are pure functions on one image.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

/// One image (a frame, or the direct image) and, optionally, its dq flags; row-major ny × nx.
struct FrameView {
  std::span<const float> values;
  std::span<const std::uint32_t> dq;  ///< empty: no flags
  std::size_t ny = 0, nx = 0;
};

/// How a position is measured. Pixels are electrons; coordinates are pixel centres, 0-based.
struct PositionSettings {
  std::int64_t half_width = 15;  ///< the window holds pixels within ±half_width of the centre
  std::int64_t annulus = 5;      ///< width of the square annulus just outside the window (background)
  bool fit = true;               ///< refine the centroid by a 2D Gaussian fit
  std::uint32_t fit_mask = 256;  ///< dq bits of pixels the fit leaves out (HST full-well saturation)
  double clip = 5;               ///< the fit drops pixels this many sigma off the model, then refits
  int max_iterations = 50;
  double tolerance = 1e-6;       ///< px: the window centre has converged
};

/// Median and robust spread (1.4826 × MAD) of the finite pixels in the square annulus
/// inner < max(|x − cx|, |y − cy|) ≤ outer, clipped to the image.
struct LocalBackground {
  double level = 0, noise = 0;
  std::size_t pixels = 0;
};
LocalBackground annulus_background(const FrameView& image, long cx, long cy, long inner, long outer,
                                   std::vector<float>& scratch);

/// The pixel with the largest 3 × 3 mean within ±half_width of (gx, gy), clipped to the image:
/// a start that a single hot pixel or cosmic ray cannot capture. Nothing if no pixel of the
/// window lies in the image.
std::optional<std::pair<long, long>> brightest_pixel(const FrameView& image, double gx, double gy, long half_width);

/// The brightest pixel of the whole image after a 3 × 3 median (cosmic rays and hot pixels do
/// not survive it, a star does). Returns (x, y).
std::pair<long, long> brightest_smoothed_peak(const FrameView& image);

struct Position {
  double x = 0, y = 0;
  double background = 0;    ///< annulus median subtracted (centroid) or fitted level (fit)
  double flux = 0;          ///< background-subtracted electrons in the window
  double sigma_x = 0, sigma_y = 0;  ///< fitted Gaussian widths (fit only)
  int iterations = 0;
  bool fitted = false;      ///< the Gaussian fit succeeded and gave (x, y)
  bool ok = false;
  std::string why;          ///< when !ok
};

/// First moment of background-subtracted light in a square window of ±half_width pixels around
/// the current centre, the window then moved to the centroid until it moves less than the
/// tolerance. Edge pixels count by the fraction of their area inside the window, at the centre
/// of that part, so the centroid is a continuous function of the window position and a constant
/// background left over contributes nothing once the window is centred. Saturated pixels count
/// at their clipped value: the clipped core is symmetric, so it shifts nothing.
Position windowed_centroid(const FrameView& image, double gx, double gy, const PositionSettings& settings,
                           std::vector<float>& scratch);

/// Least-squares fit (Levenberg–Marquardt) of B + A·exp(−½[(x−x0)²/sx² + (y−y0)²/sy²]) to the
/// pixels within ±half_width of `start`, leaving out non-finite pixels and those with dq bits in
/// fit_mask (a saturated core is flat and carries no position); weights from Poisson plus the
/// annulus noise; one pass of `clip`-sigma rejection (cosmic rays, hot pixels) and a refit.
/// Not ok when it does not converge or lands implausibly (then use the centroid).
Position gaussian_fit(const FrameView& image, const Position& start, const PositionSettings& settings);

/// What the steps use: the brightest pixel near (gx, gy), the windowed centroid from there,
/// and with settings.fit the Gaussian fit, falling back to the centroid when the fit fails.
Position measure_position(const FrameView& image, double gx, double gy, const PositionSettings& settings,
                          std::vector<float>& scratch);

struct Track0thParams {
  std::optional<std::vector<double>> location = std::vector<double>{970.0, 170.0};
  std::int64_t window = 15;
  std::int64_t annulus = 5;
  std::string method = "gaussian";

  static Schema<Track0thParams> schema() {
    return tessera::schema<Track0thParams>(
        field(&Track0thParams::location, "location",
              "[x, y] guess of the 0th order in the frames (template: location); unset: target_x, target_y from "
              "the locate step"),
        field(&Track0thParams::window, "window",
              "Half-width (px) of the square window around the 0th order; keep the traces out of it",
              Range::at_least(2)),
        field(&Track0thParams::annulus, "annulus",
              "Width (px) of the square annulus just outside the window whose median is the local background",
              Range::at_least(1)),
        field(&Track0thParams::method, "method",
              "'gaussian': 2D Gaussian fit to the unsaturated pixels (started from the centroid); 'centroid': "
              "background-subtracted windowed centroid only",
              Choices{{"gaussian", "centroid"}}));
  }
};

/// Two phases over frames: (0) each frame's 0th-order position → track_0th_x, track_0th_y;
/// (1) with every frame's position known everywhere, the shift from the first frame →
/// track_0th_x_shift, track_0th_y_shift.
struct Track0th {
  static constexpr std::string_view name = "track_0th";
  static constexpr std::string_view summary =
      "Track the 0th order in every frame (background-subtracted windowed centroid, Gaussian fit) -> x and y shifts";
  using Params = Track0thParams;
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Frames}; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
