// Every op of the CUDA backend against the CPU reference on the same random inputs. fp32 on both
// sides, so the only differences are summation order and library rounding: tolerance 1e-5 on
// ‖gpu − cpu‖/‖cpu‖ (1e-4 for the long sums of cross-entropy over a vocabulary and attention over
// long sequences). Backward ops must ADD into their outputs, so gradients start from noise.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <span>

#include "gpu_test_util.h"
#include "base/error.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::ops {
namespace {

using gpu_testing::random_floats;
using gpu_testing::Rng;

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    AGPT_REQUIRE_GPU();
    cpu_ = make_cpu_backend(0);
    gpu_ = make_cuda_backend(0);
  }
  // The same host values on both backends.
  struct Pair {
    Tensor c, g;
  };
  Pair both(const Shape& shape, const std::vector<float>& v) {
    return {cpu_->from_host(shape, v), gpu_->from_host(shape, v)};
  }
  Pair both_i32(const Shape& shape, const std::vector<int32_t>& v) {
    return {cpu_->from_host(shape, v), gpu_->from_host(shape, v)};
  }
  Pair random(const Shape& shape, double lo = -1, double hi = 1) {
    return both(shape, random_floats(static_cast<size_t>(shape_numel(shape)), rng_, lo, hi));
  }
  void expect_close(const Pair& p, double tol, const char* what) {
    EXPECT_REL_L2(gpu_->to_host_f32(p.g), cpu_->to_host_f32(p.c), tol, what);
  }

  std::unique_ptr<Backend> cpu_, gpu_;
  Rng rng_{42};
};

TEST_F(CudaOps, Embedding) {
  const int64_t N = 300, V = 97, D = 40;
  std::vector<int32_t> ids(N);
  for (auto& i : ids) i = rng_.below(11);  // many repeats: the backward sums rows per token
  auto id = both_i32({N}, ids);
  auto table = random({V, D});
  auto out = random({N, D});
  cpu_->embedding_forward(out.c, id.c, table.c);
  gpu_->embedding_forward(out.g, id.g, table.g);
  expect_close(out, 0, "embedding forward");
  auto dout = random({N, D});
  auto dtable = random({V, D});
  cpu_->embedding_backward(dtable.c, id.c, dout.c);
  gpu_->embedding_backward(dtable.g, id.g, dout.g);
  expect_close(dtable, 1e-6, "embedding backward");
  ids[7] = V;  // out of range: a clear error, not a wild write
  auto bad = gpu_->from_host({N}, ids);
  EXPECT_THROW(gpu_->embedding_forward(out.g, bad, table.g), Error);
}

// Vocabulary-parallel form (tensor parallelism): the table holds ids [40, 40 + V) only.
TEST_F(CudaOps, EmbeddingVocabularyShard) {
  const int64_t N = 300, V = 30, D = 40, begin = 40;
  std::vector<int32_t> ids(N);
  for (auto& i : ids) i = rng_.below(100);  // most ids belong to other shards
  auto id = both_i32({N}, ids);
  auto table = random({V, D});
  auto out = random({N, D});
  cpu_->embedding_forward(out.c, id.c, table.c, begin);
  gpu_->embedding_forward(out.g, id.g, table.g, begin);
  expect_close(out, 0, "sharded embedding forward");
  auto dout = random({N, D});
  auto dtable = random({V, D});
  cpu_->embedding_backward(dtable.c, id.c, dout.c, begin);
  gpu_->embedding_backward(dtable.g, id.g, dout.g, begin);
  expect_close(dtable, 1e-6, "sharded embedding backward");
}

TEST_F(CudaOps, RmsNorm) {
  for (int64_t D : {64, 1000, 2048}) {
    const int64_t N = 130;
    auto x = random({N, D}, -3, 3), w = random({D}, 0.5, 1.5);
    auto out = random({N, D}), rstd = random({N});
    cpu_->rmsnorm_forward(out.c, rstd.c, x.c, w.c, 1e-5f);
    gpu_->rmsnorm_forward(out.g, rstd.g, x.g, w.g, 1e-5f);
    expect_close(out, 1e-6, "rmsnorm forward");
    expect_close(rstd, 1e-6, "rmsnorm rstd");
    auto dout = random({N, D}), dx = random({N, D}), dw = random({D});
    cpu_->rmsnorm_backward(dx.c, dw.c, dout.c, x.c, w.c, rstd.c);
    gpu_->rmsnorm_backward(dx.g, dw.g, dout.g, x.g, w.g, rstd.g);
    expect_close(dx, 1e-5, "rmsnorm backward dx");
    expect_close(dw, 1e-5, "rmsnorm backward dw");
  }
}

