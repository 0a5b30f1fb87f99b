#include "steps/miri/custom_linearity.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/png_plot.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

constexpr const char* kSums = "custom_linearity_sums";
constexpr const char* kCoeffs = "custom_linearity_coeffs";
constexpr std::size_t kAmps = CustomLinearity::amplifiers;

constexpr std::uint32_t kBadPixel = jwst::dq::do_not_use | jwst::dq::reference_pixel;
// Groups marked do_not_use (e.g. by drop_groups, against RSCD or the last-frame effect) are
// still measurements and count; saturated ones do not.
constexpr std::uint8_t kBadGroup = jwst::dq::group(jwst::dq::saturated);

/// Index `value` (negative counts from the end) into [0, n), or StepError naming `param`.
std::size_t resolve_index(std::int64_t value, std::size_t n, const char* param, const char* what) {
  const auto size = static_cast<std::int64_t>(n);
  const std::int64_t index = value < 0 ? value + size : value;
  if (index < 0 || index >= size)
    throw StepError("custom_linearity: " + std::string(param) + " = " + std::to_string(value) + " is outside the " +
                    std::to_string(n) + " " + what + " of the data");
  return static_cast<std::size_t>(index);
}

}  // namespace

Schema<CustomLinearityParams> CustomLinearityParams::schema() {
  using P = CustomLinearityParams;
  return tessera::schema<P>(
      field(&P::group_idx_start_fit, "group_idx_start_fit",
            "First group (zero-based; negative counts from the end) of the linear fit: start of the well-behaved "
            "part of the ramps"),
      field(&P::group_idx_end_fit, "group_idx_end_fit", "Last group included in the linear fit"),
      field(&P::group_idx_start_derive, "group_idx_start_derive",
            "First group included in deriving the polynomial correction"),
      field(&P::group_idx_end_derive, "group_idx_end_derive",
            "Last group included in deriving the polynomial correction (-1: the last group)"),
      field(&P::row_idx_start_used, "row_idx_start_used", "First detector row whose pixels build the mean ramps"),
      field(&P::row_idx_end_used, "row_idx_end_used", "Last detector row whose pixels build the mean ramps"),
      field(&P::draw_corrections, "draw_corrections",
            "Plot each amplifier's mean-ramp deviation and fitted correction (custom_linearity.png; needs plots on)"),
      field(&P::poly_order, "poly_order",
            "Degree of the correction polynomial; its constant and linear coefficients are fixed at 0 and 1",
            Range::at_least(2)),
      field(&P::method, "method",
            "'exotic': line over the fit groups, then polynomial over the derive groups (ExoTiC-MIRI); 'joint': "
            "line and polynomial fitted together over the derive groups (recovers an exact polynomial "
            "non-linearity; ignores the fit groups)",
            Choices{{"exotic", "joint"}}));
}

LinearityRanges resolve_linearity_ranges(const CustomLinearityParams& p, std::size_t ng, std::size_t ny) {
  LinearityRanges r;
  r.fit_begin = resolve_index(p.group_idx_start_fit, ng, "group_idx_start_fit", "groups");
  r.fit_end = resolve_index(p.group_idx_end_fit, ng, "group_idx_end_fit", "groups");
  r.derive_begin = resolve_index(p.group_idx_start_derive, ng, "group_idx_start_derive", "groups");
  r.derive_end = resolve_index(p.group_idx_end_derive, ng, "group_idx_end_derive", "groups");
  r.row_begin = resolve_index(p.row_idx_start_used, ny, "row_idx_start_used", "rows");
  r.row_end = resolve_index(p.row_idx_end_used, ny, "row_idx_end_used", "rows");
  if (p.method == "exotic" && r.fit_end < r.fit_begin + 1)
    throw StepError("custom_linearity: the linear fit needs at least two groups, but group_idx_start_fit = " +
                    std::to_string(p.group_idx_start_fit) + " and group_idx_end_fit = " +
                    std::to_string(p.group_idx_end_fit) + " give groups " + std::to_string(r.fit_begin) + " to " +
                    std::to_string(r.fit_end));
  const std::size_t unknowns = static_cast<std::size_t>(p.poly_order) - 1 + (p.method == "joint" ? 2 : 0);
  if (r.derive_end < r.derive_begin || r.derive_end - r.derive_begin + 1 < unknowns + 1)
    throw StepError("custom_linearity: group_idx_start_derive = " + std::to_string(p.group_idx_start_derive) +
                    " and group_idx_end_derive = " + std::to_string(p.group_idx_end_derive) + " give groups " +
                    std::to_string(r.derive_begin) + " to " + std::to_string(r.derive_end) + "; method '" + p.method +
                    "' with poly_order " + std::to_string(p.poly_order) + " needs at least " +
                    std::to_string(unknowns + 1) + " groups");
  if (r.row_end < r.row_begin)
    throw StepError("custom_linearity: row_idx_end_used = " + std::to_string(p.row_idx_end_used) +
                    " comes before row_idx_start_used = " + std::to_string(p.row_idx_start_used));
  return r;
}

