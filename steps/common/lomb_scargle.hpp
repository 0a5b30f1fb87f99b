#pragma once
/// The Lomb–Scargle periodogram of an unevenly sampled series (Lomb 1976, Scargle 1982), in
/// the floating-mean form (Cumming, Marcy & Butler 1999; Zechmeister & Kürster 2009, "the
/// generalised Lomb–Scargle periodogram") with the 'psd' normalisation, i.e. what astropy's
/// `LombScargle(t, y, normalization='psd').power(f)` returns for data without uncertainties
/// (its defaults fit_mean = True, center_data = True).
///
/// At each frequency f the power is half the drop in the sum of squares when a sinusoid is
/// fitted on top of a free offset, by linear least squares:
///
///     P(f) = ½ [ Σ (y_i − ȳ)²  −  min_{a,b,c} Σ (y_i − a − b cos 2πf t_i − c sin 2πf t_i)² ].
///
/// With y' = y − ȳ, c_i = cos 2πf t_i, s_i = sin 2πf t_i and the centred sums (N points)
///     CC = Σc² − (Σc)²/N,  SS = Σs² − (Σs)²/N,  CS = Σcs − (Σc)(Σs)/N,  YC = Σy'c,  YS = Σy's,
/// this is ½ [YC YS] M⁻¹ [YC YS]ᵀ with M = [[CC, CS], [CS, SS]]. It is evaluated, as Scargle
/// did, in the basis rotated by the phase ωτ with tan 2ωτ = 2 CS / (CC − SS), where M is
/// diagonal:  P = ½ (YC_τ² / CC_τ + YS_τ² / SS_τ).  A term whose denominator vanishes (a
/// frequency at which the sampling cannot see a sine, e.g. the Nyquist frequency of evenly
/// spaced times) is left out, which is the least-squares answer for that direction.
///
/// Units: those of y², per the number of points (astropy's 'psd' without uncertainties).
/// For y = A sin 2πf₀t on N evenly spaced points and f₀ a Fourier frequency k/(N Δt)
/// (0 < k < N/2): Σs² = N/2, all other sums vanish, so P(f₀) = ½ (A N/2)² / (N/2) = N A²/4.
#include <cstddef>
#include <span>
#include <vector>

namespace tessera::steps {

/// P(f) for every frequency (same units as 1/t). Non-finite samples are left out. Direct
/// O(N·F) evaluation; on an evenly spaced frequency grid the cosines and sines are advanced
/// from one frequency to the next by a rotation (two multiplications per point, re-seeded
/// exactly every 64 frequencies), so only the first frequency of each run calls sin/cos.
/// Fewer than three finite samples give zeros.
std::vector<double> lomb_scargle_psd(std::span<const double> t, std::span<const double> y,
                                     std::span<const double> frequencies);

/// n values from `first` to `last` inclusive (numpy.linspace).
std::vector<double> linspace(double first, double last, std::size_t n);

}  // namespace tessera::steps
