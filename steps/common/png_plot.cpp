#include "steps/common/png_plot.hpp"

#include <plplot/plplot.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <system_error>

#include "tessera/errors.hpp"

namespace tessera::plot {
namespace {

// cmap0 entries: 0 background, 1 axes and text, 2.. series colours, then category colours.
constexpr PLINT kBackground = 0, kInk = 1, kFirstSeries = 2, kSeriesColours = 10;
constexpr PLINT kFirstCategory = kFirstSeries + kSeriesColours, kMaxCategories = 32;

// Margins around each panel's plot box, in pixels.
constexpr double kLeft = 95, kRight = 30, kTop = 34, kBottom = 62, kColourBarSpace = 135;

// Base character height in pixels, whatever the page size (PLplot's default grows with it).
constexpr double kCharPx = 15.5;

// Filled circle (U+25CF) for points; drawn by cairo from the system font.
constexpr const char* kDot = "\u25CF";

constexpr std::array<std::array<std::uint8_t, 3>, kSeriesColours> kPalette = {{{31, 119, 180},
                                                                              {255, 127, 14},
                                                                              {44, 160, 44},
                                                                              {214, 39, 40},
                                                                              {148, 103, 189},
                                                                              {140, 86, 75},
                                                                              {227, 119, 194},
                                                                              {127, 127, 127},
                                                                              {188, 189, 34},
                                                                              {23, 190, 207}}};

// Viridis sampled at nine equally spaced points (matplotlib's _viridis_data).
constexpr std::array<std::array<double, 3>, 9> kViridis = {{{68, 1, 84},
                                                           {71, 44, 122},
                                                           {59, 81, 139},
                                                           {44, 113, 142},
                                                           {33, 144, 141},
                                                           {39, 173, 129},
                                                           {92, 200, 99},
                                                           {170, 220, 50},
                                                           {253, 231, 37}}};

/// PLplot calls its exit handler on fatal errors and then exit(); throwing from the handler
/// turns that into an ordinary error for the step (PLplot is built with unwind tables).
int throw_on_plplot_exit(const char* message) { throw IoError(std::string("PLplot: ") + (message ? message : "")); }

/// One PLplot stream, from plinit to plend1. Restores the caller's current stream.
class Stream {
 public:
  /// `rgba` non-null: draw into that width × height × 4 buffer (memcairo); otherwise write `file` (pngcairo).
  Stream(const std::string& file, std::uint8_t* rgba, int width, int height) : exceptions_(std::uncaught_exceptions()) {
    plsexit(throw_on_plplot_exit);
    plgstrm(&previous_);
    plmkstrm(&stream_);
    if (stream_ < 0) throw IoError("PLplot: no free plot stream");
    open_ = true;
    if (rgba) {
      plsdev("memcairo");
      plsmema(width, height, rgba);
    } else {
      plsdev("pngcairo");
      plsfnam(file.c_str());
      plspage(0.0, 0.0, width, height, 0, 0);
    }
    plscolbg(255, 255, 255);
    plscmap0n(kFirstCategory + kMaxCategories);
    plscol0(kBackground, 255, 255, 255);
    plscol0(kInk, 0, 0, 0);
    for (PLINT i = 0; i < kSeriesColours; ++i) {
      const auto& c = kPalette[static_cast<std::size_t>(i)];
      plscol0(kFirstSeries + i, c[0], c[1], c[2]);
    }
    plinit();
    pladv(0);
    PLFLT xmin, xmax, ymin, ymax;
    plgspa(&xmin, &xmax, &ymin, &ymax);
    px_per_mm_ = static_cast<double>(width) / (xmax - xmin);
    plschr(kCharPx / px_per_mm_, 1.0);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    // After a PLplot fatal error the stream is in an unknown state: leave it rather than
    // risk a second error while unwinding.
    if (open_ && std::uncaught_exceptions() == exceptions_) plend1();
    plsstrm(previous_);
  }
  /// Character height in pixels at the current scale.
  double char_px() const {
    PLFLT def, ht;
    plgchr(&def, &ht);
    return ht * px_per_mm_;
  }

