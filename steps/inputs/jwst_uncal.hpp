#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/input.hpp"

namespace tessera {

struct JwstUncalParams {
  static Schema<JwstUncalParams> schema() { return tessera::schema<JwstUncalParams>(); }
};

struct JwstUncal {
  static constexpr std::string_view name = "jwst_uncal";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = JwstUncalParams;
  static std::unique_ptr<FrameSource> open(const Params&);
};

}  // namespace tessera
