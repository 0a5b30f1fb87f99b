#pragma once
/// Small diagnostic plots drawn with PLplot: line/scatter plots of series against x, images
/// with a colour bar (robust limits from percentiles) and histograms, stacked top to bottom
/// in one figure. A figure is written as a PNG file (PLplot's "pngcairo" device) or rendered
/// into an RGB buffer (the "memcairo" device), e.g. as a frame of an animated GIF.
///
/// ```cpp
/// plot::LinePanel p{.title = "Outliers per frame", .x_label = "frame", .y_label = "pixels"};
/// p.series.push_back({"free_iter", frames, counts});
/// plot::write_png("plots/outliers_per_frame.png", plot::Figure{.panels = {p}});
/// ```
///
/// PLplot keeps global state: every drawing opens its own stream (plmkstrm) and ends it
/// (plend1) before returning, so these functions can be called any number of times in one
/// process, but not from two threads at once.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tessera::plot {

/// One curve or set of points.
struct Series {
  enum class Style { Line, Points, LineAndPoints };
  std::string label;  ///< legend text; empty: not in the legend
  std::vector<double> x, y;
  Style style = Style::Line;
  int colour = -1;  ///< index into the series palette (0–9); -1: the series' position
};

struct LinePanel {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::optional<std::pair<double, double>> x_range, y_range;  ///< unset: from the data, padded
  bool legend = true;                                         ///< when more than one series has a label
};

/// How an image larger than the display is reduced to display cells.
enum class Binning { Mean, Max, Sum };
enum class ColourMap { Viridis, Grey, Categories };

struct ImagePanel {
  std::string title, x_label = "x [px]", y_label = "y [px]", colorbar_label;
  std::size_t ny = 0, nx = 0;
  std::vector<float> values;  ///< row-major ny × nx; row 0 is drawn at the bottom
  /// World coordinates: cell (i, j) covers x in [x0 + j·dx, x0 + (j+1)·dx), y likewise.
  double x0 = 0, y0 = 0, dx = 1, dy = 1;
  /// Colour limits: vmin/vmax where set, otherwise these percentiles of the finite values.
  double low_percentile = 1, high_percentile = 99;
  std::optional<double> vmin, vmax;
  ColourMap colours = ColourMap::Viridis;
  /// Categories: value k (an integer) is drawn in categories[k]; labelled in a legend.
  std::vector<std::array<std::uint8_t, 3>> categories;
  std::vector<std::string> category_labels;
  Binning binning = Binning::Mean;
  bool colorbar = true;
};

struct HistogramPanel {
  std::string title, x_label, y_label = "count";
  std::vector<double> values;  ///< non-finite values are ignored
  std::size_t bins = 50;
  std::optional<std::pair<double, double>> range;  ///< unset: min and max of the values
  bool log_y = false;
};

using Panel = std::variant<LinePanel, ImagePanel, HistogramPanel>;

/// Panels stacked top to bottom on one page of width × height pixels.
struct Figure {
  int width = 1000, height = 650;
  std::vector<Panel> panels;
  std::vector<double> heights;  ///< relative height of each panel; empty: equal
};

/// Writes `figure` as a PNG file (written to PATH.partial and renamed when complete).
/// Throws IoError naming the file if it cannot be written.
void write_png(const std::filesystem::path& path, const Figure& figure);

/// 8-bit RGB pixels, row-major from the top-left corner.
struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  ///< width × height × 3
};

/// Draws `figure` into an RGB buffer. Image panels are resampled (nearest cell) straight
/// into their viewport, so an image with many cells costs no more than a small one.
RgbImage render_rgb(const Figure& figure);

/// `p` reduced by blocks of factor × factor cells (p.binning says how; partial blocks at the
/// far edges use the cells they have), its cell size scaled to match.
ImagePanel binned(const ImagePanel& p, std::size_t factor);
/// The smallest block factor that brings an ny × nx image within max_ny × max_nx cells.
std::size_t display_factor(std::size_t ny, std::size_t nx, std::size_t max_ny = 320, std::size_t max_nx = 480);

/// The `low` and `high` percentiles (0–100) of the finite values, with linear interpolation
/// between order statistics; a degenerate range is widened so that high > low. With no
/// finite value: (0, 1).
std::pair<double, double> robust_limits(std::span<const float> values, double low, double high);

/// The colour of `t` in [0, 1] (clamped) on the perceptual map (viridis, after van der Walt
/// & Smith's matplotlib colormap, sampled at nine points and interpolated linearly in RGB).
std::array<std::uint8_t, 3> viridis(double t);

/// Colour of series `index` (a ten-colour qualitative palette, cycled).
std::array<std::uint8_t, 3> series_colour(int index);

}  // namespace tessera::plot
