#include "steps/diagnostics/quicklook.hpp"

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

#include "steps/common/dq_bits.hpp"
#include "steps/common/gif_writer.hpp"
#include "steps/common/png_plot.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

constexpr const char* kReference = "quicklook_reference";
constexpr const char* kFrames = "quicklook_frames";
constexpr const char* kDq = "quicklook_dq";

// GIF page: the frame's box is kGifBoxWidth wide (the page minus PLplot margins and colour bar).
constexpr int kGifWidth = 800, kGifBoxWidth = 540, kGifMargins = 96, kLightCurveHeight = 230;

/// Display geometry shared by all phases: frames are averaged over factor × factor blocks.
struct Display {
  std::size_t factor = 1, h = 0, w = 0;
  Display(const CubeShape& s, std::int64_t display_width) {
    const auto cells = static_cast<std::size_t>(std::max<std::int64_t>(display_width, 1));
    factor = std::max<std::size_t>(1, (s.nx + cells - 1) / cells);
    h = (s.ny + factor - 1) / factor;
    w = (s.nx + factor - 1) / factor;
  }
  int box_height(const CubeShape& s) const {
    const double aspect = static_cast<double>(s.ny) / static_cast<double>(std::max<std::size_t>(s.nx, 1));
    return static_cast<int>(std::lround(std::clamp(kGifBoxWidth * aspect, 100.0, 360.0)));
  }
};

double median_of(std::vector<float>& v) {
  if (v.empty()) return 0.0;
  const std::size_t k = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  double m = v[k];
  if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + static_cast<long>(k)));
  return m;
}

/// Weighted least squares polynomial in u; returns the coefficients (lowest power first).
Eigen::VectorXd fit_polynomial(const std::vector<double>& u, const std::vector<double>& y, const std::vector<bool>& keep,
                               int degree) {
  std::size_t n = 0;
  for (bool k : keep) n += k ? 1 : 0;
  Eigen::MatrixXd a(static_cast<Eigen::Index>(n), degree + 1);
  Eigen::VectorXd b(static_cast<Eigen::Index>(n));
  Eigen::Index row = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    if (!keep[i]) continue;
    double p = 1;
    for (int d = 0; d <= degree; ++d, p *= u[i]) a(row, d) = p;
    b(row++) = y[i];
  }
  return a.colPivHouseholderQr().solve(b);
}

double evaluate(const Eigen::VectorXd& c, double u) {
  double v = 0;
  for (Eigen::Index d = c.size() - 1; d >= 0; --d) v = v * u + c(d);
  return v;
}

/// Replaces an image's shape (the engine creates it frame-shaped); the same on every rank.
void reshape(Image& image, std::size_t ny, std::size_t nx, const std::string& dim_y, const std::string& dim_x) {
  image.ny = ny;
  image.nx = nx;
  image.dim_y = dim_y;
  image.dim_x = dim_x;
  image.values.assign(ny * nx, 0.0f);
}

struct ZerothOrder {
  double x = 0, y = 0;
  std::string source;
};

