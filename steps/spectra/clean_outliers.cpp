#include "steps/spectra/clean_outliers.hpp"

#include <algorithm>
#include <cmath>

#include "steps/common/jwst_dq.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

/// Share of a line's profile its usable pixels must hold for S P to replace the others.
constexpr double kMinSeenProfile = 0.5;


/// Cholesky factor L (lower triangle of a row-major K × K array) of the largest leading block
/// of the symmetric matrix `g` that is numerically positive definite; returns that block's
/// size. The basis is ordered by degree, so a block of size r is the fit of degree r - 1:
/// a window with too few usable lines falls back to a lower order instead of failing.
std::size_t cholesky(const double* g, double* l, std::size_t K) {
  for (std::size_t j = 0; j < K; ++j) {
    const double diag = g[j * K + j];
    double d = diag;
    for (std::size_t m = 0; m < j; ++m) d -= l[j * K + m] * l[j * K + m];
    if (!(diag > 0) || !(d > 1e-10 * diag)) return j;
    const double root = std::sqrt(d);
    l[j * K + j] = root;
    for (std::size_t i = j + 1; i < K; ++i) {
      double v = g[i * K + j];
      for (std::size_t m = 0; m < j; ++m) v -= l[i * K + m] * l[j * K + m];
      l[i * K + j] = v / root;
    }
  }
  return K;
}

/// x <- G^-1 x on the leading r × r block factorised in `l`; entries r.. are set to zero.
void cholesky_solve(const double* l, std::size_t K, std::size_t r, double* x) {
  for (std::size_t i = 0; i < r; ++i) {
    double v = x[i];
    for (std::size_t m = 0; m < i; ++m) v -= l[i * K + m] * x[m];
    x[i] = v / l[i * K + i];
  }
  for (std::size_t i = r; i-- > 0;) {
    double v = x[i];
    for (std::size_t m = i + 1; m < r; ++m) v -= l[m * K + i] * x[m];
    x[i] = v / l[i * K + i];
  }
  for (std::size_t i = r; i < K; ++i) x[i] = 0;
}

/// phi^T G^-1 phi = |L^-1 phi|^2 on the leading r × r block (y: scratch of length r).
double cholesky_quadratic(const double* l, std::size_t K, std::size_t r, const double* phi, double* y) {
  double sum = 0;
  for (std::size_t i = 0; i < r; ++i) {
    double v = phi[i];
    for (std::size_t m = 0; m < i; ++m) v -= l[i * K + m] * y[m];
    y[i] = v / l[i * K + i];
    sum += y[i] * y[i];
  }
  return sum;
}

/// Largest leverage used when a pixel's own influence on its fit is taken out: beyond it the
/// fit nearly interpolates the pixel and its leave-one-out prediction is too uncertain to test.
constexpr double kMaxLeverage = 0.95;

}  // namespace