 private:
  PLINT previous_ = 0, stream_ = -1;
  bool open_ = false;
  int exceptions_ = 0;
  double px_per_mm_ = 1;
};

/// Normalised viewport of a panel's plot box and its rectangle in pixels.
struct Box {
  double x0, x1, y0, y1;  // normalised device coordinates, y up
  int px0, px1, py0, py1; // pixels, y down: [px0, px1) × [py0, py1)
};

bool needs_side_space(const Panel& panel) {
  const auto* image = std::get_if<ImagePanel>(&panel);
  return image && (image->colorbar || !image->category_labels.empty());
}

std::vector<Box> layout(const Figure& f) {
  const std::size_t n = f.panels.size();
  std::vector<double> heights = f.heights;
  if (heights.size() != n) heights.assign(n, 1.0);
  double total = 0;
  for (double h : heights) total += std::max(h, 0.0);
  if (total <= 0) throw InternalError("plot: figure panels have no height");
  const double W = f.width, H = f.height;
  std::vector<Box> boxes;
  double top = 0;  // pixels from the top of the page
  for (std::size_t i = 0; i < n; ++i) {
    const double h = H * std::max(heights[i], 0.0) / total;
    const double right = kRight + (needs_side_space(f.panels[i]) ? kColourBarSpace : 0.0);
    Box b;
    b.px0 = static_cast<int>(std::lround(kLeft));
    b.px1 = static_cast<int>(std::lround(std::max(W - right, kLeft + 10)));
    b.py0 = static_cast<int>(std::lround(top + kTop));
    b.py1 = static_cast<int>(std::lround(std::max(top + h - kBottom, top + kTop + 10)));
    b.x0 = b.px0 / W;
    b.x1 = b.px1 / W;
    b.y1 = 1.0 - b.py0 / H;
    b.y0 = 1.0 - b.py1 / H;
    boxes.push_back(b);
    top += h;
  }
  return boxes;
}

/// A round interval (1, 2 or 5 × 10^k) near `span` / `ticks`, so short axes do not crowd
/// their numbers (PLplot's automatic choice ignores the axis length in pixels).
double tick_step(double span, double ticks) {
  if (!(span > 0) || !(ticks > 0)) return 0.0;  // 0: PLplot chooses
  const double raw = span / ticks;
  const double unit = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * unit >= raw) return m * unit;
  return 10 * unit;
}

std::pair<double, double> padded(double lo, double hi, double fraction) {
  if (!(hi > lo)) {
    const double d = lo == 0 ? 1.0 : 0.1 * std::fabs(lo);
    return {lo - d, hi + d};
  }
  const double d = fraction * (hi - lo);
  return {lo - d, hi + d};
}

/// Labels around the current viewport: title above, x label below, y label at the left edge.
void labels(const Stream& stream, const std::string& title, const std::string& x_label, const std::string& y_label,
            double box_left_px) {
  plcol0(kInk);
  plschr(0, 1.05);
  if (!title.empty()) plmtex("t", 0.9, 0.5, 0.5, title.c_str());
  plschr(0, 0.95);
  // The x label's middle sits in the bottom margin, below the tick numbers.
  const double below = std::max(2.2, (kBottom - 0.75 * stream.char_px() - 4) / stream.char_px());
  if (!x_label.empty()) plmtex("b", below, 0.5, 0.5, x_label.c_str());
  // The y label sits near the page's left edge, clear of the tick numbers.
  const double disp = std::max(2.0, (box_left_px - 0.9 * stream.char_px() - 6) / stream.char_px());
  if (!y_label.empty()) plmtex("l", disp, 0.5, 0.5, y_label.c_str());
  plschr(0, 0.9);
}

void draw_legend(const std::vector<std::string>& text, const std::vector<PLINT>& opts, const std::vector<PLINT>& colours,
                 PLINT position, double symbol_width = 0.06, double text_scale = 0.85, double spacing = 1.8,
                 double text_offset = 1.0) {
  const std::size_t n = text.size();
  std::vector<const char*> ctext;
  for (const auto& t : text) ctext.push_back(t.c_str());
  std::vector<PLINT> text_colours(n, kInk), styles(n, 1), patterns(n, 0), symbol_numbers(n, 1);
  std::vector<PLFLT> widths(n, 2.0), box_scales(n, 0.8), box_widths(n, 1.0);
  std::vector<PLFLT> symbol_scales(n, 0.6);
  std::vector<const char*> symbols(n, kDot);
  PLFLT legend_width, legend_height;
  plschr(0, 0.85);
  pllegend(&legend_width, &legend_height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, position, 0.01, 0.02, symbol_width,
           kBackground, kInk, 1, 0, 0, static_cast<PLINT>(n), opts.data(), text_offset, text_scale, spacing, 0.0, text_colours.data(),
           ctext.data(), colours.data(), patterns.data(), box_scales.data(), box_widths.data(), colours.data(),
           styles.data(), widths.data(), colours.data(), symbol_scales.data(), symbol_numbers.data(), symbols.data());
}

void draw_line_panel(const Stream& stream, const LinePanel& p, const Box& b) {
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const auto& s : p.series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xlo = std::min(xlo, s.x[i]);
        xhi = std::max(xhi, s.x[i]);
        ylo = std::min(ylo, s.y[i]);
        yhi = std::max(yhi, s.y[i]);
      }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  auto [wx0, wx1] = p.x_range ? *p.x_range : padded(xlo, xhi, 0.02);
  auto [wy0, wy1] = p.y_range ? *p.y_range : padded(ylo, yhi, 0.06);
  // Headroom for the legend in the top right corner, so it does not hide the data.
  std::size_t labelled = 0;
  for (const auto& s : p.series) labelled += s.label.empty() ? 0 : 1;
  if (!p.y_range && p.legend && labelled > 1 && wy1 > wy0) wy1 += (0.03 + 0.075 * static_cast<double>(labelled)) * (wy1 - wy0);
  if (!(wx1 > wx0)) std::tie(wx0, wx1) = padded(wx0, wx0, 0);
  if (!(wy1 > wy0)) std::tie(wy0, wy1) = padded(wy0, wy0, 0);
  plvpor(b.x0, b.x1, b.y0, b.y1);
  plwind(wx0, wx1, wy0, wy1);
  plschr(0, 0.9);
  plcol0(kInk);
  plwidth(1.0);
  plbox("bcnst", 0, 0, "bcnstv", tick_step(wy1 - wy0, std::max(2.0, (b.py1 - b.py0) / 40.0)), 0);
  std::vector<std::string> legend_text;
  std::vector<PLINT> legend_opts, legend_colours;
  std::vector<PLFLT> xs, ys;
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    const Series& s = p.series[k];
    const PLINT colour = kFirstSeries + (s.colour >= 0 ? s.colour : static_cast<int>(k)) % kSeriesColours;
    plcol0(colour);
    plwidth(1.6);
    const std::size_t n = std::min(s.x.size(), s.y.size());
    // Lines are broken where a value is not finite.
    auto flush = [&] {
      if (xs.size() >= 2 && s.style != Series::Style::Points) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      xs.clear();
      ys.clear();
    };
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xs.push_back(s.x[i]);
        ys.push_back(s.y[i]);
      } else {
        flush();
      }
    }
    flush();
    if (s.style != Series::Style::Line) {
      std::vector<PLFLT> px, py;
      for (std::size_t i = 0; i < n; ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
          px.push_back(s.x[i]);
          py.push_back(s.y[i]);
        }
      plschr(0, 0.55);
      if (!px.empty()) plstring(static_cast<PLINT>(px.size()), px.data(), py.data(), kDot);
    }
    if (!s.label.empty()) {
      legend_text.push_back(s.label);
      legend_opts.push_back(s.style == Series::Style::Points ? PL_LEGEND_SYMBOL
                            : s.style == Series::Style::Line ? PL_LEGEND_LINE
                                                             : PL_LEGEND_LINE | PL_LEGEND_SYMBOL);
      legend_colours.push_back(colour);
    }
  }
  plwidth(1.0);
  labels(stream, p.title, p.x_label, p.y_label, b.px0);
  if (p.legend && legend_text.size() > 1)
    draw_legend(legend_text, legend_opts, legend_colours, PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE);
}

