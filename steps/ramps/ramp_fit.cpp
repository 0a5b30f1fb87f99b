// ramp_fit: JWST count rates per integration. The algorithm follows the JWST pipeline's
// ramp_fit step (stcal ordinary least squares, docs "Slope and Variance Calculations"):
// segments between jumps, optimal weighting of Fixsen et al. 2000 (PASP 112, 1350) and
// Regan 2007 (JWST-STScI-001212), per-segment read-noise and Poisson variances, segments
// combined by inverse variance. What differs from the pipeline, and why, is in
// docs/jwst-ramps.md ("## ramp_fit").
//
// Speed: an integration is processed in blocks of pixels that are contiguous in every group
// image. Pass 1 ORs the group flags of the block over the groups; pixels with no flag at all
// (nearly all of them) are one segment of ng groups whose least-squares coefficients depend
// only on the Fixsen exponent, so pass 2 streams over the group images once more and
// accumulates slope += c[g][P(pixel)] * read per pixel. The few flagged pixels are gathered
// from the same, cache-resident, block and fitted one by one by fit_ramp.
#include "steps/ramps/ramp_fit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <variant>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {

namespace {

constexpr double kPowers[6] = {0.0, 0.4, 1.0, 3.0, 6.0, 10.0};
constexpr int kPowerCount = 6;
constexpr std::uint8_t kJump = jwst::dq::group(jwst::dq::jump_det);
constexpr std::uint8_t kSaturated = jwst::dq::group(jwst::dq::saturated);
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// Per-pixel constants: gain (electron/DN) and the read noise of one group (DN).
struct PixelNoise {
  double gain = 0;
  double sigma = 0;
  double removed_rate = 0;  ///< DN/s taken out before the fit (sky_rate): still Poisson noise
};

RampRate unusable(std::uint32_t bits) {
  RampRate r;
  r.rate = r.err = r.var_poisson = r.var_rnoise = kNaN;
  r.dq = bits | jwst::dq::do_not_use;
  r.usable = false;
  return r;
}

/// Rate from the single usable group g (no segment of two or more groups): the read divided
/// by its time since reset (the pipeline: by the group time, the same for group 0 when
/// nframes = 1). Variances: the pipeline's with n set to 2, or the read's own.
RampRate one_group(double read, std::size_t g, const PixelNoise& px, const RampTiming& timing,
                   const RampFitOptions& options, std::uint32_t bits) {
  const double t = timing.group_time(g);
  const double rate = read / t;
  const double poisson_rate = rate + px.removed_rate;
  const double positive = poisson_rate > 0 ? poisson_rate : 0.0;
  double var_r, var_p;
  if (options.propagated) {
    var_r = px.sigma * px.sigma / (t * t);
    var_p = positive / (px.gain * t);
  } else {
    var_r = 12.0 * px.sigma * px.sigma / (6.0 * timing.tgroup * timing.tgroup);
    var_p = positive / (timing.tgroup * px.gain);
  }
  RampRate r;
  r.rate = static_cast<float>(rate);
  r.var_rnoise = static_cast<float>(var_r);
  r.var_poisson = static_cast<float>(var_p);
  r.err = static_cast<float>(std::sqrt(var_r + var_p));
  r.dq = bits;
  r.usable = true;
  return r;
}

/// Combines the fitted segments (all of two or more groups) of one integration.
/// Poisson variances use one rate estimate for all segments, the total rise over the total
/// time of the segments (the pipeline uses the median first difference over all
/// integrations, which a frame-access step cannot see): weights then do not follow each
/// segment's own noise, which would bias the combination.
RampRate combine(std::span<const RampFitScratch::Segment> segments, const PixelNoise& px,
                 const RampTiming& timing, const RampFitOptions& options, std::uint32_t bits) {
  const double tg = timing.tgroup;
  double rise = 0, steps = 0;
  for (const auto& s : segments) {
    rise += s.last_minus_first;
    steps += static_cast<double>(s.n - 1);
  }
  const double rate_estimate = rise / (tg * steps) + px.removed_rate;
  const double positive = rate_estimate > 0 ? rate_estimate : 0.0;
  const double sigma2 = px.sigma * px.sigma;

  double inv_r = 0, inv_p = 0, inv_c = 0, weighted = 0;
  double zero_sum = 0;  // segments of zero total variance (no read noise, no signal) share the rate
  std::size_t zero_count = 0;
  for (const auto& s : segments) {
    double var_r, var_p;
    if (options.propagated) {
      var_r = sigma2 * s.sum_c2;
      var_p = positive * tg / px.gain * s.sum_cum2;
    } else {
      const double n = static_cast<double>(s.n);
      var_r = 12.0 * sigma2 / ((n * n * n - n) * tg * tg);
      var_p = positive / (tg * px.gain * (n - 1.0));
    }
    inv_r += 1.0 / var_r;  // 1/0 = inf: the combined variance is then 0
    inv_p += 1.0 / var_p;
    const double var_c = var_r + var_p;
    if (var_c > 0) {
      inv_c += 1.0 / var_c;
      weighted += s.slope / var_c;
    } else {
      zero_sum += s.slope;
      ++zero_count;
    }
  }
  RampRate r;
  if (segments.size() == 1 && !options.propagated) {
    // One segment: its own slope and variances (what the sums below give, without the
    // round trips through reciprocals); the inline path of RampFit::run computes the same.
    const auto& s = segments.front();
    const double n = static_cast<double>(s.n);
    const double var_r = sigma2 * (12.0 / ((n * n * n - n) * tg * tg));
    const double var_p = positive * (1.0 / (tg * (n - 1.0))) / px.gain;
    r.rate = static_cast<float>(s.slope);
    r.err = static_cast<float>(std::sqrt(var_r + var_p));
    r.var_rnoise = static_cast<float>(var_r);
    r.var_poisson = static_cast<float>(var_p);
    r.dq = bits;
    r.usable = true;
    return r;
  }
  if (zero_count > 0) {
    r.rate = static_cast<float>(zero_sum / static_cast<double>(zero_count));
    r.err = 0;
  } else {
    r.rate = static_cast<float>(weighted / inv_c);
    // The pipeline's rateints error: the variance of the inverse-variance weighted mean,
    // sqrt(var_rnoise + var_poisson) when there is one segment.
    r.err = static_cast<float>(std::sqrt(1.0 / inv_c));
  }
  r.var_rnoise = static_cast<float>(1.0 / inv_r);
  r.var_poisson = static_cast<float>(1.0 / inv_p);
  r.dq = bits;
  r.usable = true;
  return r;
}

/// The segments of one pixel's ramp, each fitted; returns the bits for the pixel dq.
/// Usable groups have no flag, or exactly JUMP_DET (which starts a new segment); any other
/// flag ends the segment; SATURATED ends the ramp. A non-finite read counts as unusable.
RampRate fit_series(const float* y, const std::uint8_t* f, std::size_t ng, const PixelNoise& px,
                    const RampTiming& timing, const RampFitOptions& options, RampFitScratch& scratch) {
  std::uint32_t bits = 0;
  for (std::size_t g = 0; g < ng; ++g) {
    if (f[g] & kSaturated) bits |= jwst::dq::saturated;
    if (f[g] & kJump) bits |= jwst::dq::jump_det;
  }
  auto& segments = scratch.segments;
  segments.clear();
  constexpr std::size_t none = static_cast<std::size_t>(-1);
  std::size_t start = none, first_usable = none;
  auto close = [&](std::size_t end) {
    if (start != none && end - start >= 2) segments.push_back({start, end - start});
    start = none;
  };
  std::size_t g = 0;
  for (; g < ng; ++g) {
    const std::uint8_t flag = f[g];
    if (flag & kSaturated) break;
    const bool usable = (flag == 0 || flag == kJump) && std::isfinite(y[g]);
    if (!usable) {
      close(g);
      continue;
    }
    if (first_usable == none) first_usable = g;
    if (flag == kJump) close(g);
    if (start == none) start = g;
  }
  close(g);

  if (first_usable == none) return unusable(bits);
  if (segments.empty()) {
    // Only single-group segments: the pipeline's one-group ramp (suppressed by default).
    if (options.suppress_one_group && ng > 1) return unusable(bits);
    return one_group(y[first_usable], first_usable, px, timing, options, bits);
  }
  for (auto& s : segments) {
    s.last_minus_first = static_cast<double>(y[s.first + s.n - 1]) - static_cast<double>(y[s.first]);
    const int p = options.optimal ? power_index(segment_snr(s.last_minus_first, px.gain, px.sigma)) : 0;
    const auto& co = scratch.coefficients(s.n, p, timing.tgroup);
    double slope = 0;
    for (std::size_t i = 0; i < s.n; ++i) slope += co.c[i] * static_cast<double>(y[s.first + i]);
    s.slope = slope;
    s.sum_c2 = co.sum_c2;
    s.sum_cum2 = co.sum_cum2;
  }
  return combine(segments, px, timing, options, bits);
}

double attribute_number(const std::map<std::string, AttrValue>& attributes, const std::string& key) {
  auto it = attributes.find(key);
  if (it == attributes.end())
    throw StepError("ramp_fit: the dataset has no attribute '" + key +
                    "' (group timing, set by the jwst_uncal input from the " +
                    (key == "tgroup" ? std::string("TGROUP") : key == "nframes" ? "NFRAMES" : "GROUPGAP") +
                    " keyword)");
  if (const double* d = std::get_if<double>(&it->second)) return *d;
  if (const std::int64_t* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
  throw StepError("ramp_fit: attribute '" + key + "' is a string, not a number");
}

RampTiming timing_of(const std::map<std::string, AttrValue>& attributes) {
  RampTiming t;
  t.tgroup = attribute_number(attributes, "tgroup");
  const double nframes = attribute_number(attributes, "nframes");
  const double groupgap = attribute_number(attributes, "groupgap");
  if (!(t.tgroup > 0) || !std::isfinite(t.tgroup))
    throw StepError("ramp_fit: attribute 'tgroup' must be a positive time in seconds");
  if (!(nframes >= 1) || !(groupgap >= 0))
    throw StepError("ramp_fit: attributes 'nframes' (>= 1) and 'groupgap' (>= 0) are out of range");
  t.nframes = static_cast<std::int64_t>(nframes);
  t.groupgap = static_cast<std::int64_t>(groupgap);
  return t;
}

}  // namespace

int power_index(double snr) {
  if (!(snr > 5.0)) return 0;
  if (snr <= 10.0) return 1;
  if (snr <= 20.0) return 2;
  if (snr <= 50.0) return 3;
  if (snr <= 100.0) return 4;
  return 5;
}

double power_of_index(int index) { return kPowers[index]; }

double segment_snr(double last_minus_first, double gain, double group_read_noise_dn) {
  if (!(gain > 0)) return 0.0;
  const double rn_e = group_read_noise_dn * gain;
  const double signal = last_minus_first * gain;
  const double variance = rn_e * rn_e + signal;
  if (!(variance > 0)) return 0.0;
  const double snr = signal / std::sqrt(variance);
  return snr > 0 ? snr : 0.0;  // NaN -> 0 as well
}

void segment_coefficients(std::size_t n, int p, double tgroup, std::span<double> c) {
  // Weighted least squares for y_i = a + b i: b = sum w_i (i - xbar) y_i / sum w_i (i - xbar)^2.
  const double power = kPowers[p];
  const double mid = 0.5 * static_cast<double>(n - 1);
  double sw = 0, swx = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(i);
    const double w = p == 0 ? 1.0 : std::pow(std::fabs(x - mid) / mid, power);
    c[i] = w;
    sw += w;
    swx += w * x;
  }
  const double xbar = swx / sw;
  double sxx = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(i) - xbar;
    sxx += c[i] * d * d;
  }
  for (std::size_t i = 0; i < n; ++i) c[i] = c[i] * (static_cast<double>(i) - xbar) / (sxx * tgroup);
}

