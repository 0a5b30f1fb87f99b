#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/step.hpp"

namespace tessera::steps {

struct AlignSpectraParams {
  static Schema<AlignSpectraParams> schema() { return tessera::schema<AlignSpectraParams>(); }
};

struct AlignSpectra {
  static constexpr std::string_view name = "align_spectra";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = AlignSpectraParams;
  static Access access(const Params&) { return Access::Frames; }
  static StepIO io(const Params&) { return {}; }
  static void run(const Params&, StepContext& context);
};

}  // namespace tessera::steps