ProfileCleaner::ProfileCleaner(const CleanOutliersParams& p, std::size_t ny, std::size_t nx)
    : p_(p), dispersion_(spectra::parse_dispersion(p.dispersion_axis)), ny_(ny), nx_(nx) {
  const bool along_y = dispersion_ == spectra::Dispersion::y;
  nw_ = along_y ? ny : nx;
  const std::size_t ns = along_y ? nx : ny;
  if (p.spatial_profile_left_idx >= p.spatial_profile_right_idx)
    throw StepError("clean_outliers: spatial_profile_left_idx = " + std::to_string(p.spatial_profile_left_idx) +
                    " must be less than spatial_profile_right_idx = " + std::to_string(p.spatial_profile_right_idx));
  if (p.spatial_profile_right_idx > static_cast<std::int64_t>(ns))
    throw StepError("clean_outliers: spatial_profile_right_idx = " + std::to_string(p.spatial_profile_right_idx) +
                    " is beyond the " + std::to_string(ns) +
                    " spatial positions of the data (the end is exclusive; check dispersion_axis)");
  left_ = static_cast<std::size_t>(p.spatial_profile_left_idx);
  nr_ = static_cast<std::size_t>(p.spatial_profile_right_idx) - left_;
  K_ = static_cast<std::size_t>(p.poly_order) + 1;
  if (p.window_heights.empty()) throw StepError("clean_outliers: window_heights is empty");
  for (auto h : p.window_heights)
    if (h < static_cast<std::int64_t>(K_))
      throw StepError("clean_outliers: window_heights: a window of " + std::to_string(h) +
                      " pixels cannot constrain a polynomial of poly_order " + std::to_string(p.poly_order) +
                      " (at least " + std::to_string(K_) + " needed)");
  if (!p.no_clean)
    for (auto bit : p.dq_bits_to_mask) {
      if (bit < 0 || bit > 31)
        throw StepError("clean_outliers: dq_bits_to_mask: " + std::to_string(bit) +
                        " is not a JWST dq bit number (0 .. 31)");
      dq_mask_ |= 1u << bit;
    }

  // Windows from dispersion index 0, heights in turn, the last one cut at the detector edge;
  // a cut remainder too short for a stable fit (fewer than 2 (poly_order + 1) lines) joins
  // the window before it.
  std::size_t start = 0;
  for (std::size_t k = 0; start < nw_; ++k) {
    std::size_t h = static_cast<std::size_t>(p.window_heights[k % p.window_heights.size()]);
    h = std::min(h, nw_ - start);
    windows_.push_back({start, h});
    start += h;
  }
  if (windows_.size() > 1 && windows_.back().height < 2 * K_) {
    windows_[windows_.size() - 2].height += windows_.back().height;
    windows_.pop_back();
  }
  window_of_.resize(nw_);
  phi_.resize(nw_ * K_);
  for (std::size_t wi = 0; wi < windows_.size(); ++wi) {
    const Window& W = windows_[wi];
    for (std::size_t i = 0; i < W.height; ++i) {
      const std::size_t w = W.start + i;
      window_of_[w] = wi;
      // Legendre polynomials of the window position mapped onto [-1, 1] (Bonnet's recursion):
      // well conditioned at any order, unlike powers of the pixel index.
      const double u = W.height > 1 ? (2.0 * static_cast<double>(i) - static_cast<double>(W.height - 1)) /
                                          static_cast<double>(W.height - 1)
                                    : 0.0;
      double* ph = &phi_[w * K_];
      ph[0] = 1.0;
      if (K_ > 1) ph[1] = u;
      for (std::size_t k = 1; k + 1 < K_; ++k)
        ph[k + 1] = ((2.0 * static_cast<double>(k) + 1.0) * u * ph[k] - static_cast<double>(k) * ph[k - 1]) /
                    (static_cast<double>(k) + 1.0);
    }
  }

  const std::size_t n = nw_ * nr_;
  d_.resize(n);
  dfit_.resize(n);
  sig2_.resize(n);
  fit_.resize(n);
  prof_.resize(n);
  ivar_.resize(n);
  gain_.resize(n);
  status_.resize(n);
  spectrum_.resize(nw_);
  spectrum_fit_.resize(nw_);
  omega_.resize(nw_);
  norm_.resize(nw_);
  excluded_.resize(nw_);
  stale_.resize(nw_);
  candidate_z2_.resize(nw_);
  candidate_s_.resize(nw_);
  column_worst_.resize(nr_);
  acc_.resize(nr_);
  has_profile_.resize(nw_);
  gram_.resize(K_ * K_);
  chol_.resize(K_ * K_);
  chol_s_.resize(K_ * K_);
  b_.resize(K_ * nr_);
  c_.resize(K_ * nr_);
  y_.resize(std::max(K_, nr_));
  masked_in_column_.resize(nr_);
  dirty_.resize(windows_.size());
  std::size_t tallest = 0;
  for (const auto& W : windows_) tallest = std::max(tallest, W.height);
  hline_.resize(tallest);
}