const RampFitScratch::Coefficients& RampFitScratch::coefficients(std::size_t n, int p, double tg) {
  if (tg != tgroup) {
    cache.clear();
    tgroup = tg;
  }
  const std::size_t key = n * kPowerCount + static_cast<std::size_t>(p);
  if (cache.size() <= key) cache.resize(key + 1);
  Coefficients& co = cache[key];
  if (co.c.empty()) {
    co.c.assign(n, 0.0);
    segment_coefficients(n, p, tg, co.c);
    double cumulative = 0;
    co.sum_c2 = co.sum_cum2 = 0;
    for (double v : co.c) co.sum_c2 += v * v;
    // Slope = sum_i c_i y_i = sum_j C_j d_j with d_j = y_j - y_{j-1} the independent Poisson
    // increments and C_j = sum_{i>=j} c_i (C_0 = sum c_i = 0).
    for (std::size_t j = n - 1; j >= 1; --j) {
      cumulative += co.c[j];
      co.sum_cum2 += cumulative * cumulative;
    }
  }
  return co;
}

RampRate fit_ramp(std::span<const float> ramp, std::span<const std::uint8_t> groupdq, double gain,
                  double read_noise, const RampTiming& timing, const RampFitOptions& options,
                  RampFitScratch& scratch) {
  if (ramp.size() != groupdq.size()) throw InternalError("fit_ramp: ramp and groupdq lengths differ");
  if (!(gain > 0) || !std::isfinite(gain)) return unusable(jwst::dq::no_gain_value);
  if (!(read_noise >= 0) || !std::isfinite(read_noise)) return unusable(0);
  const PixelNoise px{gain, read_noise};
  return fit_series(ramp.data(), groupdq.data(), ramp.size(), px, timing, options, scratch);
}

