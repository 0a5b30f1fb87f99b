#pragma once
/// track_stars: per-frame positions of unsaturated field stars and their shifts from the first
/// frame (ExoTiC-UVIS / HUSTLE-tools stage 1, "background star tracking"). Each star is measured
/// like the 0th order (steps/tracking/track_0th.hpp): background-subtracted windowed centroid
/// within ±bkg_window pixels, then a 2D Gaussian fit.
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/step.hpp"

namespace tessera::steps {

struct TrackStarsParams {
  std::vector<std::vector<double>> bkg_stars_loc = {{0.0, 0.0}, {0.0, 0.0}};
  std::int64_t bkg_window = 15;
  std::int64_t annulus = 5;
  std::string method = "gaussian";

  static Schema<TrackStarsParams> schema() {
    return tessera::schema<TrackStarsParams>(
        field(&TrackStarsParams::bkg_stars_loc, "bkg_stars_loc",
              "[[x, y], ...]: estimated position of each background star in the frames; the template's "
              "[[0, 0], [0, 0]] is a placeholder and must be replaced when the step is enabled"),
        field(&TrackStarsParams::bkg_window, "bkg_window",
              "Half-width (px) of the square window around each star; shrink it for a star near a bright source",
              Range::at_least(2)),
        field(&TrackStarsParams::annulus, "annulus",
              "Width (px) of the square annulus just outside the window whose median is the local background",
              Range::at_least(1)),
        field(&TrackStarsParams::method, "method",
              "'gaussian': 2D Gaussian fit (started from the centroid); 'centroid': background-subtracted windowed "
              "centroid only",
              Choices{{"gaussian", "centroid"}}));
  }
};

/// Two phases over frames: (0) each star's position in each own frame → per-frame vectors
/// track_stars_x_K, track_stars_y_K (K = index in bkg_stars_loc); (1) with all frames known on
/// every rank, the images track_stars_x, track_stars_y (positions) and track_stars_x_shift,
/// track_stars_y_shift (minus the first frame's), dims ("time", "star").
struct TrackStars {
  static constexpr std::string_view name = "track_stars";
  static constexpr std::string_view summary =
      "Track background stars in every frame (windowed centroid, Gaussian fit) -> x and y shifts per star";
  using Params = TrackStarsParams;
  static std::vector<Access> access(const Params&) { return {Access::Frames, Access::Frames}; }
  static StepIO io(const Params& params);
  static void run(const Params& params, StepContext& context);
};

}  // namespace tessera::steps