void set_cmap1(const ImagePanel& p) {
  if (p.colours == ColourMap::Categories) {
    const std::size_t n = std::max<std::size_t>(p.categories.size(), 1);
    std::vector<PLINT> r(n, 0), g(n, 0), bl(n, 0);
    for (std::size_t k = 0; k < p.categories.size(); ++k) {
      r[k] = p.categories[k][0];
      g[k] = p.categories[k][1];
      bl[k] = p.categories[k][2];
    }
    plscmap1(r.data(), g.data(), bl.data(), static_cast<PLINT>(n));
    return;
  }
  plscmap1n(256);
  if (p.colours == ColourMap::Grey) {
    PLFLT pos[] = {0.0, 1.0}, c0[] = {0.0, 1.0};
    plscmap1l(1, 2, pos, c0, c0, c0, nullptr);
    return;
  }
  PLFLT pos[9], r[9], g[9], bl[9];
  for (int i = 0; i < 9; ++i) {
    pos[i] = i / 8.0;
    r[i] = kViridis[static_cast<std::size_t>(i)][0] / 255.0;
    g[i] = kViridis[static_cast<std::size_t>(i)][1] / 255.0;
    bl[i] = kViridis[static_cast<std::size_t>(i)][2] / 255.0;
  }
  plscmap1l(1, 9, pos, r, g, bl, nullptr);
}

