// Every CPU op checked twice: the forward against a plain double-precision implementation written
// here, and the backward against central finite differences of that double forward (h = 1e-6, so
// the numerical gradient is accurate to ~1e-9 and any error is the op's). Backward ops must ADD
// into their gradient buffers, so every test pre-fills them with noise and subtracts it afterwards.
// Tolerances: forward 2e-6, backward 1e-5 (‖got−want‖/‖want‖ and max|got−want|/max|want|).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>

#include "base/error.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::ops {
namespace {

using Vec = std::vector<double>;
using Inputs = std::vector<Vec>;
using Fn = std::function<Vec(const Inputs&)>;

struct Rng {
  uint64_t s;
  double uniform(double lo = -1, double hi = 1) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * static_cast<double>(s >> 11) * 0x1p-53;
  }
};

std::vector<float> random_floats(size_t n, Rng& rng, double lo = -1, double hi = 1) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}
Vec to_d(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

// ∂/∂inputs[k] of Σ_j w_j f(inputs)_j by central differences.
Vec numeric_grad(const Fn& f, Inputs inputs, size_t k, const Vec& w, double h = 1e-6) {
  Vec g(inputs[k].size());
  for (size_t i = 0; i < g.size(); ++i) {
    double x = inputs[k][i];
    inputs[k][i] = x + h;
    Vec up = f(inputs);
    inputs[k][i] = x - h;
    Vec down = f(inputs);
    inputs[k][i] = x;
    double s = 0;
    for (size_t j = 0; j < w.size(); ++j) s += w[j] * (up[j] - down[j]);
    g[i] = s / (2 * h);
  }
  return g;
}

void expect_close(const std::vector<float>& got, const Vec& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double d2 = 0, w2 = 0, dmax = 0, wmax = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = got[i] - want[i];
    d2 += d * d;
    w2 += want[i] * want[i];
    dmax = std::max(dmax, std::fabs(d));
    wmax = std::max(wmax, std::fabs(want[i]));
  }
  ASSERT_GT(wmax, 0) << what << ": reference is all zeros";
  EXPECT_LE(std::sqrt(d2 / w2), tol) << what << " (relative L2 error)";
  EXPECT_LE(dmax / wmax, tol) << what << " (max error / max |reference|)";
}

// got - before (the op's contribution to an accumulated buffer).
std::vector<float> minus(const std::vector<float>& got, const std::vector<float>& before) {
  std::vector<float> d(got.size());
  for (size_t i = 0; i < got.size(); ++i) d[i] = got[i] - before[i];
  return d;
}

constexpr double kFwdTol = 2e-6;
constexpr double kBwdTol = 1e-5;

class CpuOps : public ::testing::Test {
 protected:
  std::unique_ptr<Backend> be = make_cpu_backend(2);
  Rng rng{12345};
  Tensor put(const Shape& s, const std::vector<float>& v) { return be->from_host(s, v); }
};

// ---- references in double -----------------------------------------------------------------------------

Vec rmsnorm_ref(const Vec& x, const Vec& w, int64_t N, int64_t D, double eps) {
  Vec out(x.size());
  for (int64_t n = 0; n < N; ++n) {
    double ss = 0;
    for (int64_t i = 0; i < D; ++i) ss += x[n * D + i] * x[n * D + i];
    double r = 1 / std::sqrt(ss / D + eps);
    for (int64_t i = 0; i < D; ++i) out[n * D + i] = w[i] * x[n * D + i] * r;
  }
  return out;
}

Vec matmul_ref(const Vec& x, const Vec& w, int64_t N, int64_t I, int64_t O) {
  Vec y(static_cast<size_t>(N * O), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) y[n * O + o] += x[n * I + i] * w[o * I + i];
  return y;
}

// HF: out = x*cos + rotate_half(x)*sin with cos/sin repeated over both halves.
Vec rope_ref(const Vec& x, const Vec& cos, const Vec& sin, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0) {
  Vec out(x.size());
  int64_t half = hd / 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < hd; ++i) {
          size_t base = static_cast<size_t>(((b * T + t) * H + h) * hd);
          int64_t j = i % half, pos = pos0 + t;
          double rot = i < half ? -x[base + i + half] : x[base + i - half];
          out[base + i] = x[base + i] * cos[pos * half + j] + rot * sin[pos * half + j];
        }
  return out;
}

// Returns out [B,T,H,hd] followed by lse [B,H,T].
Vec attention_ref(const Vec& q, const Vec& k, const Vec& v, int64_t B, int64_t T, int64_t H, int64_t KV,
                  int64_t hd) {
  Vec out(static_cast<size_t>(B * T * H * hd), 0.0), lse(static_cast<size_t>(B * H * T));
  double scale = 1 / std::sqrt(static_cast<double>(hd));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      int64_t g = h / (H / KV);
      for (int64_t t = 0; t < T; ++t) {
        Vec s(static_cast<size_t>(t + 1));
        double m = -INFINITY;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += q[((b * T + t) * H + h) * hd + i] * k[((b * T + j) * KV + g) * hd + i];
          s[j] = d * scale;
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - m));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < hd; ++i)
            out[((b * T + t) * H + h) * hd + i] += s[j] / z * v[((b * T + j) * KV + g) * hd + i];
        lse[(b * H + h) * T + t] = m + std::log(z);
      }
    }
  out.insert(out.end(), lse.begin(), lse.end());
  return out;
}