StepIO RampFit::io(const Params& params) {
  StepIO io;
  io.reads = {{DataKind::Cube, "ramp", "the jwst_uncal input provides it; keep it with keep_ramps in an earlier "
                                       "ramp_fit"},
              {DataKind::Cube, "groupdq", "the jwst_uncal input provides it"},
              {DataKind::Cube, "dq", "the jwst_uncal input provides it"}};
  for (auto ref : {jwst::reference_read(params.gain, "gain"), jwst::reference_read(params.read_noise, "read_noise")})
    if (ref) io.reads.push_back(*ref);
  io.writes = {
      {DataKind::Cube, {"data", "DN/s", "count rate per integration"}},
      {DataKind::Cube, {"err", "DN/s", "count rate error (read noise and Poisson)"}},
      {DataKind::Cube, {"var_poisson", "DN2/s2", "count rate variance from Poisson noise"}},
      {DataKind::Cube, {"var_rnoise", "DN2/s2", "count rate variance from read noise"}},
      {DataKind::Cube, {"dq", "", ""}, ElementType::UInt32},
  };
  DataOut count{DataKind::FrameVector, {"ramp_fit_unusable", "1", "pixels without a usable rate in each integration"}};
  count.integer = true;
  io.writes.push_back(count);
  if (!params.keep_ramps) io.removes = {"ramp", "groupdq"};
  if (params.sky_rate)
    io.reads.push_back({DataKind::Image, *params.sky_rate,
                        "sky_rate names an image written by an earlier step (one_over_f writes one_over_f_rate); "
                        "unset sky_rate when that step is off"});
  return io;
}

