// cuDNN's fused flash attention (src/ops/cuda/attention_cudnn.cu) against agpt's own tensor-core
// kernels (attention_mma.cu) on random bf16 inputs: forward out and lse, backward dq/dk/dv, for the
// three training shapes of the issue (batch reduced) and a short odd T. Both sides get the same
// bf16 inputs (and the backward the same out/lse), so the differences are rounding only:
// tolerance 1e-2 on ‖cudnn − mma‖/‖mma‖ for bf16 tensors, 1e-4 for the fp32 lse.
//
// Measured on an H200 (sm_90) with cuDNN 9.14.0 (the GPU machine's /usr/lib/x86_64-linux-gnu) and
// 9.19.0 (PyTorch's wheel), identical to two digits except where two values are given:
//   B2 T100 H4 KV2 hd64:    out 3.6e-4, lse 4.8e-8, dq 1.7e-3, dk 2.5e-3, dv 2.4e-3
//                           (vs CPU causal: out 1.9e-3, lse 5.6e-8; vs CPU non-causal: out 1.46)
//   B2 T1024 H12 KV12 hd64: out 1.1e-3 / 9.3e-4, lse 4.9e-8, dq 1.7e-3, dk 1.7e-3, dv 1.7e-3
//   B1 T2048 H32 KV8 hd64:  out 1.2e-3 / 9.8e-4, lse 5.4e-8, dq 1.7e-3, dk 2.4e-3, dv 2.3e-3
//   B1 T4096 H32 KV8 hd128: out 9.8e-4, lse 5.6e-8, dq 1.7e-3, dk 2.4e-3, dv 2.4e-3
// The deterministic backward repeated bit for bit on every shape; the atomic-dQ form gave the same
// errors but its dq differed between two runs on the GQA shapes (dk/dv repeated).
// The short case is also checked against a CPU reference: causal must agree; non-causal must NOT
// (rel_l2 1.46 measured), so a graph that lost its causal mask fails here and in every comparison
// with the causal mma reference.
// The launchers are compiled only with the CUDA backend; a CPU-only build has nothing to test here.
#if AGPT_HAVE_CUDA
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gpu_test_util.h"
#include "ops/cuda/attention_cudnn.cuh"
#include "ops/cuda/attention_mma.cuh"
#include "ops/tensor.h"

namespace agpt::ops {
namespace {

using gpu_testing::Rng;
using gpu_testing::rel_l2;

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

constexpr double kTol = 1e-2;
constexpr double kLseTol = 1e-4;

struct Shape {
  int64_t B, T, H, KV, hd;
};

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}
std::vector<float> from_bf16(const std::vector<uint16_t>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16_to_f32(v[i]);
  return r;
}

// Device buffer of n elements of E.
template <typename E>
struct Dev {
  E* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    if (cudaMalloc(&p, n * sizeof(E)) != cudaSuccess) p = nullptr;
    if (p) cudaMemset(p, 0, n * sizeof(E));
  }
  ~Dev() {
    if (p) cudaFree(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void upload(const std::vector<E>& v) { cudaMemcpy(p, v.data(), n * sizeof(E), cudaMemcpyHostToDevice); }
  std::vector<E> download() const {
    std::vector<E> v(n);
    cudaMemcpy(v.data(), p, n * sizeof(E), cudaMemcpyDeviceToHost);
    return v;
  }
};

// CPU forward (double accumulation) on the bf16-rounded inputs: out [B,T,H,hd], lse [B,H,T].
void cpu_forward(const Shape& s, const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                 bool causal, std::vector<float>& out, std::vector<float>& lse) {
  out.assign(static_cast<size_t>(s.B * s.T * s.H * s.hd), 0.f);
  lse.assign(static_cast<size_t>(s.B * s.H * s.T), 0.f);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.hd));
  std::vector<double> sc(static_cast<size_t>(s.T));
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / (s.H / s.KV);
      for (int64_t i = 0; i < s.T; ++i) {
        const float* qi = &q[static_cast<size_t>(((b * s.T + i) * s.H + h) * s.hd)];
        const int64_t last = causal ? i : s.T - 1;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= last; ++j) {
          const float* kj = &k[static_cast<size_t>(((b * s.T + j) * s.KV + g) * s.hd)];
          double d = 0;
          for (int64_t c = 0; c < s.hd; ++c) d += static_cast<double>(qi[c]) * kj[c];
          sc[j] = d * scale;
          mx = std::max(mx, sc[j]);
        }
        double z = 0;
        for (int64_t j = 0; j <= last; ++j) z += std::exp(sc[j] - mx);
        lse[static_cast<size_t>((b * s.H + h) * s.T + i)] = static_cast<float>(mx + std::log(z));
        float* oi = &out[static_cast<size_t>(((b * s.T + i) * s.H + h) * s.hd)];
        for (int64_t c = 0; c < s.hd; ++c) {
          double acc = 0;
          for (int64_t j = 0; j <= last; ++j)
            acc += std::exp(sc[j] - mx) / z * v[static_cast<size_t>(((b * s.T + j) * s.KV + g) * s.hd + c)];
          oi[c] = static_cast<float>(acc);
        }
      }
    }
}