ZerothOrder zeroth_order(const QuicklookParams& params, const Dataset& data, const Image& reference) {
  if (params.location) {
    if (params.location->size() != 2)
      throw ConfigError("quicklook: location: expected [x, y], got " + std::to_string(params.location->size()) +
                        " numbers");
    return {(*params.location)[0], (*params.location)[1], "location"};
  }
  const auto& attributes = data.attributes();
  auto number = [&](const char* name) -> std::optional<double> {
    auto it = attributes.find(name);
    if (it == attributes.end()) return std::nullopt;
    if (const auto* d = std::get_if<double>(&it->second)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
    return std::nullopt;
  };
  const auto x = number("target_x"), y = number("target_y");
  if (x && y) return {*x, *y, "target_x/target_y"};
  const auto [bx, by] = brightest_patch(reference.values, reference.ny, reference.nx);
  return {bx, by, "the brightest spot"};
}

std::string fixed(double v, int digits = 1) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// Colours of the dq categories (on the GIF palette's colour cube, so they stay exact).
const std::vector<std::array<std::uint8_t, 3>> kDqColours = {
    {0, 0, 0}, {85, 153, 255}, {0, 255, 255}, {255, 255, 0}, {255, 0, 255}, {255, 153, 0}, {255, 0, 0}};

void write_frames_gif(const std::filesystem::path& path, const QuicklookParams& params, const Dataset& data,
                      const Display& display) {
  const CubeShape& s = data.shape();
  const Image& frames = data.images().at(kFrames);
  const auto [lo, hi] = plot::robust_limits(frames.values, 1.0, 99.5);
  const std::vector<double>& white = data.frame_vectors().at("white_light").values;

  // Light curve: relative to its median, against hours since the first frame when times exist.
  std::vector<double> x(s.nt), y(s.nt);
  std::string x_label = "frame";
  auto time = data.frame_vectors().find("time");
  const bool have_time = time != data.frame_vectors().end() && s.nt > 0 && std::isfinite(time->second.values[0]);
  for (std::size_t t = 0; t < s.nt; ++t) x[t] = have_time ? (time->second.values[t] - time->second.values[0]) * 24.0
                                                        : static_cast<double>(t);
  if (have_time) x_label = "hours since the first frame";
  std::vector<float> finite;
  for (double v : white)
    if (std::isfinite(v)) finite.push_back(static_cast<float>(v));
  const double median = median_of(finite);
  const bool relative = median > 0;
  for (std::size_t t = 0; t < s.nt; ++t) y[t] = relative ? white[t] / median : white[t];
  double ylo = std::numeric_limits<double>::infinity(), yhi = -ylo, xlo = ylo, xhi = -ylo;
  for (std::size_t t = 0; t < s.nt; ++t)
    if (std::isfinite(y[t]) && std::isfinite(x[t])) {
      ylo = std::min(ylo, y[t]), yhi = std::max(yhi, y[t]);
      xlo = std::min(xlo, x[t]), xhi = std::max(xhi, x[t]);
    }
  if (!std::isfinite(ylo)) ylo = 0, yhi = 1, xlo = 0, xhi = 1;
  const double ypad = yhi > ylo ? 0.08 * (yhi - ylo) : std::max(1e-3, 0.01 * std::fabs(ylo));
  const double xpad = xhi > xlo ? 0.03 * (xhi - xlo) : 1.0;
  std::string orders;
  for (const auto& o : params.traces_included) orders += (orders.empty() ? "" : ", ") + o;

  const int box = display.box_height(s);
  const int image_height = box + kGifMargins;
  gif::AnimatedGif gif(path, kGifWidth, image_height + kLightCurveHeight,
                       static_cast<int>(std::lround(params.frame_delay * 100)));
  const std::size_t cells = display.h * display.w;
  for (std::size_t t = 0; t < s.nt; ++t) {
    plot::ImagePanel image;
    image.title = "frame " + std::to_string(t + 1) + " of " + std::to_string(s.nt);
    if (have_time) image.title += ", MJD " + fixed(time->second.values[t], 5);
    image.ny = display.h;
    image.nx = display.w;
    image.values.assign(frames.values.begin() + static_cast<long>(t * cells),
                        frames.values.begin() + static_cast<long>((t + 1) * cells));
    image.dx = image.dy = static_cast<double>(display.factor);
    image.colours = plot::ColourMap::Grey;
    image.vmin = lo;
    image.vmax = hi;
    image.colorbar_label = "electron";
    plot::LinePanel curve;
    curve.title = "White light (" + orders + " order" + (params.traces_included.size() > 1 ? "s" : "") + ")";
    curve.x_label = x_label;
    curve.y_label = relative ? "relative flux" : "electron";
    curve.x_range = std::pair{xlo - xpad, xhi + xpad};
    curve.y_range = std::pair{ylo - ypad, yhi + ypad};
    curve.legend = false;
    curve.series.push_back({"", std::vector<double>(x.begin(), x.begin() + static_cast<long>(t + 1)),
                            std::vector<double>(y.begin(), y.begin() + static_cast<long>(t + 1)),
                            plot::Series::Style::Points, 0});
    curve.series.push_back({"", {x[t]}, {y[t]}, plot::Series::Style::Points, 3});
    plot::Figure figure{kGifWidth, image_height + kLightCurveHeight, {image, curve},
                        {static_cast<double>(image_height), static_cast<double>(kLightCurveHeight)}};
    gif.add_frame(plot::render_rgb(figure).rgb);
  }
  gif.close();
}

void write_dq_gif(const std::filesystem::path& path, const QuicklookParams& params, const Dataset& data,
                  const Display& display) {
  const CubeShape& s = data.shape();
  const Image& dq = data.images().at(kDq);
  // Tall enough for the legend of the categories beside the image.
  const int height = std::max(display.box_height(s), 150) + kGifMargins;
  gif::AnimatedGif gif(path, kGifWidth, height, static_cast<int>(std::lround(params.frame_delay * 100)));
  const std::size_t cells = display.h * display.w;
  for (std::size_t t = 0; t < s.nt; ++t) {
    plot::ImagePanel image;
    image.title = "dq, frame " + std::to_string(t + 1) + " of " + std::to_string(s.nt) +
                  (display.factor > 1 ? " (flags in " + std::to_string(display.factor) + " x " +
                                            std::to_string(display.factor) + " px blocks)"
                                      : "");
    image.ny = display.h;
    image.nx = display.w;
    image.values.assign(dq.values.begin() + static_cast<long>(t * cells),
                        dq.values.begin() + static_cast<long>((t + 1) * cells));
    image.dx = image.dy = static_cast<double>(display.factor);
    image.colours = plot::ColourMap::Categories;
    image.categories = kDqColours;
    image.category_labels = {"", params.include_hst_dq ? "HST DQ" : "", "hst_dq", "non-finite", "smooth", "led",
                             "temporal"};
    plot::Figure figure{kGifWidth, height, {image}, {}};
    gif.add_frame(plot::render_rgb(figure).rgb);
  }
  gif.close();
}

}  // namespace

