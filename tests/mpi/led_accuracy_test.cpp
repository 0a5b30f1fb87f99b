// led on a simulated visit, scored against the simulator's truth: hot pixels found (recall),
// and pixels wrongly replaced (false positives) overall and on the traces and 0th order,
// whose sharp edges a one-dimensional or noise-blind detector eats.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "steps/cleaning/led.hpp"
#include "steps/common/dq_bits.hpp"
#include "steps/inputs/hst_flt_dir.hpp"
#include "steps/simulate/uvis_simulator.hpp"
#include "support/temp_dir.hpp"
#include "tessera/io/hdf5_file.hpp"
#include "tessera/registry.hpp"
#include "tessera/runner.hpp"
#include "tessera/workflow.hpp"

namespace {

using namespace tessera;

constexpr std::size_t kFrames = 30, kNy = 256, kNx = 512;

/// Only what this test runs, so that it does not depend on the other steps being built.
const Registry& registry() {
  static const Registry r = [] {
    Registry reg;
    reg.add_input(describe_input<HstFltDir>());
    reg.add_step(describe_step<steps::Led>());
    return reg;
  }();
  return r;
}

double attribute(const h5::File& file, const std::string& name) {
  const AttrValue v = file.read_attribute(name);
  if (const double* d = std::get_if<double>(&v)) return *d;
  return static_cast<double>(std::get<std::int64_t>(v));
}

struct Scores {
  double recall_all = 0, recall_detectable = 0, fpr = 0, fpr_trace = 0, cr_recall = 0, seconds_per_frame = 0;
  double replacement_rms = 0;  ///< rms of (replaced value - local level) / noise, hot pixels off the traces
  std::size_t hot = 0, detectable = 0, trace_pixels = 0, false_positives = 0, trace_false_positives = 0;
};

/// What the truth says about the visit, prepared once.
struct Truth {
  std::vector<std::int64_t> hot_y, hot_x;
  std::vector<double> hot_excess, hot_noise, hot_level;
  std::vector<std::uint8_t> is_hot, is_trace;
  std::set<std::size_t> cosmic;  // (frame * ny + y) * nx + x
  double mean_sky = 0;
};

Scores score(const std::string& sim, const std::string& output, const Truth& truth, double seconds) {
  h5::File out = h5::File::open(output);
  const std::vector<std::uint32_t> dq = out.read_uints("dq");
  const std::vector<float> data = out.read_floats("data");
  const std::size_t frame_size = kNy * kNx;
  Scores s;
  s.seconds_per_frame = seconds / kFrames;
  // Hot pixels: every (frame, hot pixel) pair is one chance to find it.
  std::size_t found_all = 0, found_detectable = 0, replaced_off_trace = 0;
  double sum_square_error = 0;
  for (std::size_t h = 0; h < truth.hot_y.size(); ++h) {
    const std::size_t pixel = static_cast<std::size_t>(truth.hot_y[h]) * kNx + static_cast<std::size_t>(truth.hot_x[h]);
    const bool detectable = truth.hot_excess[h] >= 5 * truth.hot_noise[h];
    for (std::size_t t = 0; t < kFrames; ++t) {
      const bool found = (dq[t * frame_size + pixel] & dq::led_outlier) != 0;
      found_all += found;
      if (found && truth.hot_level[h] < 5 * truth.mean_sky) {
        const double error = (data[t * frame_size + pixel] - truth.hot_level[h]) / truth.hot_noise[h];
        sum_square_error += error * error;
        ++replaced_off_trace;
      }
      s.hot += 1;
      if (detectable) {
        found_detectable += found;
        s.detectable += 1;
      }
    }
  }
  s.recall_all = static_cast<double>(found_all) / static_cast<double>(s.hot);
  s.replacement_rms = std::sqrt(sum_square_error / static_cast<double>(std::max<std::size_t>(replaced_off_trace, 1)));
  s.recall_detectable = static_cast<double>(found_detectable) / static_cast<double>(s.detectable);
  // False positives: replaced pixels that are neither hot nor hit by a cosmic ray in that frame.
  std::size_t clean = 0, cr_found = 0;
  for (std::size_t t = 0; t < kFrames; ++t)
    for (std::size_t p = 0; p < frame_size; ++p) {
      if (truth.is_hot[p]) continue;
      const std::size_t i = t * frame_size + p;
      const bool flagged = (dq[i] & dq::led_outlier) != 0;
      if (truth.cosmic.count(i)) {
        cr_found += flagged;
        continue;
      }
      ++clean;
      s.false_positives += flagged;
      if (truth.is_trace[p]) {
        ++s.trace_pixels;
        s.trace_false_positives += flagged;
      }
    }
  s.fpr = static_cast<double>(s.false_positives) / static_cast<double>(clean);
  s.fpr_trace = static_cast<double>(s.trace_false_positives) / static_cast<double>(s.trace_pixels);
  s.cr_recall = static_cast<double>(cr_found) / static_cast<double>(truth.cosmic.size());
  (void)sim;
  return s;
}

Truth read_truth(const std::string& sim, const std::string& raw_output) {
  h5::File file = h5::File::open(sim + "/truth.h5");
  Truth truth;
  truth.hot_y = file.read_ints("hot_y");
  truth.hot_x = file.read_ints("hot_x");
  const std::vector<double> rate = file.read_doubles("hot_rate");
  const double exptime = attribute(file, "exptime"), read_noise = attribute(file, "read_noise");
  const std::vector<double> sky = file.read_doubles("background");
  const std::vector<double> sky_image = file.read_doubles("background_image");
  double mean_sky = 0;
  for (double v : sky) mean_sky += v / static_cast<double>(sky.size());
  truth.mean_sky = mean_sky;

  // The median frame of the uncleaned visit: the scene (sky, traces, 0th order, hot pixels).
  h5::File raw = h5::File::open(raw_output);
  const std::vector<float> data = raw.read_floats("data");
  const std::size_t frame_size = kNy * kNx;
  std::vector<double> median_frame(frame_size);
  std::vector<float> series(kFrames);
  for (std::size_t p = 0; p < frame_size; ++p) {
    for (std::size_t t = 0; t < kFrames; ++t) series[t] = data[t * frame_size + p];
    std::nth_element(series.begin(), series.begin() + kFrames / 2, series.end());
    median_frame[p] = series[kFrames / 2];
  }
  truth.is_hot.assign(frame_size, 0);
  for (std::size_t h = 0; h < truth.hot_y.size(); ++h)
    truth.is_hot[static_cast<std::size_t>(truth.hot_y[h]) * kNx + static_cast<std::size_t>(truth.hot_x[h])] = 1;
  // Trace (and 0th-order) pixels: stellar light above 5x the mean sky.
  truth.is_trace.assign(frame_size, 0);
  for (std::size_t p = 0; p < frame_size; ++p)
    truth.is_trace[p] = !truth.is_hot[p] && median_frame[p] - sky_image[p] > 5 * mean_sky;
  // Each hot pixel's excess and the noise of what surrounds it (its 8 neighbours' median level).
  for (std::size_t h = 0; h < truth.hot_y.size(); ++h) {
    const long y = truth.hot_y[h], x = truth.hot_x[h];
    std::vector<double> around;
    for (long dy = -1; dy <= 1; ++dy)
      for (long dx = -1; dx <= 1; ++dx) {
        const long yy = y + dy, xx = x + dx;
        if ((dy || dx) && yy >= 0 && xx >= 0 && yy < static_cast<long>(kNy) && xx < static_cast<long>(kNx))
          around.push_back(median_frame[static_cast<std::size_t>(yy) * kNx + static_cast<std::size_t>(xx)]);
      }
    std::sort(around.begin(), around.end());
    const double level = around[around.size() / 2];
    truth.hot_excess.push_back(rate[h] * exptime);
    truth.hot_noise.push_back(std::sqrt(std::max(level, 0.0) + read_noise * read_noise));
    truth.hot_level.push_back(level);
  }
  const std::vector<std::int64_t> cr_frame = file.read_ints("cr_frame"), cr_y = file.read_ints("cr_y"),
                                  cr_x = file.read_ints("cr_x");
  for (std::size_t k = 0; k < cr_frame.size(); ++k)
    truth.cosmic.insert((static_cast<std::size_t>(cr_frame[k]) * kNy + static_cast<std::size_t>(cr_y[k])) * kNx +
                        static_cast<std::size_t>(cr_x[k]));
  return truth;
}

/// Runs [input] -> steps -> output; returns the seconds spent in the steps.
double run(const std::string& sim, const std::string& output, const std::string& steps) {
  const std::string text = "[workflow]\nname='led_accuracy'\n[input]\nkind='hst_flt_dir'\npath='" + sim +
                           "'\n[output]\npath='" + output + "'\n" + steps;
  Workflow wf = parse_workflow(text, "led_accuracy.toml", {}, registry());
  RunSummary summary = run_workflow(wf, MPI_COMM_WORLD, RunOptions{Verbosity::Quiet});
  double seconds = 0;
  for (const auto& stage : summary.stages)
    if (stage.label == "led") seconds += stage.seconds;
  return seconds;
}

void print(const char* label, const Scores& s) {
  std::printf(
      "led accuracy [%s]: hot-pixel recall %.3f of all %zu (frame, pixel) pairs, %.3f of the %zu detectable (excess >= "
      "5 sigma); false-positive rate %.2e overall (%zu), %.2e on %zu trace/0th-order samples (%zu); cosmic-ray pixels "
      "found %.3f; hot pixels off the traces replaced to %.2f sigma rms; %.4f s per %zux%zu frame\n",
      label, s.recall_all, s.hot, s.recall_detectable, s.detectable, s.fpr, s.false_positives, s.fpr_trace,
      s.trace_pixels, s.trace_false_positives, s.cr_recall, s.replacement_rms, s.seconds_per_frame, kNy, kNx);
}

TEST(LedAccuracy, FindsHotPixelsAndKeepsTheTraces) {
  tessera::testing::TempDir dir("led_accuracy");
  const std::string sim = dir.str() + "/sim";
  sim::UvisSimOptions o;
  o.out_dir = sim;
  o.frames = kFrames;
  o.ny = kNy;
  o.nx = kNx;
  o.seed = 17;
  o.hot_fraction = 2e-3;  // about 260 hot pixels, 7,900 chances to find one
  sim::simulate_uvis(o);

  const std::string raw = dir.str() + "/raw.h5";
  run(sim, raw, "");
  const Truth truth = read_truth(sim, raw);
  std::size_t trace = 0;
  for (auto v : truth.is_trace) trace += v;
  ASSERT_GT(trace, 3000u) << "the simulated scene should have traces";

  // The template's tutorial value (astroscrappy's sigclip is 4.5).
  const std::string at5 = dir.str() + "/led5.h5";
  const double seconds5 = run(sim, at5, "[[step]]\nid='led'\nuses='led'\nled_threshold=5.0\n");
  const Scores s5 = score(sim, at5, truth, seconds5);
  print("led_threshold 5", s5);
  EXPECT_GE(s5.recall_detectable, 0.9);
  EXPECT_GE(s5.recall_all, 0.85);
  EXPECT_LE(s5.fpr_trace, 5e-4);
  EXPECT_LE(s5.fpr, 5e-4);
  EXPECT_GE(s5.cr_recall, 0.5);
  EXPECT_LE(s5.replacement_rms, 1.5);  // the replaced values are the sky around them

  // The defaults (led_threshold 10): fewer faint hot pixels, still clean on the traces.
  const std::string at10 = dir.str() + "/led10.h5";
  const double seconds10 = run(sim, at10, "[[step]]\nid='led'\nuses='led'\n");
  const Scores s10 = score(sim, at10, truth, seconds10);
  print("defaults", s10);
  EXPECT_LE(s10.fpr_trace, 5e-4);
  EXPECT_LE(s10.fpr, s5.fpr);
  EXPECT_GE(s10.recall_all, 0.7);
  EXPECT_LE(s10.recall_all, s5.recall_all);

  // Without the fine-structure model the traces' and 0th order's sharp cores are taken for
  // outliers: the model is what keeps them.
  const std::string bare = dir.str() + "/bare.h5";
  const Scores sb = score(sim, bare, truth,
                          run(sim, bare, "[[step]]\nid='led'\nuses='led'\nled_threshold=5.0\nfine_structure=false\n"));
  print("led_threshold 5, no fine structure", sb);
  EXPECT_GT(sb.trace_false_positives, s5.trace_false_positives);
}

}  // namespace
