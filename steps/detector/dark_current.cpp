#include "steps/detector/dark_current.hpp"

#include <cmath>

#include "steps/common/jwst_dq.hpp"
#include "steps/common/reference.hpp"
#include "steps/detector/dq_init.hpp"
#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

/// A whole-number readout attribute set by the jwst_uncal input (nframes, groupgap).
std::size_t readout_attribute(StepContext& context, const std::string& key, std::int64_t smallest) {
  const auto& attributes = context.data().attributes();
  auto it = attributes.find(key);
  if (it == attributes.end())
    throw StepError("dark_current: the input has no '" + key +
                    "' attribute (frames per group / dropped frames); read the ramps with the jwst_uncal input");
  std::int64_t value = 0;
  if (const auto* i = std::get_if<std::int64_t>(&it->second))
    value = *i;
  else if (const auto* d = std::get_if<double>(&it->second); d && std::floor(*d) == *d)
    value = static_cast<std::int64_t>(*d);
  else
    throw StepError("dark_current: attribute '" + key + "' is not a whole number");
  if (value < smallest)
    throw StepError("dark_current: attribute '" + key + "' is " + std::to_string(value) + ", expected >= " +
                    std::to_string(smallest));
  return static_cast<std::size_t>(value);
}

}  // namespace

std::vector<float> dark_for_groups(std::span<const float> dark, std::size_t frames, std::size_t npix,
                                   std::size_t ng, std::size_t nframes, std::size_t groupgap,
                                   const std::string& source) {
  const std::size_t stride = nframes + groupgap;
  const std::size_t needed = (ng - 1) * stride + nframes;
  if (frames < needed)
    throw StepError("dark_current: dark: '" + source + "' has " + std::to_string(frames) + " frame planes, but " +
                    std::to_string(ng) + " groups of nframes=" + std::to_string(nframes) +
                    ", groupgap=" + std::to_string(groupgap) + " need " + std::to_string(needed));
  if (nframes == 1) return {dark.begin(), dark.begin() + static_cast<std::ptrdiff_t>(ng * npix)};
  std::vector<float> out(ng * npix, 0.0f);
  for (std::size_t g = 0; g < ng; ++g) {
    float* __restrict o = out.data() + g * npix;
    for (std::size_t f = 0; f < nframes; ++f) {
      const float* __restrict d = dark.data() + (g * stride + f) * npix;
      for (std::size_t i = 0; i < npix; ++i) o[i] += d[i];
    }
    const float scale = 1.0f / static_cast<float>(nframes);
    for (std::size_t i = 0; i < npix; ++i) o[i] *= scale;
  }
  return out;
}

void subtract_dark_integration(std::span<float> ramp, std::span<const float> dark, std::size_t ng,
                               std::size_t npix) {
  for (std::size_t g = 0; g < ng; ++g) {
    float* __restrict v = ramp.data() + g * npix;
    const float* __restrict d = dark.data() + g * npix;
    for (std::size_t i = 0; i < npix; ++i) v[i] -= d[i];
  }
}

StepIO DarkCurrent::io(const Params& params) {
  StepIO io;
  io.reads.push_back({DataKind::Cube, "ramp", "the jwst_uncal input provides the ramps"});
  io.reads.push_back({DataKind::Cube, "dq", "the jwst_uncal input provides the pixel dq"});
  if (auto ref = jwst::reference_read(params.dark, "dark")) io.reads.push_back(*ref);
  DataOut ramp{DataKind::Cube, {"ramp", "DN", "up-the-ramp reads"}, ElementType::Float32};
  ramp.grouped = true;
  io.writes.push_back(ramp);
  io.writes.push_back({DataKind::Cube, {"dq", "1", "pixel data quality (JWST bits)"}, ElementType::UInt32});
  return io;
}

void DarkCurrent::run(const Params& params, StepContext& context) {
  const std::size_t npix = context.shape().ny * context.shape().nx, ng = context.shape().ng;
  const std::size_t nframes = readout_attribute(context, "nframes", 1);
  const std::size_t groupgap = readout_attribute(context, "groupgap", 0);
  // Only the frames the readout uses: a dark of more groups than the data is read in part.
  const std::size_t needed = (ng - 1) * (nframes + groupgap) + nframes;
  const jwst::ReferenceCube ref = jwst::load_reference_cube(params.dark, "dark", context, "SCI", needed);
  if (ref.values.size() != ref.planes * npix)
    throw StepError("dark_current: dark: '" + ref.source + "' holds " + std::to_string(ref.values.size()) +
                    " values, expected whole planes of the data's " + std::to_string(npix) + " pixels");
  if (!ref.dq.empty() && ref.dq.size() != npix)
    throw StepError("dark_current: dark: '" + ref.source + "' DQ holds " + std::to_string(ref.dq.size()) +
                    " values, the data have " + std::to_string(npix) + " pixels");
  std::vector<float> dark;
  if (ref.planes == 1 && jwst::is_scalar_spec(params.dark)) {
    // A number: the same cumulative dark in every group (e.g. 0 to switch the step off).
    dark.assign(ng * npix, ref.values.empty() ? 0.0f : ref.values[0]);
  } else {
    dark = dark_for_groups(ref.values, ref.planes, npix, ng, nframes, groupgap, ref.source);
  }
  // As the JWST pipeline: NaN is no correction; we also flag the pixel UNRELIABLE_DARK.
  std::vector<std::uint32_t> bits(npix, 0);
  if (!ref.dq.empty()) bits = ref.dq;
  std::vector<std::uint8_t> nan_pixel(npix, 0);
  for (std::size_t g = 0; g < ng; ++g)
    for (std::size_t i = 0; i < npix; ++i)
      if (std::isnan(dark[g * npix + i])) {
        dark[g * npix + i] = 0.0f;
        nan_pixel[i] = 1;
        bits[i] |= jwst::dq::unreliable_dark;
      }
  std::size_t missing = 0;
  for (std::uint8_t m : nan_pixel) missing += m;

  auto ramp = context.frames<float>("ramp");
  auto dq = context.frames<std::uint32_t>("dq");
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    subtract_dark_integration(ramp.frame(t), dark, ng, npix);
    or_mask_into(dq.frame(t), bits);
    context.advance(1);
  }
  context.log().info("  dark of " + std::to_string(ref.planes) + " frames averaged to " + std::to_string(ng) +
                     " groups (nframes " + std::to_string(nframes) + ", groupgap " + std::to_string(groupgap) +
                     "); " + std::to_string(missing) + " pixels with NaN dark left uncorrected");
}

}  // namespace tessera::steps
