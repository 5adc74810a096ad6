// train.deterministic through ops::make_backend: the default CUDA backend's attention backward
// repeats bit for bit; one made with deterministic = false takes cuDNN's atomic-dQ backward (and
// says so in its name), and making it does not change what another backend in the process uses.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "ops/backend_factory.h"

namespace agpt::ops {
namespace {

using gpu_testing::Rng;
using gpu_testing::random_floats;

// dq, dk and dv of one attention backward (GQA, a training length cuDNN takes), as bf16 bits.
std::vector<float> attention_grads(Backend& be, uint64_t seed) {
  const int64_t B = 1, T = 1024, H = 8, KV = 2, hd = 64;  // dq sums 8+ blocks: order matters
  Rng rng(seed);
  auto make = [&](const Shape& s) {
    return be.from_host(s, random_floats(static_cast<size_t>(shape_numel(s)), rng), DType::kBF16);
  };
  Tensor q = make({B, T, H, hd}), k = make({B, T, KV, hd}), v = make({B, T, KV, hd}), dout = make({B, T, H, hd});
  Tensor out = be.empty({B, T, H, hd}, DType::kBF16), lse = be.empty({B, H, T});
  be.attention_forward(out, lse, q, k, v);
  Tensor dq = be.empty(q.shape(), DType::kBF16), dk = be.empty(k.shape(), DType::kBF16),
         dv = be.empty(v.shape(), DType::kBF16);
  be.attention_backward(dq, dk, dv, dout, q, k, v, out, lse, Grad::kWrite);
  std::vector<float> all;
  for (const Tensor* t : {&dq, &dk, &dv}) {
    const std::vector<float> h = be.to_host_f32(*t);
    all.insert(all.end(), h.begin(), h.end());
  }
  return all;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(CudaDeterministic, DefaultRepeatsAndAtomicIsOptIn) {
  AGPT_REQUIRE_GPU();
  if (std::getenv("AGPT_CUDA_ATTENTION")) GTEST_SKIP() << "AGPT_CUDA_ATTENTION overrides the choice";
  auto fast = make_backend("cuda", 0, "bf16", /*deterministic=*/false);
  auto exact = make_backend("cuda", 0, "bf16");
  const bool cudnn = exact->name().find("cuDNN attention") != std::string::npos;
  if (!cudnn) GTEST_SKIP() << "built without cuDNN: " << exact->name();
  EXPECT_NE(fast->name().find("atomic dQ"), std::string::npos) << fast->name();
  EXPECT_EQ(exact->name().find("atomic"), std::string::npos) << exact->name();
  const std::vector<float> fast1 = attention_grads(*fast, 3);
  // The deterministic backend, made after (and beside) the atomic one, still repeats bit for bit.
  const std::vector<float> a = attention_grads(*exact, 3), b = attention_grads(*exact, 3);
  EXPECT_TRUE(same_bits(a, b)) << "the deterministic attention backward must repeat bit for bit";
  // Both forms compute the same gradients to rounding.
  EXPECT_REL_L2(fast1, a, 1e-2, "atomic-dQ gradients against the deterministic form's");
}

}  // namespace
}  // namespace agpt::ops
