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
#include "model/adamw.h"
#include "model/llama.h"
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

// The weight gradient dw = dyᵀ·x (both operands read transposed from shared memory, fp32 stored
// from the accumulators) against the CPU, written and added; and the same product with AdamW in
// its epilogue against the product and the separate AdamW kernel: the same bits.
TEST_F(CudaFusedProducts, WeightGradientMatchesCpuAndFusedAdamWMatchesSeparate) {
  const int N = 192, O = 256, I = 512;
  Triple dy = random({N, O}, true), x = random({N, I}, true);
  Tensor dw = fused_->empty({O, I}, DType::kF32), dw_fused = fused_->empty({O, I}, DType::kF32);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cuda::sm90::weight_grad(dw.data<float>(), dy.f.raw(), x.f.raw(), N, O, I, false, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Tensor ref = cpu_->zeros({O, I}), unused;
  cpu_->matmul_backward(unused, ref, dy.c, x.c, cpu_->zeros({O, I}));
  const std::vector<float> once = fused_->to_host_f32(dw), expected = cpu_->to_host_f32(ref);
  EXPECT_REL_L2(once, expected, 1e-5, "weight_grad vs CPU");
  cuda::sm90::weight_grad(dw.data<float>(), dy.f.raw(), x.f.raw(), N, O, I, true, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> twice = fused_->to_host_f32(dw), doubled(expected.size());
  for (size_t i = 0; i < expected.size(); ++i) doubled[i] = 2 * expected[i];
  EXPECT_REL_L2(twice, doubled, 1e-5, "weight_grad added vs CPU");

  // AdamW state: parameters, moments from an earlier step; one set for each path.
  const size_t n = static_cast<size_t>(O) * I;
  std::vector<float> p0 = gpu_testing::random_floats(n, rng_, -0.1, 0.1), m0 = gpu_testing::random_floats(n, rng_, -1e-3, 1e-3),
                     v0 = gpu_testing::random_floats(n, rng_, 0, 1e-6);
  Tensor p1 = fused_->from_host({O, I}, p0), m1 = fused_->from_host({O, I}, m0), v1 = fused_->from_host({O, I}, v0);
  Tensor p2 = fused_->from_host({O, I}, p0), m2 = fused_->from_host({O, I}, m0), v2 = fused_->from_host({O, I}, v0);
  Tensor c1 = fused_->empty({O, I}, DType::kBF16), c2 = fused_->empty({O, I}, DType::kBF16);
  const cuda::AdamWConstants k{.decay = 1 - 3e-4f * 0.1f, .w1 = 0.1f, .b2 = 0.95f, .w2 = 0.05f, .step_size = -3e-4f / 0.271f,
                               .bias2_sqrt = 0.37f, .eps = 1e-8f, .grad_scale = 1.0f};
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cuda::sm90::weight_grad(dw.data<float>(), dy.f.raw(), x.f.raw(), N, O, I, false, nullptr);
  cuda::adamw(p1.data<float>(), dw.data<float>(), m1.data<float>(), v1.data<float>(), c1.raw(), static_cast<int64_t>(n), k,
              nullptr);
  const cuda::sm90::FusedAdamW update{p2.data<float>(), m2.data<float>(), v2.data<float>(), c2.raw(), k};
  cuda::sm90::weight_grad_adamw(dw_fused.data<float>(), dy.f.raw(), x.f.raw(), N, O, I, false, update, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(fused_->to_host_f32(dw_fused), fused_->to_host_f32(dw)) << "gradient";
  EXPECT_EQ(fused_->to_host_f32(p2), fused_->to_host_f32(p1)) << "parameters";
  EXPECT_EQ(fused_->to_host_f32(m2), fused_->to_host_f32(m1)) << "first moments";
  EXPECT_EQ(fused_->to_host_f32(v2), fused_->to_host_f32(v1)) << "second moments";
  EXPECT_EQ(fused_->to_host_f32(c2), fused_->to_host_f32(c1)) << "bf16 copies";
  EXPECT_NE(fused_->to_host_f32(p2), p0) << "the update changed nothing";
  EXPECT_THROW(cuda::sm90::weight_grad(dw.data<float>(), dy.f.raw(), x.f.raw(), 100, O, I, false, nullptr), Error);
}

// The optimizer step inside the backward at the op level: an arranged weight gradient of at least
// two tiles per SM updates its weight in the product (as adamw_many on that gradient would); a
// small one is left to the caller.
TEST_F(CudaFusedProducts, UpdateInBackwardUpdatesLargeWeights) {
  const int64_t N = 128, O = 9216, I = 1024;  // 72 x 4 = 288 tiles: at least two per SM on an H100/H200
  Triple x = random({N, I}, true), dy = random({N, O}, true), w = random({O, I}, false, 0.03);
  Triple small = random({256, I}, false, 0.03), dy_small = random({N, 256}, true);
  Tensor m = fused_->zeros({O, I}), v = fused_->zeros({O, I}), dw = fused_->empty({O, I}, DType::kF32);
  Tensor ms = fused_->zeros({256, I}), vs = fused_->zeros({256, I}), dws = fused_->empty({256, I}, DType::kF32);
  Tensor m2 = plain_->zeros({O, I}), v2 = plain_->zeros({O, I}), dw2 = plain_->empty({O, I}, DType::kF32);
  AdamWStep s;
  s.lr = 1e-3, s.weight_decay = 0.1, s.step = 1;
  const std::vector<float> w0 = fused_->to_host_f32(w.f), small0 = fused_->to_host_f32(small.f);
  const Backend::AdamWItem items[2] = {{&w.f, &dw, &m, &v, 0.1}, {&small.f, &dws, &ms, &vs, 0.1}};
  fused_->arrange_update_in_backward(items, s);
  Tensor dx = fused_->empty({N, I}, DType::kBF16), dxs = fused_->empty({N, I}, DType::kBF16);
  fused_->matmul_backward(dx, dw, dy.f, x.f, w.f, Grad::kWrite, Grad::kWrite);
  fused_->matmul_backward(dxs, dws, dy_small.f, x.f, small.f, Grad::kWrite, Grad::kWrite);
  const std::vector<bool> done = fused_->take_updated_in_backward();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_TRUE(done[0]) << "the large weight was not updated in its product";
  EXPECT_FALSE(done[1]) << "the small weight (one tile per SM or fewer) was updated in its product";
  EXPECT_EQ(fused_->to_host_f32(small.f), small0) << "a weight not updated in the backward changed";
  // The same on the cuBLAS backend: the product, then the update kernel. dx was computed from the
  // weight before its update.
  Tensor dx2 = plain_->empty({N, I}, DType::kBF16);
  plain_->matmul_backward(dx2, dw2, dy.p, x.p, w.p, Grad::kWrite, Grad::kWrite);
  const Backend::AdamWItem item2{&w.p, &dw2, &m2, &v2, 0.1};
  plain_->adamw_many({&item2, 1}, s);
  EXPECT_REL_L2(fused_->to_host_f32(dx), plain_->to_host_f32(dx2), 1e-3, "dx, update in backward vs after");
  EXPECT_REL_L2(fused_->to_host_f32(dw), plain_->to_host_f32(dw2), 1e-6, "gradient");
  EXPECT_REL_L2(fused_->to_host_f32(w.f), plain_->to_host_f32(w.p), 1e-6, "updated weight");
  EXPECT_REL_L2(fused_->to_host_f32(v), plain_->to_host_f32(v2), 1e-5, "second moment");
  EXPECT_NE(fused_->to_host_f32(w.f), w0) << "the update changed nothing";
}

// Training a model with the update in the backward: the same losses and weights as updating after
// the backward (to rounding: the gradients come from agpt's product instead of cuBLAS's), and the
// MLP weights were updated in the backward.
TEST_F(CudaFusedProducts, TrainingWithUpdateInBackwardMatchesUpdateAfter) {
  model::LlamaConfig c;
  c.vocab_size = 512, c.hidden_size = 1024, c.intermediate_size = 9216, c.num_hidden_layers = 1;
  c.num_attention_heads = 8, c.num_key_value_heads = 8, c.max_position_embeddings = 128, c.tie_word_embeddings = true;
  c.fill_defaults();
  const int B = 1, T = 128;
  std::vector<int32_t> ids(B * T);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919 + 13) % c.vocab_size);
  const std::vector<int32_t> targets = model::shift_targets(ids, B, T);
  auto train = [&](bool in_backward, std::vector<float>& losses, size_t& updated) {
    model::Llama m(c, *fused_);
    m.init_weights(5);
    model::AdamW opt(*fused_, m.parameters(), model::AdamWConfig{.lr = 1e-3});
    for (int step = 0; step < 4; ++step) {
      losses.push_back(m.forward(ids, targets, B, T, /*for_backward=*/true));
      if (in_backward) opt.arrange_update_in_backward(m.parameters());
      m.backward(Grad::kWrite);
      opt.step(m.parameters());
      updated = std::max(updated, opt.updated_in_backward());
    }
    std::vector<float> all;
    for (auto& p : m.parameters()) {
      const std::vector<float> v = fused_->to_host_f32(p.value);
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  std::vector<float> la, lb;
  size_t ua = 0, ub = 0;
  const std::vector<float> after = train(false, la, ua), inside = train(true, lb, ub);
  EXPECT_EQ(ua, 0u);
  EXPECT_EQ(ub, 3u) << "gate, up and down weights updated in the backward";
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(lb[i], la[i], 1e-4 * std::abs(la[i])) << "step " << i;
  EXPECT_LT(la.back(), la.front()) << "the model did not learn";
  EXPECT_REL_L2(inside, after, 1e-4, "weights after 4 steps");
}

}  // namespace
}  // namespace agpt::ops
