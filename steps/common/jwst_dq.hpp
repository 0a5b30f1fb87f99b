#pragma once
/// JWST data-quality bits, as the JWST pipeline defines them (jwst.datamodels.dqflags).
/// The pixel dq cube `dq` (uint32, one image per integration) uses all of them; the group dq
/// cube `groupdq` (uint8, one image per group) uses the low eight. See docs/jwst-data-model.md.
#include <cstdint>

namespace tessera::jwst::dq {

constexpr std::uint32_t do_not_use = 1u << 0;
constexpr std::uint32_t saturated = 1u << 1;
constexpr std::uint32_t jump_det = 1u << 2;
constexpr std::uint32_t dropout = 1u << 3;
constexpr std::uint32_t outlier = 1u << 4;
constexpr std::uint32_t persistence = 1u << 5;
constexpr std::uint32_t ad_floor = 1u << 6;
constexpr std::uint32_t chargeloss = 1u << 7;
constexpr std::uint32_t unreliable_error = 1u << 8;
constexpr std::uint32_t non_science = 1u << 9;
constexpr std::uint32_t dead = 1u << 10;
constexpr std::uint32_t hot = 1u << 11;
constexpr std::uint32_t warm = 1u << 12;
constexpr std::uint32_t low_qe = 1u << 13;
constexpr std::uint32_t rc = 1u << 14;
constexpr std::uint32_t telegraph = 1u << 15;
constexpr std::uint32_t nonlinear = 1u << 16;
constexpr std::uint32_t bad_ref_pixel = 1u << 17;
constexpr std::uint32_t no_flat_field = 1u << 18;
constexpr std::uint32_t no_gain_value = 1u << 19;
constexpr std::uint32_t no_lin_corr = 1u << 20;
constexpr std::uint32_t no_sat_check = 1u << 21;
constexpr std::uint32_t unreliable_bias = 1u << 22;
constexpr std::uint32_t unreliable_dark = 1u << 23;
constexpr std::uint32_t unreliable_slope = 1u << 24;
constexpr std::uint32_t unreliable_flat = 1u << 25;
constexpr std::uint32_t open = 1u << 26;
constexpr std::uint32_t adj_open = 1u << 27;
constexpr std::uint32_t flux_estimated = 1u << 28;
constexpr std::uint32_t msa_failed_open = 1u << 29;
constexpr std::uint32_t other_bad_pixel = 1u << 30;
constexpr std::uint32_t reference_pixel = 1u << 31;

/// Group dq values are the low byte of the same definitions.
constexpr std::uint8_t group(std::uint32_t bit) { return static_cast<std::uint8_t>(bit); }

}  // namespace tessera::jwst::dq