// ---- tests ---------------------------------------------------------------------------------------------

TEST_F(CpuOps, Embedding) {
  const int64_t V = 7, D = 5;
  std::vector<int32_t> ids = {3, 0, 3, 6, 3, 1};
  auto table = random_floats(V * D, rng);
  Tensor t_ids = be->from_host({6}, std::span<const int32_t>(ids)), t_table = put({V, D}, table);
  Tensor out = be->empty({6, D});
  be->embedding_forward(out, t_ids, t_table);
  auto o = be->to_host_f32(out);
  for (size_t n = 0; n < ids.size(); ++n)
    for (int64_t i = 0; i < D; ++i) EXPECT_EQ(o[n * D + i], table[ids[n] * D + i]);

  auto w = random_floats(6 * D, rng);
  Fn f = [&](const Inputs& in) {
    Vec y(ids.size() * D);
    for (size_t n = 0; n < ids.size(); ++n)
      for (int64_t i = 0; i < D; ++i) y[n * D + i] = in[0][ids[n] * D + i];
    return y;
  };
  auto before = random_floats(V * D, rng);
  Tensor dtable = put({V, D}, before);
  be->embedding_backward(dtable, t_ids, put({6, D}, w));
  expect_close(minus(be->to_host_f32(dtable), before), numeric_grad(f, {to_d(table)}, 0, to_d(w)), kBwdTol,
               "dtable");

  std::vector<int32_t> bad = {0, 7};
  Tensor t_bad = be->from_host({2}, std::span<const int32_t>(bad));
  Tensor out2 = be->empty({2, D});
  EXPECT_THROW(be->embedding_forward(out2, t_bad, t_table), Error);
}

TEST_F(CpuOps, RmsNorm) {
  const int64_t N = 6, D = 37;
  const double eps = 1e-5;
  auto x = random_floats(N * D, rng, -2, 2), w = random_floats(D, rng, 0.5, 1.5);
  Tensor tx = put({N, D}, x), tw = put({D}, w), out = be->empty({N, D}), rstd = be->empty({N});
  be->rmsnorm_forward(out, rstd, tx, tw, static_cast<float>(eps));
  Fn f = [&](const Inputs& in) { return rmsnorm_ref(in[0], in[1], N, D, eps); };
  Inputs in = {to_d(x), to_d(w)};
  expect_close(be->to_host_f32(out), f(in), kFwdTol, "rmsnorm out");

  auto g = random_floats(N * D, rng);
  auto dx0 = random_floats(N * D, rng), dw0 = random_floats(D, rng);
  Tensor dx = put({N, D}, dx0), dw = put({D}, dw0);
  be->rmsnorm_backward(dx, dw, put({N, D}, g), tx, tw, rstd);
  expect_close(minus(be->to_host_f32(dx), dx0), numeric_grad(f, in, 0, to_d(g)), kBwdTol, "rmsnorm dx");
  expect_close(minus(be->to_host_f32(dw), dw0), numeric_grad(f, in, 1, to_d(g)), kBwdTol, "rmsnorm dw");
}

TEST_F(CpuOps, Matmul) {
  const int64_t N = 5, I = 7, O = 4;
  auto x = random_floats(N * I, rng), w = random_floats(O * I, rng);
  Tensor tx = put({N, I}, x), tw = put({O, I}, w), y = be->empty({N, O});
  be->matmul_forward(y, tx, tw);
  Fn f = [&](const Inputs& in) { return matmul_ref(in[0], in[1], N, I, O); };
  Inputs in = {to_d(x), to_d(w)};
  expect_close(be->to_host_f32(y), f(in), kFwdTol, "matmul y");

  auto g = random_floats(N * O, rng), dx0 = random_floats(N * I, rng), dw0 = random_floats(O * I, rng);
  Tensor dx = put({N, I}, dx0), dw = put({O, I}, dw0);
  be->matmul_backward(dx, dw, put({N, O}, g), tx, tw);
  expect_close(minus(be->to_host_f32(dx), dx0), numeric_grad(f, in, 0, to_d(g)), kBwdTol, "matmul dx");
  expect_close(minus(be->to_host_f32(dw), dw0), numeric_grad(f, in, 1, to_d(g)), kBwdTol, "matmul dw");

  Tensor wrong = be->empty({O, I + 1});
  EXPECT_THROW(be->matmul_forward(y, tx, wrong), Error);
}