/// The spectrum of line w (Horne 1986): the sum of its usable pixels over the fitted range,
/// divided by the profile's share of them once a profile exists (so masked pixels do not
/// bias it), and the line's weight in the profile fits: its D/S values have a variance of
/// about mean(sigma^2) / S^2, larger still when much of the profile is masked.
void ProfileCleaner::update_spectrum(std::size_t w) {
  const float* d = &d_[w * nr_];
  const float* sig2 = &sig2_[w * nr_];
  const float* prof = &prof_[w * nr_];
  const std::uint8_t* st = &status_[w * nr_];
  double sd = 0, sp = 0, var = 0;
  std::size_t n = 0, nvar = 0;
  for (std::size_t s = 0; s < nr_; ++s) {
    if (st[s] != usable) continue;
    sd += d[s];
    sp += prof[s];
    ++n;
    if (sig2[s] > 0) {
      var += sig2[s];
      ++nvar;
    }
  }
  double share = static_cast<double>(n) / static_cast<double>(nr_);
  double S = sd;
  if (has_profile_[w]) {
    share = sp;
    if (sp > 1e-3) S = sd / sp;
  }
  spectrum_[w] = S;
  const double mean_var = nvar > 0 ? var / static_cast<double>(nvar) : 1.0;
  omega_[w] = (excluded_[w] || n == 0 || !(S > 0) || !(share > 0)) ? 0.0 : S * S * share / mean_var;
}

