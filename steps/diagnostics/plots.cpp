#include "steps/diagnostics/plots.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <string>

#include "steps/common/dq_bits.hpp"
#include "steps/common/png_plot.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

/// An outlier map: which dq bit it counts, and the per-frame vectors that show its step ran.
struct MapSpec {
  const char* image;
  std::uint32_t mask;
  const char* long_name;
  std::array<const char*, 2> evidence;
};

const std::array<MapSpec, 4> kMaps = {{
    {"outlier_map_temporal", dq::temporal_outlier,
     "Frames in which the pixel was replaced as a temporal outlier (fixed_iter, free_iter)",
     {"fixed_iter_outliers", "free_iter_outliers"}},
    {"outlier_map_led", dq::led_outlier, "Frames in which the pixel was replaced by Laplacian edge detection (led)",
     {"led_outliers", nullptr}},
    {"outlier_map_smooth", dq::smooth_outlier,
     "Frames in which the pixel was replaced by spatial smoothing (spatial_smooth)", {"spatial_smooth_outliers", nullptr}},
    {"outlier_map_hst", dq::hst_flagged, "Frames in which the pixel carried one of the chosen HST DQ flags (hst_dq)",
     {"hst_dq_replaced", nullptr}},
}};

const FrameVector* find_vector(const Dataset& data, const std::string& name) {
  auto it = data.frame_vectors().find(name);
  return it == data.frame_vectors().end() ? nullptr : &it->second;
}

const Image* find_image(const Dataset& data, const std::string& name) {
  auto it = data.images().find(name);
  return it == data.images().end() ? nullptr : &it->second;
}

double total(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v)
    if (std::isfinite(x)) sum += x;
  return sum;
}

std::string count_text(double n) {
  char text[64];
  std::snprintf(text, sizeof text, "%.0f", n);
  return text;
}

std::vector<double> frame_axis(std::size_t nt) {
  std::vector<double> x(nt);
  for (std::size_t t = 0; t < nt; ++t) x[t] = static_cast<double>(t);
  return x;
}

/// Writes figures on the writer rank and remembers their names for the log.
class FigureWriter {
 public:
  FigureWriter(StepContext& context, const PlotsParams& params) : context_(context), params_(params) {}
  /// Builds and writes `name` when the plot level is at least `level` on this rank.
  void add(const std::string& name, int level, const std::function<plot::Figure()>& make) {
    auto path = context_.plot_file(name, level);
    if (!path) return;
    plot::Figure figure = make();
    figure.width = static_cast<int>(params_.width);
    if (figure.height <= 0) figure.height = static_cast<int>(params_.height);
    plot::write_png(*path, figure);
    written_.push_back(name);
    directory_ = path->parent_path().string();
  }
  const std::vector<std::string>& written() const { return written_; }
  const std::string& directory() const { return directory_; }
  int height() const { return static_cast<int>(params_.height); }
  int width() const { return static_cast<int>(params_.width); }

 private:
  StepContext& context_;
  const PlotsParams& params_;
  std::vector<std::string> written_;
  std::string directory_;
};

/// Height that gives an image panel of ny × nx cells roughly square pixels at this width.
int image_panel_height(int width, std::size_t ny, std::size_t nx) {
  const double box_w = width - 240.0;
  const double box_h = std::clamp(box_w * static_cast<double>(ny) / static_cast<double>(std::max<std::size_t>(nx, 1)),
                                  160.0, 700.0);
  return static_cast<int>(box_h + 100);
}

plot::Figure location_figure(const Image& map, const std::string& title, int width) {
  double flags = 0, pixels = 0;
  for (float v : map.values) {
    flags += v;
    pixels += v > 0 ? 1 : 0;
  }
  plot::ImagePanel p;
  p.title = title + ": " + count_text(flags) + " flags on " + count_text(pixels) + " pixels";
  p.ny = map.ny;
  p.nx = map.nx;
  p.values = map.values;
  p.binning = plot::Binning::Sum;
  p.low_percentile = 0;
  p.high_percentile = 99.5;
  p.vmin = 0.0;
  const std::size_t factor = plot::display_factor(map.ny, map.nx);
  p = plot::binned(p, factor);
  p.colorbar_label = factor > 1 ? "flags per " + std::to_string(factor) + " x " + std::to_string(factor) + " px"
                                : "frames flagged";
  return plot::Figure{width, image_panel_height(width, map.ny, map.nx), {p}, {}};
}

