// agpt's fused products on Hopper (src/ops/cuda/sm90: q, k, v as one product with RoPE in the
// epilogue; SwiGLU in the gate/up products' epilogue; SwiGLU's backward in the down product's
// input-gradient epilogue) against the same backend with cuBLAS products and separate kernels, and
// against the fp32 CPU reference. Both CUDA paths round the products to bf16 before the element-wise
// work and share its arithmetic (rope_math.cuh, swiglu_math.cuh), so they agree
// to within a rare last-bit difference of the accumulation order (tolerance 1e-3; a wrong tile or
// layout gives errors of order 1). Against the CPU: bf16 tolerance 1e-2 (cuda_bf16_ops_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <string>
#include <vector>

#include "base/error.h"
#include "gpu_test_util.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cuda/sm90/gemm.cuh"

namespace agpt::ops {
namespace {

using gpu_testing::Rng;

class CudaFusedProducts : public ::testing::Test {
 protected:
  void SetUp() override {
    AGPT_REQUIRE_GPU();
    if (!cuda::sm90::device_supported()) GTEST_SKIP() << "agpt's own products need a Hopper GPU (compute 9.0)";
    cpu_ = make_cpu_backend(0);
    fused_ = make_cuda_backend(0, CudaOptions{.matmul = "bf16", .activations = "bf16", .products = "auto"});
    plain_ = make_cuda_backend(0, CudaOptions{.matmul = "bf16", .activations = "bf16", .products = "cublas"});
    ASSERT_NE(fused_->name().find("fused products"), std::string::npos) << fused_->name();
    ASSERT_EQ(plain_->name().find("fused products"), std::string::npos) << plain_->name();
  }
  // The same bf16-representable values on the three backends; activations bf16 on the GPU.
  struct Triple {
    Tensor c, f, p;
  };
  Triple random(const Shape& shape, bool act, double scale = 1) {
    std::vector<float> v = gpu_testing::random_floats(static_cast<size_t>(shape_numel(shape)), rng_, -scale, scale);
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
    const DType t = act ? DType::kBF16 : DType::kF32;
    return {cpu_->from_host(shape, v), fused_->from_host(shape, v, t), plain_->from_host(shape, v, t)};
  }
  Triple empty(const Shape& shape, bool act) {
    const DType t = act ? DType::kBF16 : DType::kF32;
    return {cpu_->zeros(shape), fused_->empty(shape, t), plain_->empty(shape, t)};
  }
  void expect_agree(const Triple& t, const char* what) {
    const std::vector<float> f = fused_->to_host_f32(t.f), p = plain_->to_host_f32(t.p), c = cpu_->to_host_f32(t.c);
    EXPECT_REL_L2(f, p, 1e-3, (std::string(what) + ", fused vs cuBLAS").c_str());
    EXPECT_REL_L2(f, c, 1e-2, (std::string(what) + ", fused vs CPU").c_str());
  }

  // One forward and backward of the MLP's SwiGLU block: x [N, I], gate/up weights [F, I], the
  // down weight [O, F] with O = I.
  void run(int64_t N, int64_t I, int64_t F) {
    const double ws = 1.0 / std::sqrt(static_cast<double>(I));
    Triple x = random({N, I}, true), wg = random({F, I}, false, ws), wu = random({F, I}, false, ws);
    Triple wd = random({I, F}, false, 1.0 / std::sqrt(static_cast<double>(F))), dy = random({N, I}, true);
    Triple act = empty({N, F}, true), gate = empty({N, F}, true), up = empty({N, F}, true);
    cpu_->swiglu_matmul_forward(act.c, gate.c, up.c, x.c, wg.c, wu.c);
    fused_->swiglu_matmul_forward(act.f, gate.f, up.f, x.f, wg.f, wu.f);
    plain_->swiglu_matmul_forward(act.p, gate.p, up.p, x.p, wg.p, wu.p);
    expect_agree(gate, "gate");
    expect_agree(up, "up");
    expect_agree(act, "act");
    // The backward from the fused forward's outputs on both GPU paths (and the CPU's own).
    gate.p = plain_->from_host({N, F}, fused_->to_host_f32(gate.f), DType::kBF16);
    up.p = plain_->from_host({N, F}, fused_->to_host_f32(up.f), DType::kBF16);
    act.p = plain_->from_host({N, F}, fused_->to_host_f32(act.f), DType::kBF16);
    Triple dgate = empty({N, F}, true), dup = empty({N, F}, true), dact = empty({N, F}, true);
    Triple dwd = random({I, F}, false);  // added to (Grad::kAdd): starts from the same values
    cpu_->swiglu_matmul_backward(dgate.c, dup.c, dact.c, dwd.c, dy.c, act.c, wd.c, gate.c, up.c, Grad::kAdd);
    fused_->swiglu_matmul_backward(dgate.f, dup.f, dact.f, dwd.f, dy.f, act.f, wd.f, gate.f, up.f, Grad::kAdd);
    plain_->swiglu_matmul_backward(dgate.p, dup.p, dact.p, dwd.p, dy.p, act.p, wd.p, gate.p, up.p, Grad::kAdd);
    expect_agree(dgate, "dgate");
    expect_agree(dup, "dup");
    expect_agree(dwd, "dwd (added)");
  }

