#include "steps/detector/gain_scale.hpp"

#include <cmath>
#include <optional>
#include <vector>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "steps/detector/dq_init.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

const char* const kVariances[] = {"var_poisson", "var_rnoise"};

}  // namespace

void scale_by_gain(std::span<float> data, std::span<float> err, std::span<float> var_poisson,
                   std::span<float> var_rnoise, std::span<const float> gain) {
  const std::size_t n = gain.size();
  const float* __restrict g = gain.data();
  for (std::span<float> values : {data, err}) {
    float* __restrict v = values.data();
    for (std::size_t i = 0; i < n; ++i) v[i] *= g[i];
  }
  for (std::span<float> values : {var_poisson, var_rnoise}) {
    if (values.empty()) continue;
    float* __restrict v = values.data();
    for (std::size_t i = 0; i < n; ++i) v[i] *= g[i] * g[i];
  }
}

StepIO GainScale::io(const Params& params) {
  StepIO io;
  const std::string from_ramp_fit = "ramp_fit writes it; run ramp_fit before gain_scale";
  io.reads.push_back({DataKind::Cube, "data", from_ramp_fit});
  io.reads.push_back({DataKind::Cube, "err", from_ramp_fit});
  io.reads.push_back({DataKind::Cube, "dq", "the jwst_uncal input provides the pixel dq"});
  if (params.scale_variances)
    for (const char* name : kVariances)
      io.reads.push_back(
          {DataKind::Cube, name, "ramp_fit writes it; or set gain_scale's scale_variances = false"});
  if (auto ref = jwst::reference_read(params.gain, "gain")) io.reads.push_back(*ref);
  io.writes.push_back({DataKind::Cube, {"data", "electron/s", "count rate per integration"}});
  io.writes.push_back({DataKind::Cube, {"err", "electron/s", "total error of the count rate"}});
  io.writes.push_back({DataKind::Cube, {"dq", "1", "pixel data quality (JWST bits)"}, ElementType::UInt32});
  if (params.scale_variances) {
    io.writes.push_back({DataKind::Cube, {"var_poisson", "electron2/s2", "Poisson variance of the count rate"}});
    io.writes.push_back({DataKind::Cube, {"var_rnoise", "electron2/s2", "read-noise variance of the count rate"}});
  }
  return io;
}

void GainScale::run(const Params& params, StepContext& context) {
  const std::size_t npix = context.shape().ny * context.shape().nx;
  Dataset& data = context.data();
  const std::string& units = data.cube("data").info.units;
  if (units.find("electron") != std::string::npos)
    throw StepError("gain_scale: cube 'data' is already in " + units + "; gain_scale must run only once");
  const jwst::ReferenceImage ref = jwst::load_reference_image(params.gain, "gain", context);
  if (!ref.scalar() && ref.values.size() != npix)
    throw StepError("gain_scale: gain: '" + ref.source + "' holds " + std::to_string(ref.values.size()) +
                    " values, the data have " + std::to_string(npix) + " pixels");
  std::vector<float> gain(npix);
  std::vector<std::uint32_t> bits(npix, 0);
  std::size_t missing = 0;
  for (std::size_t i = 0; i < npix; ++i) {
    const float g = ref.at(i);
    if (std::isfinite(g) && g > 0.0f) {
      gain[i] = g;
    } else {
      gain[i] = std::nanf("");
      bits[i] = jwst::dq::no_gain_value | jwst::dq::do_not_use;
      ++missing;
    }
  }

  auto rate = context.frames<float>("data");
  auto err = context.frames<float>("err");
  auto dq = context.frames<std::uint32_t>("dq");
  std::optional<FrameSlab<float>> var[2];
  if (params.scale_variances)
    for (int k = 0; k < 2; ++k) var[k] = context.frames<float>(kVariances[k]);
  for (std::size_t t = rate.t_begin; t < rate.t_end; ++t) {
    scale_by_gain(rate.frame(t), err.frame(t), var[0] ? var[0]->frame(t) : std::span<float>{},
                  var[1] ? var[1]->frame(t) : std::span<float>{}, gain);
    if (missing) or_mask_into(dq.frame(t), bits);
    context.advance(1);
  }
  data.cube("data").info.units = "electron/s";
  data.cube("err").info.units = "electron/s";
  if (params.scale_variances)
    for (const char* name : kVariances) data.cube(name).info.units = "electron2/s2";
  context.log().info("  rates now in electron/s" +
                     (missing ? "; " + std::to_string(missing) + " pixels without a usable gain set to NaN"
                              : std::string()));
}

}  // namespace tessera::steps