TEST_F(CudaOps, Matmul) {
  const int64_t N = 129, I = 96, O = 200;
  auto x = random({N, I}), w = random({O, I});
  auto y = random({N, O});
  cpu_->matmul_forward(y.c, x.c, w.c);
  gpu_->matmul_forward(y.g, x.g, w.g);
  expect_close(y, 1e-6, "matmul forward");
  auto dy = random({N, O}), dx = random({N, I}), dw = random({O, I});
  cpu_->matmul_backward(dx.c, dw.c, dy.c, x.c, w.c);
  gpu_->matmul_backward(dx.g, dw.g, dy.g, x.g, w.g);
  expect_close(dx, 1e-6, "matmul backward dx");
  expect_close(dw, 1e-6, "matmul backward dw");
}

// TF32 and bf16 operands with fp32 accumulation: METHOD.md's expected errors (near 3e-4 for tf32,
// 1e-3..1e-2 for bf16), checked with margin.
TEST_F(CudaOps, MatmulReducedPrecision) {
  const int64_t N = 257, I = 512, O = 384;
  for (auto [precision, tol] : {std::pair<const char*, double>{"tf32", 2e-3}, {"bf16", 1e-2}}) {
    auto low = make_cuda_backend(0, CudaOptions{.matmul = precision});
    auto x = random({N, I}), w = random({O, I}), dy = random({N, O});
    auto y = random({N, O}), dx = random({N, I}), dw = random({O, I});
    Tensor y16 = low->from_host({N, O}, gpu_->to_host_f32(y.g)), dx16 = low->from_host({N, I}, gpu_->to_host_f32(dx.g)),
           dw16 = low->from_host({O, I}, gpu_->to_host_f32(dw.g));
    Tensor x16 = low->from_host({N, I}, cpu_->to_host_f32(x.c)), w16 = low->from_host({O, I}, cpu_->to_host_f32(w.c)),
           dy16 = low->from_host({N, O}, cpu_->to_host_f32(dy.c));
    cpu_->matmul_forward(y.c, x.c, w.c);
    low->matmul_forward(y16, x16, w16);
    cpu_->matmul_backward(dx.c, dw.c, dy.c, x.c, w.c);
    low->matmul_backward(dx16, dw16, dy16, x16, w16);
    std::printf("    [%s]\n", precision);
    EXPECT_REL_L2(low->to_host_f32(y16), cpu_->to_host_f32(y.c), tol, "matmul forward");
    EXPECT_REL_L2(low->to_host_f32(dx16), cpu_->to_host_f32(dx.c), tol, "matmul backward dx");
    EXPECT_REL_L2(low->to_host_f32(dw16), cpu_->to_host_f32(dw.c), tol, "matmul backward dw");
  }
}

TEST_F(CudaOps, Rope) {
  const int64_t B = 2, T = 33, H = 3, hd = 16, P = 64;
  auto cs = random({P, hd / 2}), sn = random({P, hd / 2});
  for (int64_t pos0 : {0, 5}) {
    auto x = random({B, T, H, hd});
    cpu_->rope_forward(x.c, cs.c, sn.c, pos0);
    gpu_->rope_forward(x.g, cs.g, sn.g, pos0);
    expect_close(x, 1e-7, "rope forward");
    cpu_->rope_backward(x.c, cs.c, sn.c, pos0);
    gpu_->rope_backward(x.g, cs.g, sn.g, pos0);
    expect_close(x, 1e-7, "rope backward");
  }
}