double LinearityFit::apply(double raw) const {
  double sum = 0;
  for (std::size_t k = coeffs.size(); k-- > 0;) sum = sum * raw + coeffs[k];
  return sum;
}

LinearityFit fit_linearity(std::span<const double> ramp, const LinearityRanges& r, const CustomLinearityParams& p) {
  const auto order = static_cast<std::size_t>(p.poly_order);
  const std::size_t nd = r.derive_end - r.derive_begin + 1;
  // Columns are scaled to order one (raw / its largest value, group / group count) so that
  // R^k stays well conditioned; the coefficients are scaled back at the end.
  double scale = 0;
  for (std::size_t g = r.derive_begin; g <= r.derive_end; ++g) scale = std::max(scale, std::abs(ramp[g]));
  if (!(scale > 0) || !std::isfinite(scale))
    throw StepError("custom_linearity: the mean ramp is zero or not finite over the derive groups");
  const double gscale = static_cast<double>(ramp.size());
  LinearityFit fit;
  fit.coeffs.assign(order + 1, 0.0);
  fit.coeffs[1] = 1.0;
  Eigen::VectorXd d;  // scaled c_2..c_p
  if (p.method == "exotic") {
    const std::size_t nf = r.fit_end - r.fit_begin + 1;
    Eigen::MatrixXd a(nf, 2);
    Eigen::VectorXd y(nf);
    for (std::size_t i = 0; i < nf; ++i) {
      a(i, 0) = 1.0;
      a(i, 1) = static_cast<double>(r.fit_begin + i) / gscale;
      y(i) = ramp[r.fit_begin + i];
    }
    const Eigen::Vector2d line = a.colPivHouseholderQr().solve(y);
    fit.intercept = line(0);
    fit.slope = line(1) / gscale;
    Eigen::MatrixXd m(nd, order - 1);
    Eigen::VectorXd target(nd);
    for (std::size_t i = 0; i < nd; ++i) {
      const std::size_t g = r.derive_begin + i;
      const double u = ramp[g] / scale;
      double power = u;
      for (std::size_t k = 2; k <= order; ++k) m(i, k - 2) = (power *= u);
      target(i) = fit.intercept + fit.slope * static_cast<double>(g) - ramp[g];
    }
    auto qr = m.colPivHouseholderQr();
    if (qr.rank() < m.cols())
      throw StepError("custom_linearity: the polynomial fit is degenerate (too few distinct ramp values)");
    d = qr.solve(target);
  } else {
    Eigen::MatrixXd m(nd, order + 1);
    Eigen::VectorXd target(nd);
    for (std::size_t i = 0; i < nd; ++i) {
      const std::size_t g = r.derive_begin + i;
      const double u = ramp[g] / scale;
      m(i, 0) = 1.0;
      m(i, 1) = static_cast<double>(g) / gscale;
      double power = u;
      for (std::size_t k = 2; k <= order; ++k) m(i, k) = -(power *= u);
      target(i) = ramp[g];
    }
    auto qr = m.colPivHouseholderQr();
    if (qr.rank() < m.cols())
      throw StepError("custom_linearity: the joint fit is degenerate (too few distinct ramp values)");
    const Eigen::VectorXd all = qr.solve(target);
    fit.intercept = all(0);
    fit.slope = all(1) / gscale;
    d = all.tail(order - 1);
  }
  for (std::size_t k = 2; k <= order; ++k) fit.coeffs[k] = d(static_cast<Eigen::Index>(k - 2)) / std::pow(scale, k);
  return fit;
}

StepIO CustomLinearity::io(const Params& params) {
  StepIO io;
  io.reads = {{DataKind::Cube, "ramp", "the ramps (input jwst_uncal)"},
              {DataKind::Cube, "groupdq", "the group dq of the ramps (input jwst_uncal)"},
              {DataKind::Cube, "dq", "the pixel dq (input jwst_uncal)"}};
  DataOut ramp{DataKind::Cube, {"ramp", "", ""}, ElementType::Float32};
  ramp.grouped = true;
  // Scratch: one row per integration (its width, 8 × groups, is set in phase 0); erased in phase 1.
  DataOut sums{DataKind::Image, {kSums, "DN", "custom_linearity per-integration sums (scratch)"}};
  sums.image_ny = DataOut::frames;
  sums.image_nx = 1;
  sums.dim_y = "time";
  sums.dim_x = "custom_linearity_sum";
  DataOut coeffs{DataKind::Image,
                 {kCoeffs, "1", "custom_linearity coefficients c_k of corrected = sum_k c_k raw^k (raw in DN)"}};
  coeffs.image_ny = kAmps;
  coeffs.image_nx = static_cast<std::size_t>(params.poly_order) + 1;
  coeffs.dim_y = "amplifier";
  coeffs.dim_x = "coefficient";
  coeffs.combine = Combine::Identical;
  io.writes = {ramp, sums, coeffs};
  return io;
}