/// Colour limits of what is displayed.
std::pair<double, double> colour_limits(const ImagePanel& p, std::span<const float> shown) {
  if (p.colours == ColourMap::Categories)
    return {0.0, static_cast<double>(std::max<std::size_t>(p.categories.size(), 2) - 1)};
  auto [lo, hi] = robust_limits(shown, p.low_percentile, p.high_percentile);
  if (p.vmin) lo = *p.vmin;
  if (p.vmax) hi = *p.vmax;
  if (!(hi > lo)) hi = lo + 1;
  return {lo, hi};
}

/// The image reduced by (by, bx) blocks; partial blocks at the far edges use what they have.
std::vector<float> bin_image(const ImagePanel& p, std::size_t by, std::size_t bx, std::size_t& ny, std::size_t& nx) {
  ny = (p.ny + by - 1) / by;
  nx = (p.nx + bx - 1) / bx;
  std::vector<float> out(ny * nx);
  for (std::size_t i = 0; i < ny; ++i)
    for (std::size_t j = 0; j < nx; ++j) {
      double acc = p.binning == Binning::Max ? -std::numeric_limits<double>::infinity() : 0.0;
      std::size_t count = 0;
      for (std::size_t y = i * by; y < std::min(p.ny, (i + 1) * by); ++y)
        for (std::size_t x = j * bx; x < std::min(p.nx, (j + 1) * bx); ++x) {
          const float v = p.values[y * p.nx + x];
          if (!std::isfinite(v)) continue;
          ++count;
          acc = p.binning == Binning::Max ? std::max(acc, static_cast<double>(v)) : acc + v;
        }
      float value = std::numeric_limits<float>::quiet_NaN();
      if (count > 0) value = static_cast<float>(p.binning == Binning::Mean ? acc / static_cast<double>(count) : acc);
      out[i * nx + j] = value;
    }
  return out;
}

