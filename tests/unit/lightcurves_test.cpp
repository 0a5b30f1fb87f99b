// Lomb–Scargle, cross-correlation shifts, align_spectra, lightcurves and lc_diagnostics:
// hand-derived answers (the periodogram of a sinusoid, the RMS of a few groups), simulated
// truth (sub-pixel shifts, a box transit in white noise) and partition invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <cstdio>
#include <random>

#include "steps/common/lomb_scargle.hpp"
#include "steps/lightcurves/lc_diagnostics.hpp"
#include "steps/lightcurves/lightcurves.hpp"
#include "steps/spectra/align_spectra.hpp"
#include "support/emulated_ranks.hpp"
#include "support/temp_dir.hpp"

namespace {

using namespace tessera;
using namespace tessera::steps;
constexpr double kPi = std::numbers::pi;

// ---------------------------------------------------------------------------------------
// Lomb–Scargle

TEST(LombScargle, SinusoidAtAFourierFrequencyHasPowerNASquaredOverFour) {
  // y = c + A sin(2π f0 t) on t_i = i Δt, i < N, with f0 = k/(N Δt), 0 < k < N/2. At f0:
  // Σ cos = Σ sin = Σ cos·sin = 0 and Σ sin² = Σ cos² = N/2 (orthogonality of the discrete
  // Fourier basis), y − ȳ = A sin, so YS = A N/2, YC = 0 and
  //   P = ½ (YS² / SS) = ½ (A N/2)² / (N/2) = N A² / 4.
  // At every other Fourier frequency YC = YS = 0: P = 0.
  const std::size_t n = 200;
  const double dt = 10.0, amplitude = 0.01;
  const std::size_t k0 = 13;
  std::vector<double> t(n), y(n), f;
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = dt * static_cast<double>(i);
    y[i] = 3.0 + amplitude * std::sin(2 * kPi * static_cast<double>(k0) * t[i] / (static_cast<double>(n) * dt));
  }
  for (std::size_t k = 1; k < n / 2; ++k) f.push_back(static_cast<double>(k) / (static_cast<double>(n) * dt));
  const std::vector<double> p = lomb_scargle_psd(t, y, f);
  const double expected = static_cast<double>(n) * amplitude * amplitude / 4;  // 0.005
  EXPECT_NEAR(p[k0 - 1], expected, 1e-10 * expected);
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (k == k0 - 1) continue;
    EXPECT_LT(p[k], 1e-12 * expected) << "f index " << k;
  }
  // On the notebook's grid, linspace(1/T, Nyquist, 1000), the largest power is at the grid
  // point nearest f0.
  const double span = t.back() - t.front();
  const std::vector<double> grid = linspace(1 / span, 0.5 / dt, 1000);
  const std::vector<double> q = lomb_scargle_psd(t, y, grid);
  const auto peak = static_cast<std::size_t>(std::max_element(q.begin(), q.end()) - q.begin());
  const double f0 = static_cast<double>(k0) / (static_cast<double>(n) * dt);
  EXPECT_LE(std::fabs(grid[peak] - f0), 0.5 * (grid[1] - grid[0]) + 1e-15);
  // The top of the grid is the Nyquist frequency, where the sines of evenly spaced times all
  // vanish: that direction is left out rather than divided by zero.
  EXPECT_TRUE(std::isfinite(q.back()));
}

TEST(LombScargle, IrregularSamplingMatchesAstropy) {
  // Reference values: astropy.timeseries.LombScargle(t, y, normalization='psd').power(f)
  // (astropy 6, fit_mean and center_data on) for this deterministic series.
  std::vector<double> t(150), y(150);
  for (std::size_t i = 0; i < 150; ++i) {
    const double x = static_cast<double>(i);
    t[i] = 30 * x + 7 * std::sin(1.3 * x);
    y[i] = 0.002 * std::sin(2 * kPi * t[i] / 900) + 0.001 * std::cos(0.77 * x) + 1;
  }
  const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
  // Evenly spaced grid: the rotation recurrence.
  const std::vector<double> grid = linspace(1 / (*hi - *lo), 0.5 / 30, 200);
  const std::vector<double> p = lomb_scargle_psd(t, y, grid);
  const std::pair<std::size_t, double> astropy[] = {
      {0, 2.1097000285249783e-08},   {7, 8.749782845456547e-06},  {33, 3.1329534538327727e-09},
      {64, 2.8462995629776975e-07},  {65, 4.3437580270262104e-09}, {99, 7.56686208859466e-08},
      {150, 2.461340073729489e-07},  {199, 2.636846519921109e-08}};
  for (const auto& [k, value] : astropy) EXPECT_NEAR(p[k], value, 1e-7 * value + 1e-16) << "grid index " << k;
  // Arbitrary frequencies: direct evaluation.
  const std::vector<double> f = {1 / 900.0, 0.0005, 0.0031, 0.0123, 1 / 60.0};
  const std::vector<double> q = lomb_scargle_psd(t, y, f);
  const double expected[] = {1.4884530188666426e-04, 1.9923534353135101e-06, 2.4284549892832768e-07,
                             3.8490952133331919e-09, 2.6368465199211089e-08};
  for (std::size_t k = 0; k < f.size(); ++k) EXPECT_NEAR(q[k], expected[k], 1e-7 * expected[k]) << "f " << f[k];
}