namespace {

/// Phase 0: this rank's integrations' sums into their rows of the scratch image.
void accumulate(const CustomLinearityParams& params, StepContext& context) {
  auto ramp = context.frames<float>("ramp");
  auto groupdq = context.frames<std::uint8_t>("groupdq");
  auto dq = context.frames<std::uint32_t>("dq");
  const std::size_t ng = ramp.groups, nx = ramp.nx, nt = context.shape().nt;
  const LinearityRanges r = resolve_linearity_ranges(params, ng, ramp.ny);
  Image& sums = context.image(kSums);
  const std::size_t width = kAmps * 2 * ng;
  sums.ny = nt;
  sums.nx = width;
  sums.values.assign(nt * width, 0.0f);
  std::vector<double> acc(width);
  const std::size_t rows = r.row_end - r.row_begin + 1;
  std::vector<std::uint8_t> usable(rows * nx);
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0);
    // Group 0 is every difference's reference: a pixel counts only where it is usable.
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t x = 0; x < nx; ++x) {
        const std::size_t y = r.row_begin + i;
        const float v0 = ramp(t, 0, y, x);
        const bool ok = !(dq(t, y, x) & kBadPixel) && !(groupdq(t, 0, y, x) & kBadGroup) && std::isfinite(v0);
        usable[i * nx + x] = ok;
        if (!ok) continue;
        double* a = acc.data() + (x % kAmps) * 2 * ng;
        a[0] += 1.0;
        a[1] += v0;
      }
    for (std::size_t g = 1; g < ng; ++g)
      for (std::size_t i = 0; i < rows; ++i) {
        const std::size_t y = r.row_begin + i;
        const float* v = &ramp(t, g, y, 0);
        const float* v0 = &ramp(t, 0, y, 0);
        const std::uint8_t* q = &groupdq(t, g, y, 0);
        for (std::size_t x = 0; x < nx; ++x) {
          const float diff = v[x] - v0[x];
          if (!usable[i * nx + x] || (q[x] & kBadGroup) || !std::isfinite(diff)) continue;
          double* a = acc.data() + (x % kAmps) * 2 * ng + 2 * g;
          a[0] += 1.0;
          a[1] += diff;
        }
      }
    float* row = sums.values.data() + t * width;
    for (std::size_t i = 0; i < width; ++i) row[i] = static_cast<float>(acc[i]);
    context.advance(1);
  }
}

void draw(const std::array<LinearityFit, kAmps>& fits, const std::vector<std::vector<double>>& ramps,
          const LinearityRanges& r, const std::filesystem::path& path) {
  plot::Figure figure;
  figure.height = 900;
  for (std::size_t a = 0; a < kAmps; ++a) {
    plot::LinePanel panel{.title = "custom_linearity: amplifier " + std::to_string(a),
                          .x_label = "mean raw ramp [DN]",
                          .y_label = "correction [DN]"};
    plot::Series points{"line - ramp", {}, {}, plot::Series::Style::Points};
    plot::Series curve{"fitted polynomial", {}, {}, plot::Series::Style::Line};
    for (std::size_t g = r.derive_begin; g <= r.derive_end; ++g) {
      const double raw = ramps[a][g];
      points.x.push_back(raw);
      points.y.push_back(fits[a].intercept + fits[a].slope * static_cast<double>(g) - raw);
      curve.x.push_back(raw);
      curve.y.push_back(fits[a].apply(raw) - raw);
    }
    panel.series = {points, curve};
    figure.panels.push_back(panel);
  }
  plot::write_png(path, figure);
}

/// One row of one group image: corrected = raw + raw² (c_2 + c_3 raw + ... + c_p raw^(p-2)) by
/// Horner, with table[(k-2)·nx + x] = c_k of column x's amplifier; saturated groups and
/// reference pixels are left alone. P is the degree (0: `order`, known only at run time); for a
/// fixed P and unaliased pointers the loop vectorises.
template <std::size_t P>
void correct_row(float* __restrict v, const std::uint8_t* __restrict q, const std::uint32_t* __restrict d,
                 const float* __restrict table, std::size_t nx, std::size_t order) {
  constexpr std::uint8_t saturated = jwst::dq::group(jwst::dq::saturated);
  const std::size_t p = P ? P : order;
  for (std::size_t x = 0; x < nx; ++x) {
    const float raw = v[x];
    float h = table[(p - 2) * nx + x];
    for (std::size_t k = p - 1; k >= 2; --k) h = h * raw + table[(k - 2) * nx + x];
    const float corrected = raw + raw * raw * h;
    const bool skip = (q[x] & saturated) != 0 || (d[x] & jwst::dq::reference_pixel) != 0;
    v[x] = skip ? raw : corrected;
  }
}