void draw_colour_key(const ImagePanel& p, double lo, double hi) {
  plcol0(kInk);
  if (p.colours == ColourMap::Categories) {
    if (p.category_labels.empty()) return;
    const std::size_t n = std::min<std::size_t>({p.category_labels.size(), p.categories.size(),
                                                 static_cast<std::size_t>(kMaxCategories)});
    // Categories with an empty label (e.g. "nothing flagged") stay out of the legend.
    std::vector<std::string> text;
    std::vector<PLINT> colours;
    for (std::size_t k = 0; k < n; ++k) {
      if (p.category_labels[k].empty()) continue;
      const PLINT index = kFirstCategory + static_cast<PLINT>(k);
      plscol0(index, p.categories[k][0], p.categories[k][1], p.categories[k][2]);
      text.push_back(p.category_labels[k]);
      colours.push_back(index);
    }
    if (text.empty()) return;
    const std::vector<PLINT> opts(text.size(), PL_LEGEND_COLOR_BOX);
    draw_legend(text, opts, colours, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.02, 0.75, 1.5, 0.5);
    return;
  }
  if (!p.colorbar) return;
  PLINT label_opts[] = {PL_COLORBAR_LABEL_RIGHT};
  const char* label_text[] = {p.colorbar_label.c_str()};
  const char* axis_opts[] = {"bcvtm"};
  PLFLT ticks[] = {0.0};
  PLINT sub_ticks[] = {0};
  PLINT n_values[] = {2};
  PLFLT range[] = {lo, hi};
  const PLFLT* values[] = {range};
  PLFLT width, height;
  plschr(0, 0.8);
  plcolorbar(&width, &height, PL_COLORBAR_GRADIENT, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.015, 0.0, 0.035, 1.0,
             kBackground, kInk, 1, 0.0, 0.0, 0, 0.0, p.colorbar_label.empty() ? 0 : 1, label_opts, label_text, 1,
             axis_opts, ticks, sub_ticks, n_values, values);
}

void check_image(const ImagePanel& p) {
  if (p.values.size() != p.ny * p.nx)
    throw InternalError("plot: image '" + p.title + "' has " + std::to_string(p.values.size()) + " values, not " +
                        std::to_string(p.ny) + " x " + std::to_string(p.nx));
  if (p.colours == ColourMap::Categories && p.categories.empty())
    throw InternalError("plot: image '" + p.title + "' uses categories but lists no colours");
}

/// Image panel for a file: the image is binned to about the box's pixel size (PLplot's
/// cairo driver draws each cell as a polygon) and drawn with plimage.
void draw_image_panel(const Stream& stream, const ImagePanel& p, const Box& b, bool pixels_already_drawn,
                      double lo, double hi) {
  const double wx0 = p.x0, wy0 = p.y0;
  double wx1 = p.x0 + static_cast<double>(p.nx) * p.dx, wy1 = p.y0 + static_cast<double>(p.ny) * p.dy;
  set_cmap1(p);
  if (!pixels_already_drawn && p.ny > 0 && p.nx > 0) {
    const std::size_t box_w = static_cast<std::size_t>(std::max(1, std::min(b.px1 - b.px0, 480)));
    const std::size_t box_h = static_cast<std::size_t>(std::max(1, std::min(b.py1 - b.py0, 320)));
    const std::size_t bx = p.colours == ColourMap::Categories ? 1 : (p.nx + box_w - 1) / box_w;
    const std::size_t by = p.colours == ColourMap::Categories ? 1 : (p.ny + box_h - 1) / box_h;
    std::size_t ny = p.ny, nx = p.nx;
    std::vector<float> shown = (bx > 1 || by > 1) ? bin_image(p, by, bx, ny, nx) : p.values;
    std::tie(lo, hi) = colour_limits(p, shown);
    wx1 = p.x0 + static_cast<double>(nx * bx) * p.dx;
    wy1 = p.y0 + static_cast<double>(ny * by) * p.dy;
    plvpor(b.x0, b.x1, b.y0, b.y1);
    plwind(wx0, wx1, wy0, wy1);
    // plimage indexes [x][y]; values outside [lo, hi] are clamped, non-finite ones left blank.
    std::vector<PLFLT> cells(nx * ny);
    std::vector<const PLFLT*> columns(nx);
    const double blank = lo - (std::fabs(lo) + 1.0);
    for (std::size_t j = 0; j < nx; ++j) {
      for (std::size_t i = 0; i < ny; ++i) {
        const float v = shown[i * nx + j];
        cells[j * ny + i] = std::isfinite(v) ? std::clamp(static_cast<double>(v), lo, hi) : blank;
      }
      columns[j] = &cells[j * ny];
    }
    plimage(columns.data(), static_cast<PLINT>(nx), static_cast<PLINT>(ny), wx0, wx1, wy0, wy1, lo, hi, wx0, wx1, wy0,
            wy1);
  }
  plvpor(b.x0, b.x1, b.y0, b.y1);
  plwind(wx0, wx1, wy0, wy1);
  plschr(0, 0.9);
  plcol0(kInk);
  plwidth(1.0);
  plbox("bcnst", 0, 0, "bcnstv", 0, 0);
  labels(stream, p.title, p.x_label, p.y_label, b.px0);
  draw_colour_key(p, lo, hi);
}

