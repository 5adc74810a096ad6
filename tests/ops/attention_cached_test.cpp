// attention_forward with fewer queries than keys (Tq < Tk, a KV cache): the last Tq queries against
// all Tk keys give the last Tq rows of the full causal attention. On the CPU the arithmetic of each
// query row is the same in both calls, so the results are bit-identical.
#include <gtest/gtest.h>

#include "base/error.h"
#include "ops/cpu/cpu_backend.h"
#include "test_noise.h"

namespace agpt::ops {
namespace {

std::vector<float> noise(size_t n, uint64_t seed) { return testing::lcg_uniform(n, seed, -2, 2); }

// Rows [T - Tq, T) of dimension 1 of a host [B, T, R] array.
std::vector<float> last_rows(const std::vector<float>& a, int64_t B, int64_t T, int64_t R, int64_t Tq) {
  std::vector<float> out;
  for (int64_t b = 0; b < B; ++b)
    out.insert(out.end(), a.begin() + (b * T + T - Tq) * R, a.begin() + (b + 1) * T * R);
  return out;
}

TEST(AttentionCached, LastQueriesEqualTheLastRowsOfFullAttention) {
  auto be = make_cpu_backend(2);
  const int64_t B = 2, T = 7, H = 4, KV = 2, hd = 8;
  auto q = noise(B * T * H * hd, 1), k = noise(B * T * KV * hd, 2), v = noise(B * T * KV * hd, 3);
  Tensor tq = be->from_host({B, T, H, hd}, q), tk = be->from_host({B, T, KV, hd}, k),
         tv = be->from_host({B, T, KV, hd}, v);
  Tensor out = be->empty({B, T, H, hd}), lse = be->empty({B, H, T});
  be->attention_forward(out, lse, tq, tk, tv);
  const auto full_out = be->to_host_f32(out), full_lse = be->to_host_f32(lse);

  for (int64_t Tq : {1, 2, 5, 7}) {
    SCOPED_TRACE(cat("Tq=", Tq));
    Tensor pq = be->from_host({B, Tq, H, hd}, last_rows(q, B, T, H * hd, Tq));
    Tensor pout = be->empty({B, Tq, H, hd}), plse = be->empty({B, H, Tq});
    be->attention_forward(pout, plse, pq, tk, tv);
    EXPECT_EQ(be->to_host_f32(pout), last_rows(full_out, B, T, H * hd, Tq));
    // lse [B, H, T]: per (b, h) row, the last Tq entries.
    EXPECT_EQ(be->to_host_f32(plse), last_rows(full_lse, B * H, T, 1, Tq));
  }
}

TEST(AttentionCached, KeysAndValuesMayBeViewsOfALargerCache) {
  auto be = make_cpu_backend(1);
  const int64_t T = 6, H = 2, KV = 1, hd = 4, capacity = 16;
  auto q = noise(T * H * hd, 4), k = noise(T * KV * hd, 5), v = noise(T * KV * hd, 6);
  Tensor out = be->empty({1, T, H, hd}), lse = be->empty({1, H, T});
  be->attention_forward(out, lse, be->from_host({1, T, H, hd}, q), be->from_host({1, T, KV, hd}, k),
                        be->from_host({1, T, KV, hd}, v));
  // The cache holds the T rows at its start, garbage after them.
  Tensor kc = be->from_host({capacity, KV, hd}, noise(capacity * KV * hd, 7)),
         vc = be->from_host({capacity, KV, hd}, noise(capacity * KV * hd, 8));
  Tensor kfill = kc.narrow(0, T), vfill = vc.narrow(0, T);
  be->upload(kfill, k.data(), k.size() * sizeof(float));
  be->upload(vfill, v.data(), v.size() * sizeof(float));
  Tensor q1 = be->from_host({1, 1, H, hd}, std::vector<float>(q.end() - H * hd, q.end()));
  Tensor out1 = be->empty({1, 1, H, hd}), lse1 = be->empty({1, H, 1});
  be->attention_forward(out1, lse1, q1, kc.narrow(0, T).reshape({1, T, KV, hd}), vc.narrow(0, T).reshape({1, T, KV, hd}));
  EXPECT_EQ(be->to_host_f32(out1), last_rows(be->to_host_f32(out), 1, T, H * hd, 1));
}

TEST(AttentionCached, ShapeErrors) {
  auto be = make_cpu_backend(1);
  Tensor q = be->zeros({1, 4, 2, 8}), k = be->zeros({1, 3, 2, 8}), v = be->zeros({1, 3, 2, 8});
  Tensor out = be->zeros({1, 4, 2, 8}), lse = be->zeros({1, 2, 4});
  try {
    be->attention_forward(out, lse, q, k, v);
    ADD_FAILURE() << "no error for more queries than keys";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4 queries but only 3 keys"), std::string::npos) << e.what();
  }
  // Backward is for training: queries and keys cover the same positions.
  Tensor q2 = be->zeros({1, 2, 2, 8}), o2 = be->zeros({1, 2, 2, 8}), l2 = be->zeros({1, 2, 2});
  Tensor dq = be->zeros(q2.shape()), dk = be->zeros(k.shape()), dv = be->zeros(v.shape());
  try {
    be->attention_backward(dq, dk, dv, o2, q2, k, v, o2, l2);
    ADD_FAILURE() << "no error for Tq != Tk in backward";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("as many keys as queries"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace agpt::ops