// GQA with several head dims (lane widths 1, 2, 4) and sequence lengths.
TEST_F(CudaOps, Attention) {
  struct Case {
    int64_t B, T, H, KV, hd;
  };
  // hd 64 and 128 with T >= 16 take the tiled kernels (ragged last tiles included), the others the
  // warp-per-row kernels.
  for (Case c : {Case{2, 17, 4, 2, 32}, Case{1, 130, 6, 2, 64}, Case{2, 64, 4, 4, 128}, Case{1, 300, 2, 1, 48},
                 Case{2, 257, 8, 2, 64}, Case{1, 200, 4, 1, 128}, Case{3, 16, 2, 2, 64}}) {
    auto q = random({c.B, c.T, c.H, c.hd}), k = random({c.B, c.T, c.KV, c.hd}), v = random({c.B, c.T, c.KV, c.hd});
    auto out = random({c.B, c.T, c.H, c.hd}), lse = random({c.B, c.H, c.T});
    cpu_->attention_forward(out.c, lse.c, q.c, k.c, v.c);
    gpu_->attention_forward(out.g, lse.g, q.g, k.g, v.g);
    expect_close(out, 1e-5, "attention forward");
    expect_close(lse, 1e-6, "attention lse");
    auto dout = random({c.B, c.T, c.H, c.hd});
    auto dq = random(q.c.shape()), dk = random(k.c.shape()), dv = random(v.c.shape());
    cpu_->attention_backward(dq.c, dk.c, dv.c, dout.c, q.c, k.c, v.c, out.c, lse.c);
    gpu_->attention_backward(dq.g, dk.g, dv.g, dout.g, q.g, k.g, v.g, out.g, lse.g);
    expect_close(dq, 1e-5, "attention backward dq");
    expect_close(dk, 1e-5, "attention backward dk");
    expect_close(dv, 1e-5, "attention backward dv");
  }
}

// Queries at the end of a longer key sequence (the KV-cache case of generation).
TEST_F(CudaOps, AttentionQueriesAfterCachedKeys) {
  const int64_t B = 1, Tk = 140, H = 4, KV = 2;
  for (auto [Tq, hd] : {std::pair<int64_t, int64_t>{1, 32}, {7, 32}, {1, 64}, {20, 64}, {77, 128}}) {
    auto q = random({B, Tq, H, hd}), k = random({B, Tk, KV, hd}), v = random({B, Tk, KV, hd});
    auto out = random({B, Tq, H, hd}), lse = random({B, H, Tq});
    cpu_->attention_forward(out.c, lse.c, q.c, k.c, v.c);
    gpu_->attention_forward(out.g, lse.g, q.g, k.g, v.g);
    expect_close(out, 1e-5, "attention forward, cached keys");
  }
}

TEST_F(CudaOps, SwigluAddScale) {
  const Shape S{40, 25};
  auto gate = random(S, -6, 6), up = random(S);
  auto out = random(S);
  cpu_->swiglu_forward(out.c, gate.c, up.c);
  gpu_->swiglu_forward(out.g, gate.g, up.g);
  expect_close(out, 1e-6, "swiglu forward");
  auto dout = random(S), dg = random(S), du = random(S);
  cpu_->swiglu_backward(dg.c, du.c, dout.c, gate.c, up.c);
  gpu_->swiglu_backward(dg.g, du.g, dout.g, gate.g, up.g);
  expect_close(dg, 1e-6, "swiglu backward dgate");
  expect_close(du, 1e-6, "swiglu backward dup");
  auto x = random(S);  // identical inputs: add and scale are exact
  cpu_->add(x.c, x.c, up.c);
  gpu_->add(x.g, x.g, up.g);
  expect_close(x, 0, "add in place");
  cpu_->scale(x.c, 0.37f);
  gpu_->scale(x.g, 0.37f);
  expect_close(x, 0, "scale");
}

TEST_F(CudaOps, CrossEntropy) {
  const int64_t N = 37, V = 5000;
  auto logits = random({N, V}, -8, 8);
  std::vector<int32_t> y(N);
  for (auto& t : y) t = rng_.below(V);
  y[3] = -100;  // ignored
  auto targets = both_i32({N}, y);
  auto losses = random({N}), lse = random({N});
  cpu_->cross_entropy_forward(losses.c, lse.c, logits.c, targets.c);
  gpu_->cross_entropy_forward(losses.g, lse.g, logits.g, targets.g);
  expect_close(losses, 1e-5, "cross-entropy losses");
  expect_close(lse, 1e-6, "cross-entropy lse");
  EXPECT_EQ(gpu_->to_host_f32(losses.g)[3], 0.0f);
  // In place, as the model does it.
  cpu_->cross_entropy_backward(logits.c, logits.c, lse.c, targets.c, 1.0f / N);
  gpu_->cross_entropy_backward(logits.g, logits.g, lse.g, targets.g, 1.0f / N);
  expect_close(logits, 1e-5, "cross-entropy backward");
  y[0] = static_cast<int32_t>(V);
  auto bad = gpu_->from_host({N}, y);
  EXPECT_THROW(gpu_->cross_entropy_forward(losses.g, lse.g, logits.g, bad), Error);
}

