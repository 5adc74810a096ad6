// matmul_forward with one row (a decoding step) takes the matrix-vector path: it must agree with a
// double-precision product and give the same bits for any thread count, like the sgemm path.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/cpu/cpu_backend.h"
#include "test_noise.h"

namespace agpt::ops {
namespace {

std::vector<float> noise(size_t n, uint64_t seed) { return testing::lcg_uniform(n, seed, -1, 1); }

TEST(MatmulOneRow, MatchesDoubleAndIsThreadCountIndependent) {
  const int64_t I = 777, O = 1029;  // large enough for OpenBLAS to split the work
  auto x = noise(I, 1), w = noise(O * I, 2);
  auto run = [&](int threads) {
    auto be = make_cpu_backend(threads);
    Tensor y = be->empty({1, O});
    be->matmul_forward(y, be->from_host({1, I}, x), be->from_host({O, I}, w));
    return be->to_host_f32(y);
  };
  auto one = run(1);
  EXPECT_EQ(run(3), one);
  double worst = 0;
  for (int64_t o = 0; o < O; ++o) {
    double want = 0, scale = 0;
    for (int64_t i = 0; i < I; ++i) want += double(x[i]) * w[o * I + i], scale += std::fabs(double(x[i]) * w[o * I + i]);
    worst = std::max(worst, std::fabs(one[o] - want) / scale);
  }
  EXPECT_LE(worst, 1e-6);
}

}  // namespace
}  // namespace agpt::ops
