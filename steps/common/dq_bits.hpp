#pragma once
/// Bits Tessera's steps set in the dq cube. HST's own flags use bits 0–14 (values 1 to
/// 16384, see the WFC3 data handbook); Tessera's start at bit 16 so both can coexist.
#include <cstdint>

namespace tessera::dq {

/// Replaced because it was an outlier in its pixel's time series (fixed_iter, free_iter).
inline constexpr std::uint32_t temporal_outlier = 1u << 16;
/// Value was not finite (NaN or infinite) on input and was replaced.
inline constexpr std::uint32_t non_finite = 1u << 17;
/// Carried one of the HST flags chosen in hst_dq (hst_flags); replaced unless hst_replace is false.
inline constexpr std::uint32_t hst_flagged = 1u << 18;
/// Replaced because Laplacian edge detection (led) found it (hot pixel or cosmic-ray edge).
inline constexpr std::uint32_t led_outlier = 1u << 19;
/// Replaced because it deviated from the spatially smoothed frame (spatial_smooth).
inline constexpr std::uint32_t smooth_outlier = 1u << 20;
/// Mask of every bit Tessera's cleaning steps set.
inline constexpr std::uint32_t any_tessera = temporal_outlier | non_finite | hst_flagged | led_outlier | smooth_outlier;

}  // namespace tessera::dq
