#include "steps/detector/group_scale.hpp"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

/// A whole-number attribute of the input, if present.
std::optional<std::int64_t> whole_attribute(StepContext& context, const std::string& key) {
  const auto& attributes = context.data().attributes();
  auto it = attributes.find(key);
  if (it == attributes.end()) return std::nullopt;
  if (const auto* i = std::get_if<std::int64_t>(&it->second)) return *i;
  if (const auto* d = std::get_if<double>(&it->second); d && std::floor(*d) == *d)
    return static_cast<std::int64_t>(*d);
  throw StepError("group_scale: attribute '" + key + "' is not a whole number");
}

}  // namespace

void scale_values(std::span<float> values, float factor) {
  float* __restrict v = values.data();
  const std::size_t n = values.size();
  for (std::size_t i = 0; i < n; ++i) v[i] *= factor;
}

StepIO GroupScale::io(const Params&) {
  StepIO io;
  io.reads.push_back({DataKind::Cube, "ramp", "the jwst_uncal input provides the ramps"});
  DataOut ramp{DataKind::Cube, {"ramp", "DN", "up-the-ramp reads"}, ElementType::Float32};
  ramp.grouped = true;
  io.writes.push_back(ramp);
  return io;
}

void GroupScale::run(const Params&, StepContext& context) {
  const std::optional<std::int64_t> nframes = whole_attribute(context, "nframes");
  if (!nframes)
    throw StepError("group_scale: the input has no 'nframes' attribute (frames averaged per group); read the "
                    "ramps with the jwst_uncal input");
  if (*nframes < 1) throw StepError("group_scale: attribute 'nframes' is " + std::to_string(*nframes));
  const std::optional<std::int64_t> divisor = whole_attribute(context, "frmdivsr");
  if (!divisor || *divisor == *nframes) {
    context.log().info(divisor ? "  FRMDIVSR equals NFRAMES (" + std::to_string(*nframes) + "): nothing to rescale"
                               : "  no FRMDIVSR in the input: taken as NFRAMES (" + std::to_string(*nframes) +
                                     "), nothing to rescale");
    auto ramp = context.frames<float>("ramp");
    context.advance(ramp.t_end - ramp.t_begin);
    return;
  }
  if (*divisor < 1) throw StepError("group_scale: attribute 'frmdivsr' is " + std::to_string(*divisor));
  // The on-board sum of NFRAMES frames was divided by FRMDIVSR instead of NFRAMES.
  const float factor = static_cast<float>(static_cast<double>(*divisor) / static_cast<double>(*nframes));
  auto ramp = context.frames<float>("ramp");
  for (std::size_t t = ramp.t_begin; t < ramp.t_end; ++t) {
    scale_values(ramp.frame(t), factor);
    context.advance(1);
  }
  context.log().info("  FRMDIVSR " + std::to_string(*divisor) + " != NFRAMES " + std::to_string(*nframes) +
                     ": ramps multiplied by " + std::to_string(factor));
}

}  // namespace tessera::steps