TEST_F(CudaOps, CrossEntropyVocabularyShard) {
  const int64_t N = 37, V = 2000, begin = 3000;
  auto logits = random({N, V}, -8, 8);
  std::vector<int32_t> y(N);
  for (auto& t : y) t = rng_.below(6000);  // about a third in this shard
  y[3] = -100;
  auto targets = both_i32({N}, y);
  auto losses = random({N}), lse = random({N});
  cpu_->cross_entropy_forward(losses.c, lse.c, logits.c, targets.c, begin);
  gpu_->cross_entropy_forward(losses.g, lse.g, logits.g, targets.g, begin);
  expect_close(losses, 1e-5, "sharded cross-entropy losses");
  expect_close(lse, 1e-6, "sharded cross-entropy lse");
  auto total_lse = random({N}, 8, 9);  // backward takes the whole vocabulary's logsumexp
  cpu_->cross_entropy_backward(logits.c, logits.c, total_lse.c, targets.c, 1.0f / N, begin);
  gpu_->cross_entropy_backward(logits.g, logits.g, total_lse.g, targets.g, 1.0f / N, begin);
  expect_close(logits, 1e-5, "sharded cross-entropy backward");
}

TEST_F(CudaOps, SumSquaresAndAdamW) {
  auto a = random({100000}), b = random({333});
  std::vector<Tensor> tc{a.c, b.c}, tg{a.g, b.g};
  double sc = cpu_->sum_squares(tc), sg = gpu_->sum_squares(tg);
  EXPECT_NEAR(sg, sc, 1e-9 * sc);
  EXPECT_EQ(sg, gpu_->sum_squares(tg)) << "sum_squares must be deterministic";
  const int64_t n = 5000;
  auto p = random({n}), g = random({n}), m = random({n}, -0.1, 0.1), v = random({n}, 0, 0.01);
  AdamWStep s;
  s.lr = 1e-2, s.weight_decay = 0.1, s.step = 3, s.grad_scale = 0.5f;
  for (int i = 0; i < 3; ++i) {
    cpu_->adamw(p.c, g.c, m.c, v.c, s);
    gpu_->adamw(p.g, g.g, m.g, v.g, s);
    s.step++;
  }
  expect_close(p, 1e-6, "adamw param");
  expect_close(m, 1e-6, "adamw m");
  expect_close(v, 1e-6, "adamw v");
}

