// The ops with bf16 activations (the CUDA backend's `bf16` precision) against the fp32 CPU
// reference. Inputs are rounded to bf16 once on the host and both backends get the same values,
// so the differences are the bf16 rounding of outputs and of intermediate activations only:
// tolerance 1e-2 on ‖gpu − cpu‖/‖cpu‖ (bf16 has an 8-bit mantissa: one rounding is ≤ 2^-9 = 2e-3).
#include <gtest/gtest.h>

#include "base/error.h"
#include "gpu_test_util.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::ops {
namespace {

using gpu_testing::Rng;

constexpr double kTol = 1e-2;

class CudaBf16Ops : public ::testing::Test {
 protected:
  void SetUp() override {
    AGPT_REQUIRE_GPU();
    cpu_ = make_cpu_backend(0);
    gpu_ = make_cuda_backend(0, CudaOptions{.matmul = "bf16", .activations = "bf16"});
    ASSERT_EQ(gpu_->activation_dtype(), DType::kBF16);
  }
  struct Pair {
    Tensor c, g;
  };
  // Random values rounded to bf16; `act` says whether the GPU tensor is an activation (bf16) or
  // fp32 (weights, statistics, weight gradients).
  Pair random(const Shape& shape, bool act = true, double lo = -1, double hi = 1) {
    std::vector<float> v = gpu_testing::random_floats(static_cast<size_t>(shape_numel(shape)), rng_, lo, hi);
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
    return {cpu_->from_host(shape, v), gpu_->from_host(shape, v, act ? DType::kBF16 : DType::kF32)};
  }
  void expect_close(const Pair& p, const char* what, double tol = kTol) {
    EXPECT_REL_L2(gpu_->to_host_f32(p.g), cpu_->to_host_f32(p.c), tol, what);
  }
  // A second CUDA backend whose products run in fp32 (a bf16 weight is widened there).
  Backend* fp32_products() {
    if (!fp32_) fp32_ = make_cuda_backend(0);
    return fp32_.get();
  }
  std::unique_ptr<Backend> cpu_, gpu_, fp32_;
  Rng rng_{7};
};

TEST_F(CudaBf16Ops, CastRoundTrip) {
  auto x = random({1000}, false);
  Tensor b = gpu_->empty({1000}, DType::kBF16), back = gpu_->empty({1000});
  gpu_->cast(b, x.g);
  gpu_->cast(back, b);
  EXPECT_EQ(gpu_->to_host_f32(back), cpu_->to_host_f32(x.c)) << "bf16-representable values must survive exactly";
}

// The bf16 weight copies kept between begin_weight_reuse() and end_weight_reuse(): the same
// products as without them; a weight changed outside the window (or before the next begin) is
// rounded again, never served stale. Cast kernels with an odd length and an unaligned start take
// the one-element path, the rest the 8-wide one: both must round the same way.
TEST_F(CudaBf16Ops, WeightReuseMatchesFreshRounding) {
  const int64_t N = 64, I = 96, O = 40;
  auto x = random({N, I}), w = random({O, I}, false);
  Tensor plain = gpu_->empty({N, O}, DType::kBF16), reused = gpu_->empty({N, O}, DType::kBF16);
  gpu_->matmul_forward(plain, x.g, w.g);
  gpu_->begin_weight_reuse();
  gpu_->matmul_forward(reused, x.g, w.g);
  EXPECT_EQ(gpu_->to_host_f32(reused), gpu_->to_host_f32(plain));
  gpu_->matmul_forward(reused, x.g, w.g);  // from the cache
  EXPECT_EQ(gpu_->to_host_f32(reused), gpu_->to_host_f32(plain));
  gpu_->end_weight_reuse();

  // Changed between windows: begin drops the old copy.
  auto w2 = random({O, I}, false);
  gpu_->begin_weight_reuse();
  gpu_->matmul_forward(reused, x.g, w.g);
  gpu_->end_weight_reuse();
  gpu_->copy(w.g, w2.g);
  gpu_->begin_weight_reuse();
  gpu_->matmul_forward(reused, x.g, w.g);
  gpu_->end_weight_reuse();
  gpu_->matmul_forward(plain, x.g, w2.g);
  EXPECT_EQ(gpu_->to_host_f32(reused), gpu_->to_host_f32(plain)) << "a stale bf16 copy was used";

  // AdamW writing the bf16 copy (AdamWStep::weight_copy): the next window's product uses it and
  // equals a product with freshly rounded weights; a later write to the weight drops it.
  Tensor g = random({O, I}, false).g, m1 = gpu_->zeros({O, I}), m2 = gpu_->zeros({O, I});
  AdamWStep step;
  step.weight_copy = true;
  gpu_->adamw(w.g, g, m1, m2, step);
  gpu_->begin_weight_reuse();
  gpu_->matmul_forward(reused, x.g, w.g);
  gpu_->end_weight_reuse();
  gpu_->matmul_forward(plain, x.g, w.g);
  EXPECT_EQ(gpu_->to_host_f32(reused), gpu_->to_host_f32(plain)) << "AdamW's bf16 copy differs from rounding";
  step.step = 2;
  gpu_->adamw(w.g, g, m1, m2, step);
  gpu_->copy(w.g, w2.g);  // overwrites the weight after the update: its copy must go
  gpu_->begin_weight_reuse();
  gpu_->matmul_forward(reused, x.g, w.g);
  gpu_->end_weight_reuse();
  gpu_->matmul_forward(plain, x.g, w2.g);
  EXPECT_EQ(gpu_->to_host_f32(reused), gpu_->to_host_f32(plain)) << "a stale copy survived a write";

  // Odd lengths and offsets through cast: identical to rounding on the host.
  std::vector<float> v = gpu_testing::random_floats(1003, rng_);
  Tensor src = gpu_->from_host({1003}, v), dst = gpu_->empty({1003}, DType::kBF16);
  gpu_->cast(dst, src);
  std::vector<float> want(v.size());
  for (size_t i = 0; i < v.size(); ++i) want[i] = bf16_to_f32(f32_to_bf16(v[i]));
  EXPECT_EQ(gpu_->to_host_f32(dst), want);
  Tensor src_off = src.narrow(1, 1001), dst_off = dst.narrow(1, 1001);  // 4-byte offset: not 16-aligned
  gpu_->cast(dst_off, src_off);
  EXPECT_EQ(gpu_->to_host_f32(dst), want);
}

TEST_F(CudaBf16Ops, EmbeddingNormMatmul) {
  const int64_t N = 130, V = 50, D = 256, O = 192;
  std::vector<int32_t> ids(N);
  for (auto& i : ids) i = rng_.below(static_cast<int32_t>(V));
  Tensor idc = cpu_->from_host({N}, ids), idg = gpu_->from_host({N}, ids);
  auto table = random({V, D}, false), out = random({N, D});
  cpu_->embedding_forward(out.c, idc, table.c);
  gpu_->embedding_forward(out.g, idg, table.g);
  expect_close(out, "embedding forward", 0);
  auto dout = random({N, D}), dtable = random({V, D}, false);
  cpu_->embedding_backward(dtable.c, idc, dout.c);
  gpu_->embedding_backward(dtable.g, idg, dout.g);
  expect_close(dtable, "embedding backward");

  auto x = random({N, D}, true, -3, 3), w = random({D}, false, 0.5, 1.5), n = random({N, D}), rstd = random({N}, false);
  cpu_->rmsnorm_forward(n.c, rstd.c, x.c, w.c, 1e-5f);
  gpu_->rmsnorm_forward(n.g, rstd.g, x.g, w.g, 1e-5f);
  expect_close(n, "rmsnorm forward");
  expect_close(rstd, "rmsnorm rstd", 1e-5);
  auto dn = random({N, D}), dx = random({N, D}), dw = random({D}, false);
  cpu_->rmsnorm_backward(dx.c, dw.c, dn.c, x.c, w.c, rstd.c);
  gpu_->rmsnorm_backward(dx.g, dw.g, dn.g, x.g, w.g, rstd.g);
  expect_close(dx, "rmsnorm backward dx");
  expect_close(dw, "rmsnorm backward dw");

  auto W = random({O, D}, false), y = random({N, O});
  cpu_->matmul_forward(y.c, x.c, W.c);
  gpu_->matmul_forward(y.g, x.g, W.g);
  expect_close(y, "matmul forward");
  auto dy = random({N, O}), dxm = random({N, D}), dW = random({O, D}, false);
  cpu_->matmul_backward(dxm.c, dW.c, dy.c, x.c, W.c);
  gpu_->matmul_backward(dxm.g, dW.g, dy.g, x.g, W.g);
  expect_close(dxm, "matmul backward dx");
  expect_close(dW, "matmul backward dw (fp32)");
}

// bf16 weights (train.param_dtype = "bf16") give the same bits as fp32 weights holding the same
// values: the products read the weight itself instead of rounding a copy, the embedding reads bf16
// rows, RMSNorm widens its weight. Also through a backend whose products run in fp32 (widened).
TEST_F(CudaBf16Ops, Bf16WeightsGiveWhatFp32WeightsOfTheSameValuesGive) {
  const int64_t N = 130, V = 50, D = 256, O = 192;
  std::vector<int32_t> ids(N);
  for (auto& i : ids) i = rng_.below(static_cast<int32_t>(V));
  auto values = [&](int64_t n) {
    std::vector<float> v = gpu_testing::random_floats(static_cast<size_t>(n), rng_, -1, 1);
    for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
    return v;
  };
  const auto wv = values(O * D), tv = values(V * D), nv = values(D), xv = values(N * D), dyv = values(N * O);
  for (Backend* be : {gpu_.get(), fp32_products()}) {
    const DType act = be->activation_dtype();
    const Tensor x = be->from_host({N, D}, xv, act), dy = be->from_host({N, O}, dyv, act), id = be->from_host({N}, ids);
    auto run = [&](DType weights) {
      const Tensor w = be->from_host({O, D}, wv, weights), table = be->from_host({V, D}, tv, weights),
                   norm = be->from_host({D}, nv, weights);
      Tensor y = be->empty({N, O}, act), dx = be->zeros({N, D}, act), dw = be->zeros({O, D}), e = be->empty({N, D}, act),
             n = be->empty({N, D}, act), rstd = be->empty({N}), dn = be->zeros({N, D}, act), dnw = be->zeros({D});
      be->matmul_forward(y, x, w);
      be->matmul_add_forward(y, y, x, w);
      be->matmul_backward(dx, dw, dy, x, w);
      be->embedding_forward(e, id, table);
      be->rmsnorm_forward(n, rstd, x, norm, 1e-5f);
      be->rmsnorm_backward(dn, dnw, x, x, norm, rstd);
      std::vector<float> all;
      for (const Tensor* t : {&y, &dx, &dw, &e, &n, &dn, &dnw}) {
        auto h = be->to_host_f32(*t);
        all.insert(all.end(), h.begin(), h.end());
      }
      return all;
    };
    EXPECT_EQ(run(DType::kBF16), run(DType::kF32)) << be->name() << " activations " << dtype_name(act);
  }
}

TEST_F(CudaBf16Ops, RopeAttention) {
  const int64_t B = 2, T = 150, H = 4, KV = 2;
  for (int64_t hd : {32, 64}) {  // warp-per-row and tiled kernels
    auto cs = random({T, hd / 2}, false), sn = random({T, hd / 2}, false);
    auto q = random({B, T, H, hd}), k = random({B, T, KV, hd}), v = random({B, T, KV, hd});
    cpu_->rope_forward(q.c, cs.c, sn.c);
    gpu_->rope_forward(q.g, cs.g, sn.g);
    expect_close(q, "rope forward");
    auto out = random({B, T, H, hd}), lse = random({B, H, T}, false);
    cpu_->attention_forward(out.c, lse.c, q.c, k.c, v.c);
    gpu_->attention_forward(out.g, lse.g, q.g, k.g, v.g);
    expect_close(out, "attention forward");
    expect_close(lse, "attention lse", 1e-4);
    auto dout = random({B, T, H, hd}), dq = random(q.c.shape()), dk = random(k.c.shape()), dv = random(v.c.shape());
    cpu_->attention_backward(dq.c, dk.c, dv.c, dout.c, q.c, k.c, v.c, out.c, lse.c);
    gpu_->attention_backward(dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, out.g, lse.g);
    expect_close(dq, "attention backward dq");
    expect_close(dk, "attention backward dk");
    expect_close(dv, "attention backward dv");
    cpu_->rope_backward(dq.c, cs.c, sn.c);
    gpu_->rope_backward(dq.g, cs.g, sn.g);
    expect_close(dq, "rope backward");
  }
}

TEST_F(CudaBf16Ops, MatmulAddForward) {
  const int64_t N = 130, I = 256, O = 192;
  auto x = random({N, I}), W = random({O, I}, false), r = random({N, O}), y = random({N, O});
  cpu_->matmul_add_forward(y.c, r.c, x.c, W.c);
  gpu_->matmul_add_forward(y.g, r.g, x.g, W.g);  // cuBLASLt with a separate addend
  expect_close(y, "residual + product");
  cpu_->matmul_add_forward(r.c, r.c, x.c, W.c);
  gpu_->matmul_add_forward(r.g, r.g, x.g, W.g);  // in place (cublasGemmEx, beta 1)
  expect_close(r, "in place");
  // An output view off the 256-byte alignment cuBLASLt's algorithm assumes (row 1 of O bf16 values):
  // copied and added in place instead.
  auto r2 = random({N, O}), big = random({N + 1, O});
  Pair y2{big.c.narrow(1, N), big.g.narrow(1, N)};
  cpu_->matmul_add_forward(y2.c, r2.c, x.c, W.c);
  gpu_->matmul_add_forward(y2.g, r2.g, x.g, W.g);
  expect_close(y2, "unaligned output view");
}

// Grad::kWrite overwrites the gradient buffers (cuDNN writes straight into them; the other kernels
// cast their fp32 scratch instead of adding it): the same values as adding into zeros.
TEST_F(CudaBf16Ops, BackwardWriteModeOverwrites) {
  const int64_t N = 256, D = 128, O = 96;
  auto x = random({N, D}), W = random({O, D}, false), dy = random({N, O});
  Tensor dx0 = gpu_->zeros({N, D}, DType::kBF16), dw0 = gpu_->zeros({O, D});
  gpu_->matmul_backward(dx0, dw0, dy.g, x.g, W.g);
  auto dx = random({N, D}), dw = random({O, D}, false);
  gpu_->matmul_backward(dx.g, dw.g, dy.g, x.g, W.g, Grad::kWrite, Grad::kWrite);
  EXPECT_EQ(gpu_->to_host_f32(dx.g), gpu_->to_host_f32(dx0));
  EXPECT_EQ(gpu_->to_host_f32(dw.g), gpu_->to_host_f32(dw0));

  const int64_t B = 2, H = 4, KV = 2, hd = 64;
  for (int64_t T : {128, 150}) {  // cuDNN (T a multiple of 64, where built with it), agpt's kernels
    SCOPED_TRACE(cat("T=", T));
    auto q = random({B, T, H, hd}), k = random({B, T, KV, hd}), v = random({B, T, KV, hd});
    auto out = random({B, T, H, hd}), lse = random({B, H, T}, false), dout = random({B, T, H, hd});
    gpu_->attention_forward(out.g, lse.g, q.g, k.g, v.g);
    Tensor dq0 = gpu_->zeros(q.g.shape(), DType::kBF16), dk0 = gpu_->zeros(k.g.shape(), DType::kBF16),
           dv0 = gpu_->zeros(v.g.shape(), DType::kBF16);
    gpu_->attention_backward(dq0, dk0, dv0, dout.g, q.g, k.g, v.g, out.g, lse.g);
    auto dq = random(q.c.shape()), dk = random(k.c.shape()), dv = random(v.c.shape());
    gpu_->attention_backward(dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, out.g, lse.g, Grad::kWrite);
    EXPECT_EQ(gpu_->to_host_f32(dq.g), gpu_->to_host_f32(dq0));
    EXPECT_EQ(gpu_->to_host_f32(dk.g), gpu_->to_host_f32(dk0));
    EXPECT_EQ(gpu_->to_host_f32(dv.g), gpu_->to_host_f32(dv0));
  }
}

TEST_F(CudaBf16Ops, SwigluAddCrossEntropy) {
  const int64_t N = 64, F = 200, V = 3000;
  auto gate = random({N, F}, true, -5, 5), up = random({N, F}), out = random({N, F});
  cpu_->swiglu_forward(out.c, gate.c, up.c);
  gpu_->swiglu_forward(out.g, gate.g, up.g);
  expect_close(out, "swiglu forward");
  auto d = random({N, F}), dg = random({N, F}), du = random({N, F});
  cpu_->swiglu_backward(dg.c, du.c, d.c, gate.c, up.c);
  gpu_->swiglu_backward(dg.g, du.g, d.g, gate.g, up.g);
  expect_close(dg, "swiglu backward dgate");
  expect_close(du, "swiglu backward dup");
  auto a = random({N, F});
  cpu_->add(a.c, a.c, up.c);
  gpu_->add(a.g, a.g, up.g);
  expect_close(a, "add");

  auto logits = random({N, V}, true, -6, 6);
  std::vector<int32_t> y(N);
  for (auto& t : y) t = rng_.below(static_cast<int32_t>(V));
  y[5] = -100;
  Tensor yc = cpu_->from_host({N}, y), yg = gpu_->from_host({N}, y);
  auto losses = random({N}, false), lse = random({N}, false);
  cpu_->cross_entropy_forward(losses.c, lse.c, logits.c, yc);
  gpu_->cross_entropy_forward(losses.g, lse.g, logits.g, yg);
  expect_close(losses, "cross-entropy losses", 1e-5);  // fp32 math on identical bf16 logits
  cpu_->cross_entropy_backward(logits.c, logits.c, lse.c, yc, 1.0f / N);
  gpu_->cross_entropy_backward(logits.g, logits.g, lse.g, yg, 1.0f / N);
  expect_close(logits, "cross-entropy backward (in place)");
}

TEST_F(CudaBf16Ops, ActivationTypeIsChecked) {
  Tensor x32 = gpu_->zeros({4, 8}), w = gpu_->zeros({3, 8}), y = gpu_->empty({4, 3}, DType::kBF16);
  EXPECT_THROW(gpu_->matmul_forward(y, x32, w), Error);  // an fp32 activation given to a bf16 backend
}

}  // namespace
}  // namespace agpt::ops
