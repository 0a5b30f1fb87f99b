#include "steps/common/lomb_scargle.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace tessera::steps {
namespace {

/// Sums over the points at one frequency, from the cosines and sines of ω t_i.
struct Sums {
  double c = 0, s = 0, cc = 0, ss = 0, cs = 0, yc = 0, ys = 0;
};

Sums accumulate(std::span<const double> y, const std::vector<double>& cosines, const std::vector<double>& sines) {
  Sums m;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double c = cosines[i], s = sines[i];
    m.c += c;
    m.s += s;
    m.cc += c * c;
    m.ss += s * s;
    m.cs += c * s;
    m.yc += y[i] * c;
    m.ys += y[i] * s;
  }
  return m;
}

/// ½ (YC_τ²/CC_τ + YS_τ²/SS_τ) from the raw sums (y already centred, so Σy' = 0).
double power(const Sums& m, double n) {
  // Centred (floating-mean) second moments of the basis functions.
  const double cc = m.cc - m.c * m.c / n;
  const double ss = m.ss - m.s * m.s / n;
  const double cs = m.cs - m.c * m.s / n;
  // Scargle's phase τ: rotate (cos, sin) by φ = ωτ so that the centred cross term vanishes.
  const double phi = 0.5 * std::atan2(2.0 * cs, cc - ss);
  const double cp = std::cos(phi), sp = std::sin(phi);
  const double cc_tau = cp * cp * cc + 2.0 * sp * cp * cs + sp * sp * ss;
  const double ss_tau = sp * sp * cc - 2.0 * sp * cp * cs + cp * cp * ss;
  const double yc_tau = cp * m.yc + sp * m.ys;
  const double ys_tau = cp * m.ys - sp * m.yc;
  // A direction the sampling cannot see carries no power (and 0/0 otherwise).
  const double floor = 1e-10 * n;
  double p = 0;
  if (cc_tau > floor) p += yc_tau * yc_tau / cc_tau;
  if (ss_tau > floor) p += ys_tau * ys_tau / ss_tau;
  return 0.5 * p;
}

}  // namespace

std::vector<double> linspace(double first, double last, std::size_t n) {
  std::vector<double> out(n);
  if (n == 1) out[0] = first;
  if (n < 2) return out;
  const double step = (last - first) / static_cast<double>(n - 1);
  for (std::size_t k = 0; k < n; ++k) out[k] = first + step * static_cast<double>(k);
  out[n - 1] = last;
  return out;
}

std::vector<double> lomb_scargle_psd(std::span<const double> t_in, std::span<const double> y_in,
                                     std::span<const double> frequencies) {
  std::vector<double> out(frequencies.size(), 0.0);
  // Finite points only; times relative to their mean keep the phases ω t small.
  std::vector<double> t, y;
  for (std::size_t i = 0; i < std::min(t_in.size(), y_in.size()); ++i)
    if (std::isfinite(t_in[i]) && std::isfinite(y_in[i])) {
      t.push_back(t_in[i]);
      y.push_back(y_in[i]);
    }
  const std::size_t n = t.size();
  if (n < 3 || frequencies.empty()) return out;
  double t_mean = 0, y_mean = 0;
  for (std::size_t i = 0; i < n; ++i) {
    t_mean += t[i];
    y_mean += y[i];
  }
  t_mean /= static_cast<double>(n);
  y_mean /= static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) {
    t[i] -= t_mean;
    y[i] -= y_mean;
  }

  // An evenly spaced grid lets cos/sin advance by a fixed rotation per point.
  const std::size_t nf = frequencies.size();
  double largest = 0;
  for (double f : frequencies) largest = std::max(largest, std::fabs(f));
  const double df = nf > 1 ? (frequencies[nf - 1] - frequencies[0]) / static_cast<double>(nf - 1) : 0.0;
  bool even = nf > 2;
  for (std::size_t k = 0; even && k < nf; ++k)
    even = std::fabs(frequencies[k] - (frequencies[0] + df * static_cast<double>(k))) <= 1e-9 * largest;

  constexpr double two_pi = 2.0 * std::numbers::pi;
  constexpr std::size_t reseed = 64;
  std::vector<double> cosines(n), sines(n), rot_c, rot_s;
  if (even) {
    rot_c.resize(n);
    rot_s.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      rot_c[i] = std::cos(two_pi * df * t[i]);
      rot_s[i] = std::sin(two_pi * df * t[i]);
    }
  }
  for (std::size_t k = 0; k < nf; ++k) {
    if (!even || k % reseed == 0) {
      const double omega = two_pi * frequencies[k];
      for (std::size_t i = 0; i < n; ++i) {
        cosines[i] = std::cos(omega * t[i]);
        sines[i] = std::sin(omega * t[i]);
      }
    } else {
      // cos(θ + δ) = cos θ cos δ − sin θ sin δ,  sin(θ + δ) = sin θ cos δ + cos θ sin δ.
      for (std::size_t i = 0; i < n; ++i) {
        const double c = cosines[i], s = sines[i];
        cosines[i] = c * rot_c[i] - s * rot_s[i];
        sines[i] = s * rot_c[i] + c * rot_s[i];
      }
    }
    out[k] = power(accumulate(y, cosines, sines), static_cast<double>(n));
  }
  return out;
}

}  // namespace tessera::steps