TEST_F(CpuOps, MatmulAddForward) {
  const int64_t N = 5, I = 7, O = 4;
  auto x = random_floats(N * I, rng), w = random_floats(O * I, rng), r = random_floats(N * O, rng);
  Tensor tx = put({N, I}, x), tw = put({O, I}, w), tr = put({N, O}, r), y = be->empty({N, O});
  be->matmul_add_forward(y, tr, tx, tw);
  Vec want = matmul_ref(to_d(x), to_d(w), N, I, O);
  for (size_t i = 0; i < want.size(); ++i) want[i] += r[i];
  expect_close(be->to_host_f32(y), want, kFwdTol, "y = r + x·wᵀ");
  be->matmul_add_forward(tr, tr, tx, tw);  // in place
  EXPECT_EQ(be->to_host_f32(tr), be->to_host_f32(y));
  Tensor overlap = be->empty({N + 1, O});
  Tensor part = overlap.narrow(1, N), other = overlap.narrow(0, N);
  EXPECT_THROW(be->matmul_add_forward(part, other, tx, tw), Error);
}

// Grad::kWrite overwrites what the buffer held: the same gradient as adding into zeros.
TEST_F(CpuOps, BackwardWriteModeOverwrites) {
  const int64_t N = 6, I = 5, O = 3;
  Tensor x = put({N, I}, random_floats(N * I, rng)), w = put({O, I}, random_floats(O * I, rng)),
         dy = put({N, O}, random_floats(N * O, rng));
  Tensor dx_add = be->zeros({N, I}), dw_add = be->zeros({O, I});
  be->matmul_backward(dx_add, dw_add, dy, x, w);
  Tensor dx = put({N, I}, random_floats(N * I, rng)), dw = put({O, I}, random_floats(O * I, rng));
  be->matmul_backward(dx, dw, dy, x, w, Grad::kWrite, Grad::kWrite);
  EXPECT_EQ(be->to_host_f32(dx), be->to_host_f32(dx_add));
  EXPECT_EQ(be->to_host_f32(dw), be->to_host_f32(dw_add));
  // Mixed: dx written, dw added to.
  Tensor dw_twice = put({O, I}, be->to_host_f32(dw_add));
  be->matmul_backward(dx, dw_twice, dy, x, w, Grad::kWrite, Grad::kAdd);
  Vec doubled = to_d(be->to_host_f32(dw_add));
  for (double& v : doubled) v *= 2;
  expect_close(be->to_host_f32(dw_twice), doubled, kFwdTol, "dw added");
  // An empty product writes zeros.
  Tensor dw_empty = put({O, I}, random_floats(O * I, rng)), none;
  be->matmul_backward(none, dw_empty, be->empty({0, O}), be->empty({0, I}), w, Grad::kWrite, Grad::kWrite);
  EXPECT_EQ(be->to_host_f32(dw_empty), std::vector<float>(O * I, 0.0f));

  const int64_t B = 2, T = 4, H = 2, KV = 1, hd = 4;
  Tensor q = put({B, T, H, hd}, random_floats(B * T * H * hd, rng)), k = put({B, T, KV, hd}, random_floats(B * T * KV * hd, rng)),
         v = put({B, T, KV, hd}, random_floats(B * T * KV * hd, rng)), out = be->empty(q.shape()), lse = be->empty({B, H, T});
  be->attention_forward(out, lse, q, k, v);
  Tensor g = put(q.shape(), random_floats(B * T * H * hd, rng));
  Tensor dq0 = be->zeros(q.shape()), dk0 = be->zeros(k.shape()), dv0 = be->zeros(v.shape());
  be->attention_backward(dq0, dk0, dv0, g, q, k, v, out, lse);
  Tensor dq = put(q.shape(), random_floats(B * T * H * hd, rng)), dk = put(k.shape(), random_floats(B * T * KV * hd, rng)),
         dv = put(v.shape(), random_floats(B * T * KV * hd, rng));
  be->attention_backward(dq, dk, dv, g, q, k, v, out, lse, Grad::kWrite);
  EXPECT_EQ(be->to_host_f32(dq), be->to_host_f32(dq0));
  EXPECT_EQ(be->to_host_f32(dk), be->to_host_f32(dk0));
  EXPECT_EQ(be->to_host_f32(dv), be->to_host_f32(dv0));
}

TEST_F(CpuOps, Rope) {
  const int64_t B = 2, T = 5, H = 3, hd = 8, half = hd / 2, P = 9, pos0 = 3;
  std::vector<float> cos(P * half), sin(P * half);
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double angle = p * std::pow(10000.0, -2.0 * i / hd);
      cos[p * half + i] = static_cast<float>(std::cos(angle));
      sin[p * half + i] = static_cast<float>(std::sin(angle));
    }
  Tensor tc = put({P, half}, cos), ts = put({P, half}, sin);
  auto x = random_floats(B * T * H * hd, rng);
  Tensor tx = put({B, T, H, hd}, x);
  be->rope_forward(tx, tc, ts, pos0);
  Fn f = [&](const Inputs& in) { return rope_ref(in[0], to_d(cos), to_d(sin), B, T, H, hd, pos0); };
  expect_close(be->to_host_f32(tx), f({to_d(x)}), kFwdTol, "rope out");

  // Backward is in place (the transpose of the rotation), not accumulating.
  auto g = random_floats(B * T * H * hd, rng);
  Tensor dx = put({B, T, H, hd}, g);
  be->rope_backward(dx, tc, ts, pos0);
  expect_close(be->to_host_f32(dx), numeric_grad(f, {to_d(x)}, 0, to_d(g)), kBwdTol, "rope dx");

  EXPECT_THROW(be->rope_forward(tx, tc, ts, P - T + 1), Error);  // positions past the table
}

