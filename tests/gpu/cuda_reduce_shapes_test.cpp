// The row reductions of src/ops/cuda/reduce.cu at shapes that take each of their paths: 8-wide
// kernels (rows a multiple of 8 elements) with one to several groups per thread and several rows
// per block, the one-element fallbacks (rows not a multiple of 8, rows too long for registers),
// odd row counts that leave blocks and weight-gradient chunks partly empty, ignored targets, a
// vocabulary shard, rows with -inf logits and rows whose maximum keeps growing (the one-pass
// logsumexp rescales), in-place and out-of-place cross-entropy backward, and short and long
// sum_squares inputs. fp32 against the CPU reference to rounding (tolerances of cuda_ops_test),
// bf16 activations to 1e-2 (cuda_bf16_ops_test); and every op twice: bitwise equal results.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "gpu_test_util.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::ops {
namespace {

using gpu_testing::Rng;

class CudaReduceShapes : public ::testing::TestWithParam<bool> {  // true: bf16 activations
 protected:
  void SetUp() override {
    AGPT_REQUIRE_GPU();
    bf16_ = GetParam();
    cpu_ = make_cpu_backend(0);
    gpu_ = bf16_ ? make_cuda_backend(0, CudaOptions{.matmul = "bf16", .activations = "bf16"}) : make_cuda_backend(0);
  }
  struct Pair {
    Tensor c, g;
  };
  // The same values on both sides (rounded to bf16 first for a bf16 activation).
  Pair both(const Shape& shape, std::vector<float> v, bool act) {
    if (bf16_ && act)
      for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
    return {cpu_->from_host(shape, v), gpu_->from_host(shape, v, act && bf16_ ? DType::kBF16 : DType::kF32)};
  }
  Pair random(const Shape& shape, bool act, double lo = -1, double hi = 1) {
    return both(shape, gpu_testing::random_floats(static_cast<size_t>(shape_numel(shape)), rng_, lo, hi), act);
  }
  // fp32: `tol` (rounding); bf16 activations: 1e-2, or `bf16_tol` where given.
  void expect_close(const Pair& p, double tol, const std::string& what, double bf16_tol = 1e-2) {
    EXPECT_REL_L2(gpu_->to_host_f32(p.g), cpu_->to_host_f32(p.c), bf16_ ? bf16_tol : tol, what.c_str());
  }
  std::vector<float> host(const Tensor& t) { return gpu_->to_host_f32(t); }