/// Least-squares polynomials along the dispersion for every spatial position of window wi,
/// of the data normalised by the spectrum, each line weighted by omega (line weights are the
/// same for every spatial position, so one factorisation of the normal equations serves all
/// of them; a position with masked pixels only downdates it). Also the leverage of each
/// pixel on its own fit (the diagonal of the weighted hat matrix).
void ProfileCleaner::fit_window(std::size_t wi) {
  const Window& W = windows_[wi];
  const std::size_t K = K_, nr = nr_;
  std::fill(gram_.begin(), gram_.end(), 0.0);
  std::size_t weighted = 0;
  for (std::size_t i = 0; i < W.height; ++i) {
    const std::size_t w = W.start + i;
    const double om = omega_[w];
    if (om <= 0) continue;
    ++weighted;
    const double* ph = &phi_[w * K];
    for (std::size_t a = 0; a < K; ++a)
      for (std::size_t b = 0; b <= a; ++b) gram_[a * K + b] += om * ph[a] * ph[b];
  }
  for (std::size_t a = 0; a < K; ++a)
    for (std::size_t b = a + 1; b < K; ++b) gram_[a * K + b] = gram_[b * K + a];
  const std::size_t rank = weighted ? cholesky(gram_.data(), chol_.data(), K) : 0;

  // Right-hand sides of every spatial position at once: b_k(s) = sum_i omega_i phi_k(i) D(i,s) / S_i,
  // masked pixels holding zero in dfit_.
  std::fill(b_.begin(), b_.end(), 0.0);
  std::fill(masked_in_column_.begin(), masked_in_column_.end(), 0u);
  for (std::size_t i = 0; i < W.height; ++i) {
    const std::size_t w = W.start + i;
    spectrum_fit_[w] = spectrum_[w];
    const double om = omega_[w];
    hline_[i] = 0;
    if (om <= 0 || rank == 0) continue;
    const double* ph = &phi_[w * K];
    hline_[i] = om * cholesky_quadratic(chol_.data(), K, rank, ph, y_.data());
    const float* row = &dfit_[w * nr];
    const std::uint8_t* st = &status_[w * nr];
    const double scale = om / spectrum_[w];
    for (std::size_t k = 0; k < rank; ++k) {
      const double a = scale * ph[k];
      double* bk = &b_[k * nr];
      for (std::size_t s = 0; s < nr; ++s) bk[s] += a * static_cast<double>(row[s]);
    }
    for (std::size_t s = 0; s < nr; ++s) masked_in_column_[s] += st[s] != usable ? 1u : 0u;
  }

  // Coefficients per spatial position.
  double* x = y_.data();
  for (std::size_t s = 0; s < nr; ++s) {
    for (std::size_t k = 0; k < K; ++k) x[k] = b_[k * nr + s];
    if (rank == 0) {
      std::fill(x, x + K, 0.0);
    } else if (masked_in_column_[s] == 0) {
      cholesky_solve(chol_.data(), K, rank, x);
    } else {
      // Masked pixels change this position's normal matrix: downdate the window's when they
      // are few, rebuild it from the usable lines otherwise (no cancellation).
      if (4 * masked_in_column_[s] < weighted) {
        std::copy(gram_.begin(), gram_.end(), chol_s_.begin());
        for (std::size_t i = 0; i < W.height; ++i) {
          const std::size_t w = W.start + i;
          if (omega_[w] <= 0 || status_[w * nr + s] == usable) continue;
          const double* ph = &phi_[w * K];
          for (std::size_t a = 0; a < K; ++a)
            for (std::size_t b = 0; b < K; ++b) chol_s_[a * K + b] -= omega_[w] * ph[a] * ph[b];
        }
      } else {
        std::fill(chol_s_.begin(), chol_s_.end(), 0.0);
        for (std::size_t i = 0; i < W.height; ++i) {
          const std::size_t w = W.start + i;
          if (omega_[w] <= 0 || status_[w * nr + s] != usable) continue;
          const double* ph = &phi_[w * K];
          for (std::size_t a = 0; a < K; ++a)
            for (std::size_t b = 0; b < K; ++b) chol_s_[a * K + b] += omega_[w] * ph[a] * ph[b];
        }
      }
      // Factor in place: cholesky reads g's lower triangle and diagonal before it writes
      // them, element by element, so the factor may overwrite its input.
      const std::size_t rank_s = cholesky(chol_s_.data(), chol_s_.data(), K);
      cholesky_solve(chol_s_.data(), K, rank_s, x);
      double yq[16];
      for (std::size_t i = 0; i < W.height; ++i) {
        const std::size_t w = W.start + i;
        const std::size_t k = w * nr + s;
        const double h = (omega_[w] > 0 && status_[k] == usable && rank_s > 0)
                             ? omega_[w] * cholesky_quadratic(chol_s_.data(), K, rank_s, &phi_[w * K], yq)
                             : 0.0;
        gain_[k] = static_cast<float>(1.0 / (1.0 - std::min(h, kMaxLeverage)));
      }
    }
    for (std::size_t k = 0; k < K; ++k) c_[k * nr + s] = x[k];
  }

  // Evaluate the polynomials on the window's lines; leverage of the unmasked positions.
  double* acc = acc_.data();
  for (std::size_t i = 0; i < W.height; ++i) {
    const std::size_t w = W.start + i;
    const double* ph = &phi_[w * K];
    std::fill(acc, acc + nr, 0.0);
    for (std::size_t k = 0; k < K; ++k) {
      const double pk = ph[k];
      const double* ck = &c_[k * nr];
      for (std::size_t s = 0; s < nr; ++s) acc[s] += ck[s] * pk;
    }
    float* out = &fit_[w * nr];
    for (std::size_t s = 0; s < nr; ++s) out[s] = static_cast<float>(acc[s]);
    float* gain = &gain_[w * nr];
    const auto g = static_cast<float>(1.0 / (1.0 - std::min(hline_[i], kMaxLeverage)));
    for (std::size_t s = 0; s < nr; ++s)
      if (masked_in_column_[s] == 0) gain[s] = g;
  }
}

