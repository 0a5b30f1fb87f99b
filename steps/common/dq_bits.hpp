#pragma once
/// Bits Tessera's steps set in the dq cube. HST's own flags use bits 0–14 (values 1 to
/// 16384, see the WFC3 data handbook); Tessera's start at bit 16 so both can coexist.
#include <cstdint>

namespace tessera::dq {

/// Replaced because it was an outlier in its pixel's time series (fixed_iter, free_iter).
inline constexpr std::uint32_t temporal_outlier = 1u << 16;
/// Value was not finite (NaN or infinite) on input and was replaced.
inline constexpr std::uint32_t non_finite = 1u << 17;

}  // namespace tessera::dq