  std::unique_ptr<Backend> cpu_, fused_, plain_;
  Rng rng_{11};
};

// Whole tiles: every output element comes from agpt's kernels (several tiles per block, so the
// persistent loop, the stage ring's wrap-around and the staging hand-off all run).
TEST_F(CudaFusedProducts, WholeTilesMatchSeparateOps) { run(4096, 256, 2048); }

// A ring of 3 stages with K = 64 (one k-slice a tile) and K = 192 (not a multiple of the ring).
TEST_F(CudaFusedProducts, ShortAndOddDepths) {
  run(256, 64, 512);
  run(256, 192, 256);
}

// Shapes that are not whole tiles take the separate ops: same results.
TEST_F(CudaFusedProducts, OtherShapesFallBack) {
  EXPECT_FALSE(cuda::sm90::shape_ok(100, 256, 64));
  run(100, 64, 128);
  run(256, 96, 256);
}

// q, k, v as one product with RoPE: against three products and two RoPE passes, and the CPU.
TEST_F(CudaFusedProducts, QkvRopeMatchesSeparateOps) {
  for (auto [B, T, H, KV, hd, I, pos0] : {std::tuple{4, 256, 8, 4, 64, 512, 0}, std::tuple{2, 128, 4, 2, 128, 192, 5}}) {
    const int64_t N = int64_t{B} * T, P = T + pos0 + 3;
    std::vector<float> cv(static_cast<size_t>(P * hd / 2)), sv(cv.size());
    for (int64_t p = 0; p < P; ++p)
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double angle = p * std::pow(10000.0, -2.0 * i / hd);
        cv[static_cast<size_t>(p * hd / 2 + i)] = static_cast<float>(std::cos(angle));
        sv[static_cast<size_t>(p * hd / 2 + i)] = static_cast<float>(std::sin(angle));
      }
    const Shape table{P, hd / 2};
    Triple cs{cpu_->from_host(table, cv), fused_->from_host(table, cv), plain_->from_host(table, cv)};
    Triple sn{cpu_->from_host(table, sv), fused_->from_host(table, sv), plain_->from_host(table, sv)};
    const double ws = 1.0 / std::sqrt(static_cast<double>(I));
    Triple x = random({N, I}, true), wq = random({int64_t{H} * hd, I}, false, ws);
    Triple wk = random({int64_t{KV} * hd, I}, false, ws), wv = random({int64_t{KV} * hd, I}, false, ws);
    Triple q = empty({B, T, H, hd}, true), k = empty({B, T, KV, hd}, true), v = empty({B, T, KV, hd}, true);
    cpu_->qkv_rope_forward(q.c, k.c, v.c, x.c, wq.c, wk.c, wv.c, cs.c, sn.c, pos0);
    fused_->qkv_rope_forward(q.f, k.f, v.f, x.f, wq.f, wk.f, wv.f, cs.f, sn.f, pos0);
    plain_->qkv_rope_forward(q.p, k.p, v.p, x.p, wq.p, wk.p, wv.p, cs.p, sn.p, pos0);
    expect_agree(q, "q with RoPE");
    expect_agree(k, "k with RoPE");
    expect_agree(v, "v");
  }
  // Not whole tiles (k/v width 128): the separate ops, same results.
  EXPECT_FALSE(cuda::sm90::qkv_shape_ok(512, 512, 128, 256, 64, 256));
  EXPECT_FALSE(cuda::sm90::qkv_shape_ok(512, 512, 256, 256, 64, 64));  // sequences shorter than a tile
}

// The input gradient of layers that share their input, summed in one product (q, k, v: three
// terms of different widths; gate, up: two), against matmul_backward per layer and the CPU; the
// weight gradients (cuBLAS on both GPU paths) must match bit for bit.
TEST_F(CudaFusedProducts, SharedInputGradientMatchesSeparateOps) {
  for (const std::vector<int64_t>& outs : {std::vector<int64_t>{512, 256, 256}, std::vector<int64_t>{1024, 1024},
                                           std::vector<int64_t>{192, 64}}) {
    const int64_t N = 1024, I = 512;
    Triple x = random({N, I}, true), dx = empty({N, I}, true);
    std::vector<Triple> dy, w, dw;
    for (int64_t O : outs) {
      dy.push_back(random({N, O}, true));
      w.push_back(random({O, I}, false, 1.0 / std::sqrt(static_cast<double>(O))));
      dw.push_back(random({O, I}, false));  // added to: the same start on every backend
    }
    auto layers = [&](auto member) {
      std::vector<LinearGrad> l;
      for (size_t i = 0; i < outs.size(); ++i) l.push_back({&(dy[i].*member), &(w[i].*member), &(dw[i].*member)});
      return l;
    };
    cpu_->matmul_backward_shared(dx.c, x.c, layers(&Triple::c), Grad::kWrite, Grad::kAdd);
    fused_->matmul_backward_shared(dx.f, x.f, layers(&Triple::f), Grad::kWrite, Grad::kAdd);
    plain_->matmul_backward_shared(dx.p, x.p, layers(&Triple::p), Grad::kWrite, Grad::kAdd);
    // One rounding against one per layer: within bf16's rounding of each other.
    EXPECT_REL_L2(fused_->to_host_f32(dx.f), plain_->to_host_f32(dx.p), 1e-2, "dx, one product vs per layer");
    EXPECT_REL_L2(fused_->to_host_f32(dx.f), cpu_->to_host_f32(dx.c), 1e-2, "dx, one product vs CPU");
    for (size_t i = 0; i < outs.size(); ++i)
      EXPECT_EQ(fused_->to_host_f32(dw[i].f), plain_->to_host_f32(dw[i].p)) << "dw of layer " << i;
  }
  EXPECT_TRUE(cuda::sm90::shape_ok(1024, 512, 256));
}

// Written input gradients of a single layer (the attention output's) take agpt's product; added
// ones (Grad::kAdd) stay cuBLAS: both against the cuBLAS-only backend and the CPU.
TEST_F(CudaFusedProducts, InputGradientMatchesSeparateOps) {
  const int64_t N = 1024, I = 512, O = 768;
  Triple x = random({N, I}, true), w = random({O, I}, false, 1.0 / std::sqrt(static_cast<double>(O)));
  Triple dy = random({N, O}, true);
  for (Grad mode : {Grad::kWrite, Grad::kAdd}) {
    Triple dx = random({N, I}, true), dw = random({O, I}, false);
    cpu_->matmul_backward(dx.c, dw.c, dy.c, x.c, w.c, mode, Grad::kAdd);
    fused_->matmul_backward(dx.f, dw.f, dy.f, x.f, w.f, mode, Grad::kAdd);
    plain_->matmul_backward(dx.p, dw.p, dy.p, x.p, w.p, mode, Grad::kAdd);
    expect_agree(dx, (mode == Grad::kWrite ? "dx (written)" : "dx (added)"));
    EXPECT_EQ(fused_->to_host_f32(dw.f), plain_->to_host_f32(dw.p)) << "dw: cuBLAS on both";
  }
}

// The plain products of sm90/gemm.cuh (the benchmark's) against the CPU: N-major and K-major B.
TEST_F(CudaFusedProducts, PlainProductsMatchCpu) {
  const int M = 256, N = 512, K = 192;
  Triple a = random({M, K}, true), bt = random({N, K}, true), b = random({K, N}, true);
  Tensor c1 = fused_->empty({M, N}, DType::kBF16), c2 = fused_->empty({M, N}, DType::kBF16);
  // The kernels run on the default stream here: the backend's work is finished first and after.
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cuda::sm90::gemm_nt(c1.raw(), a.f.raw(), bt.f.raw(), M, N, K, nullptr);
  cuda::sm90::gemm_nn(c2.raw(), a.f.raw(), b.f.raw(), M, N, K, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Tensor ref1 = cpu_->zeros({M, N}), ref2 = cpu_->zeros({M, N});
  cpu_->matmul_forward(ref1, a.c, bt.c);
  // a·b = a·(bᵀ)ᵀ: transpose b on the host for the CPU's x·wᵀ.
  std::vector<float> bv = cpu_->to_host_f32(b.c), bT(static_cast<size_t>(N) * K);
  for (int k = 0; k < K; ++k)
    for (int n = 0; n < N; ++n) bT[static_cast<size_t>(n) * K + k] = bv[static_cast<size_t>(k) * N + n];
  cpu_->matmul_forward(ref2, a.c, cpu_->from_host({N, K}, bT));
  EXPECT_REL_L2(fused_->to_host_f32(c1), cpu_->to_host_f32(ref1), 1e-2, "gemm_nt vs CPU");
  EXPECT_REL_L2(fused_->to_host_f32(c2), cpu_->to_host_f32(ref2), 1e-2, "gemm_nn vs CPU");
  EXPECT_THROW(cuda::sm90::gemm_nt(c1.raw(), a.f.raw(), bt.f.raw(), 100, N, K, nullptr), Error);
}

}  // namespace
}  // namespace agpt::ops
