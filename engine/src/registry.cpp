#include "tessera/registry.hpp"

#include <algorithm>

#include "tessera/errors.hpp"

namespace tessera {

std::string to_string(Access access) {
  switch (access) {
    case Access::Frames: return "frames";
    case Access::Pixels: return "pixels";
    case Access::Reduce: return "reduce";
  }
  return "?";
}

std::string to_string(const std::vector<Access>& phases) {
  std::string out;
  for (Access a : phases) out += (out.empty() ? "" : "+") + to_string(a);
  return out;
}

std::optional<std::filesystem::path> StepContext::plot_file(const std::string& file_name, int level) const {
  if (!plots_.writer || plots_.directory.empty() || plots_.level < level) return std::nullopt;
  std::error_code ec;
  std::filesystem::create_directories(plots_.directory, ec);
  if (ec) throw IoError(plots_.directory.string() + ": cannot create the plots directory: " + ec.message());
  return plots_.directory / file_name;
}

std::string to_string(DataKind kind) {
  switch (kind) {
    case DataKind::Cube: return "cube";
    case DataKind::FrameVector: return "per-frame vector";
    case DataKind::Image: return "image";
    case DataKind::Attribute: return "attribute";
  }
  return "?";
}

void Registry::add_step(StepInfo info) {
  if (find_step(info.name)) throw InternalError("step kind '" + info.name + "' registered twice");
  steps_.push_back(std::move(info));
}

void Registry::add_input(InputInfo info) {
  if (find_input(info.name)) throw InternalError("input kind '" + info.name + "' registered twice");
  inputs_.push_back(std::move(info));
}

const StepInfo* Registry::find_step(const std::string& name) const {
  auto it = std::find_if(steps_.begin(), steps_.end(), [&](const StepInfo& s) { return s.name == name; });
  return it == steps_.end() ? nullptr : &*it;
}

const InputInfo* Registry::find_input(const std::string& name) const {
  auto it = std::find_if(inputs_.begin(), inputs_.end(), [&](const InputInfo& s) { return s.name == name; });
  return it == inputs_.end() ? nullptr : &*it;
}

std::vector<std::string> Registry::step_names() const {
  std::vector<std::string> out;
  for (const auto& s : steps_) out.push_back(s.name);
  return out;
}

std::vector<std::string> Registry::input_names() const {
  std::vector<std::string> out;
  for (const auto& s : inputs_) out.push_back(s.name);
  return out;
}

}  // namespace tessera