void attention_case(Backend& be, Rng& rng, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t hd) {
  SCOPED_TRACE(cat("B=", B, " T=", T, " H=", H, " KV=", KV, " hd=", hd));
  auto q = random_floats(B * T * H * hd, rng), k = random_floats(B * T * KV * hd, rng),
       v = random_floats(B * T * KV * hd, rng);
  Tensor tq = be.from_host({B, T, H, hd}, q), tk = be.from_host({B, T, KV, hd}, k), tv = be.from_host({B, T, KV, hd}, v);
  Tensor out = be.empty({B, T, H, hd}), lse = be.empty({B, H, T});
  be.attention_forward(out, lse, tq, tk, tv);
  Fn full = [&](const Inputs& in) { return attention_ref(in[0], in[1], in[2], B, T, H, KV, hd); };
  Inputs in = {to_d(q), to_d(k), to_d(v)};
  Vec ref = full(in);
  size_t n_out = static_cast<size_t>(B * T * H * hd);
  expect_close(be.to_host_f32(out), Vec(ref.begin(), ref.begin() + n_out), kFwdTol, "attention out");
  expect_close(be.to_host_f32(lse), Vec(ref.begin() + n_out, ref.end()), kFwdTol, "attention lse");

  Fn f = [&](const Inputs& x) {
    Vec r = full(x);
    r.resize(n_out);
    return r;
  };
  auto g = random_floats(n_out, rng);
  auto dq0 = random_floats(q.size(), rng), dk0 = random_floats(k.size(), rng), dv0 = random_floats(v.size(), rng);
  Tensor dq = be.from_host(tq.shape(), dq0), dk = be.from_host(tk.shape(), dk0), dv = be.from_host(tv.shape(), dv0);
  be.attention_backward(dq, dk, dv, be.from_host(tq.shape(), g), tq, tk, tv, out, lse);
  expect_close(minus(be.to_host_f32(dq), dq0), numeric_grad(f, in, 0, to_d(g)), kBwdTol, "attention dq");
  expect_close(minus(be.to_host_f32(dk), dk0), numeric_grad(f, in, 1, to_d(g)), kBwdTol, "attention dk");
  expect_close(minus(be.to_host_f32(dv), dv0), numeric_grad(f, in, 2, to_d(g)), kBwdTol, "attention dv");
}

TEST_F(CpuOps, AttentionGroupedQuery) { attention_case(*be, rng, 2, 6, 4, 2, 4); }
TEST_F(CpuOps, AttentionMultiHead) { attention_case(*be, rng, 1, 5, 2, 2, 6); }
TEST_F(CpuOps, AttentionMultiQuery) { attention_case(*be, rng, 2, 4, 3, 1, 4); }

TEST_F(CpuOps, SwiGlu) {
  const int64_t N = 4, F = 9;
  auto gate = random_floats(N * F, rng, -4, 4), up = random_floats(N * F, rng, -2, 2);
  Tensor tg = put({N, F}, gate), tu = put({N, F}, up), out = be->empty({N, F});
  be->swiglu_forward(out, tg, tu);
  Fn f = [&](const Inputs& in) {
    Vec y(in[0].size());
    for (size_t i = 0; i < y.size(); ++i) y[i] = in[0][i] / (1 + std::exp(-in[0][i])) * in[1][i];
    return y;
  };
  Inputs in = {to_d(gate), to_d(up)};
  expect_close(be->to_host_f32(out), f(in), kFwdTol, "swiglu out");
  auto g = random_floats(N * F, rng), dg0 = random_floats(N * F, rng), du0 = random_floats(N * F, rng);
  Tensor dg = put({N, F}, dg0), du = put({N, F}, du0);
  be->swiglu_backward(dg, du, put({N, F}, g), tg, tu);
  // dg0, du0: what was there before is overwritten, not added to.
  expect_close(be->to_host_f32(dg), numeric_grad(f, in, 0, to_d(g)), kBwdTol, "swiglu dgate");
  expect_close(be->to_host_f32(du), numeric_grad(f, in, 1, to_d(g)), kBwdTol, "swiglu dup");
}

