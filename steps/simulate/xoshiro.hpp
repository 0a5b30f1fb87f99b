#pragma once
// The simulators' random-number core: xoshiro256** (Blackman & Vigna 2018, "Scrambled Linear
// Pseudorandom Number Generators") seeded through splitmix64, with uniform deviates of our own,
// so that the same seed gives the same files with any standard library. Each simulator derives
// its own generator (seeding and normal deviates) from it.
#include <cstddef>
#include <cstdint>

namespace tessera::sim {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Xoshiro256 {
 public:
  /// Fills the state from splitmix64 started at `state`.
  explicit Xoshiro256(std::uint64_t state) {
    for (auto& word : s_) word = splitmix64(state);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n).
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * static_cast<double>(n)); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

}  // namespace tessera::sim