std::size_t TraceAperture::pixels() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < y_begin.size(); ++i) n += y_end[i] - y_begin[i];
  return n;
}

int dq_category(std::uint32_t dq, bool include_hst) {
  if (dq & dq::temporal_outlier) return 6;
  if (dq & dq::led_outlier) return 5;
  if (dq & dq::smooth_outlier) return 4;
  if (dq & dq::non_finite) return 3;
  if (dq & dq::hst_flagged) return 2;
  if (include_hst && (dq & 0xFFFFu)) return 1;
  return 0;
}

std::pair<double, double> brightest_patch(std::span<const float> image, std::size_t ny, std::size_t nx) {
  if (image.size() != ny * nx) throw InternalError("brightest_patch: image size does not match its shape");
  // Sum over 5 rows first, then over 5 columns of those sums.
  std::vector<double> rows(ny * nx, 0.0);
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      double sum = 0;
      for (std::size_t yy = y >= 2 ? y - 2 : 0; yy <= std::min(ny - 1, y + 2); ++yy) {
        const float v = image[yy * nx + x];
        if (std::isfinite(v)) sum += v;
      }
      rows[y * nx + x] = sum;
    }
  double best = -std::numeric_limits<double>::infinity();
  std::size_t by = 0, bx = 0;
  for (std::size_t y = 0; y < ny; ++y)
    for (std::size_t x = 0; x < nx; ++x) {
      double sum = 0;
      for (std::size_t xx = x >= 2 ? x - 2 : 0; xx <= std::min(nx - 1, x + 2); ++xx) sum += rows[y * nx + xx];
      if (sum > best) best = sum, by = y, bx = x;
    }
  return {static_cast<double>(bx), static_cast<double>(by)};
}