/// Histogram bars as filled rectangles with outlines.
void draw_histogram_panel(const Stream& stream, const HistogramPanel& p, const Box& b) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : p.values)
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (p.range) std::tie(lo, hi) = *p.range;
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (!(hi > lo)) std::tie(lo, hi) = padded(lo, hi, 0);
  const std::size_t bins = std::max<std::size_t>(p.bins, 1);
  std::vector<double> counts(bins, 0.0);
  const double width = (hi - lo) / static_cast<double>(bins);
  for (double v : p.values) {
    if (!std::isfinite(v) || v < lo || v > hi) continue;
    auto k = static_cast<std::size_t>((v - lo) / width);
    counts[std::min(k, bins - 1)] += 1;
  }
  const double most = *std::max_element(counts.begin(), counts.end());
  plvpor(b.x0, b.x1, b.y0, b.y1);
  if (p.log_y)
    plwind(lo, hi, 0.0, std::log10(std::max(most, 1.0)) + 0.15);
  else
    plwind(lo, hi, 0.0, std::max(most, 1.0) * 1.06);
  for (std::size_t k = 0; k < bins; ++k) {
    if (counts[k] <= 0) continue;
    const double top = p.log_y ? std::log10(counts[k]) + (counts[k] == 1 ? 0.02 : 0.0) : counts[k];
    PLFLT x[] = {lo + static_cast<double>(k) * width, lo + static_cast<double>(k + 1) * width,
                 lo + static_cast<double>(k + 1) * width, lo + static_cast<double>(k) * width};
    PLFLT y[] = {0.0, 0.0, top, top};
    plcol0(kFirstSeries);
    plfill(4, x, y);
  }
  plschr(0, 0.9);
  plcol0(kInk);
  plbox("bcnst", 0, 0, p.log_y ? "bcnstvl" : "bcnstv", 0, 0);
  labels(stream, p.title, p.x_label, p.y_label, b.px0);
}

