#include "steps/miri/regroup.hpp"

#include <string>
#include <variant>

#include "tessera/errors.hpp"
#include "tessera/logger.hpp"

namespace tessera::steps {
namespace {

constexpr double kSecondsPerDay = 86400.0;

std::string divisors_of(std::size_t m) {
  std::string out;
  for (std::size_t d = 1; d <= m; ++d)
    if (m % d == 0) out += (out.empty() ? "" : ", ") + std::to_string(d);
  return out;
}

}  // namespace

StepIO Regroup::io(const Params&) {
  StepIO io;
  DataOut integration{DataKind::FrameVector, {"integration", "1", "integration number (1-based, after regrouping)"},
                      ElementType::Float32, true};
  integration.combine = Combine::Identical;
  io.writes = {integration,
               {DataKind::Attribute, {"ngroups", "1", "groups per integration"}},
               {DataKind::Attribute, {"nints", "1", "integrations"}}};
  return io;
}

Resampling Regroup::resample(const Params& params, const CubeShape& shape, const std::map<std::string, FrameVector>&) {
  const std::size_t m = shape.ng;
  const auto n = static_cast<std::size_t>(params.n_groups);
  if (params.n_groups < 1 || n > m || m % n != 0)
    throw StepError("regroup: n_groups = " + std::to_string(params.n_groups) + " does not divide the " +
                    std::to_string(m) + " groups per integration of the data; valid values: " + divisors_of(m));
  const std::size_t pieces = m / n;
  Resampling r;
  r.nt = shape.nt * pieces;
  r.ng = n;
  r.source_frame.resize(r.nt * n);
  r.source_group.resize(r.nt * n);
  for (std::size_t t = 0; t < r.nt; ++t)
    for (std::size_t g = 0; g < n; ++g) {
      r.source_frame[t * n + g] = t / pieces;
      r.source_group[t * n + g] = (t % pieces) * n + g;
    }
  return r;
}

void Regroup::run(const Params& params, StepContext& context) {
  Dataset& data = context.data();
  const std::size_t nt = data.shape().nt, n = data.shape().ng;
  const auto new_n = static_cast<std::size_t>(params.n_groups);
  if (n != new_n) throw InternalError("regroup: ran on " + std::to_string(n) + " groups, not the n_groups asked");
  auto& attributes = data.attributes();
  // Groups per old integration: from the attribute when the input set it, else unknown
  // and the time vectors cannot be split (only needed when there are any).
  const bool has_times = data.frame_vectors().count("time") || data.frame_vectors().count("int_start") ||
                         data.frame_vectors().count("int_end") || data.frame_vectors().count("int_mid_bjd");
  if (has_times) {
    auto tg = attributes.find("tgroup");
    auto ng_old = attributes.find("ngroups");
    if (tg == attributes.end() || !std::holds_alternative<double>(tg->second))
      throw StepError("regroup: the dataset has no attribute 'tgroup' (group time in s, set by the jwst_uncal input), "
                      "needed to give the new integrations their times");
    if (ng_old == attributes.end() || !std::holds_alternative<std::int64_t>(ng_old->second))
      throw StepError("regroup: the dataset has no attribute 'ngroups' (groups per integration before regrouping, "
                      "set by the jwst_uncal input), needed to give the new integrations their times");
    const double tgroup = std::get<double>(tg->second) / kSecondsPerDay;
    const auto m = static_cast<std::size_t>(std::get<std::int64_t>(ng_old->second));
    if (m < n || m % n != 0)
      throw StepError("regroup: attribute ngroups = " + std::to_string(m) + " is not a multiple of n_groups = " +
                      std::to_string(n) + "; was the data regrouped without updating it?");
    const std::size_t pieces = m / n;
    auto shift = [&](const char* name, auto offset_in_groups) {
      auto it = data.frame_vectors().find(name);
      if (it == data.frame_vectors().end()) return;
      std::vector<double>& v = it->second.values;
      for (std::size_t t = 0; t < nt; ++t) v[t] += offset_in_groups(t % pieces) * tgroup;
    };
    const double dm = static_cast<double>(m), dn = static_cast<double>(n), dp = static_cast<double>(pieces);
    auto mid = [&](std::size_t j) { return static_cast<double>(j) * dn + (dn - 1) / 2 - (dm - 1) / 2; };
    shift("time", mid);
    shift("int_mid_bjd", mid);
    shift("int_start", [&](std::size_t j) { return static_cast<double>(j) * dn; });
    shift("int_end", [&](std::size_t j) { return -(dp - 1 - static_cast<double>(j)) * dn; });
  }
  std::vector<double>& numbers = context.frame_vector("integration").values;
  for (std::size_t t = 0; t < nt; ++t) numbers[t] = static_cast<double>(t + 1);
  attributes["ngroups"] = static_cast<std::int64_t>(n);
  attributes["nints"] = static_cast<std::int64_t>(nt);
}

}  // namespace tessera::steps
