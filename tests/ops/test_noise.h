// Reproducible test inputs for the op tests: n values uniform in [lo, hi) from a 64-bit LCG.
#pragma once
#include <cstdint>
#include <vector>

namespace agpt::ops::testing {

inline std::vector<float> lcg_uniform(size_t n, uint64_t seed, double lo, double hi) {
  std::vector<float> v(n);
  for (float& x : v) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(lo + (hi - lo) * (static_cast<double>(seed >> 11) * 0x1p-53));
  }
  return v;
}

}  // namespace agpt::ops::testing
