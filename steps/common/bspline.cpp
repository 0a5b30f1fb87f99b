#include "steps/common/bspline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace tessera::bspline {

namespace {

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

}  // namespace

std::vector<double> clamped_knots(double xb, double xe, std::span<const double> interior) {
  if (!(xb < xe))
    throw std::invalid_argument("B-spline: the data range [" + number(xb) + ", " + number(xe) + "] is empty");
  double previous = xb;
  for (double k : interior) {
    if (!(k > previous))
      throw std::invalid_argument("B-spline: interior knots must increase strictly inside (" + number(xb) + ", " +
                                  number(xe) + "), got " + number(k) + " after " + number(previous));
    previous = k;
  }
  if (!(previous < xe) && !interior.empty())
    throw std::invalid_argument("B-spline: interior knot " + number(previous) + " is not below the data's end " +
                                number(xe));
  std::vector<double> t;
  t.reserve(interior.size() + 2 * order);
  t.insert(t.end(), order, xb);
  t.insert(t.end(), interior.begin(), interior.end());
  t.insert(t.end(), order, xe);
  return t;
}

std::size_t knot_interval(std::span<const double> knots, double x) {
  const std::size_t n = coefficient_count(knots);
  // First knot above x among t[4..n): the interval is the one before it.
  const auto first = knots.begin() + static_cast<std::ptrdiff_t>(order);
  const auto last = knots.begin() + static_cast<std::ptrdiff_t>(n);
  const auto above = std::upper_bound(first, last, x);
  return static_cast<std::size_t>(above - knots.begin()) - 1;
}

void basis(std::span<const double> t, std::size_t l, double x, double out[order]) {
  // de Boor's BSPLVB: raise the degree one step at a time, N_{i,j} from N_{i,j−1}, keeping
  // only the functions nonzero on [t[l], t[l+1]).
  double left[order], right[order];
  out[0] = 1.0;
  for (std::size_t j = 1; j <= degree; ++j) {
    left[j] = x - t[l + 1 - j];
    right[j] = t[l + j] - x;
    double saved = 0.0;
    for (std::size_t r = 0; r < j; ++r) {
      const double term = out[r] / (right[r + 1] + left[j - r]);
      out[r] = saved + right[r + 1] * term;
      saved = left[j - r] * term;
    }
    out[j] = saved;
  }
}

double evaluate(std::span<const double> knots, std::span<const double> coefficients, double x) {
  if (coefficients.size() != coefficient_count(knots))
    throw std::invalid_argument("B-spline: " + std::to_string(coefficients.size()) + " coefficients for " +
                                std::to_string(coefficient_count(knots)) + " basis functions");
  const std::size_t l = knot_interval(knots, x);
  double b[order];
  basis(knots, l, x, b);
  double s = 0.0;
  for (std::size_t a = 0; a < order; ++a) s += coefficients[l - degree + a] * b[a];
  return s;
}