// The MLP's composite ops (which a GPU backend may fuse) are, on the reference, exactly the separate
// ops; mismatched shapes are errors naming the tensor.
TEST_F(CpuOps, SwiGluWithProducts) {
  const int64_t N = 5, I = 6, F = 7;
  Tensor x = put({N, I}, random_floats(N * I, rng)), wg = put({F, I}, random_floats(F * I, rng));
  Tensor wu = put({F, I}, random_floats(F * I, rng)), wd = put({I, F}, random_floats(I * F, rng));
  Tensor act = be->empty({N, F}), gate = be->empty({N, F}), up = be->empty({N, F});
  be->swiglu_matmul_forward(act, gate, up, x, wg, wu);
  Tensor g2 = be->empty({N, F}), u2 = be->empty({N, F}), a2 = be->empty({N, F});
  be->matmul_forward(g2, x, wg);
  be->matmul_forward(u2, x, wu);
  be->swiglu_forward(a2, g2, u2);
  EXPECT_EQ(be->to_host_f32(gate), be->to_host_f32(g2));
  EXPECT_EQ(be->to_host_f32(up), be->to_host_f32(u2));
  EXPECT_EQ(be->to_host_f32(act), be->to_host_f32(a2));

  Tensor dy = put({N, I}, random_floats(N * I, rng));
  const std::vector<float> dwd0 = random_floats(I * F, rng);
  Tensor dgate = be->empty({N, F}), dup = be->empty({N, F}), dact = be->empty({N, F}), dwd = put({I, F}, dwd0);
  be->swiglu_matmul_backward(dgate, dup, dact, dwd, dy, act, wd, gate, up, Grad::kAdd);
  Tensor dg2 = be->empty({N, F}), du2 = be->empty({N, F}), da2 = be->empty({N, F}), dwd2 = put({I, F}, dwd0);
  be->matmul_backward(da2, dwd2, dy, act, wd, Grad::kWrite, Grad::kAdd);
  be->swiglu_backward(dg2, du2, da2, gate, up);
  EXPECT_EQ(be->to_host_f32(dgate), be->to_host_f32(dg2));
  EXPECT_EQ(be->to_host_f32(dup), be->to_host_f32(du2));
  EXPECT_EQ(be->to_host_f32(dwd), be->to_host_f32(dwd2));

  Tensor wrong = be->empty({N, F + 1});
  try {
    be->swiglu_matmul_forward(act, wrong, up, x, wg, wu);
    FAIL() << "a gate of the wrong shape was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gate"), std::string::npos) << e.what();
  }
  EXPECT_THROW(be->swiglu_matmul_backward(dgate, dup, wrong, dwd, dy, act, wd, gate, up), Error);
  EXPECT_THROW(be->swiglu_matmul_backward(dgate, dgate, dact, dwd, dy, act, wd, gate, up), Error);
}

// q, k, v with RoPE as one op (which a GPU backend may fuse) is, on the reference, exactly the
// separate products and RoPE passes.
TEST_F(CpuOps, QkvRopeIsTheSeparateOps) {
  const int64_t B = 2, T = 3, H = 4, KV = 2, hd = 6, I = 5, P = 7, pos0 = 2;
  Tensor x = put({B * T, I}, random_floats(B * T * I, rng)), wq = put({H * hd, I}, random_floats(H * hd * I, rng));
  Tensor wk = put({KV * hd, I}, random_floats(KV * hd * I, rng)), wv = put({KV * hd, I}, random_floats(KV * hd * I, rng));
  Tensor cs = put({P, hd / 2}, random_floats(P * hd / 2, rng)), sn = put({P, hd / 2}, random_floats(P * hd / 2, rng));
  Tensor q = be->empty({B, T, H, hd}), k = be->empty({B, T, KV, hd}), v = be->empty({B, T, KV, hd});
  be->qkv_rope_forward(q, k, v, x, wq, wk, wv, cs, sn, pos0);
  Tensor q2 = be->empty({B, T, H, hd}), k2 = be->empty({B, T, KV, hd}), v2 = be->empty({B, T, KV, hd});
  Tensor q2f = q2.reshape({B * T, H * hd}), k2f = k2.reshape({B * T, KV * hd}), v2f = v2.reshape({B * T, KV * hd});
  be->matmul_forward(q2f, x, wq);
  be->matmul_forward(k2f, x, wk);
  be->matmul_forward(v2f, x, wv);
  be->rope_forward(q2, cs, sn, pos0);
  be->rope_forward(k2, cs, sn, pos0);
  EXPECT_EQ(be->to_host_f32(q), be->to_host_f32(q2));
  EXPECT_EQ(be->to_host_f32(k), be->to_host_f32(k2));
  EXPECT_EQ(be->to_host_f32(v), be->to_host_f32(v2));
  Tensor plain_q = be->empty({B * T, H * hd});  // RoPE did rotate: q differs from the bare product
  be->matmul_forward(plain_q, x, wq);
  EXPECT_NE(be->to_host_f32(q), be->to_host_f32(plain_q));
  // Positions beyond the table and a v of the wrong shape are errors.
  EXPECT_THROW(be->qkv_rope_forward(q, k, v, x, wq, wk, wv, cs, sn, P - T + 1), Error);
  Tensor v_wrong = be->empty({B, T, KV + 1, hd});
  EXPECT_THROW(be->qkv_rope_forward(q, k, v_wrong, x, wq, wk, wv, cs, sn, pos0), Error);
}