TraceAperture find_trace_aperture(std::span<const float> reference, std::size_t ny, std::size_t nx, double x0,
                                  double y0, const std::string& order, const ApertureOptions& options) {
  if (reference.size() != ny * nx) throw InternalError("find_trace_aperture: image size does not match its shape");
  if (order != "+1" && order != "-1")
    throw ConfigError("quicklook: traces_included: expected '+1' or '-1', got '" + order + "'");
  TraceAperture a;
  a.order = order;
  const double n = static_cast<double>(nx);
  if (order == "+1") {
    a.x_begin = static_cast<std::size_t>(std::clamp(std::ceil(x0 + options.zeroth_radius), 0.0, n));
    a.x_end = nx;
  } else {
    a.x_begin = 0;
    a.x_end = static_cast<std::size_t>(std::clamp(std::floor(x0 - options.zeroth_radius) + 1.0, 0.0, n));
  }
  if (a.x_end < a.x_begin) a.x_end = a.x_begin;

  // Trace centroids in the columns where the trace stands out of the column's noise.
  std::vector<double> xs, ys;
  std::vector<float> column(ny), work;
  work.reserve(ny);
  for (std::size_t x = a.x_begin; x < a.x_end && ny >= 5; ++x) {
    work.clear();
    for (std::size_t y = 0; y < ny; ++y) {
      column[y] = reference[y * nx + x];
      if (std::isfinite(column[y])) work.push_back(column[y]);
    }
    if (work.size() < 5) continue;
    const double median = median_of(work);
    for (float& v : work) v = static_cast<float>(std::fabs(v - median));
    const double sigma = 1.4826 * median_of(work);
    for (float& v : column)
      if (!std::isfinite(v)) v = static_cast<float>(median);
    double best = -std::numeric_limits<double>::infinity();
    std::size_t peak = 0;
    for (std::size_t y = 1; y + 1 < ny; ++y) {
      const double band = static_cast<double>(column[y - 1]) + column[y] + column[y + 1];
      if (band > best) best = band, peak = y;
    }
    const double excess = best - 3 * median;
    const double snr = sigma > 0 ? excess / (std::sqrt(3.0) * sigma) : (excess > 0 ? options.min_snr : 0.0);
    if (!(snr >= options.min_snr)) continue;
    double wsum = 0, ysum = 0;
    for (std::size_t y = peak >= 2 ? peak - 2 : 0; y <= std::min(ny - 1, peak + 2); ++y) {
      const double w = std::max(0.0, static_cast<double>(column[y]) - median);
      wsum += w;
      ysum += w * static_cast<double>(y);
    }
    xs.push_back(static_cast<double>(x));
    ys.push_back(wsum > 0 ? ysum / wsum : static_cast<double>(peak));
  }

  // Polynomial in u = (x − x0) / nx, refitted without centroids more than max(4σ, 1 px) off
  // (σ from the median absolute residual): field stars and cosmic rays do not bend it.
  Eigen::VectorXd coefficients = Eigen::VectorXd::Constant(1, y0);
  std::vector<double> u(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) u[i] = (xs[i] - x0) / std::max(n, 1.0);
  std::vector<bool> keep(xs.size(), true);
  int degree = options.degree;
  while (degree > 0 && xs.size() < 3 * static_cast<std::size_t>(degree + 1)) --degree;
  if (!xs.empty()) {
    for (int iteration = 0; iteration < 10; ++iteration) {
      coefficients = fit_polynomial(u, ys, keep, degree);
      std::vector<float> residuals;
      std::vector<double> all(xs.size());
      for (std::size_t i = 0; i < xs.size(); ++i) {
        all[i] = ys[i] - evaluate(coefficients, u[i]);
        if (keep[i]) residuals.push_back(static_cast<float>(std::fabs(all[i])));
      }
      const double limit = std::max(4 * 1.4826 * median_of(residuals), 1.0);
      std::vector<bool> next(xs.size());
      std::size_t kept = 0;
      for (std::size_t i = 0; i < xs.size(); ++i) kept += (next[i] = std::fabs(all[i]) <= limit) ? 1 : 0;
      if (next == keep || kept < static_cast<std::size_t>(degree + 1)) break;
      keep = next;
    }
    for (bool k : keep) a.columns_detected += k ? 1 : 0;
  }

  const double half = options.half_width;
  for (std::size_t x = a.x_begin; x < a.x_end; ++x) {
    const double centre = xs.empty() ? y0 : evaluate(coefficients, (static_cast<double>(x) - x0) / std::max(n, 1.0));
    const double lo = std::clamp(std::round(centre - half), 0.0, static_cast<double>(ny));
    const double hi = std::clamp(std::round(centre + half) + 1.0, 0.0, static_cast<double>(ny));
    a.centre.push_back(centre);
    a.y_begin.push_back(static_cast<std::size_t>(lo));
    a.y_end.push_back(static_cast<std::size_t>(std::max(lo, hi)));
  }
  return a;
}