/// Nearest-cell resampling of an image panel into its box of the RGBA buffer.
void blit_image(const ImagePanel& p, const Box& b, double lo, double hi, std::uint8_t* rgba, int width) {
  if (p.ny == 0 || p.nx == 0) return;
  const int w = b.px1 - b.px0, h = b.py1 - b.py0;
  if (w <= 0 || h <= 0) return;
  std::array<std::array<std::uint8_t, 3>, 256> lut{};
  for (int i = 0; i < 256; ++i) {
    const double t = i / 255.0;
    if (p.colours == ColourMap::Grey) {
      const auto g = static_cast<std::uint8_t>(std::lround(255 * t));
      lut[static_cast<std::size_t>(i)] = {g, g, g};
    } else {
      lut[static_cast<std::size_t>(i)] = viridis(t);
    }
  }
  std::vector<std::size_t> column(static_cast<std::size_t>(w));
  for (int c = 0; c < w; ++c)
    column[static_cast<std::size_t>(c)] =
        std::min(p.nx - 1, static_cast<std::size_t>((c + 0.5) / w * static_cast<double>(p.nx)));
  for (int r = 0; r < h; ++r) {
    // Row 0 of the image is at the bottom of the box.
    const std::size_t i = p.ny - 1 - std::min(p.ny - 1, static_cast<std::size_t>((r + 0.5) / h * static_cast<double>(p.ny)));
    std::uint8_t* out = rgba + (static_cast<std::size_t>(b.py0 + r) * static_cast<std::size_t>(width) +
                                static_cast<std::size_t>(b.px0)) * 4;
    for (int c = 0; c < w; ++c, out += 4) {
      const float v = p.values[i * p.nx + column[static_cast<std::size_t>(c)]];
      std::array<std::uint8_t, 3> colour = {255, 255, 255};
      if (std::isfinite(v)) {
        if (p.colours == ColourMap::Categories) {
          const long k = std::lround(v);
          if (k >= 0 && static_cast<std::size_t>(k) < p.categories.size()) colour = p.categories[static_cast<std::size_t>(k)];
        } else {
          const double t = std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
          colour = lut[static_cast<std::size_t>(std::lround(255 * t))];
        }
      }
      out[0] = colour[0];
      out[1] = colour[1];
      out[2] = colour[2];
      out[3] = 255;
    }
  }
}

void check_figure(const Figure& f) {
  if (f.width < 100 || f.height < 100 || f.width > 10000 || f.height > 10000)
    throw InternalError("plot: figure size " + std::to_string(f.width) + " x " + std::to_string(f.height) +
                        " is outside 100–10000 pixels");
  if (f.panels.empty()) throw InternalError("plot: figure has no panels");
  for (const auto& panel : f.panels)
    if (const auto* image = std::get_if<ImagePanel>(&panel)) check_image(*image);
}

void draw(const Stream& stream, const Figure& f, const std::vector<Box>& boxes, bool images_blitted,
          const std::vector<std::pair<double, double>>& limits) {
  for (std::size_t i = 0; i < f.panels.size(); ++i) {
    if (const auto* line = std::get_if<LinePanel>(&f.panels[i]))
      draw_line_panel(stream, *line, boxes[i]);
    else if (const auto* image = std::get_if<ImagePanel>(&f.panels[i]))
      draw_image_panel(stream, *image, boxes[i], images_blitted, limits[i].first, limits[i].second);
    else
      draw_histogram_panel(stream, std::get<HistogramPanel>(f.panels[i]), boxes[i]);
  }
}

}  // namespace

std::array<std::uint8_t, 3> viridis(double t) {
  t = std::isfinite(t) ? std::clamp(t, 0.0, 1.0) : 0.0;
  const double u = t * 8.0;
  const auto k = std::min<std::size_t>(7, static_cast<std::size_t>(u));
  const double f = u - static_cast<double>(k);
  std::array<std::uint8_t, 3> out{};
  for (std::size_t c = 0; c < 3; ++c)
    out[c] = static_cast<std::uint8_t>(std::lround(kViridis[k][c] + f * (kViridis[k + 1][c] - kViridis[k][c])));
  return out;
}

ImagePanel binned(const ImagePanel& p, std::size_t factor) {
  check_image(p);
  factor = std::max<std::size_t>(factor, 1);
  if (factor == 1) return p;
  ImagePanel out = p;
  out.values = bin_image(p, factor, factor, out.ny, out.nx);
  out.dx = p.dx * static_cast<double>(factor);
  out.dy = p.dy * static_cast<double>(factor);
  return out;
}