// ---------------------------------------------------------------------------------------
// Cross-correlation

/// A stellar-like spectrum: smooth continuum with Gaussian absorption lines, at position x.
double spectrum_at(double x) {
  double v = 1000.0 * (1.0 + 0.3 * std::sin(x / 90.0));
  const double lines[][3] = {{40, 2.0, 0.3}, {77, 1.5, 0.2}, {130, 3.0, 0.4}, {171, 1.2, 0.25},
                             {220, 2.5, 0.35}, {268, 1.8, 0.15}, {301, 2.2, 0.3}, {350, 1.4, 0.2}};
  for (const auto& l : lines) v *= 1.0 - l[2] * std::exp(-0.5 * (x - l[0]) * (x - l[0]) / (l[1] * l[1]));
  return v;
}

TEST(CrossCorrelation, RecoversASubPixelShiftOfASpectrum) {
  const std::size_t n = 400;
  std::vector<float> reference(n), signal(n);
  for (std::size_t i = 0; i < n; ++i) reference[i] = static_cast<float>(spectrum_at(static_cast<double>(i)));
  std::vector<double> ref, sig;
  highpass(reference, 15, ref);
  ShiftScratch scratch;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  double worst[2] = {0, 0};
  for (double shift : {0.0, 0.13, -0.37, 0.5, 0.77, 1.71, -2.9, 4.45}) {
    for (double sigma : {0.0, 1.0}) {  // noise-free, and S/N ~ 1000 per pixel
      for (std::size_t i = 0; i < n; ++i)
        signal[i] = static_cast<float>(spectrum_at(static_cast<double>(i) - shift) + sigma * noise(rng));
      highpass(signal, 15, sig);
      const double measured = cross_correlation_shift(ref, sig, 5.0, scratch);
      EXPECT_NEAR(measured, shift, 0.02) << "shift " << shift << ", noise " << sigma;
      worst[sigma > 0] = std::max(worst[sigma > 0], std::fabs(measured - shift));
    }
  }
  std::printf("spectrum shifts: largest error %.4f px noise-free, %.4f px at S/N 1000\n", worst[0], worst[1]);
  // Beyond max_shift: no answer rather than a wrong one.
  for (std::size_t i = 0; i < n; ++i) signal[i] = static_cast<float>(spectrum_at(static_cast<double>(i) - 7.3));
  highpass(signal, 15, sig);
  EXPECT_TRUE(std::isnan(cross_correlation_shift(ref, sig, 5.0, scratch)));
}

TEST(CrossCorrelation, RecoversTheShiftOfANarrowProfile) {
  // A MIRI-like spatial profile (Gaussian σ = 1 px) on a flat background: the parabola alone
  // is biased towards whole pixels here; the refinement removes it.
  const std::size_t n = 40;
  auto profile = [](double x, double centre) {
    return 5.0 + 800.0 * std::exp(-0.5 * (x - centre) * (x - centre));
  };
  std::vector<float> reference(n), signal(n);
  for (std::size_t i = 0; i < n; ++i) reference[i] = static_cast<float>(profile(static_cast<double>(i), 20.0));
  std::vector<double> ref, sig;
  highpass(reference, 1, ref);
  ShiftScratch scratch;
  double worst = 0;
  for (double shift : {0.1, 0.25, -0.4, 0.5, 1.3, -2.6}) {
    for (std::size_t i = 0; i < n; ++i) signal[i] = static_cast<float>(profile(static_cast<double>(i), 20.0 + shift));
    highpass(signal, 1, sig);
    const double measured = cross_correlation_shift(ref, sig, 5.0, scratch);
    EXPECT_NEAR(measured, shift, 0.01) << "shift " << shift;
    worst = std::max(worst, std::fabs(measured - shift));
  }
  std::printf("narrow profile shifts: largest error %.4f px\n", worst);
}