void RampFit::run(const Params& params, StepContext& context) {
  const CubeShape& shape = context.shape();
  const std::size_t ng = shape.ng, npix = shape.ny * shape.nx;
  const RampTiming timing = timing_of(context.data().attributes());
  const RampFitOptions options{params.weighting == "optimal", params.variance_model == "propagated",
                               params.suppress_one_group};

  // Per-pixel gain and group read noise, and the bits of pixels they make unusable.
  const jwst::ReferenceImage gain_ref = jwst::load_reference_image(params.gain, "gain", context);
  const jwst::ReferenceImage rn_ref = jwst::load_reference_image(params.read_noise, "read_noise", context);
  std::vector<PixelNoise> noise(npix);
  std::vector<std::uint32_t> bad(npix, 0);
  for (std::size_t p = 0; p < npix; ++p) {
    const double g = gain_ref.at(p), rn = rn_ref.at(p);
    noise[p] = {g, rn};
    if (!(g > 0) || !std::isfinite(g)) bad[p] |= jwst::dq::no_gain_value | jwst::dq::do_not_use;
    if (!(rn >= 0) || !std::isfinite(rn)) bad[p] |= jwst::dq::do_not_use;
  }

  auto ramp = context.frames<float>("ramp");
  auto gdq = context.frames<std::uint8_t>("groupdq");
  auto dq = context.frames<std::uint32_t>("dq");
  auto data = context.frames<float>("data");
  auto err = context.frames<float>("err");
  auto var_p = context.frames<float>("var_poisson");
  auto var_r = context.frames<float>("var_rnoise");
  if (ramp.groups != ng || gdq.groups != ng)
    throw StepError("ramp_fit: 'ramp' and 'groupdq' must be grouped cubes of " + std::to_string(ng) + " groups");
  std::vector<double>& unusable_count = context.frame_vector("ramp_fit_unusable").values;

  RampFitScratch scratch;
  scratch.tgroup = timing.tgroup;
  scratch.cache.resize((ng + 1) * kPowerCount);  // every key fit_series can ask for: no reallocation
  scratch.series.resize(ng);
  scratch.flags.resize(ng);
  scratch.segments.reserve(ng);

  // Coefficients of the one-segment fit of all ng groups for each exponent, laid out
  // [g][exponent] with a zero column (index 6) for pixels that take the careful path.
  constexpr int kZero = kPowerCount;
  constexpr std::uint8_t kInline = 0xff;  // a clean pixel already written by the inline path
  constexpr std::size_t kStride = 8;
  std::vector<double> table(ng * kStride, 0.0);
  const int powers = options.optimal ? kPowerCount : 1;
  if (ng >= 2)
    for (int p = 0; p < powers; ++p) {
      const auto& co = scratch.coefficients(ng, p, timing.tgroup);
      for (std::size_t g = 0; g < ng; ++g) table[g * kStride + p] = co.c[g];
    }

  // Blocks of pixels contiguous in each group image, sized so that a block's reads and flags
  // for all groups stay in cache between the two passes.
  const std::size_t block = std::clamp<std::size_t>((std::size_t{512} << 10) / (5 * std::max<std::size_t>(ng, 1)),
                                                    64, 4096);
  std::vector<std::uint8_t> any_flag(block), exponent(block);
  std::vector<double> sum(block);

  std::size_t total_unusable = 0, total_jump = 0;
  const Image* sky = nullptr;
  if (params.sky_rate) {
    sky = &context.image(*params.sky_rate);
    if (sky->ny != shape.nt || sky->nx != shape.nx)
      throw StepError("ramp_fit: sky_rate: image '" + *params.sky_rate + "' is " + std::to_string(sky->ny) + " x " +
                      std::to_string(sky->nx) + ", not one row per integration (" + std::to_string(shape.nt) +
                      ") by one value per column (" + std::to_string(shape.nx) + ")");
  }
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    if (sky)
      for (std::size_t p = 0; p < npix; ++p) noise[p].removed_rate = static_cast<double>(sky->values[t * shape.nx + p % shape.nx]);
    const float* y0 = ramp.frame(t).data();           // group g of pixel p: y0[g * npix + p]
    const std::uint8_t* f0 = gdq.frame(t).data();
    std::uint32_t* dq_t = dq.frame(t).data();
    float* data_t = data.frame(t).data();
    float* err_t = err.frame(t).data();
    float* vp_t = var_p.frame(t).data();
    float* vr_t = var_r.frame(t).data();
    std::size_t frame_unusable = 0;

    for (std::size_t p0 = 0; p0 < npix; p0 += block) {
      const std::size_t n = std::min(block, npix - p0);
      // Pass 1: any group flag at all?
      std::uint8_t* orf = any_flag.data();
      std::fill(orf, orf + n, std::uint8_t{0});
      for (std::size_t g = 0; g < ng; ++g) {
        const std::uint8_t* fg = f0 + g * npix + p0;
        for (std::size_t i = 0; i < n; ++i) orf[i] |= fg[i];
      }
      // Clean pixels: one segment of all groups; choose the exponent from its SNR.
      std::uint8_t* ex = exponent.data();
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t p = p0 + i;
        const bool clean = ng >= 2 && orf[i] == 0 && bad[p] == 0 && !(dq_t[p] & jwst::dq::do_not_use);
        if (!clean) {
          ex[i] = kZero;
          continue;
        }
        if (!options.optimal) {
          ex[i] = 0;
          continue;
        }
        const double rise = static_cast<double>(y0[(ng - 1) * npix + p]) - static_cast<double>(y0[p]);
        ex[i] = static_cast<std::uint8_t>(power_index(segment_snr(rise, noise[p].gain, noise[p].sigma)));
      }
      // Pass 2: slope = sum_g c[g][exponent] * read, in group order (as fit_ramp sums).
      double* acc = sum.data();
      std::fill(acc, acc + n, 0.0);
      for (std::size_t g = 0; g < ng; ++g) {
        const float* yg = y0 + g * npix + p0;
        const double* cg = table.data() + g * kStride;
        for (std::size_t i = 0; i < n; ++i) acc[i] += cg[ex[i]] * static_cast<double>(yg[i]);
      }
      // Results. A clean pixel's one segment of all groups with the pipeline variances is
      // computed inline: the same expressions as combine() for one segment, so the same bits.
      const bool inline_clean = !options.propagated;
      const double tg = timing.tgroup, nd = static_cast<double>(ng);
      const double per_rise = 1.0 / (tg * (nd - 1.0));            // rate estimate per DN of rise
      const double rnoise_factor = 12.0 / ((nd * nd * nd - nd) * tg * tg);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t p = p0 + i;
        if (!inline_clean || ex[i] == kZero || !std::isfinite(acc[i])) continue;
        const double lmf = static_cast<double>(y0[(ng - 1) * npix + p]) - static_cast<double>(y0[p]);
        const double rate_estimate = lmf / (tg * (nd - 1.0)) + noise[p].removed_rate;
        const double positive = rate_estimate > 0 ? rate_estimate : 0.0;
        const double sigma = noise[p].sigma;
        const double rnoise = sigma * sigma * rnoise_factor;
        const double poisson = positive * per_rise / noise[p].gain;
        data_t[p] = static_cast<float>(acc[i]);
        err_t[p] = static_cast<float>(std::sqrt(rnoise + poisson));
        vr_t[p] = static_cast<float>(rnoise);
        vp_t[p] = static_cast<float>(poisson);
        ex[i] = kInline;
      }
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t p = p0 + i;
        if (ex[i] == kInline) continue;
        RampRate r;
        if (ex[i] != kZero && std::isfinite(acc[i])) {
          RampFitScratch::Segment s;
          s.first = 0;
          s.n = ng;
          s.slope = acc[i];
          s.last_minus_first = static_cast<double>(y0[(ng - 1) * npix + p]) - static_cast<double>(y0[p]);
          const auto& co = scratch.coefficients(ng, ex[i], timing.tgroup);
          s.sum_c2 = co.sum_c2;
          s.sum_cum2 = co.sum_cum2;
          r = combine(std::span<const RampFitScratch::Segment>(&s, 1), noise[p], timing, options, 0);
        } else if (bad[p] != 0 || (dq_t[p] & jwst::dq::do_not_use)) {
          r = unusable(bad[p]);
          for (std::size_t g = 0; g < ng; ++g) {
            if (f0[g * npix + p] & kSaturated) r.dq |= jwst::dq::saturated;
            if (f0[g * npix + p] & kJump) r.dq |= jwst::dq::jump_det;
          }
        } else {
          for (std::size_t g = 0; g < ng; ++g) {
            scratch.series[g] = y0[g * npix + p];
            scratch.flags[g] = f0[g * npix + p];
          }
          r = fit_series(scratch.series.data(), scratch.flags.data(), ng, noise[p], timing, options, scratch);
        }
        data_t[p] = r.rate;
        err_t[p] = r.err;
        vp_t[p] = r.var_poisson;
        vr_t[p] = r.var_rnoise;
        dq_t[p] |= r.dq;
        if (!r.usable) ++frame_unusable;
        if (r.dq & jwst::dq::jump_det) ++total_jump;
      }
    }
    unusable_count[t] = static_cast<double>(frame_unusable);
    total_unusable += frame_unusable;
    context.advance(1);
  }
  std::ostringstream msg;
  msg << "ramp_fit: " << (ramp.t_end - ramp.t_begin) << " integrations on this rank, " << total_unusable
      << " pixel-integrations without a rate, " << total_jump << " with jumps";
  context.log().debug(msg.str());
}

}  // namespace tessera::steps