// The input gradient of layers that share their input, as one op, is on the reference exactly
// matmul_backward per layer (the first writing dx, the others adding).
TEST_F(CpuOps, SharedInputGradientIsPerLayer) {
  const int64_t N = 4, I = 3;
  const int64_t outs[] = {5, 2};
  Tensor x = put({N, I}, random_floats(N * I, rng)), dx = put({N, I}, random_floats(N * I, rng));
  Tensor dx2 = put({N, I}, random_floats(N * I, rng));
  std::vector<Tensor> dy, w, dw, dw2;
  for (int64_t O : outs) {
    dy.push_back(put({N, O}, random_floats(N * O, rng)));
    w.push_back(put({O, I}, random_floats(O * I, rng)));
    const std::vector<float> start = random_floats(O * I, rng);
    dw.push_back(put({O, I}, start));
    dw2.push_back(put({O, I}, start));
  }
  const LinearGrad layers[] = {{&dy[0], &w[0], &dw[0]}, {&dy[1], &w[1], &dw[1]}};
  be->matmul_backward_shared(dx, x, layers, Grad::kWrite, Grad::kAdd);
  be->matmul_backward(dx2, dw2[0], dy[0], x, w[0], Grad::kWrite, Grad::kAdd);
  be->matmul_backward(dx2, dw2[1], dy[1], x, w[1], Grad::kAdd, Grad::kAdd);
  EXPECT_EQ(be->to_host_f32(dx), be->to_host_f32(dx2));
  EXPECT_EQ(be->to_host_f32(dw[0]), be->to_host_f32(dw2[0]));
  EXPECT_EQ(be->to_host_f32(dw[1]), be->to_host_f32(dw2[1]));
  const LinearGrad no_dw[] = {{&dy[0], &w[0], nullptr}};  // a weight gradient not wanted
  EXPECT_NO_THROW(be->matmul_backward_shared(dx, x, no_dw, Grad::kWrite));
  const LinearGrad mismatched[] = {{&dy[1], &w[0], &dw[0]}};
  EXPECT_THROW(be->matmul_backward_shared(dx, x, mismatched), Error);
  EXPECT_THROW(be->matmul_backward_shared(dx, x, std::span<const LinearGrad>{}), Error);
}

TEST_F(CpuOps, CrossEntropy) {
  const int64_t N = 6, V = 11;
  auto logits = random_floats(N * V, rng, -3, 3);
  std::vector<int32_t> targets = {4, -100, 0, 10, -100, 7};
  const int valid = 4;
  Tensor tl = put({N, V}, logits), tt = be->from_host({N}, std::span<const int32_t>(targets));
  Tensor losses = be->empty({N}), lse = be->empty({N});
  be->cross_entropy_forward(losses, lse, tl, tt);
  // Per-row losses, then the mean over valid rows (what the model minimizes).
  Fn rows = [&](const Inputs& in) {
    Vec l(N, 0.0);
    for (int64_t n = 0; n < N; ++n) {
      if (targets[n] < 0) continue;
      double m = -INFINITY, z = 0;
      for (int64_t j = 0; j < V; ++j) m = std::max(m, in[0][n * V + j]);
      for (int64_t j = 0; j < V; ++j) z += std::exp(in[0][n * V + j] - m);
      l[n] = m + std::log(z) - in[0][n * V + targets[n]];
    }
    return l;
  };
  Inputs in = {to_d(logits)};
  expect_close(be->to_host_f32(losses), rows(in), kFwdTol, "cross-entropy losses");
  // Backward writes (not adds), in place over the logits.
  be->cross_entropy_backward(tl, tl, lse, tt, 1.0f / valid);
  Vec w(N, 1.0 / valid);
  expect_close(be->to_host_f32(tl), numeric_grad(rows, in, 0, w), kBwdTol, "cross-entropy dlogits");

  std::vector<int32_t> bad = {0, 0, 0, 11, 0, 0};
  Tensor tbad = be->from_host({N}, std::span<const int32_t>(bad));
  EXPECT_THROW(be->cross_entropy_forward(losses, lse, put({N, V}, logits), tbad), Error);
}