/// Horne's (1986) rejection test on one dispersion line: finds the line's candidate, the
/// usable pixel deviating most from the profile model if that is beyond outlier_threshold
/// standard deviations (clean() rejects it unless a pixel of the same spatial position and
/// window deviates more), records every pixel's deviation in column_worst_, and takes back
/// pixels rejected earlier that now agree with the model (true when it did).
///
/// The deviation of pixel s is taken from a model that does not contain the pixel itself
/// (leave one out), so a strong outlier cannot hide by pulling its own model up:
///   - the spectrum from the other usable pixels of the line, optimally weighted,
///     S_-s = sum_{j != s} P_j D_j / sigma_j^2 / sum_{j != s} P_j^2 / sigma_j^2 (Horne's
///     optimal estimate), of variance 1 / sum_{j != s} P_j^2 / sigma_j^2;
///   - the profile value predicted by the window's fit without the pixel, from its residual
///     and leverage h: f_-s = (f_s - h q_s) / (1 - h) (the deleted-residual identity of least
///     squares), of variance sigma^2 h / (1 - h) in data units.
/// z = (D_s - S_-s P_-s) / sqrt(sigma_s^2 / (1 - h) + P_-s^2 / sum_{j != s} P_j^2 / sigma_j^2).
bool ProfileCleaner::test_line(std::size_t w) {
  const std::size_t base = w * nr_;
  const float* d = &d_[base];
  const float* sig2 = &sig2_[base];
  const float* ivar = &ivar_[base];  // zero for pixels that are not usable
  const float* prof = &prof_[base];
  const float* fit = &fit_[base];
  const float* gain = &gain_[base];
  std::uint8_t* st = &status_[base];
  double N = 0, Q = 0;
  bool any_rejected = false;
  for (std::size_t s = 0; s < nr_; ++s) {
    N += static_cast<double>(prof[s]) * dfit_[base + s] * ivar[s];
    Q += static_cast<double>(prof[s]) * prof[s] * ivar[s];
    any_rejected = any_rejected || st[s] == rejected;
  }
  const double thr2 = p_.outlier_threshold * p_.outlier_threshold;
  const double inv_norm = norm_[w] > 0 ? 1.0 / norm_[w] : 0.0;
  const double inv_sfit = spectrum_fit_[w] != 0 ? 1.0 / spectrum_fit_[w] : 0.0;
  double worst = thr2;
  std::size_t worst_s = nr_;
  if (Q > 0) {
    for (std::size_t s = 0; s < nr_; ++s) {
      if (st[s] != usable) continue;
      const double p = prof[s], dv = d[s], iv = ivar[s], g = gain[s];
      const double q_other = Q - p * p * iv;
      if (!(q_other > 1e-9 * Q)) continue;  // the line's profile is all in this pixel
      // f_-s / norm with f_-s = (f - h q) / (1 - h) = g f - (g - 1) q.
      const double p_other = std::max(g * fit[s] - (g - 1.0) * dv * inv_sfit, 0.0) * inv_norm;
      const double a = dv * q_other - p_other * (N - p * dv * iv);  // r * q_other
      const double v = q_other * (sig2[s] * g * q_other + p_other * p_other);  // var * q_other^2
      const double z2 = a * a / v;
      column_worst_[s] = std::max(column_worst_[s], z2);
      if (z2 > worst) {
        worst = z2;
        worst_s = s;
      }
    }
  }
  candidate_z2_[w] = worst;
  candidate_s_[w] = worst_s;
  bool changed = false;
  if (any_rejected && Q > 0) {
    const double S = spectrum_[w];
    for (std::size_t s = 0; s < nr_; ++s) {
      if (st[s] != rejected) continue;
      const double r = d[s] - S * prof[s];
      const double var = sig2[s] + static_cast<double>(prof[s]) * prof[s] / Q;
      if (r * r < thr2 * var) {
        set_status(w, s, usable);
        changed = true;
      }
    }
  }
  return changed;
}

void ProfileCleaner::set_status(std::size_t w, std::size_t s, std::uint8_t value) {
  const std::size_t k = w * nr_ + s;
  status_[k] = value;
  const bool use = value == usable;
  dfit_[k] = use ? d_[k] : 0.0f;
  ivar_[k] = use ? 1.0f / sig2_[k] : 0.0f;
  stale_[w] = 1;
}

