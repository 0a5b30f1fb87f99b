#pragma once
/// Known step and input kinds. Registration is explicit (no static self-registering
/// objects, which linkers drop from static libraries).
#include <string>
#include <vector>

#include "tessera/input.hpp"
#include "tessera/step.hpp"

namespace tessera {

class Registry {
 public:
  void add_step(StepInfo info);
  void add_input(InputInfo info);
  const StepInfo* find_step(const std::string& name) const;
  const InputInfo* find_input(const std::string& name) const;
  std::vector<std::string> step_names() const;
  std::vector<std::string> input_names() const;
  const std::vector<StepInfo>& steps() const { return steps_; }
  const std::vector<InputInfo>& inputs() const { return inputs_; }

 private:
  std::vector<StepInfo> steps_;
  std::vector<InputInfo> inputs_;
};

/// Every built-in step and input kind. Both are defined in steps/registry.cpp (tessera::steps):
/// the engine itself knows no step.
void register_builtins(Registry& registry);

/// The process-wide registry with the built-ins, created on first use.
const Registry& builtin_registry();

}  // namespace tessera
