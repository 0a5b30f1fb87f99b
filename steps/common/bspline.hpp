#pragma once
/// Cubic B-splines: the basis by the Cox–de Boor recurrence (de Boor, "A Practical Guide to
/// Splines", 1978, algorithm BSPLVB), least-squares fits with given interior knots, and
/// evaluation. The fit is the one FITPACK's curfit/splrep makes when it is handed the
/// interior knots (`splrep(x, y, t=knots)`, Dierckx 1993 "Curve and Surface Fitting with
/// Splines"): boundary knots of multiplicity k + 1 = 4 at the first and last data abscissae,
/// coefficients minimising Σ w_i² (y_i − s(x_i))². The trace step uses it to smooth the
/// column centroids of a spectral trace, as the JWST TSO notebook does with scipy.
///
/// Knot vector t (size n + 4 for n coefficients): t[0..3] = xb, t[4..4+m) = the m interior
/// knots, t[n..n+3] = xe, n = m + 4. The spline is s(x) = Σ_j c_j B_j(x); on knot interval l
/// (t[l] <= x < t[l+1], 3 <= l <= n − 1) only B_{l−3} .. B_l are nonzero.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tessera::bspline {

inline constexpr std::size_t degree = 3;
inline constexpr std::size_t order = degree + 1;  ///< basis functions nonzero at any x

/// Full knot vector of a cubic spline on [xb, xe] with the given interior knots. Throws
/// std::invalid_argument unless xb < interior knots (strictly increasing) < xe.
std::vector<double> clamped_knots(double xb, double xe, std::span<const double> interior);

/// Number of coefficients (basis functions) of a knot vector: size − 4.
inline std::size_t coefficient_count(std::span<const double> knots) { return knots.size() - order; }

/// The knot interval l holding x: t[l] <= x < t[l+1] with 3 <= l <= n − 1; x at or beyond the
/// last knot goes into the last interval, x before the first into the first (so evaluation
/// outside [xb, xe] continues the end polynomial pieces, like splev's default).
std::size_t knot_interval(std::span<const double> knots, double x);

/// The four cubic B-splines B_{l−3}(x) .. B_l(x) of interval l (Cox–de Boor, BSPLVB). They are
/// nonnegative and sum to 1 inside [xb, xe].
void basis(std::span<const double> knots, std::size_t l, double x, double out[order]);

/// s(x) = Σ c_j B_j(x); `coefficients` has coefficient_count(knots) values.
double evaluate(std::span<const double> knots, std::span<const double> coefficients, double x);

/// Weighted least-squares cubic spline through (x_i, y_i) with fixed knots, set up once for a
/// set of abscissae and then solved for any number of ordinate sets (the normal equations are
/// banded with half-bandwidth 3 and factored once by Cholesky: fitting one set of y costs
/// O(m) for m points).
class LeastSquaresFit {
 public:
  /// `x` nondecreasing with x.front() < x.back(); `interior` strictly increasing inside
  /// (x.front(), x.back()); `weights` empty (all 1) or one positive weight per point.
  /// Throws std::invalid_argument when the knots do not suit the data (the Schoenberg–Whitney
  /// conditions, checked as FITPACK's fpchec does: every basis function must own a data point
  /// strictly inside its support), so the fit is unique.
  LeastSquaresFit(std::vector<double> x, std::vector<double> interior, std::vector<double> weights = {});

  std::size_t points() const { return x_.size(); }
  std::size_t coefficients() const { return n_; }
  const std::vector<double>& knots() const { return knots_; }
  const std::vector<double>& x() const { return x_; }

  /// Coefficients of the best fit to `y` (one per point).
  void fit(std::span<const double> y, std::span<double> coefficients) const;
  /// The spline with `coefficients` at every data abscissa (no knot search: the basis values
  /// at the data are kept from construction).
  void values_at_data(std::span<const double> coefficients, std::span<double> out) const;

 private:
  std::vector<double> x_, w2_, knots_;
  std::size_t n_ = 0;
  std::vector<std::uint32_t> interval_;  ///< knot interval of every point
  std::vector<double> basis_;            ///< 4 basis values per point
  std::vector<double> factor_;           ///< Cholesky factor L, L(i, i − d) at [i·4 + d]
};

}  // namespace tessera::bspline