/// Visits every (line, spatial) pixel of the fitted range in an order that walks the frame's
/// memory: line by line when lines are rows, and in blocks of 16 lines (one cache line of
/// each row) when lines are columns, so that neither the frame nor the region buffers are
/// read with a stride of a whole row per access.
template <class F>
void ProfileCleaner::for_each_pixel(bool along_y, F&& f) const {
  if (along_y) {
    for (std::size_t w = 0; w < nw_; ++w)
      for (std::size_t s = 0; s < nr_; ++s) f(w, s);
    return;
  }
  constexpr std::size_t block = 16;
  for (std::size_t w0 = 0; w0 < nw_; w0 += block) {
    const std::size_t w1 = std::min(nw_, w0 + block);
    for (std::size_t s = 0; s < nr_; ++s)
      for (std::size_t w = w0; w < w1; ++w) f(w, s);
  }
}

std::size_t ProfileCleaner::clean(std::span<float> data, std::span<const float> err, std::span<std::uint32_t> dq,
                                  std::span<float> profile, std::span<const float> centre, std::span<float> counts) {
  const bool along_y = dispersion_ == spectra::Dispersion::y;
  const std::size_t wstride = along_y ? nx_ : 1, sstride = along_y ? 1 : nx_;
  const std::size_t nr = nr_;

  // The fitted range, (line, spatial) with the spatial index contiguous.
  std::fill(excluded_.begin(), excluded_.end(), std::uint8_t{0});
  {
    // Raw pointers: byte stores (status, excluded) may alias anything, so the compiler would
    // otherwise reload every vector's data pointer after each of them.
    float *dd = d_.data(), *sig2 = sig2_.data(), *dfit = dfit_.data(), *ivar = ivar_.data();
    std::uint8_t *st = status_.data(), *excl = excluded_.data();
    const float* in = data.data();
    const float* ein = err.data();
    const std::uint32_t* qin = dq.data();
    const std::uint32_t mask = p_.no_clean ? 0u : dq_mask_;
    const bool check_err = !p_.no_clean;
    const std::size_t left = left_;
    for_each_pixel(along_y, [&](std::size_t w, std::size_t s) {
      const std::size_t i = w * wstride + (left + s) * sstride, k = w * nr + s;
      const float v = in[i], e = ein[i];
      const bool e_finite = std::isfinite(e);
      const bool is_bad = !std::isfinite(v) || (check_err && !(e_finite && e > 0)) || (qin[i] & mask);
      const float e2 = e_finite ? e * e : 0.0f;
      dd[k] = v;
      sig2[k] = e2;
      st[k] = is_bad ? bad : usable;
      dfit[k] = is_bad ? 0.0f : v;
      ivar[k] = is_bad || !(e2 > 0) ? 0.0f : 1.0f / e2;
      excl[w] |= is_bad;
    });
  }
  std::fill(has_profile_.begin(), has_profile_.end(), std::uint8_t{0});
  std::fill(stale_.begin(), stale_.end(), std::uint8_t{1});
  // First pass: lines with masked pixels stay out of the fits (their plain sums are biased
  // low until a profile can correct them), unless that would leave a window short of lines.
  for (const Window& W : windows_) {
    std::size_t n_excluded = 0;
    for (std::size_t w = W.start; w < W.start + W.height; ++w) n_excluded += excluded_[w];
    const std::size_t kept = W.height - n_excluded;
    if (n_excluded > 0 && (kept < 2 * K_ || 2 * kept < W.height))
      for (std::size_t w = W.start; w < W.start + W.height; ++w) excluded_[w] = 0;
  }
  std::fill(dirty_.begin(), dirty_.end(), std::uint8_t{1});

  passes_ = 0;
  std::vector<std::size_t>& fitted = fitted_;
  for (;;) {
    fitted.clear();
    for (std::size_t wi = 0; wi < windows_.size(); ++wi) {
      if (!dirty_[wi]) continue;
      dirty_[wi] = 0;
      fitted.push_back(wi);
      const Window& W = windows_[wi];
      for (std::size_t w = W.start; w < W.start + W.height; ++w)
        if (stale_[w]) update_spectrum(w);
      fit_window(wi);
      for (std::size_t w = W.start; w < W.start + W.height; ++w) {
        // P >= 0, summing to 1 over the fitted range (Horne's step 5).
        float* f = &fit_[w * nr];
        float* pr = &prof_[w * nr];
        double sum = 0;
        for (std::size_t s = 0; s < nr; ++s) sum += std::max(f[s], 0.0f);
        norm_[w] = sum;
        const float inv = sum > 0 ? static_cast<float>(1.0 / sum) : 0.0f;
        for (std::size_t s = 0; s < nr; ++s) pr[s] = std::max(f[s], 0.0f) * inv;
        has_profile_[w] = 1;
        update_spectrum(w);
        stale_[w] = 0;
      }
    }
    ++passes_;
    const bool testing = !p_.no_clean && passes_ <= static_cast<std::size_t>(p_.max_iterations);
    if (testing)
      for (std::size_t wi : fitted) {
        // Each line's worst pixel is rejected only if no pixel of the same window and spatial
        // position deviates more: a strong outlier also pulls its column's fit on the
        // neighbouring lines, and those must not be taken for outliers before it is gone.
        const Window& W = windows_[wi];
        std::fill(column_worst_.begin(), column_worst_.end(), 0.0);
        for (std::size_t w = W.start; w < W.start + W.height; ++w)
          if (test_line(w)) dirty_[wi] = 1;
        for (std::size_t w = W.start; w < W.start + W.height; ++w) {
          const std::size_t s = candidate_s_[w];
          if (s < nr && candidate_z2_[w] >= column_worst_[s]) {
            set_status(w, s, rejected);
            dirty_[wi] = 1;
          }
        }
      }
    if (passes_ == 1)
      for (std::size_t w = 0; w < nw_; ++w)
        if (excluded_[w]) {
          excluded_[w] = 0;
          stale_[w] = 1;
          dirty_[window_of_[w]] = 1;
        }
    if (std::none_of(dirty_.begin(), dirty_.end(), [](std::uint8_t v) { return v != 0; })) break;
  }

  // A line whose usable pixels hold under half of its profile (e.g. a saturated core masked
  // in every integration) has no trustworthy S: its masked pixels stay as they are.
  std::vector<double> seen(nw_, 0.0);
  for (std::size_t w = 0; w < nw_; ++w)
    for (std::size_t s = 0; s < nr; ++s)
      if (status_[w * nr + s] == usable) seen[w] += prof_[w * nr + s];
  // Replace every masked or rejected pixel by the model S P; write the profile.
  std::fill(profile.begin(), profile.end(), 0.0f);
  std::size_t cleaned = 0;
  const auto aperture = static_cast<float>(p_.aperture_center);
  const float* pr = prof_.data();
  const std::uint8_t* st = status_.data();
  float* out = profile.data();
  const std::size_t left = left_;
  for_each_pixel(along_y, [&](std::size_t w, std::size_t s) {
    const std::size_t i = w * wstride + (left + s) * sstride, k = w * nr + s;
    out[i] = pr[k];
    if (st[k] == usable || !(seen[w] >= kMinSeenProfile)) return;
    data[i] = static_cast<float>(spectrum_[w] * prof_[k]);
    dq[i] |= jwst::dq::outlier;
    ++cleaned;
    const float c = centre.empty() ? aperture : centre[w];
    if (std::isfinite(c)) {
      const double dist = std::fabs(static_cast<double>(left_ + s) - static_cast<double>(c));
      const auto bin = static_cast<std::size_t>(std::floor(dist + 0.5));
      if (bin < counts.size()) counts[bin] += 1.0f;
    }
  });
  return cleaned;
}