plot::Series series(const std::string& label, const std::vector<double>& y, plot::Series::Style style =
                                                                                  plot::Series::Style::Line) {
  return plot::Series{label, frame_axis(y.size()), y, style, -1};
}

void outlier_maps(const Dataset& data, FigureWriter& out) {
  if (const Image* map = find_image(data, "outlier_map_temporal"))
    out.add("CR_location.png", 1, [&] { return location_figure(*map, "Temporal outliers (cosmic rays)", out.width()); });
  if (const Image* map = find_image(data, "outlier_map_led"))
    out.add("LED_location_of_all_corrected_pixels.png", 1,
            [&] { return location_figure(*map, "Pixels corrected by Laplacian edge detection", out.width()); });
  if (const Image* map = find_image(data, "outlier_map_smooth"))
    out.add("smooth_location.png", 2,
            [&] { return location_figure(*map, "Pixels corrected by spatial smoothing", out.width()); });
  if (const Image* map = find_image(data, "outlier_map_hst"))
    out.add("HST_DQ_location.png", 2, [&] { return location_figure(*map, "Pixels with chosen HST DQ flags", out.width()); });
  if (const Image* map = find_image(data, "outlier_map_temporal"))
    out.add("outlier_count_histogram.png", 2, [&] {
      float most = 0;
      for (float v : map->values) most = std::max(most, v);
      plot::HistogramPanel h;
      h.title = "Frames flagged per pixel (temporal outliers)";
      h.x_label = "frames in which the pixel was flagged";
      h.y_label = "pixels";
      h.values.assign(map->values.begin(), map->values.end());
      h.bins = static_cast<std::size_t>(std::min(most, 200.0f)) + 1;
      h.range = std::pair{-0.5, static_cast<double>(h.bins) - 0.5};
      h.log_y = true;
      return plot::Figure{out.width(), out.height(), {h}, {}};
    });
}

void outliers_per_frame(const Dataset& data, FigureWriter& out) {
  plot::LinePanel panel{"Pixels replaced or flagged per frame", "frame", "pixels", {}, {}, {}, true};
  for (const auto& [name, v] : data.frame_vectors()) {
    const bool counts = name.ends_with("_outliers") || name == "hst_dq_replaced" ||
                        (name == "nonfinite_input" && total(v.values) > 0);
    if (counts) panel.series.push_back(series(name + " (total " + count_text(total(v.values)) + ")", v.values,
                                              plot::Series::Style::LineAndPoints));
  }
  if (panel.series.empty()) return;
  out.add("outliers_per_frame.png", 1, [&] { return plot::Figure{out.width(), out.height(), {panel}, {}}; });
}

void before_after(const Dataset& data, FigureWriter& out, const std::string& method, const std::string& step) {
  const FrameVector* before = find_vector(data, step + "_median_before");
  const FrameVector* after = find_vector(data, step + "_median_after");
  if (!before && !after) return;
  out.add("bkg_correction_" + method + ".png", 1, [&] {
    plot::LinePanel p{"Background region median before and after " + step, "frame", "median [electron]", {}, {}, {}, true};
    if (before) p.series.push_back(series("before", before->values, plot::Series::Style::LineAndPoints));
    if (after) p.series.push_back(series("after", after->values, plot::Series::Style::LineAndPoints));
    return plot::Figure{out.width(), out.height(), {p}, {}};
  });
}