TEST(ShiftSeries, LinearAndCubicInterpolation) {
  // in = i² on 0..5. Shift by 0.5: linear gives the mean of neighbours ((i² + (i+1)²)/2);
  // Keys' cubic reproduces quadratics exactly inside: (i + 0.5)².
  const std::vector<float> in = {0, 1, 4, 9, 16, 25};
  std::vector<float> out(6);
  shift_series(in, 0.5, Interpolation::linear, out);
  EXPECT_FLOAT_EQ(out[0], 0.5f);
  EXPECT_FLOAT_EQ(out[2], 6.5f);
  EXPECT_TRUE(std::isnan(out[5]));  // 5.5 is outside
  shift_series(in, 0.5, Interpolation::cubic, out);
  EXPECT_FLOAT_EQ(out[1], 2.25f);
  EXPECT_FLOAT_EQ(out[2], 6.25f);
  EXPECT_FLOAT_EQ(out[3], 12.25f);
  shift_series(in, -1.0, Interpolation::linear, out);  // whole pixels: a plain move
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_FLOAT_EQ(out[1], 0.0f);
  EXPECT_FLOAT_EQ(out[5], 16.0f);
}

// ---------------------------------------------------------------------------------------
// align_spectra: accuracy and partition invariance

struct AlignScene {
  std::size_t nt = 10, n_wave = 360, n_spatial = 40;
  spectra::Dispersion dispersion = spectra::Dispersion::x;
  // Truth: shifts with median 0 (the time-median reference then sits at zero shift).
  double wave_shift(std::size_t t) const { return 0.4 * (static_cast<double>(t % 5) - 2.0); }
  double spatial_shift(std::size_t t) const { return 0.3 * (static_cast<double>((t * 3) % 5) - 2.0); }
  CubeShape shape() const {
    return dispersion == spectra::Dispersion::x ? CubeShape{nt, n_spatial, n_wave} : CubeShape{nt, n_wave, n_spatial};
  }
  double flux(std::size_t t, double wave) const { return spectrum_at(wave - wave_shift(t)); }
  void fill(std::size_t t, std::span<float> data) const {
    const CubeShape s = shape();
    auto view = spectra::dispersed(data.data(), s.ny, s.nx, dispersion);
    for (std::size_t w = 0; w < n_wave; ++w)
      for (std::size_t k = 0; k < n_spatial; ++k) {
        const double d = static_cast<double>(k) - 20.0 - spatial_shift(t);
        view(w, k) = static_cast<float>(flux(t, static_cast<double>(w)) * std::exp(-0.5 * d * d / 4.0) / 5.0 + 2.0);
      }
  }
};

std::vector<Dataset> align_ranks(const AlignScene& scene, int nranks) {
  auto ranks = tessera::testing::make_ranks(scene.shape(), nranks, [&](std::size_t t, std::span<float> data,
                                                              std::span<std::uint32_t>) { scene.fill(t, data); });
  for (auto& d : ranks) {
    Image flux{{"flux", "electron/s", "spectrum"}, "time", "wavelength", scene.nt, scene.n_wave, {}};
    Image error{{"flux_error", "electron/s", "error"}, "time", "wavelength", scene.nt, scene.n_wave, {}};
    for (std::size_t t = 0; t < scene.nt; ++t)
      for (std::size_t w = 0; w < scene.n_wave; ++w) {
        // The trace covers wavelengths 5..354 only.
        const bool traced = w >= 5 && w < 355;
        flux.values.push_back(traced ? static_cast<float>(scene.flux(t, static_cast<double>(w))) : NAN);
        error.values.push_back(traced ? 10.0f + 0.01f * static_cast<float>(w) : NAN);
      }
    d.images()["flux"] = flux;
    d.images()["flux_error"] = error;
  }
  return ranks;
}