std::size_t display_factor(std::size_t ny, std::size_t nx, std::size_t max_ny, std::size_t max_nx) {
  max_ny = std::max<std::size_t>(max_ny, 1);
  max_nx = std::max<std::size_t>(max_nx, 1);
  return std::max<std::size_t>({1, (ny + max_ny - 1) / max_ny, (nx + max_nx - 1) / max_nx});
}

std::array<std::uint8_t, 3> series_colour(int index) {
  return kPalette[static_cast<std::size_t>(((index % kSeriesColours) + kSeriesColours) % kSeriesColours)];
}

std::pair<double, double> robust_limits(std::span<const float> values, double low, double high) {
  std::vector<float> finite;
  finite.reserve(values.size());
  for (float v : values)
    if (std::isfinite(v)) finite.push_back(v);
  if (finite.empty()) return {0.0, 1.0};
  auto percentile = [&](double q) {
    const double pos = std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(finite.size() - 1);
    const auto k = static_cast<std::size_t>(pos);
    std::nth_element(finite.begin(), finite.begin() + static_cast<long>(k), finite.end());
    const double a = finite[k];
    if (k + 1 >= finite.size()) return a;
    const double b = *std::min_element(finite.begin() + static_cast<long>(k) + 1, finite.end());
    return a + (pos - static_cast<double>(k)) * (b - a);
  };
  const double lo = percentile(low);
  double hi = percentile(high);
  if (!(hi > lo)) hi = *std::max_element(finite.begin(), finite.end());
  if (!(hi > lo)) hi = lo + 1.0;
  return {lo, hi};
}

void write_png(const std::filesystem::path& path, const Figure& figure) {
  check_figure(figure);
  const std::vector<Box> boxes = layout(figure);
  const std::string partial = path.string() + ".partial";
  {
    // PLplot reports an unwritable file only through its exit handler; find out first.
    std::FILE* probe = std::fopen(partial.c_str(), "wb");
    if (!probe) throw IoError(path.string() + ": cannot write the plot: " + std::generic_category().message(errno));
    std::fclose(probe);
  }
  {
    Stream stream(partial, nullptr, figure.width, figure.height);
    draw(stream, figure, boxes, false, std::vector<std::pair<double, double>>(figure.panels.size(), {0.0, 1.0}));
  }
  std::error_code ec;
  if (std::filesystem::file_size(partial, ec) == 0 || ec) {
    std::filesystem::remove(partial, ec);
    throw IoError(path.string() + ": PLplot wrote no image");
  }
  std::filesystem::rename(partial, path, ec);
  if (ec) throw IoError(path.string() + ": cannot rename from " + partial + ": " + ec.message());
}

RgbImage render_rgb(const Figure& figure) {
  check_figure(figure);
  const std::vector<Box> boxes = layout(figure);
  const auto pixels = static_cast<std::size_t>(figure.width) * static_cast<std::size_t>(figure.height);
  std::vector<std::uint8_t> rgba(pixels * 4, 255);
  std::vector<std::pair<double, double>> limits(figure.panels.size(), {0.0, 1.0});
  for (std::size_t i = 0; i < figure.panels.size(); ++i)
    if (const auto* image = std::get_if<ImagePanel>(&figure.panels[i])) {
      limits[i] = colour_limits(*image, image->values);
      blit_image(*image, boxes[i], limits[i].first, limits[i].second, rgba.data(), figure.width);
    }
  {
    Stream stream("", rgba.data(), figure.width, figure.height);
    draw(stream, figure, boxes, true, limits);
  }
  RgbImage out{figure.width, figure.height, std::vector<std::uint8_t>(pixels * 3)};
  for (std::size_t i = 0; i < pixels; ++i) {
    out.rgb[3 * i] = rgba[4 * i];
    out.rgb[3 * i + 1] = rgba[4 * i + 1];
    out.rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return out;
}

}  // namespace tessera::plot