void backgrounds(const Dataset& data, FigureWriter& out) {
  if (const FrameVector* v = find_vector(data, "bkg_uniform_value"))
    out.add("bkg_values_uniform.png", 1, [&] {
      plot::LinePanel p{"Uniform background subtracted from each frame (bkg_uniform)", "frame", "background [electron]",
                        {series("bkg_uniform_value", v->values, plot::Series::Style::LineAndPoints)}, {}, {}, false};
      return plot::Figure{out.width(), out.height(), {p}, {}};
    });
  before_after(data, out, "uniform", "bkg_uniform");

  if (const Image* im = find_image(data, "bkg_column_value"))
    out.add("bkg_values_column.png", 1, [&] {
      plot::ImagePanel image;
      image.title = "Column background subtracted (bkg_column)";
      image.x_label = "column x [px]";
      image.y_label = "frame";
      image.colorbar_label = "electron";
      image.ny = im->ny;
      image.nx = im->nx;
      image.values = im->values;
      image = plot::binned(image, plot::display_factor(im->ny, im->nx));
      std::vector<double> per_column(im->nx, 0.0), per_frame(im->ny, 0.0), columns(im->nx);
      for (std::size_t t = 0; t < im->ny; ++t)
        for (std::size_t x = 0; x < im->nx; ++x) {
          per_column[x] += im->values[t * im->nx + x] / static_cast<double>(im->ny);
          per_frame[t] += im->values[t * im->nx + x] / static_cast<double>(im->nx);
        }
      for (std::size_t x = 0; x < im->nx; ++x) columns[x] = static_cast<double>(x);
      plot::LinePanel profile{"Mean over frames", "column x [px]", "background [electron]",
                              {{"", columns, per_column, plot::Series::Style::Line, 0}}, {}, {}, false};
      plot::LinePanel frames{"Mean over columns", "frame", "background [electron]",
                             {series("", per_frame, plot::Series::Style::LineAndPoints)}, {}, {}, false};
      const int h = out.height();
      return plot::Figure{out.width(), h + h / 2 + h / 2, {image, profile, frames}, {2.0, 1.0, 1.0}};
    });
  before_after(data, out, "column", "bkg_column");

  const FrameVector* scale = find_vector(data, "bkg_sky_scale");
  const FrameVector* raw = find_vector(data, "bkg_sky_scale_raw");
  if (scale || raw)
    out.add("bkg_values_sky.png", 1, [&] {
      plot::LinePanel p{"Scale of the sky image subtracted from each frame (bkg_sky)", "frame", "scale", {}, {}, {}, true};
      if (raw) p.series.push_back(series("fitted (bkg_sky_scale_raw)", raw->values, plot::Series::Style::Points));
      if (scale) p.series.push_back(series("used (bkg_sky_scale)", scale->values, plot::Series::Style::Line));
      return plot::Figure{out.width(), out.height(), {p}, {}};
    });
  before_after(data, out, "sky", "bkg_sky");
}

void displacements(const Dataset& data, FigureWriter& out) {
  const FrameVector* x0 = find_vector(data, "track_0th_x_shift");
  const FrameVector* y0 = find_vector(data, "track_0th_y_shift");
  const Image* sx = find_image(data, "track_stars_x_shift");
  const Image* sy = find_image(data, "track_stars_y_shift");
  if (x0 || y0 || sx || sy)
    out.add("displacements.png", 1, [&] {
      plot::LinePanel px{"Displacement in x", "frame", "x shift [px]", {}, {}, {}, true};
      plot::LinePanel py{"Displacement in y", "frame", "y shift [px]", {}, {}, {}, true};
      if (x0) px.series.push_back(series("0th order", x0->values, plot::Series::Style::LineAndPoints));
      if (y0) py.series.push_back(series("0th order", y0->values, plot::Series::Style::LineAndPoints));
      // Star shifts are images over (time, star).
      for (auto [image, panel] : {std::pair{sx, &px}, std::pair{sy, &py}}) {
        if (!image) continue;
        for (std::size_t s = 0; s < image->nx; ++s) {
          std::vector<double> v(image->ny);
          for (std::size_t t = 0; t < image->ny; ++t) v[t] = image->values[t * image->nx + s];
          panel->series.push_back(series("star " + std::to_string(s), v, plot::Series::Style::LineAndPoints));
        }
      }
      std::vector<plot::Panel> panels;
      if (!px.series.empty()) panels.emplace_back(px);
      if (!py.series.empty()) panels.emplace_back(py);
      return plot::Figure{out.width(), out.height() * static_cast<int>(panels.size()) * 3 / 4 + out.height() / 4, panels, {}};
    });
  const FrameVector* ax = find_vector(data, "track_0th_x");
  const FrameVector* ay = find_vector(data, "track_0th_y");
  if (ax && ay)
    out.add("zeroth_order_position.png", 2, [&] {
      plot::LinePanel px{"0th order centroid x", "frame", "x [px]", {series("", ax->values, plot::Series::Style::LineAndPoints)},
                         {}, {}, false};
      plot::LinePanel py{"0th order centroid y", "frame", "y [px]", {series("", ay->values, plot::Series::Style::LineAndPoints)},
                         {}, {}, false};
      return plot::Figure{out.width(), out.height() * 5 / 4, {px, py}, {}};
    });
}