void check_alignment(spectra::Dispersion dispersion) {
  AlignScene scene;
  scene.dispersion = dispersion;
  AlignSpectraParams params;
  params.dispersion_axis = dispersion == spectra::Dispersion::x ? "x" : "y";
  std::vector<std::vector<Dataset>> runs;
  for (int nranks : {1, 2, 3}) {
    runs.push_back(align_ranks(scene, nranks));
    tessera::testing::run_like_engine<AlignSpectra>(params, runs.back());
  }
  const Dataset& one = runs[0][0];
  EXPECT_EQ(one.images().count("align_profile"), 0u) << "the in-between profile image is erased";
  const auto& xs = one.frame_vectors().at("x_shift").values;
  const auto& ys = one.frame_vectors().at("y_shift").values;
  const bool along_x = dispersion == spectra::Dispersion::x;
  double before = 0, after = 0, worst_wave = 0, worst_spatial = 0;
  for (std::size_t t = 0; t < scene.nt; ++t) {
    const double wave = along_x ? xs[t] : ys[t], spatial = along_x ? ys[t] : xs[t];
    EXPECT_NEAR(wave, scene.wave_shift(t), 0.02) << "integration " << t;
    EXPECT_NEAR(spatial, scene.spatial_shift(t), 0.02) << "integration " << t;
    worst_wave = std::max(worst_wave, std::fabs(wave - scene.wave_shift(t)));
    worst_spatial = std::max(worst_spatial, std::fabs(spatial - scene.spatial_shift(t)));
  }
  std::printf("align_spectra: largest error %.4f px along the dispersion, %.4f px across\n", worst_wave, worst_spatial);
  // Re-aligned spectra agree with the unshifted one inside (linear interpolation smooths a
  // little: compare with the scatter before).
  const auto& flux = one.images().at("flux").values;
  for (std::size_t t = 0; t < scene.nt; ++t)
    for (std::size_t w = 12; w < 348; ++w) {
      const double truth = spectrum_at(static_cast<double>(w));
      before += std::pow(scene.flux(t, static_cast<double>(w)) - truth, 2);
      after += std::pow(flux[t * scene.n_wave + w] - truth, 2);
    }
  EXPECT_LT(after, 0.1 * before) << "squared differences from the unshifted spectrum";
  std::printf("re-aligned: sum of squared differences %.4g (before %.4g)\n", after, before);
  // The same on every rank count, exactly, and on every rank.
  for (const auto& run : runs)
    for (const auto& d : run) {
      EXPECT_EQ(d.frame_vectors().at("x_shift").values, xs);
      EXPECT_EQ(d.frame_vectors().at("y_shift").values, ys);
      EXPECT_EQ(d.images().at("flux").values.size(), flux.size());
      for (std::size_t i = 0; i < flux.size(); ++i)
        ASSERT_TRUE(d.images().at("flux").values[i] == flux[i] ||
                    (std::isnan(d.images().at("flux").values[i]) && std::isnan(flux[i])))
            << "flux value " << i;
    }
}

TEST(AlignSpectra, DispersionAlongXOnOneTwoAndThreeRanks) { check_alignment(spectra::Dispersion::x); }
TEST(AlignSpectra, DispersionAlongYOnOneTwoAndThreeRanks) { check_alignment(spectra::Dispersion::y); }