StepIO CleanOutliers::io(const Params& p) {
  (void)spectra::parse_dispersion(p.dispersion_axis);
  StepIO io;
  io.reads = {{DataKind::Cube, "data", "clean_outliers works on rate images (ramp_fit, tessera_h5 or jwst_rateints)"},
              {DataKind::Cube, "err", "the rate images' 1-sigma uncertainties (ramp_fit)"},
              {DataKind::Cube, "dq", "JWST pixel dq of the rate images"}};
  if (p.trace) io.reads.push_back({DataKind::Image, *p.trace, "run the trace step first (image trace_<order>)"});
  DataOut data{DataKind::Cube, {"data", "", ""}, ElementType::Float32};
  DataOut dq{DataKind::Cube, {"dq", "", ""}, ElementType::UInt32};
  DataOut profile{DataKind::Cube,
                  {"profile", "1",
                   "spatial profile (Horne 1986), summing to 1 along each spatial line of the fitted range, 0 outside"},
                  ElementType::Float32};
  DataOut counts{DataKind::Image,
                 {"n_outliers", "1", "pixels cleaned per integration at each distance from the trace centre"}};
  counts.image_ny = DataOut::frames;
  counts.image_nx = outlier_region_width;
  counts.dim_y = "time";
  counts.dim_x = "region_width";
  DataOut width{DataKind::Image, {"region_width", "pixel", "distance from the trace centre"}};
  width.image_nx = outlier_region_width;
  width.dim_y = "";
  width.dim_x = "region_width";
  width.combine = Combine::Identical;
  DataOut total{DataKind::FrameVector,
                {"clean_outliers_count", "1", "pixels cleaned by clean_outliers per integration"},
                ElementType::Float32,
                true};
  io.writes = {data, dq, profile, counts, width, total};
  return io;
}