void check_shape(const Shape& s, bool cpu_reference) {
  std::printf("  B%lld T%lld H%lld KV%lld hd%lld\n", static_cast<long long>(s.B), static_cast<long long>(s.T),
              static_cast<long long>(s.H), static_cast<long long>(s.KV), static_cast<long long>(s.hd));
  const size_t nq = static_cast<size_t>(s.B * s.T * s.H * s.hd), nk = static_cast<size_t>(s.B * s.T * s.KV * s.hd);
  const size_t nl = static_cast<size_t>(s.B * s.H * s.T);
  Rng rng(static_cast<uint64_t>(s.T * 131 + s.H * 7 + s.hd));
  // q, k wider than v, dout so that the softmax is far from uniform.
  auto hq = to_bf16(gpu_testing::random_floats(nq, rng, -2, 2));
  auto hk = to_bf16(gpu_testing::random_floats(nk, rng, -2, 2));
  auto hv = to_bf16(gpu_testing::random_floats(nk, rng));
  auto hdo = to_bf16(gpu_testing::random_floats(nq, rng));
  Dev<uint16_t> q(nq), k(nk), v(nk), dout(nq), out_ref(nq), out(nq), dq(nq), dk(nk), dv(nk), dq2(nq), dk2(nk),
      dv2(nk);
  Dev<float> lse_ref(nl), lse(nl), dq_ref(nq), dk_ref(nk), dv_ref(nk), delta(nl);
  ASSERT_TRUE(q.p && k.p && v.p && dout.p && out_ref.p && out.p && dq.p && dk.p && dv.p && dq2.p && dk2.p && dv2.p &&
              lse_ref.p && lse.p && dq_ref.p && dk_ref.p && dv_ref.p && delta.p);
  q.upload(hq);
  k.upload(hk);
  v.upload(hv);
  dout.upload(hdo);

  cudaStream_t st = nullptr;
  CUDA_OK(cudaStreamCreate(&st));
  ASSERT_TRUE(cuda::attention_forward_mma(out_ref.p, lse_ref.p, q.p, k.p, v.p, s.B, s.T, s.T, s.H, s.KV, s.hd, st));
  if (!cuda::attention_forward_cudnn(out.p, lse.p, q.p, k.p, v.p, s.B, s.T, s.H, s.KV, s.hd, st)) {
    cudaStreamDestroy(st);
    if (cuda::attention_cudnn_version() == 0) GTEST_SKIP() << "built without cuDNN";
    FAIL() << "cuDNN refused the forward: " << cuda::attention_cudnn_last_refusal();
  }
  // The mma backward adds into fp32 buffers (zeroed at allocation).
  ASSERT_TRUE(cuda::attention_backward_mma(dq_ref.p, dk_ref.p, dv_ref.p, delta.p, dout.p, q.p, k.p, v.p, out_ref.p,
                                           lse_ref.p, s.B, s.T, s.H, s.KV, s.hd, st));
  ASSERT_TRUE(cuda::attention_backward_cudnn(dq.p, dk.p, dv.p, dout.p, q.p, k.p, v.p, out_ref.p, lse_ref.p, s.B, s.T,
                                             s.H, s.KV, s.hd, st))
      << "cuDNN refused the backward: " << cuda::attention_cudnn_last_refusal();
  const bool deterministic = cuda::attention_backward_cudnn_deterministic();
  ASSERT_TRUE(cuda::attention_backward_cudnn(dq2.p, dk2.p, dv2.p, dout.p, q.p, k.p, v.p, out_ref.p, lse_ref.p, s.B,
                                             s.T, s.H, s.KV, s.hd, st));
  CUDA_OK(cudaStreamSynchronize(st));
  CUDA_OK(cudaStreamDestroy(st));

  const auto o_ref = from_bf16(out_ref.download()), o = from_bf16(out.download());
  EXPECT_REL_L2(o, o_ref, kTol, "forward out");
  EXPECT_REL_L2(lse.download(), lse_ref.download(), kLseTol, "forward lse");
  EXPECT_REL_L2(from_bf16(dq.download()), dq_ref.download(), kTol, "backward dq");
  EXPECT_REL_L2(from_bf16(dk.download()), dk_ref.download(), kTol, "backward dk");
  EXPECT_REL_L2(from_bf16(dv.download()), dv_ref.download(), kTol, "backward dv");

  const bool same = dq.download() == dq2.download() && dk.download() == dk2.download() &&
                    dv.download() == dv2.download();
  std::printf("    backward deterministic form: %s; two runs bitwise identical: %s\n", deterministic ? "yes" : "no",
              same ? "yes" : "no");
  if (deterministic) {
    EXPECT_TRUE(same) << "the deterministic cuDNN backward must repeat bit for bit";
  }

  // The faster atomic-dQ form (benchmarks only): same accuracy; whether it repeats is reported.
  cuda::attention_cudnn_allow_nondeterministic(true);
  CUDA_OK(cudaStreamCreate(&st));
  const bool atomic_ok = cuda::attention_backward_cudnn(dq2.p, dk2.p, dv2.p, dout.p, q.p, k.p, v.p, out_ref.p,
                                                        lse_ref.p, s.B, s.T, s.H, s.KV, s.hd, st) &&
                         cuda::attention_backward_cudnn(dq.p, dk.p, dv.p, dout.p, q.p, k.p, v.p, out_ref.p, lse_ref.p,
                                                        s.B, s.T, s.H, s.KV, s.hd, st);
  cuda::attention_cudnn_allow_nondeterministic(false);
  CUDA_OK(cudaStreamSynchronize(st));
  CUDA_OK(cudaStreamDestroy(st));
  ASSERT_TRUE(atomic_ok) << cuda::attention_cudnn_last_refusal();
  EXPECT_REL_L2(from_bf16(dq2.download()), dq_ref.download(), kTol, "backward dq (atomic dQ form)");
  EXPECT_REL_L2(from_bf16(dk2.download()), dk_ref.download(), kTol, "backward dk (atomic dQ form)");
  EXPECT_REL_L2(from_bf16(dv2.download()), dv_ref.download(), kTol, "backward dv (atomic dQ form)");
  const bool dq_same = dq.download() == dq2.download();
  const bool dkv_same = dk.download() == dk2.download() && dv.download() == dv2.download();
  std::printf("    atomic dQ form, two runs bitwise identical: dq %s, dk/dv %s\n", dq_same ? "yes" : "no",
              dkv_same ? "yes" : "no");

  if (cpu_reference) {
    std::vector<float> cq = from_bf16(hq), ck = from_bf16(hk), cv = from_bf16(hv), co, cl, no, nl2;
    cpu_forward(s, cq, ck, cv, true, co, cl);
    EXPECT_REL_L2(o, co, kTol, "forward out vs CPU causal");
    EXPECT_REL_L2(lse.download(), cl, kLseTol, "forward lse vs CPU causal");
    // Mutation check: without the causal mask the result would be the non-causal attention, which
    // is far from the causal one, so the tolerance above cannot pass for a graph without the mask.
    cpu_forward(s, cq, ck, cv, false, no, nl2);
    const double noncausal = rel_l2(o, no);
    std::printf("    forward out vs CPU non-causal rel_l2 %.2e (must be large)\n", noncausal);
    EXPECT_GT(noncausal, 10 * kTol);
  }
}