TEST(AlignSpectra, ClearErrors) {
  AlignScene scene;
  AlignSpectraParams params;
  params.dispersion_axis = "x";
  params.spatial_range = std::vector<std::int64_t>{10, 50};  // only 40 rows
  auto ranks = align_ranks(scene, 1);
  try {
    tessera::testing::run_like_engine<AlignSpectra>(params, ranks);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("spatial_range"), std::string::npos) << e.what();
  }
  params.spatial_range.reset();
  params.suffix = "_order2";
  auto more = align_ranks(scene, 1);
  try {
    tessera::testing::run_like_engine<AlignSpectra>(params, more);
    FAIL() << "expected an error";
  } catch (const StepError& e) {
    EXPECT_NE(std::string(e.what()).find("flux_order2"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// lightcurves: outlier replacement and the white light

TEST(WhiteLight, ReplacesAnInjected50SigmaBinAndNothingElse) {
  const std::size_t nt = 120, nw = 300;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<float> flux(nt * nw), error(nt * nw);
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t j = 0; j < nw; ++j) {
      // A smooth spectrum (features much wider than the 11-bin median filter) that dims by
      // 1% in integrations 50..69, photon noise with exact errors.
      const double level = 4000.0 * (1.0 + 0.5 * std::sin(static_cast<double>(j) / 60.0)) * (t >= 50 && t < 70 ? 0.99 : 1.0);
      const double sigma = std::sqrt(level);
      flux[t * nw + j] = static_cast<float>(level + sigma * noise(rng));
      error[t * nw + j] = static_cast<float>(sigma);
    }
  const std::size_t bad_t = 57, bad_j = 150;
  flux[bad_t * nw + bad_j] += 50.0f * error[bad_t * nw + bad_j];
  std::vector<std::size_t> candidates;
  for (std::size_t j = 0; j < nw; ++j) candidates.push_back(j);
  const std::vector<char> oot = event_mask({{0, 45}, {75, 120}}, nt, "test");
  const CorrectedSpectra c = replace_outlying_bins(flux, error, nt, nw, candidates, oot, 10.0, 11);
  ASSERT_EQ(c.columns.size(), nw);
  std::size_t total = 0;
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t k = 0; k < nw; ++k)
      if (c.replaced[t * nw + k]) {
        ++total;
        EXPECT_EQ(t, bad_t);
        EXPECT_EQ(k, bad_j);
      }
  EXPECT_EQ(total, 1u);
  EXPECT_EQ(c.replaced_count[bad_t], 1.0);
  // The replacement is the scaled, filtered out-of-event spectrum: within a few σ of truth.
  const double truth = 4000.0 * (1.0 + 0.5 * std::sin(150.0 / 60.0)) * 0.99;
  EXPECT_NEAR(c.flux[bad_t * nw + bad_j], truth, 3.0 * std::sqrt(truth));
  // White light: 1 out of event (median), 0.99 in the dip; errors in quadrature.
  std::vector<std::size_t> all(nw);
  for (std::size_t k = 0; k < nw; ++k) all[k] = k;
  const SummedCurve white = summed_curve(c, all, oot);
  std::vector<double> outside;
  for (std::size_t t = 0; t < nt; ++t)
    if (oot[t]) outside.push_back(white.value[t]);
  EXPECT_DOUBLE_EQ(nan_median(outside), 1.0);
  EXPECT_NEAR(white.value[60], 0.99, 5 * white.error[60]);
  EXPECT_NEAR(white.error[60], std::sqrt(4000.0 * 0.99 * nw) / (4000.0 * nw), 0.05 * white.error[60]);
}

TEST(MedianFilter, ReflectEdgesLikeScipy) {
  // scipy.ndimage.median_filter([5, 1, 4, 2, 8, 3], size=3) (mode 'reflect': 5 5 1 ... 8 3 3)
  // = [5, 4, 2, 4, 3, 3].
  const std::vector<float> in = {5, 1, 4, 2, 8, 3};
  std::vector<float> out(6), ext, window;
  median_filter_reflect(in, 3, out, ext, window);
  EXPECT_EQ(out, (std::vector<float>{5, 4, 2, 4, 3, 3}));
  // size 5: windows [1 5 5 1 4], [5 5 1 4 2], [5 1 4 2 8], [1 4 2 8 3], [4 2 8 3 3], [2 8 3 3 8].
  median_filter_reflect(in, 5, out, ext, window);
  EXPECT_EQ(out, (std::vector<float>{4, 4, 4, 3, 3, 3}));
}

TEST(EventMask, RangesAndErrors) {
  const std::vector<char> m = event_mask({{0, 2}, {4, 6}}, 6, "lightcurves: out_of_event");
  EXPECT_EQ(m, (std::vector<char>{1, 1, 0, 0, 1, 1}));
  for (const std::vector<std::vector<double>>& bad :
       {std::vector<std::vector<double>>{}, {{0, 7}}, {{3, 3}}, {{1.5, 4}}, {{0, 1, 2}}}) {
    try {
      event_mask(bad, 6, "lightcurves: out_of_event");
      FAIL() << "expected an error";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("out_of_event"), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------
// RMS vs bin size

TEST(RmsVsBinSize, HandCheckedGroups) {
  // Values 1..7 in one run: groups of 2 are (1,2) (3,4) (5,6), 7 left over; means 1.5, 3.5,
  // 5.5; population variance (4 + 0 + 4)/3. Groups of 3: (1,2,3) (4,5,6): means 2, 5: var 2.25.
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7}, e(7, 0.5);
  const std::vector<char> all(7, 1);
  const RmsCurve c = rms_vs_bin_size(v, e, all, 1, 4);
  ASSERT_EQ(c.bin_size, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_DOUBLE_EQ(c.rms[0], 2.0);  // population std of 1..7
  EXPECT_DOUBLE_EQ(c.rms[1], std::sqrt(8.0 / 3.0));
  EXPECT_DOUBLE_EQ(c.rms[2], 1.5);
  EXPECT_TRUE(std::isnan(c.rms[3]));  // one group of 4 only
  EXPECT_DOUBLE_EQ(c.expected[1], 2.0 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(c.predicted[3], 0.25);
  // Two runs (the event in between is left out): [1,2,3] and [10,11,12,13] by 2: (1,2),
  // (10,11), (12,13): means 1.5, 10.5, 12.5.
  const std::vector<double> w = {1, 2, 3, 99, 99, 10, 11, 12, 13};
  const std::vector<char> mask = {1, 1, 1, 0, 0, 1, 1, 1, 1};
  const RmsCurve d = rms_vs_bin_size(w, std::vector<double>(9, 1.0), mask, 2, 2);
  const double mean = (1.5 + 10.5 + 12.5) / 3;
  EXPECT_DOUBLE_EQ(d.rms[0], std::sqrt((std::pow(1.5 - mean, 2) + std::pow(10.5 - mean, 2) + std::pow(12.5 - mean, 2)) / 3));
}

TEST(RmsVsBinSize, WhiteNoiseFollowsOneOverRootN) {
  const std::size_t n = 100000;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0.0, 1e-3);
  std::vector<double> v(n), e(n, 1e-3);
  for (double& x : v) x = 1.0 + noise(rng);
  const RmsCurve c = rms_vs_bin_size(v, e, std::vector<char>(n, 1), 1, 29);
  for (std::size_t k = 0; k < c.bin_size.size(); ++k) {
    // ≥ 3448 groups: the RMS is known to ~1.2%.
    EXPECT_NEAR(c.rms[k] / c.predicted[k], 1.0, 0.05) << "bin size " << c.bin_size[k];
    EXPECT_NEAR(c.rms[k] / c.expected[k], 1.0, 0.05) << "bin size " << c.bin_size[k];
  }
}

// ---------------------------------------------------------------------------------------
// lightcurves + lc_diagnostics on synthetic spectra

struct Synthetic {
  std::size_t nt, nw;
  std::vector<float> flux, error, wavelength;
  std::vector<double> time;
};

/// Dataset with the spectra images and a time vector (1 rank; both steps are Reduce steps on
/// replicated images, identical on every rank by construction).
std::vector<Dataset> spectra_ranks(const Synthetic& s, const std::string& suffix = "") {
  auto ranks = tessera::testing::make_ranks({s.nt, 1, 4}, 1, [](std::size_t, std::span<float>, std::span<std::uint32_t>) {});
  Dataset& d = ranks[0];
  d.images()["flux" + suffix] = Image{{"flux" + suffix, "electron/s", ""}, "time", "wavelength" + suffix, s.nt, s.nw, s.flux};
  d.images()["flux_error" + suffix] =
      Image{{"flux_error" + suffix, "electron/s", ""}, "time", "wavelength" + suffix, s.nt, s.nw, s.error};
  d.images()["wavelength" + suffix] =
      Image{{"wavelength" + suffix, "micron", ""}, "", "wavelength" + suffix, 1, s.nw, s.wavelength};
  d.frame_vectors()["int_mid_bjd"] = FrameVector{{"int_mid_bjd", "d", ""}, s.time, false};
  return ranks;
}

TEST(Lightcurves, BoxTransitDepthsWithinTheirErrors) {
  // 600 integrations of 200 wavelengths (1.0–2.0 µm, decreasing along the columns like SOSS,
  // the first and last 5 columns outside the trace), photon noise with exact errors, a box
  // transit in integrations [220, 380) whose depth varies with wavelength.
  Synthetic s{600, 200, {}, {}, {}, {}};
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> level(s.nw), depth(s.nw);
  for (std::size_t j = 0; j < s.nw; ++j) {
    const bool traced = j >= 5 && j < 195;
    s.wavelength.push_back(traced ? static_cast<float>(2.0 - static_cast<double>(j) / 200.0) : NAN);
    level[j] = 20000.0 * (1.2 + std::sin(static_cast<double>(j) / 50.0));
    depth[j] = 0.01 + 0.002 * std::sin(static_cast<double>(j) / 30.0);
  }
  for (std::size_t t = 0; t < s.nt; ++t) {
    s.time.push_back(60000.0 + static_cast<double>(t) * 60.0 / 86400.0);
    const bool in = t >= 220 && t < 380;
    for (std::size_t j = 0; j < s.nw; ++j) {
      const double f = level[j] * (in ? 1.0 - depth[j] : 1.0);
      s.flux.push_back(static_cast<float>(f + std::sqrt(f) * noise(rng)));
      s.error.push_back(static_cast<float>(std::sqrt(f)));
    }
  }
  auto ranks = spectra_ranks(s);
  LightcurvesParams lp;
  lp.out_of_event = {{0, 200}, {400, 600}};
  lp.bins = std::vector<std::vector<double>>{{1.05, 1.25}, {1.25, 1.5}, {1.5, 1.75}, {1.75, 1.98}};
  tessera::testing::run_like_engine<Lightcurves>(lp, ranks);
  LcDiagnosticsParams dp;
  dp.out_of_event = lp.out_of_event;
  dp.in_event = std::vector<std::vector<double>>{{230, 370}};
  tessera::testing::TempDir plots("lightcurves_test");
  tessera::testing::run_like_engine<LcDiagnostics>(dp, ranks, plots.path(), 1);
  const Dataset& d = ranks[0];

  // Per wavelength: pulls of a unit normal.
  const auto& dv = d.images().at("depth").values;
  const auto& de = d.images().at("depth_error").values;
  double sum = 0, squares = 0, n = 0;
  for (std::size_t j = 0; j < s.nw; ++j) {
    if (j < 5 || j >= 195) {
      EXPECT_TRUE(std::isnan(dv[j]));
      continue;
    }
    const double pull = (dv[j] - depth[j]) / de[j];
    EXPECT_LT(std::fabs(pull), 4.5) << "column " << j;
    sum += pull;
    squares += pull * pull;
    n += 1;
  }
  const double mean = sum / n, spread = std::sqrt(squares / n - mean * mean);
  EXPECT_LT(std::fabs(mean), 0.3);
  EXPECT_NEAR(spread, 1.0, 0.2);

  // White light and bins: the flux-weighted depth.
  auto weighted = [&](double lo, double hi) {
    double num = 0, den = 0;
    for (std::size_t j = 5; j < 195; ++j)
      if (s.wavelength[j] >= lo && s.wavelength[j] < hi) {
        num += level[j] * depth[j];
        den += level[j];
      }
    return num / den;
  };
  const double white = std::get<double>(d.attributes().at("white_light_depth"));
  const double white_error = std::get<double>(d.attributes().at("white_light_depth_error"));
  EXPECT_LT(std::fabs(white - weighted(0, 10)) / white_error, 3.0)
      << "white-light depth " << white << " +- " << white_error << ", truth " << weighted(0, 10);
  EXPECT_LT(white_error, 1e-4);
  const auto& bd = d.images().at("binned_depth").values;
  const auto& be = d.images().at("binned_depth_error").values;
  ASSERT_EQ(bd.size(), 4u);
  for (std::size_t b = 0; b < 4; ++b) {
    const auto& bins = *lp.bins;
    EXPECT_LT(std::fabs(bd[b] - weighted(bins[b][0], bins[b][1])) / be[b], 3.5) << "bin " << b;
  }
  EXPECT_FLOAT_EQ(d.images().at("bin_wavelength").values[1], 1.375f);
  EXPECT_EQ(d.images().at("lc").nx, s.nw);
  EXPECT_EQ(d.images().at("lc").ny, s.nt);
  // No bin was replaced in this clean data.
  for (double r : d.frame_vectors().at("white_light_replaced").values) EXPECT_EQ(r, 0.0);
  for (const char* png : {"lightcurve_image.png", "white_light.png", "sensitivity.png", "rms_vs_bin.png",
                          "periodogram.png"})
    EXPECT_GT(std::filesystem::file_size(plots.path() / png), 5000u) << png;
  if (const char* keep = std::getenv("LIGHTCURVES_TEST_PLOTS"))
    for (const auto& entry : std::filesystem::directory_iterator(plots.path()))
      std::filesystem::copy_file(entry.path(), std::filesystem::path(keep) / entry.path().filename(),
                                 std::filesystem::copy_options::overwrite_existing);
}

TEST(Lightcurves, SensitivityIsOneForWhiteNoiseWithExactErrors) {
  // 2000 integrations × 500 wavelengths of white noise; the errors are exact in the first 250
  // columns and half the truth in the others (an under-estimate the sensitivity must show).
  Synthetic s{2000, 500, {}, {}, {}, {}};
  std::mt19937_64 rng(9);
  std::normal_distribution<double> noise(0.0, 1.0);
  for (std::size_t j = 0; j < s.nw; ++j) s.wavelength.push_back(static_cast<float>(0.6 + 0.004 * static_cast<double>(j)));
  s.flux.resize(s.nt * s.nw);
  s.error.resize(s.nt * s.nw);
  for (std::size_t t = 0; t < s.nt; ++t) {
    s.time.push_back(60000.0 + static_cast<double>(t) * 30.0 / 86400.0);
    for (std::size_t j = 0; j < s.nw; ++j) {
      const double f = 5000.0 + 10.0 * static_cast<double>(j);
      s.flux[t * s.nw + j] = static_cast<float>(f + std::sqrt(f) * noise(rng));
      s.error[t * s.nw + j] = static_cast<float>(std::sqrt(f) * (j < 250 ? 1.0 : 0.5));
    }
  }
  auto ranks = spectra_ranks(s, "_o1");
  LightcurvesParams lp;
  lp.suffix = "_o1";
  lp.out_of_event = {{0, 2000}};
  lp.bin_width = 0.5;  // 0.6–2.596 µm: 4 bins
  tessera::testing::run_like_engine<Lightcurves>(lp, ranks);
  LcDiagnosticsParams dp;
  dp.suffix = "_o1";
  dp.out_of_event = lp.out_of_event;
  tessera::testing::run_like_engine<LcDiagnostics>(dp, ranks);
  const Dataset& d = ranks[0];
  EXPECT_EQ(d.images().at("bin_wavelength_o1").nx, 4u);
  EXPECT_FLOAT_EQ(d.images().at("bin_hi_o1").values[3], 2.6f);
  const auto& sens = d.images().at("sensitivity_o1").values;
  const auto& smooth = d.images().at("sensitivity_smoothed_o1").values;
  for (std::size_t j = 0; j < 230; ++j) {
    EXPECT_NEAR(smooth[j], 1.0, 0.05) << "column " << j;
    EXPECT_NEAR(sens[j], 1.0, 0.15) << "column " << j;  // one column: ±2.2% (1σ) from 2000 points
  }
  for (std::size_t j = 270; j < 500; ++j) EXPECT_NEAR(smooth[j], 2.0, 0.1) << "column " << j;
  // The white light of white noise: RMS within its statistics of the white-noise line (its
  // errors are half exact and half halved, so only the measured 1/√N line is checked).
  const auto& rms = d.images().at("rms_o1").values;
  const auto& expected = d.images().at("rms_expected_o1").values;
  ASSERT_EQ(rms.size(), 29u);
  EXPECT_FLOAT_EQ(d.images().at("bin_size_o1").values[28], 29.0f);
  for (std::size_t k = 0; k < rms.size(); ++k) EXPECT_NEAR(rms[k] / expected[k], 1.0, 0.3) << "bin size " << k + 1;
  // Periodogram: 1000 frequencies from 1/T to Nyquist (1/60 Hz), flat for white noise: mean
  // power of white noise of variance σ² in psd normalisation is σ² (each frequency is a
  // χ²₂/2·σ² variable), with σ the white-light scatter.
  const auto& f = d.images().at("periodogram_frequency_o1").values;
  const auto& p = d.images().at("periodogram_power_o1").values;
  ASSERT_EQ(f.size(), 1000u);
  EXPECT_NEAR(f.front(), 1.0 / (1999 * 30.0), 1e-9);
  EXPECT_NEAR(f.back(), 1.0 / 60.0, 1e-7);
  double mean_power = 0;
  for (float v : p) mean_power += v;
  mean_power /= static_cast<double>(p.size());
  const double sigma2 = static_cast<double>(rms[0]) * rms[0];
  EXPECT_NEAR(mean_power / sigma2, 1.0, 0.15);
}

TEST(LcDiagnostics, OverlappingEventRangesAreAClearError) {
  Synthetic s{10, 3, std::vector<float>(30, 1.0f), std::vector<float>(30, 0.1f), {1.0f, 1.1f, 1.2f},
              std::vector<double>(10, 0.0)};
  for (std::size_t t = 0; t < 10; ++t) s.time[t] = 60000 + 0.001 * static_cast<double>(t);
  auto ranks = spectra_ranks(s);
  LightcurvesParams lp;
  lp.out_of_event = {{0, 4}, {7, 10}};
  tessera::testing::run_like_engine<Lightcurves>(lp, ranks);
  LcDiagnosticsParams dp;
  dp.out_of_event = lp.out_of_event;
  dp.in_event = std::vector<std::vector<double>>{{3, 7}};
  try {
    tessera::testing::run_like_engine<LcDiagnostics>(dp, ranks);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("in_event: integration 3"), std::string::npos) << e.what();
  }
}

TEST(Lightcurves, MissingOrBadOutOfEventIsAClearError) {
  Synthetic s{10, 3, std::vector<float>(30, 1.0f), std::vector<float>(30, 0.1f), {1.0f, 1.1f, 1.2f},
              std::vector<double>(10, 0.0)};
  auto ranks = spectra_ranks(s);
  LightcurvesParams lp;  // out_of_event missing
  EXPECT_THROW(tessera::testing::run_like_engine<Lightcurves>(lp, ranks), ConfigError);
  lp.out_of_event = {{0, 11}};
  try {
    tessera::testing::run_like_engine<Lightcurves>(lp, ranks);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("out_of_event"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("<= 10"), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {

// A column that is always 30% low (a bad pixel in the aperture) is an outlier against the
// filtered spectrum in every integration (the notebook's rule), but not against the
// out-of-event median spectrum itself, which still catches a transient 50σ hit.
TEST(WhiteLight, PermanentFeaturesAreNotOutliersAgainstTheMedianSpectrum) {
  using namespace tessera::steps;
  const std::size_t nt = 80, nw = 200;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<float> flux(nt * nw), error(nt * nw);
  for (std::size_t t = 0; t < nt; ++t)
    for (std::size_t j = 0; j < nw; ++j) {
      const double level = 5000.0 * (j == 77 ? 0.7 : 1.0);
      flux[t * nw + j] = static_cast<float>(level + std::sqrt(level) * noise(rng));
      error[t * nw + j] = static_cast<float>(std::sqrt(level));
    }
  flux[30 * nw + 120] += 50.0f * error[30 * nw + 120];
  std::vector<std::size_t> candidates(nw);
  for (std::size_t j = 0; j < nw; ++j) candidates[j] = j;
  const std::vector<char> oot = event_mask({{0, 80}}, nt, "test");
  const CorrectedSpectra notebook = replace_outlying_bins(flux, error, nt, nw, candidates, oot, 10.0, 11, true);
  const CorrectedSpectra ours = replace_outlying_bins(flux, error, nt, nw, candidates, oot, 10.0, 11, false);
  std::size_t notebook_hits = 0, ours_hits = 0;
  for (std::size_t t = 0; t < nt; ++t) {
    notebook_hits += notebook.replaced[t * nw + 77];
    ours_hits += ours.replaced[t * nw + 77];
  }
  EXPECT_EQ(notebook_hits, nt);
  EXPECT_EQ(ours_hits, 0u);
  EXPECT_TRUE(notebook.replaced[30 * nw + 120]);
  EXPECT_TRUE(ours.replaced[30 * nw + 120]);
  double total = 0;
  for (double n : ours.replaced_count) total += n;
  EXPECT_EQ(total, 1.0);
}

}  // namespace