void CleanOutliers::run(const Params& p, StepContext& context) {
  auto data = context.frames<float>("data");
  auto err = context.frames<float>("err");
  auto dqc = context.frames<std::uint32_t>("dq");
  auto profile = context.frames<float>("profile");
  const std::size_t ny = data.ny, nx = data.nx, nt = context.shape().nt;
  ProfileCleaner cleaner(p, ny, nx);
  const std::size_t nw = spectra::parse_dispersion(p.dispersion_axis) == spectra::Dispersion::y ? ny : nx;

  const Image* trace = nullptr;
  if (p.trace) {
    if (!context.data().images().count(*p.trace))
      throw StepError("clean_outliers: trace = \"" + *p.trace + "\": no such image (run the trace step first)");
    trace = &context.image(*p.trace);
    if (trace->ny != nt || trace->nx != nw)
      throw StepError("clean_outliers: trace = \"" + *p.trace + "\" is " + std::to_string(trace->ny) + " x " +
                      std::to_string(trace->nx) + ", expected " + std::to_string(nt) + " integrations x " +
                      std::to_string(nw) + " dispersion indices (check dispersion_axis)");
  }
  Image& counts = context.image("n_outliers");
  Image& width = context.image("region_width");
  for (std::size_t k = 0; k < outlier_region_width; ++k) width.values[k] = static_cast<float>(k);
  auto& total = context.frame_vector("clean_outliers_count");
  std::size_t cleaned = 0, passes = 0;
  for (std::size_t t = data.t_begin; t < data.t_end; ++t) {
    std::span<const float> centre;
    if (trace) centre = std::span<const float>(trace->values.data() + t * nw, nw);
    const std::size_t n =
        cleaner.clean(data.frame(t), err.frame(t), dqc.frame(t), profile.frame(t), centre,
                      std::span<float>(counts.values.data() + t * outlier_region_width, outlier_region_width));
    total.values[t] = static_cast<double>(n);
    cleaned += n;
    passes = std::max(passes, cleaner.passes());
    context.advance(1);
  }
  context.log().info("clean_outliers: " + std::to_string(cleaned) + " pixels cleaned on rank 0's " +
                     std::to_string(data.t_end - data.t_begin) + " integrations (at most " +
                     std::to_string(passes) + " fit passes per integration)");
}

}  // namespace tessera::steps