class CudaAttentionCudnn : public ::testing::Test {
 protected:
  void SetUp() override { AGPT_REQUIRE_GPU(); }
};

TEST_F(CudaAttentionCudnn, ShortOddSequenceGqa) { check_shape({2, 100, 4, 2, 64}, true); }
TEST_F(CudaAttentionCudnn, Gpt2Small) { check_shape({2, 1024, 12, 12, 64}, false); }
TEST_F(CudaAttentionCudnn, GqaHead64) { check_shape({1, 2048, 32, 8, 64}, false); }
TEST_F(CudaAttentionCudnn, GqaHead128) { check_shape({1, 4096, 32, 8, 128}, false); }

TEST_F(CudaAttentionCudnn, UnsupportedShapesAreRefused) {
  // H % KV != 0 and an unaligned head size: false, nothing done.
  EXPECT_FALSE(cuda::attention_forward_cudnn(nullptr, nullptr, nullptr, nullptr, nullptr, 1, 16, 3, 2, 64, nullptr));
  EXPECT_FALSE(cuda::attention_forward_cudnn(nullptr, nullptr, nullptr, nullptr, nullptr, 1, 16, 4, 2, 60, nullptr));
}

}  // namespace
}  // namespace agpt::ops
#endif  // AGPT_HAVE_CUDA