// The multi-tensor update (one launch over 64Ki-float chunks of all tensors) against adamw() on each
// tensor: bit-identical, with per-tensor weight decay, chunk boundaries, views that are not 16-byte
// aligned (scalar path), the bf16 weight copies it writes, steps that reuse its table with another
// learning rate, and its host work done ahead (prepare_adamw_many) for these items, with another
// learning rate than the update's, or for other items (the update then prepares its own).
TEST_F(CudaOps, AdamWManyIsBitIdenticalToOneByOne) {
  Rng rng(5);
  gpu_ = make_cuda_backend(0, CudaOptions{.matmul = "bf16", .activations = "bf16"});  // weight copies are bf16's
  const std::vector<int64_t> sizes{(int64_t{1} << 16) * 3 + 5, 7, 768, 1};
  auto make = [&](int64_t n, double lo, double hi) { return random_floats(static_cast<size_t>(n) + 1, rng, lo, hi); };
  struct Set {
    std::vector<Tensor> p, g, m, v;
  } one, many;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t n = sizes[i];
    auto p = make(n, -1, 1), g = make(n, -1, 1), m = make(n, -0.1, 0.1), v = make(n, 0, 0.01);
    for (Set* set : {&one, &many}) {
      // Tensor 2 is a view one float into its storage: not 16-byte aligned.
      auto put = [&](const std::vector<float>& h) {
        Tensor t = gpu_->from_host({n + 1}, h);
        return i == 2 ? t.view(1, {n}) : t.view(0, {n});
      };
      set->p.push_back(put(p)), set->g.push_back(put(g)), set->m.push_back(put(m)), set->v.push_back(put(v));
    }
  }
  AdamWStep s;
  s.lr = 3e-3, s.step = 1, s.grad_scale = 0.9f, s.weight_copy = true;
  for (int step = 0; step < 5; ++step, ++s.step) {
    s.lr = 3e-3 * (1.0 + 0.37 * step);  // a schedule: the decay factors change, the table does not
    std::vector<Backend::AdamWItem> items;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const double wd = i % 2 ? 0.0 : 0.1;
      AdamWStep si = s;
      si.weight_decay = wd;
      gpu_->adamw(one.p[i], one.g[i], one.m[i], one.v[i], si);
      items.push_back({&many.p[i], &many.g[i], &many.m[i], &many.v[i], wd});
    }
    AdamWStep ahead = s;
    ahead.lr = 1.0, ahead.grad_scale = 1.0f;  // what the preparation may not depend on
    if (step == 2 || step == 3) gpu_->prepare_adamw_many(items, step == 2 ? s : ahead);
    if (step == 3) gpu_->begin_weight_reuse(), gpu_->end_weight_reuse();  // a forward drops the preparation
    if (step == 4) gpu_->prepare_adamw_many(std::span(items).first(2), s);
    gpu_->adamw_many(items, s);
  }
  gpu_->begin_weight_reuse();
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(gpu_->to_host_f32(many.p[i]) == gpu_->to_host_f32(one.p[i])) << "param " << i;
    EXPECT_TRUE(gpu_->to_host_f32(many.m[i]) == gpu_->to_host_f32(one.m[i])) << "m " << i;
    EXPECT_TRUE(gpu_->to_host_f32(many.v[i]) == gpu_->to_host_f32(one.v[i])) << "v " << i;
    // The weight copy it wrote is what the next product uses: x·wᵀ with x = identity rows.
    const int64_t n = sizes[i];
    Tensor w = many.p[i].reshape({1, n}), x = gpu_->from_host({1, n}, std::vector<float>(static_cast<size_t>(n), 1.0f),
                                                             gpu_->activation_dtype());
    Tensor y = gpu_->zeros({1, 1}, gpu_->activation_dtype()), y_fresh = gpu_->zeros({1, 1}, gpu_->activation_dtype());
    gpu_->matmul_forward(y, x, w);
    gpu_->end_weight_reuse();
    gpu_->matmul_forward(y_fresh, x, w);
    gpu_->begin_weight_reuse();
    EXPECT_EQ(gpu_->to_host_f32(y), gpu_->to_host_f32(y_fresh)) << "weight copy of " << i;
  }
  gpu_->end_weight_reuse();
}