LeastSquaresFit::LeastSquaresFit(std::vector<double> x, std::vector<double> interior, std::vector<double> weights)
    : x_(std::move(x)) {
  const std::size_t m = x_.size();
  if (m < 2) throw std::invalid_argument("B-spline fit: needs at least two points, got " + std::to_string(m));
  for (std::size_t i = 1; i < m; ++i)
    if (!(x_[i] >= x_[i - 1]))
      throw std::invalid_argument("B-spline fit: abscissae must be finite and nondecreasing (point " +
                                  std::to_string(i) + ")");
  if (!weights.empty() && weights.size() != m)
    throw std::invalid_argument("B-spline fit: " + std::to_string(weights.size()) + " weights for " +
                                std::to_string(m) + " points");
  w2_.resize(m, 1.0);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!(weights[i] > 0) || !std::isfinite(weights[i]))
      throw std::invalid_argument("B-spline fit: weights must be positive and finite (point " + std::to_string(i) +
                                  ")");
    w2_[i] = weights[i] * weights[i];
  }
  knots_ = clamped_knots(x_.front(), x_.back(), interior);
  n_ = coefficient_count(knots_);
  const auto& t = knots_;

  // Schoenberg–Whitney, as FITPACK's fpchec: the first and last basis functions are pinned by
  // the end points; every other one, j = 1 .. n − 2, needs its own point x_i (increasing i,
  // 0 < i < m − 1) with t[j] < x_i < t[j + 4].
  if (m < n_)
    throw std::invalid_argument("B-spline fit: " + std::to_string(n_) +
                                " coefficients need at least as many points, got " + std::to_string(m));
  std::size_t i = 0;
  for (std::size_t j = 1; j + 1 < n_; ++j) {
    do {
      ++i;
      if (i + 1 >= m)
        throw std::invalid_argument("B-spline fit: too few points between knots " + number(t[j]) + " and " +
                                    number(t[j + order]) + " for a unique fit (Schoenberg–Whitney); use fewer knots");
    } while (!(x_[i] > t[j]));
    if (!(x_[i] < t[j + order]))
      throw std::invalid_argument("B-spline fit: no point between knots " + number(t[j]) + " and " +
                                  number(t[j + order]) + " for a unique fit (Schoenberg–Whitney); use fewer knots");
  }

  // Basis values at the data and the normal matrix A = Bᵀ W B (banded: A(r, r + d), d <= 3,
  // kept at a[r·4 + d]).
  interval_.resize(m);
  basis_.resize(m * order);
  std::vector<double> a(n_ * order, 0.0);
  for (std::size_t p = 0; p < m; ++p) {
    const std::size_t l = knot_interval(t, x_[p]);
    interval_[p] = static_cast<std::uint32_t>(l);
    double* b = basis_.data() + p * order;
    basis(t, l, x_[p], b);
    const std::size_t r0 = l - degree;
    for (std::size_t u = 0; u < order; ++u)
      for (std::size_t v = u; v < order; ++v) a[(r0 + u) * order + (v - u)] += w2_[p] * b[u] * b[v];
  }

  // Banded Cholesky A = L Lᵀ; L(r, r − d) kept at factor_[r·4 + d].
  factor_.assign(n_ * order, 0.0);
  auto L = [&](std::size_t r, std::size_t c) -> double& { return factor_[r * order + (r - c)]; };
  for (std::size_t j = 0; j < n_; ++j) {
    const std::size_t k0 = j >= degree ? j - degree : 0;
    double diagonal = a[j * order];
    for (std::size_t k = k0; k < j; ++k) diagonal -= L(j, k) * L(j, k);
    if (!(diagonal > 0))
      throw std::invalid_argument("B-spline fit: the normal equations are singular; use fewer knots");
    L(j, j) = std::sqrt(diagonal);
    for (std::size_t r = j + 1; r < std::min(n_, j + order); ++r) {
      double s = a[j * order + (r - j)];
      for (std::size_t k = (r >= degree ? r - degree : 0); k < j; ++k) s -= L(r, k) * L(j, k);
      L(r, j) = s / L(j, j);
    }
  }
}

void LeastSquaresFit::fit(std::span<const double> y, std::span<double> c) const {
  if (y.size() != x_.size() || c.size() != n_)
    throw std::invalid_argument("B-spline fit: expected " + std::to_string(x_.size()) + " values and room for " +
                                std::to_string(n_) + " coefficients");
  std::fill(c.begin(), c.end(), 0.0);
  for (std::size_t p = 0; p < x_.size(); ++p) {
    const double* b = basis_.data() + p * order;
    const std::size_t r0 = interval_[p] - degree;
    const double wy = w2_[p] * y[p];
    for (std::size_t u = 0; u < order; ++u) c[r0 + u] += b[u] * wy;
  }
  // Forward (L z = rhs) then back (Lᵀ c = z) substitution, in place.
  for (std::size_t r = 0; r < n_; ++r) {
    double s = c[r];
    for (std::size_t d = 1; d < order && d <= r; ++d) s -= factor_[r * order + d] * c[r - d];
    c[r] = s / factor_[r * order];
  }
  for (std::size_t r = n_; r-- > 0;) {
    double s = c[r];
    for (std::size_t d = 1; d < order && r + d < n_; ++d) s -= factor_[(r + d) * order + d] * c[r + d];
    c[r] = s / factor_[r * order];
  }
}

void LeastSquaresFit::values_at_data(std::span<const double> c, std::span<double> out) const {
  if (c.size() != n_ || out.size() != x_.size())
    throw std::invalid_argument("B-spline fit: expected " + std::to_string(n_) + " coefficients and room for " +
                                std::to_string(x_.size()) + " values");
  for (std::size_t p = 0; p < x_.size(); ++p) {
    const double* b = basis_.data() + p * order;
    const std::size_t r0 = interval_[p] - degree;
    double s = 0.0;
    for (std::size_t u = 0; u < order; ++u) s += c[r0 + u] * b[u];
    out[p] = s;
  }
}

}  // namespace tessera::bspline
