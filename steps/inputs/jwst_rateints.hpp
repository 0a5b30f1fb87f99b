#pragma once
// UNDER CONSTRUCTION (placeholder so the tree builds; a helper replaces this whole file).
#include "tessera/input.hpp"

namespace tessera {

struct JwstRateintsParams {
  static Schema<JwstRateintsParams> schema() { return tessera::schema<JwstRateintsParams>(); }
};

struct JwstRateints {
  static constexpr std::string_view name = "jwst_rateints";
  static constexpr std::string_view summary = "UNDER CONSTRUCTION";
  using Params = JwstRateintsParams;
  static std::unique_ptr<FrameSource> open(const Params&);
};

}  // namespace tessera
