#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/input.hpp"

namespace tessera {

struct TesseraH5Params {
  static Schema<TesseraH5Params> schema() { return tessera::schema<TesseraH5Params>(); }
};

struct TesseraH5 {
  static constexpr std::string_view name = "tessera_h5";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = TesseraH5Params;
  static std::unique_ptr<FrameSource> open(const Params&);
};

}  // namespace tessera