void light_curve(const Dataset& data, FigureWriter& out) {
  if (const FrameVector* w = find_vector(data, "white_light"))
    out.add("white_light.png", 2, [&] {
      std::vector<float> finite;
      for (double v : w->values)
        if (std::isfinite(v)) finite.push_back(static_cast<float>(v));
      std::nth_element(finite.begin(), finite.begin() + static_cast<long>(finite.size() / 2), finite.end());
      const double median = finite.empty() ? 0.0 : finite[finite.size() / 2];
      std::vector<double> relative = w->values;
      if (median > 0)
        for (double& v : relative) v /= median;
      plot::LinePanel p{"White light (quicklook)", "frame", median > 0 ? "flux / median" : "electron",
                        {series("", relative, plot::Series::Style::Points)}, {}, {}, false};
      return plot::Figure{out.width(), out.height(), {p}, {}};
    });
}

}  // namespace

void count_flags(std::span<const std::uint32_t> dq, std::uint32_t mask, std::span<float> map) {
  const std::size_t n = std::min(dq.size(), map.size());
  for (std::size_t i = 0; i < n; ++i) map[i] += (dq[i] & mask) ? 1.0f : 0.0f;
}

StepIO Plots::io(const Params&) {
  StepIO io;
  for (const auto& m : kMaps) io.writes.push_back({DataKind::Image, {m.image, "1", m.long_name}});
  return io;
}

void Plots::run(const Params& params, StepContext& context) {
  Dataset& data = context.data();
  if (context.phase() == 0) {
    if (!data.has_cube("dq")) {
      context.log().warn("plots: no dq cube, so the outlier maps stay empty");
      return;
    }
    auto dq = context.frames<std::uint32_t>("dq");
    for (std::size_t t = dq.t_begin; t < dq.t_end; ++t) {
      for (const auto& m : kMaps) count_flags(dq.frame(t), m.mask, context.image(m.image).values);
      context.advance(1);
    }
    return;
  }

  // Phase 1: the maps are summed over ranks. Drop those of steps that did not run (the same
  // decision on every rank: it depends only on replicated data).
  for (const auto& m : kMaps) {
    bool ran = false;
    for (const char* v : m.evidence) ran = ran || (v && find_vector(data, v));
    const auto& values = data.image(m.image).values;
    const bool empty = std::all_of(values.begin(), values.end(), [](float v) { return v == 0.0f; });
    if (!ran && empty) data.images().erase(m.image);
  }

  FigureWriter out(context, params);
  outlier_maps(data, out);
  outliers_per_frame(data, out);
  backgrounds(data, out);
  displacements(data, out);
  light_curve(data, out);
  if (!out.written().empty()) {
    std::string names;
    for (const auto& n : out.written()) names += (names.empty() ? "" : ", ") + n;
    context.log().info("  plots: wrote " + std::to_string(out.written().size()) + " figure" +
                       (out.written().size() == 1 ? "" : "s") + " to " + out.directory() + ": " + names);
  }
  context.advance(data.partition().frame_end(data.rank()) - data.partition().frame_begin(data.rank()));
}

}  // namespace tessera::steps