double aperture_sum(std::span<const float> frame, std::size_t nx, const TraceAperture& a) {
  double sum = 0;
  for (std::size_t i = 0; i < a.y_begin.size(); ++i) {
    const std::size_t x = a.x_begin + i;
    for (std::size_t y = a.y_begin[i]; y < a.y_end[i]; ++y) {
      const float v = frame[y * nx + x];
      if (std::isfinite(v)) sum += v;
    }
  }
  return sum;
}

StepIO Quicklook::io(const Params&) {
  StepIO io;
  io.reads = {{DataKind::Cube, "data"}, {DataKind::Cube, "dq"}};
  io.writes = {
      {DataKind::FrameVector, {"white_light", "electron", "sum of the data over the traces_included apertures (quicklook)"}},
      {DataKind::Image, {kReference, "electron", "sum of all frames in whole electrons (quicklook, temporary)"}},
      {DataKind::Image, {kFrames, "electron", "block-averaged frames, stacked in time (quicklook, temporary)"}},
      {DataKind::Image, {kDq, "1", "dq category of each block of each frame (quicklook, temporary)"}},
  };
  return io;
}

void Quicklook::run(const Params& params, StepContext& context) {
  if (params.traces_included.empty())
    throw ConfigError("quicklook: traces_included: expected at least one of '+1', '-1'");
  Dataset& data = context.data();
  const CubeShape& s = context.shape();
  const Display display(s, params.display_width);
  const std::size_t cells = display.h * display.w;

  if (context.phase() == 0) {
    Image& reference = context.image(kReference);
    Image& frames = context.image(kFrames);
    Image& categories = context.image(kDq);
    reshape(frames, s.nt * display.h, display.w, "quicklook_row", "quicklook_column");
    reshape(categories, s.nt * display.h, display.w, "quicklook_row", "quicklook_column");
    // Whole electrons, clamped so that any partial sum over frames stays below 2^24 and is
    // exact in float: the engine's sum over ranks is then the same for any partition.
    const double limit = std::floor(16777216.0 / static_cast<double>(std::max<std::size_t>(s.nt, 1)));
    auto slab = context.frames<float>("data");
    auto dq = context.frames<std::uint32_t>("dq");
    std::vector<double> sums(display.w);
    std::vector<std::size_t> counts(display.w);
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
      const std::span<const float> frame = slab.frame(t);
      const std::span<const std::uint32_t> flags = dq.frame(t);
      for (std::size_t i = 0; i < frame.size(); ++i)
        if (std::isfinite(frame[i]))
          reference.values[i] += static_cast<float>(std::round(std::clamp(static_cast<double>(frame[i]), -limit, limit)));
      float* out = frames.values.data() + t * cells;
      float* cat = categories.values.data() + t * cells;
      for (std::size_t by = 0; by < display.h; ++by) {
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(counts.begin(), counts.end(), 0);
        for (std::size_t y = by * display.factor; y < std::min(s.ny, (by + 1) * display.factor); ++y)
          for (std::size_t x = 0; x < s.nx; ++x) {
            const std::size_t bx = x / display.factor;
            const float v = frame[y * s.nx + x];
            if (std::isfinite(v)) sums[bx] += v, ++counts[bx];
            const auto c = static_cast<float>(dq_category(flags[y * s.nx + x], params.include_hst_dq));
            cat[by * display.w + bx] = std::max(cat[by * display.w + bx], c);
          }
        for (std::size_t bx = 0; bx < display.w; ++bx)
          out[by * display.w + bx] = counts[bx] ? static_cast<float>(sums[bx] / static_cast<double>(counts[bx]))
                                                : std::numeric_limits<float>::quiet_NaN();
      }
      context.advance(1);
    }
    return;
  }

  if (context.phase() == 1) {
    const Image& reference = context.image(kReference);
    const ZerothOrder zeroth = zeroth_order(params, data, reference);
    ApertureOptions options;
    options.half_width = params.aperture_half_width;
    options.zeroth_radius = params.zeroth_order_radius;
    options.degree = static_cast<int>(params.trace_degree);
    std::vector<TraceAperture> apertures;
    for (const auto& order : params.traces_included) {
      if (std::any_of(apertures.begin(), apertures.end(), [&](const TraceAperture& a) { return a.order == order; }))
        continue;
      apertures.push_back(find_trace_aperture(reference.values, s.ny, s.nx, zeroth.x, zeroth.y, order, options));
      const TraceAperture& a = apertures.back();
      std::string text = "  quicklook: 0th order at (" + fixed(zeroth.x) + ", " + fixed(zeroth.y) + ") from " +
                         zeroth.source + "; order " + order + ": columns " + std::to_string(a.x_begin) + "-" +
                         std::to_string(a.x_end == 0 ? 0 : a.x_end - 1) + ", " + std::to_string(a.pixels()) + " pixels";
      if (!a.centre.empty())
        text += ", centre row " + fixed(a.centre.front()) + " to " + fixed(a.centre.back()) + " (" +
                std::to_string(a.columns_detected) + " columns detected)";
      context.log().info(text);
      if (a.columns_detected == 0 && a.x_end > a.x_begin)
        context.log().info("  quicklook: no trace found for order " + order + "; its aperture follows the 0th order's row");
    }
    auto slab = context.frames<float>("data");
    auto& white = context.frame_vector("white_light").values;
    for (std::size_t t = slab.t_begin; t < slab.t_end; ++t) {
      double sum = 0;
      for (const auto& a : apertures) sum += aperture_sum(slab.frame(t), s.nx, a);
      white[t] = sum;
      context.advance(1);
    }
    return;
  }

  // Phase 2: every frame's image and the whole white-light curve are here on every rank.
  std::vector<std::string> written;
  std::filesystem::path directory;
  if (auto path = context.plot_file("quicklookup.gif", 1)) {
    write_frames_gif(*path, params, data, display);
    written.push_back(path->filename().string());
    directory = path->parent_path();
  }
  if (auto path = context.plot_file("quicklookupDQ.gif", 1)) {
    write_dq_gif(*path, params, data, display);
    written.push_back(path->filename().string());
  }
  if (!written.empty())
    context.log().info("  quicklook: wrote " + directory.string() + "/{" + written.front() +
                       (written.size() > 1 ? ", " + written.back() : "") + "}");
  for (const char* name : {kReference, kFrames, kDq}) data.images().erase(name);
  context.advance(data.partition().frame_end(data.rank()) - data.partition().frame_begin(data.rank()));
}

}  // namespace tessera::steps