// The vocabulary-parallel forms (tensor parallelism): two shards of the vocabulary [0, 4) and
// [4, 11) give what the whole vocabulary gives once combined.
TEST_F(CpuOps, VocabularyShardsCombineToTheWhole) {
  const int64_t N = 6, V = 11, D = 3, split = 4;
  std::vector<int32_t> ids = {4, 0, 10, 3, 4, 7};
  auto table = random_floats(V * D, rng);
  Tensor t_ids = be->from_host({N}, std::span<const int32_t>(ids));
  std::vector<float> low(table.begin(), table.begin() + split * D), high(table.begin() + split * D, table.end());
  Tensor whole = be->empty({N, D}), a = be->empty({N, D}), b = be->empty({N, D});
  be->embedding_forward(whole, t_ids, put({V, D}, table));
  be->embedding_forward(a, t_ids, put({split, D}, low), 0);
  be->embedding_forward(b, t_ids, put({V - split, D}, high), split);
  be->add(a, a, b);
  EXPECT_EQ(be->to_host_f32(a), be->to_host_f32(whole));  // one shard adds zeros
  auto g = random_floats(N * D, rng);
  Tensor dwhole = be->zeros({V, D}), dlow = be->zeros({split, D}), dhigh = be->zeros({V - split, D});
  be->embedding_backward(dwhole, t_ids, put({N, D}, g));
  be->embedding_backward(dlow, t_ids, put({N, D}, g), 0);
  be->embedding_backward(dhigh, t_ids, put({N, D}, g), split);
  std::vector<float> joined = be->to_host_f32(dlow), hi = be->to_host_f32(dhigh);
  joined.insert(joined.end(), hi.begin(), hi.end());
  EXPECT_EQ(joined, be->to_host_f32(dwhole));

  auto logits = random_floats(N * V, rng, -3, 3);
  std::vector<int32_t> targets = {4, -100, 0, 10, 3, 7};
  std::vector<float> la, lb;
  for (int64_t n = 0; n < N; ++n) {
    la.insert(la.end(), logits.begin() + n * V, logits.begin() + n * V + split);
    lb.insert(lb.end(), logits.begin() + n * V + split, logits.begin() + (n + 1) * V);
  }
  Tensor tt = be->from_host({N}, std::span<const int32_t>(targets));
  Tensor losses = be->empty({N}), lse = be->empty({N}), loss_a = be->empty({N}), lse_a = be->empty({N}),
         loss_b = be->empty({N}), lse_b = be->empty({N});
  Tensor tl = put({N, V}, logits), ta = put({N, split}, la), tb = put({N, V - split}, lb);
  be->cross_entropy_forward(losses, lse, tl, tt);
  be->cross_entropy_forward(loss_a, lse_a, ta, tt, 0);
  be->cross_entropy_forward(loss_b, lse_b, tb, tt, split);
  auto L = be->to_host_f32(lse), A = be->to_host_f32(lse_a), B = be->to_host_f32(lse_b);
  auto l = be->to_host_f32(losses), xa = be->to_host_f32(loss_a), xb = be->to_host_f32(loss_b);
  for (int64_t n = 0; n < N; ++n) {
    const double m = std::max(A[n], B[n]);
    EXPECT_NEAR(m + std::log(std::exp(A[n] - m) + std::exp(B[n] - m)), L[n], 1e-5);
    if (targets[n] < 0) continue;
    const bool in_a = targets[n] < split;
    // The owner's loss is its own lse minus the target logit; the other shard reports 0.
    EXPECT_EQ(in_a ? xb[n] : xa[n], 0.0f);
    EXPECT_NEAR((in_a ? xa[n] - A[n] : xb[n] - B[n]) + L[n], l[n], 1e-5);
  }
  be->cross_entropy_backward(tl, tl, lse, tt, 0.25f);
  be->cross_entropy_backward(ta, ta, lse, tt, 0.25f, 0);  // with the whole vocabulary's lse
  be->cross_entropy_backward(tb, tb, lse, tt, 0.25f, split);
  auto dw = be->to_host_f32(tl), da = be->to_host_f32(ta), db = be->to_host_f32(tb);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < V; ++j)
      EXPECT_FLOAT_EQ(j < split ? da[n * split + j] : db[n * (V - split) + j - split], dw[n * V + j]) << n << "," << j;
}

TEST_F(CpuOps, AddScaleSumSquares) {
  auto a = random_floats(100, rng), b = random_floats(100, rng);
  Tensor ta = put({10, 10}, a), tb = put({10, 10}, b);
  be->add(ta, ta, tb);  // in place
  be->scale(ta, 0.5f);
  auto r = be->to_host_f32(ta);
  for (size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i], (a[i] + b[i]) * 0.5f);
  std::vector<Tensor> ts = {tb, put({3}, {1.0f, 2.0f, 2.0f})};
  double want = 9;
  for (float x : b) want += static_cast<double>(x) * x;
  EXPECT_NEAR(be->sum_squares(ts), want, 1e-9 * want);
}

// AdamW against torch.optim.AdamW's formula in double, three steps, with weight decay, a gradient
// scale (clipping) and an element whose gradient is exactly zero.
TEST_F(CpuOps, AdamW) {
  const int64_t n = 50;
  auto p = random_floats(n, rng);
  std::vector<Vec> grads;
  Tensor tp = put({n}, p), m = be->zeros({n}), v = be->zeros({n});
  Vec P = to_d(p), M(n, 0), Vv(n, 0);
  AdamWStep s;
  s.lr = 1e-2;
  s.beta1 = 0.9;
  s.beta2 = 0.95;
  s.eps = 1e-8;
  s.weight_decay = 0.1;
  s.grad_scale = 0.5f;
  for (int step = 1; step <= 3; ++step) {
    auto g = random_floats(n, rng, -1e-2, 1e-2);
    g[7] = 0;
    s.step = step;
    be->adamw(tp, put({n}, g), m, v, s);
    double b1 = 1 - std::pow(s.beta1, step), b2 = 1 - std::pow(s.beta2, step);
    for (int64_t i = 0; i < n; ++i) {
      double gi = g[i] * 0.5;
      P[i] *= 1 - s.lr * s.weight_decay;
      M[i] = s.beta1 * M[i] + (1 - s.beta1) * gi;
      Vv[i] = s.beta2 * Vv[i] + (1 - s.beta2) * gi * gi;
      P[i] -= s.lr / b1 * M[i] / (std::sqrt(Vv[i]) / std::sqrt(b2) + s.eps);
    }
  }
  auto got = be->to_host_f32(tp);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], P[i], 1e-6) << i;
}