/// Phase 1: mean ramps, fits, and the correction of this rank's integrations.
void derive_and_apply(const CustomLinearityParams& params, StepContext& context) {
  auto ramp = context.frames<float>("ramp");
  auto groupdq = context.frames<std::uint8_t>("groupdq");
  auto dq = context.frames<std::uint32_t>("dq");
  const std::size_t ng = ramp.groups, ny = ramp.ny, nx = ramp.nx, nt = context.shape().nt;
  const LinearityRanges r = resolve_linearity_ranges(params, ng, ny);
  Image& sums = context.image(kSums);
  const std::size_t width = kAmps * 2 * ng;
  if (sums.ny != nt || sums.nx != width) throw InternalError("custom_linearity: scratch sums have the wrong shape");
  // The same additions in the same order on every rank: identical ramps and fits.
  std::vector<double> total(width, 0.0);
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t i = 0; i < width; ++i) total[i] += sums.values[t * width + i];
  context.data().images().erase(kSums);

  std::vector<std::vector<double>> ramps(kAmps, std::vector<double>(ng, 0.0));
  std::array<LinearityFit, kAmps> fits;
  for (std::size_t a = 0; a < kAmps; ++a) {
    const double* s = total.data() + a * 2 * ng;
    auto none = [&](std::size_t g) {
      return StepError("custom_linearity: amplifier " + std::to_string(a) + " has no usable pixel in rows " +
                       std::to_string(r.row_begin) + " to " + std::to_string(r.row_end) + " at group " +
                       std::to_string(g) + " (check row_idx_start_used, row_idx_end_used and the dq)");
    };
    if (s[0] == 0) throw none(0);
    const double base = s[1] / s[0];
    ramps[a][0] = base;
    for (std::size_t g = 1; g < ng; ++g) {
      if (s[2 * g] == 0) {
        const bool needed = (g >= r.derive_begin && g <= r.derive_end) ||
                            (params.method == "exotic" && g >= r.fit_begin && g <= r.fit_end);
        if (needed) throw none(g);
        ramps[a][g] = std::nan("");
        continue;
      }
      ramps[a][g] = base + s[2 * g + 1] / s[2 * g];
    }
    fits[a] = fit_linearity(ramps[a], r, params);
    char text[256];
    std::string coeff_text;
    for (std::size_t k = 2; k < fits[a].coeffs.size(); ++k) {
      std::snprintf(text, sizeof text, "%sc%zu = %.6g", coeff_text.empty() ? "" : ", ", k, fits[a].coeffs[k]);
      coeff_text += text;
    }
    context.log().info("  amplifier " + std::to_string(a) + ": " + coeff_text);
  }
  Image& coeffs = context.image(kCoeffs);
  for (std::size_t a = 0; a < kAmps; ++a)
    for (std::size_t k = 0; k < coeffs.nx; ++k) coeffs.values[a * coeffs.nx + k] = static_cast<float>(fits[a].coeffs[k]);
  if (params.draw_corrections)
    if (auto path = context.plot_file("custom_linearity.png", 1)) draw(fits, ramps, r, *path);

  // Per column, the coefficients c_2..c_p of its amplifier (float: the hot loop vectorises).
  const std::size_t order = static_cast<std::size_t>(params.poly_order);
  std::vector<float> table((order - 1) * nx);  // table[(k-2)*nx + x]
  for (std::size_t k = 2; k <= order; ++k)
    for (std::size_t x = 0; x < nx; ++x) table[(k - 2) * nx + x] = static_cast<float>(fits[x % kAmps].coeffs[k]);
  auto correct_frames = [&](auto row) {
    for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
      for (std::size_t g = 0; g < ng; ++g)
        for (std::size_t y = 0; y < ny; ++y) row(&ramp(t, g, y, 0), &groupdq(t, g, y, 0), &dq(t, y, 0), table.data(), nx, order);
      context.advance(1);
    }
  };
  if (order == 2)
    correct_frames(correct_row<2>);
  else if (order == 3)
    correct_frames(correct_row<3>);
  else if (order == 4)
    correct_frames(correct_row<4>);
  else
    correct_frames(correct_row<0>);
}

}  // namespace

void CustomLinearity::run(const Params& params, StepContext& context) {
  if (context.phase() == 0)
    accumulate(params, context);
  else
    derive_and_apply(params, context);
}

}  // namespace tessera::steps