// Optimizer CPU offload: the moments stream through the device in 16 Mi-float chunks and three
// staging buffers; every element must get exactly the device update (same kernel, same constants),
// across chunk and parameter boundaries, the stage rotation, several steps and the empty tensor.
TEST_F(CudaOps, AdamWWithHostMomentsIsBitIdentical) {
  Rng rng(11);
  const std::vector<int64_t> sizes{5000, (int64_t{1} << 24) * 2 + 77, 0, 333, (int64_t{1} << 24) + 1};
  std::vector<Tensor> pd, pg, gd, md, vd;
  std::vector<Tensor> ph;  // the host-moment run's params
  std::vector<std::shared_ptr<float[]>> mh, vh;
  for (int64_t n : sizes) {
    auto p = random_floats(static_cast<size_t>(n), rng), g = random_floats(static_cast<size_t>(n), rng);
    auto m = random_floats(static_cast<size_t>(n), rng, -0.1, 0.1), v = random_floats(static_cast<size_t>(n), rng, 0, 0.01);
    pd.push_back(gpu_->from_host({n}, p));
    ph.push_back(gpu_->from_host({n}, p));
    gd.push_back(gpu_->from_host({n}, g));
    md.push_back(gpu_->from_host({n}, m));
    vd.push_back(gpu_->from_host({n}, v));
    mh.push_back(gpu_->allocate_host_f32(static_cast<size_t>(n)));
    vh.push_back(gpu_->allocate_host_f32(static_cast<size_t>(n)));
    std::copy(m.begin(), m.end(), mh.back().get());
    std::copy(v.begin(), v.end(), vh.back().get());
  }
  AdamWStep s;
  s.lr = 1e-2, s.step = 1, s.grad_scale = 0.7f;
  for (int step = 0; step < 3; ++step, ++s.step) {
    std::vector<Backend::HostMomentsItem> items;
    for (size_t i = 0; i < sizes.size(); ++i) {
      s.weight_decay = i % 2 ? 0.1 : 0.0;
      gpu_->adamw(pd[i], gd[i], md[i], vd[i], s);
      items.push_back({&ph[i], &gd[i], mh[i].get(), vh[i].get(), s.weight_decay});
    }
    gpu_->adamw_host_moments(items, s);
  }
  gpu_->synchronize();
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t n = static_cast<size_t>(sizes[i]);
    EXPECT_TRUE(gpu_->to_host_f32(ph[i]) == gpu_->to_host_f32(pd[i])) << "param " << i << " of " << n;
    EXPECT_TRUE(std::vector<float>(mh[i].get(), mh[i].get() + n) == gpu_->to_host_f32(md[i])) << "m " << i;
    EXPECT_TRUE(std::vector<float>(vh[i].get(), vh[i].get() + n) == gpu_->to_host_f32(vd[i])) << "v " << i;
  }
  // A changed moment is seen by the next update (the host memory is the state).
  std::vector<float> before = gpu_->to_host_f32(ph[3]);
  std::fill(mh[3].get(), mh[3].get() + 333, 0.0f);
  std::fill(vh[3].get(), vh[3].get() + 333, 0.0f);
  Backend::HostMomentsItem one{&ph[3], &gd[3], mh[3].get(), vh[3].get(), 0.0};
  gpu_->adamw_host_moments(std::span(&one, 1), s);
  auto m3 = gpu_->to_host_f32(md[3]), v3 = gpu_->to_host_f32(vd[3]);
  std::fill(m3.begin(), m3.end(), 0.0f), std::fill(v3.begin(), v3.end(), 0.0f);
  Tensor pr = gpu_->from_host({333}, before), mr = gpu_->from_host({333}, m3), vr = gpu_->from_host({333}, v3);
  s.weight_decay = 0.0;
  gpu_->adamw(pr, gd[3], mr, vr, s);
  EXPECT_TRUE(gpu_->to_host_f32(ph[3]) == gpu_->to_host_f32(pr));
}

// Uploads return without waiting for the GPU (page-locked staging): the host buffer may be reused
// at once, more uploads than staging slots queue behind each other, and a large upload still
// works. The ids' host copy serves the range checks: a bad id is still refused.
TEST_F(CudaOps, UploadsDoNotWaitAndStayCorrect) {
  std::vector<Tensor> ts;
  std::vector<int32_t> host(1000);
  for (int i = 0; i < 20; ++i) {
    for (size_t j = 0; j < host.size(); ++j) host[j] = static_cast<int32_t>(i * 1000 + j);
    ts.push_back(gpu_->from_host({1000}, std::span<const int32_t>(host)));
    std::fill(host.begin(), host.end(), -7);  // reused right away
  }
  for (int i = 0; i < 20; ++i) {
    std::vector<int32_t> got = gpu_->to_host_i32(ts[static_cast<size_t>(i)]);
    EXPECT_EQ(got[0], i * 1000) << i;
    EXPECT_EQ(got[999], i * 1000 + 999) << i;
  }
  std::vector<float> big(static_cast<size_t>(3) << 20, 1.5f);  // 12 MiB: above a staging slot
  Tensor b = gpu_->from_host({static_cast<int64_t>(big.size())}, big);
  std::fill(big.begin(), big.end(), 0.0f);
  EXPECT_EQ(gpu_->to_host_f32(b)[12345], 1.5f);
  Tensor table = gpu_->zeros({10, 4}), out = gpu_->zeros({2, 4});
  std::vector<int32_t> bad{3, 10};
  Tensor ids = gpu_->from_host({2}, std::span<const int32_t>(bad));
  EXPECT_THROW(gpu_->embedding_forward(out, ids, table), Error);
  std::vector<int32_t> good{3, 9};
  gpu_->upload(ids, good.data(), good.size() * sizeof(int32_t));  // the host copy follows the new upload
  EXPECT_NO_THROW(gpu_->embedding_forward(out, ids, table));
}

TEST_F(CudaOps, DeviceChecks) {
  auto x = cpu_->zeros({4, 4});
  auto y = gpu_->zeros({4, 4});
  EXPECT_THROW(gpu_->add(y, x, y), Error);  // a CPU tensor given to the GPU backend
  EXPECT_THROW(make_cuda_backend(999), Error);
}

}  // namespace
}  // namespace agpt::ops