// Every op gives bit-identical results with 1 and 3 threads (shapes large enough to split).
TEST(CpuOpsDeterminism, SameBitsForAnyThreadCount) {
  auto run = [](int threads) {
    auto be = make_cpu_backend(threads);
    Rng rng{99};
    std::vector<std::vector<float>> results;
    const int64_t B = 2, T = 33, H = 4, KV = 2, hd = 16, N = B * T, D = 96, V = 301, F = 200;
    auto x = be->from_host({N, D}, random_floats(N * D, rng));
    auto w = be->from_host({D}, random_floats(D, rng));
    Tensor out = be->empty({N, D}), rstd = be->empty({N}), dx = be->zeros({N, D}), dw = be->zeros({D});
    be->rmsnorm_forward(out, rstd, x, w, 1e-5f);
    be->rmsnorm_backward(dx, dw, x, x, w, rstd);
    auto W = be->from_host({F, D}, random_floats(F * D, rng));
    Tensor y = be->empty({N, F}), dW = be->zeros({F, D}), dxx = be->zeros({N, D});
    be->matmul_forward(y, out, W);
    be->matmul_backward(dxx, dW, y, out, W);
    Tensor act = be->empty({N, F}), dg = be->zeros({N, F}), du = be->zeros({N, F});
    be->swiglu_forward(act, y, y);
    be->swiglu_backward(dg, du, act, y, y);
    auto q = be->from_host({B, T, H, hd}, random_floats(N * H * hd, rng));
    auto k = be->from_host({B, T, KV, hd}, random_floats(N * KV * hd, rng));
    auto v = be->from_host({B, T, KV, hd}, random_floats(N * KV * hd, rng));
    Tensor ao = be->empty(q.shape()), lse = be->empty({B, H, T}), dq = be->zeros(q.shape()),
           dk = be->zeros(k.shape()), dv = be->zeros(v.shape());
    be->attention_forward(ao, lse, q, k, v);
    be->attention_backward(dq, dk, dv, q, q, k, v, ao, lse);
    std::vector<int32_t> ids(N);
    for (int64_t i = 0; i < N; ++i) ids[i] = static_cast<int32_t>((i * 7) % 5);  // many repeats
    auto tids = be->from_host({N}, std::span<const int32_t>(ids));
    auto table = be->from_host({V, D}, random_floats(V * D, rng));
    Tensor emb = be->empty({N, D}), dtable = be->zeros({V, D});
    be->embedding_forward(emb, tids, table);
    be->embedding_backward(dtable, tids, x);
    auto logits = be->from_host({N, V}, random_floats(N * V, rng, -5, 5));
    Tensor losses = be->empty({N}), clse = be->empty({N});
    be->cross_entropy_forward(losses, clse, logits, tids);
    be->cross_entropy_backward(logits, logits, clse, tids, 0.1f);
    double ss = be->sum_squares(std::vector<Tensor>{dW, dtable});
    for (const Tensor* t : {&out, &rstd, &dx, &dw, &y, &dW, &dxx, &act, &dg, &du, &ao, &lse, &dq, &dk, &dv,
                            &dtable, &losses, &logits})
      results.push_back(be->to_host_f32(*t));
    results.push_back({static_cast<float>(ss), static_cast<float>(ss - static_cast<float>(ss))});
    return results;
  };
  auto one = run(1), three = run(3);
  ASSERT_EQ(one.size(), three.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], three[i]) << "result " << i;
}

TEST(CpuOpsChecks, ClearErrorsForBadShapes) {
  auto be = make_cpu_backend(1);
  Tensor x = be->zeros({4, 8}), w = be->zeros({8}), out = be->zeros({4, 8}), rstd = be->zeros({3});
  try {
    be->rmsnorm_forward(out, rstd, x, w, 1e-5f);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rstd is f32[3], expected f32[4]"), std::string::npos) << e.what();
  }
  Tensor q = be->zeros({1, 4, 3, 8}), k = be->zeros({1, 4, 2, 8}), v = be->zeros({1, 4, 2, 8});
  Tensor ao = be->zeros({1, 4, 3, 8}), lse = be->zeros({1, 3, 4});
  EXPECT_THROW(be->attention_forward(ao, lse, q, k, v), Error);  // 3 heads over 2 kv heads
  Tensor t = be->zeros({2, 3});
  EXPECT_THROW(t.reshape({4, 2}), Error);
  EXPECT_THROW(be->zeros({-1, 2}), Error);
}

}  // namespace
}  // namespace agpt::ops