  bool bf16_ = false;
  std::unique_ptr<Backend> cpu_, gpu_;
  Rng rng_{2024};
};

TEST_P(CudaReduceShapes, RmsNorm) {
  // D % 8 == 0: 8-wide (D/8 groups: 1 ... 2048 over 32..256 threads a row, 1..8 groups a thread;
  // the backward keeps at most 2 and falls back beyond); other D: one element at a time; 16392:
  // too long for the 8-wide forward. N: one row, odd counts, a partly filled last chunk.
  const std::vector<std::pair<int64_t, int64_t>> shapes{{1, 8},   {37, 64},   {130, 768}, {33, 1000}, {17, 2048},
                                                        {9, 4096}, {5, 8200}, {3, 16392}, {7, 100},   {19, 1},
                                                        {40, 2047}};
  for (auto [N, D] : shapes) {
    const std::string at = " N=" + std::to_string(N) + " D=" + std::to_string(D);
    auto x = random({N, D}, true, -3, 3), w = random({D}, false, 0.5, 1.5);
    auto out = random({N, D}, true), rstd = random({N}, false);
    cpu_->rmsnorm_forward(out.c, rstd.c, x.c, w.c, 1e-5f);
    gpu_->rmsnorm_forward(out.g, rstd.g, x.g, w.g, 1e-5f);
    expect_close(out, 1e-6, "rmsnorm forward" + at);
    expect_close(rstd, 1e-6, "rmsnorm rstd" + at, 1e-5);  // fp32 statistics of the same bf16 inputs
    auto dout = random({N, D}, true), dx = random({N, D}, true), dw = random({D}, false);
    cpu_->rmsnorm_backward(dx.c, dw.c, dout.c, x.c, w.c, rstd.c);
    gpu_->rmsnorm_backward(dx.g, dw.g, dout.g, x.g, w.g, rstd.g);
    expect_close(dx, 1e-5, "rmsnorm backward dx" + at);
    expect_close(dw, 1e-5, "rmsnorm backward dw" + at);
  }
}

// Logits in [-8, 8) plus, in some rows, -inf columns (not the target) and an increasing ramp (the
// running maximum grows at every step).
std::vector<float> ce_logits(int64_t N, int64_t V, Rng& rng, const std::vector<int32_t>& y, int64_t begin) {
  std::vector<float> v = gpu_testing::random_floats(static_cast<size_t>(N * V), rng, -8, 8);
  for (int64_t n = 0; n < N; ++n) {
    float* row = v.data() + n * V;
    if (n % 5 == 1)
      for (int64_t j = 0; j < V; j += 3)
        if (j != y[n] - begin) row[j] = -INFINITY;
    if (n % 7 == 2)
      for (int64_t j = 0; j < V; ++j) row[j] = -30.0f + 60.0f * static_cast<float>(j) / static_cast<float>(V);
  }
  return v;
}

TEST_P(CudaReduceShapes, CrossEntropy) {
  struct Case {
    int64_t N, V, begin;  // begin -1: the whole vocabulary
    bool in_place;
  };
  // V % 8 == 0: 8-wide kernels; other V: one element at a time. Shards: targets mostly elsewhere.
  const std::vector<Case> cases{{37, 5000, -1, true},  {37, 5001, -1, true},  {9, 50304, -1, false},
                                {16, 8, -1, true},      {21, 100, -1, false},  {33, 2000, 3000, true},
                                {33, 1999, 3000, false}, {12, 4096, 0, true}};
  for (const Case& k : cases) {
    const std::string at = " N=" + std::to_string(k.N) + " V=" + std::to_string(k.V) +
                           (k.begin >= 0 ? " shard@" + std::to_string(k.begin) : "") +
                           (k.in_place ? " in place" : "");
    const int64_t begin = k.begin < 0 ? 0 : k.begin;
    const int32_t range = static_cast<int32_t>(k.begin < 0 ? k.V : 3 * k.V + begin);
    std::vector<int32_t> y(static_cast<size_t>(k.N));
    for (auto& t : y) t = rng_.below(range);
    y[3] = -100;  // ignored
    if (k.N > 6) y[6] = static_cast<int32_t>(begin + k.V - 1);  // the last column
    auto logits = both({k.N, k.V}, ce_logits(k.N, k.V, rng_, y, begin), true);
    Tensor yc = cpu_->from_host({k.N}, y), yg = gpu_->from_host({k.N}, y);
    auto losses = random({k.N}, false), lse = random({k.N}, false);
    cpu_->cross_entropy_forward(losses.c, lse.c, logits.c, yc, k.begin);
    gpu_->cross_entropy_forward(losses.g, lse.g, logits.g, yg, k.begin);
    expect_close(losses, 1e-5, "cross-entropy losses" + at, 1e-5);  // fp32 math on identical logits
    expect_close(lse, 1e-6, "cross-entropy lse" + at, 1e-6);
    EXPECT_EQ(host(losses.g)[3], 0.0f) << at;
    // A shard's backward takes the whole vocabulary's logsumexp.
    Pair total = k.begin < 0 ? lse : random({k.N}, false, 8, 9);
    if (k.in_place) {
      cpu_->cross_entropy_backward(logits.c, logits.c, total.c, yc, 1.0f / k.N, k.begin);
      gpu_->cross_entropy_backward(logits.g, logits.g, total.g, yg, 1.0f / k.N, k.begin);
      expect_close(logits, 1e-5, "cross-entropy backward" + at);
    } else {
      auto d = random({k.N, k.V}, true);  // overwritten, not added to
      cpu_->cross_entropy_backward(d.c, logits.c, total.c, yc, 1.0f / k.N, k.begin);
      gpu_->cross_entropy_backward(d.g, logits.g, total.g, yg, 1.0f / k.N, k.begin);
      expect_close(d, 1e-5, "cross-entropy backward" + at);
    }
  }
}

// The fused forward + backward (training's loss) against the two ops: the same bits for losses,
// lse and the gradient, 8-wide rows (fused kernel) and others (fallback), in place and not, with
// an ignored row and a target in the last column. Rows that shared memory holds whole (GPT-2's
// vocabulary in bf16) and rows it holds only the start of (Llama 3's 128,256: the rest is read
// again; fp32 at 60,000).
TEST_P(CudaReduceShapes, CrossEntropyFusedEqualsTwoOps) {
  for (auto [N, V, in_place] : std::vector<std::tuple<int64_t, int64_t, bool>>{{37, 5000, true},
                                                                              {9, 50304, false},
                                                                              {16, 8, true},
                                                                              {21, 100, false},
                                                                              {7, 5001, true},
                                                                              {6, 128256, true},
                                                                              {6, 60000, false}}) {
    const std::string at = " N=" + std::to_string(N) + " V=" + std::to_string(V) + (in_place ? " in place" : "");
    std::vector<int32_t> y(static_cast<size_t>(N));
    for (auto& t : y) t = rng_.below(static_cast<int32_t>(V));
    y[3] = -100;
    y[5] = static_cast<int32_t>(V - 1);
    auto logits = both({N, V}, ce_logits(N, V, rng_, y, 0), true);
    Tensor yg = gpu_->from_host({N}, y);
    const DType act = gpu_->activation_dtype();
    Tensor l1 = gpu_->zeros({N}), s1 = gpu_->zeros({N}), l2 = gpu_->zeros({N}), s2 = gpu_->zeros({N});
    Tensor two = gpu_->empty({N, V}, act), fused_in = gpu_->empty({N, V}, act);
    gpu_->copy(two, logits.g);
    gpu_->copy(fused_in, logits.g);
    gpu_->cross_entropy_forward(l1, s1, two, yg);
    gpu_->cross_entropy_backward(two, two, s1, yg, 1.0f / 34);
    Tensor fused_out = in_place ? fused_in : gpu_->zeros({N, V}, act);
    gpu_->cross_entropy_forward_backward(l2, s2, fused_out, fused_in, yg, 1.0f / 34);
    EXPECT_EQ(host(l2), host(l1)) << "losses" << at;
    EXPECT_EQ(host(s2), host(s1)) << "lse" << at;
    EXPECT_TRUE(host(fused_out) == host(two)) << "gradient" << at;
    EXPECT_EQ(host(l2)[3], 0.0f) << at;
  }
}

TEST_P(CudaReduceShapes, SumSquares) {
  for (int64_t n : {1, 3, 333, 16383, 16384, 16385, 100000, 3000001}) {
    auto a = random({n}, false);
    std::vector<Tensor> tc{a.c}, tg{a.g};
    const double sc = cpu_->sum_squares(tc), sg = gpu_->sum_squares(tg);
    EXPECT_NEAR(sg, sc, 1e-9 * sc) << "n=" << n;
  }
  auto a = random({3000001}, false), b = random({7}, false), c = random({65536}, false);
  std::vector<Tensor> tc{a.c, b.c, c.c}, tg{a.g, b.g, c.g};
  const double sc = cpu_->sum_squares(tc), sg = gpu_->sum_squares(tg);
  EXPECT_NEAR(sg, sc, 1e-9 * sc) << "three tensors";
}

// Every op twice on the same inputs: bitwise equal outputs (no atomics, fixed summation orders).
TEST_P(CudaReduceShapes, Deterministic) {
  for (auto [N, D] : std::vector<std::pair<int64_t, int64_t>>{{333, 2048}, {77, 1000}, {50, 4096}}) {
    auto x = random({N, D}, true, -3, 3), w = random({D}, false, 0.5, 1.5), dout = random({N, D}, true);
    auto dx0 = random({N, D}, true), dw0 = random({D}, false);
    std::vector<float> out_h[2], rstd_h[2], dx_h[2], dw_h[2];
    for (int r = 0; r < 2; ++r) {
      Tensor out = gpu_->empty({N, D}, gpu_->activation_dtype()), rstd = gpu_->empty({N});
      Tensor dx = gpu_->empty({N, D}, gpu_->activation_dtype()), dw = gpu_->empty({D});
      gpu_->copy(dx, dx0.g);
      gpu_->copy(dw, dw0.g);
      gpu_->rmsnorm_forward(out, rstd, x.g, w.g, 1e-5f);
      gpu_->rmsnorm_backward(dx, dw, dout.g, x.g, w.g, rstd);
      out_h[r] = host(out), rstd_h[r] = host(rstd), dx_h[r] = host(dx), dw_h[r] = host(dw);
    }
    EXPECT_EQ(out_h[0], out_h[1]) << "rmsnorm forward D=" << D;
    EXPECT_EQ(rstd_h[0], rstd_h[1]) << "rmsnorm rstd D=" << D;
    EXPECT_EQ(dx_h[0], dx_h[1]) << "rmsnorm dx D=" << D;
    EXPECT_EQ(dw_h[0], dw_h[1]) << "rmsnorm dw D=" << D;
  }
  for (int64_t V : {50304, 5001}) {
    const int64_t N = 64;
    std::vector<int32_t> y(N);
    for (auto& t : y) t = rng_.below(static_cast<int32_t>(V));
    y[0] = -100;
    auto logits = random({N, V}, true, -10, 10);
    Tensor yg = gpu_->from_host({N}, y);
    std::vector<float> loss_h[2], lse_h[2], d_h[2];
    for (int r = 0; r < 2; ++r) {
      Tensor losses = gpu_->empty({N}), lse = gpu_->empty({N}), d = gpu_->empty({N, V}, gpu_->activation_dtype());
      gpu_->cross_entropy_forward(losses, lse, logits.g, yg);
      gpu_->cross_entropy_backward(d, logits.g, lse, yg, 1.0f / N);
      loss_h[r] = host(losses), lse_h[r] = host(lse), d_h[r] = host(d);
    }
    EXPECT_EQ(loss_h[0], loss_h[1]) << "cross-entropy losses V=" << V;
    EXPECT_EQ(lse_h[0], lse_h[1]) << "cross-entropy lse V=" << V;
    EXPECT_EQ(d_h[0], d_h[1]) << "cross-entropy backward V=" << V;
  }
  auto a = random({5000003}, false), b = random({2048}, false);
  std::vector<Tensor> tg{a.g, b.g};
  const double s0 = gpu_->sum_squares(tg), s1 = gpu_->sum_squares(tg);
  EXPECT_EQ(s0, s1) << "sum_squares";
}

INSTANTIATE_TEST_SUITE_P(Activations, CudaReduceShapes, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "bf16" : "fp32"; });

}  // namespace
}  // namespace agpt::ops
