// Shared by the GPU tests: skip without a device, random host data, and the error measure of the
// issue (‖got − ref‖ / ‖ref‖) with a NaN check.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops/cuda/cuda_backend.h"

namespace agpt::gpu_testing {

#define AGPT_REQUIRE_GPU()                                                                         \
  do {                                                                                             \
    if (!::agpt::ops::cuda_compiled()) GTEST_SKIP() << "built without CUDA";                       \
    if (::agpt::ops::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";           \
  } while (0)

// ../shared/testdata, or $AGPT_TESTDATA where the tests run away from the checkout (GPU machine).
inline std::string testdata_dir() {
  const char* env = std::getenv("AGPT_TESTDATA");
  return env && *env ? env : AGPT_TESTDATA;
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  double uniform(double lo = -1, double hi = 1) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * static_cast<double>(s >> 11) * 0x1p-53;
  }
  int32_t below(int32_t n) { return static_cast<int32_t>(uniform(0, 1) * n) % n; }
};

inline std::vector<float> random_floats(size_t n, Rng& rng, double lo = -1, double hi = 1) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

// ‖got − ref‖ / ‖ref‖ (absolute norm when ref is all zeros); infinity if any value is not finite.
inline double rel_l2(const std::vector<float>& got, const std::vector<float>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    double d = static_cast<double>(got[i]) - ref[i];
    d2 += d * d;
    r2 += static_cast<double>(ref[i]) * ref[i];
  }
  return r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2);
}

#define EXPECT_REL_L2(got, ref, tol, what)                                                         \
  do {                                                                                             \
    double agpt_err_ = ::agpt::gpu_testing::rel_l2(got, ref);                                       \
    EXPECT_LE(agpt_err_, tol) << what;                                                             \
    std::printf("    %-28s rel_l2 %.2e\n", what, agpt_err_);                                       \
  } while (0)

}  // namespace agpt::gpu_testing
