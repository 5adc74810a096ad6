// Llama::forward_cached against the full forward: prefill and token-by-token decoding with a KV
// cache give the full forward's logits (to float rounding: matrix products of other row counts).
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "model/llama.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::model {
namespace {

LlamaConfig tiny_config(int64_t kv_heads, bool tied) {
  LlamaConfig c;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.2;  // larger than HF's default, so attention is far from uniform
  c.fill_defaults();
  return c;
}

std::vector<int32_t> some_ids(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 29 + 5) % vocab);
  return ids;
}

// max |a - b| / max |b| over rows [row0, row0 + rows) of b ([*, V]) against a ([rows, V]).
double rel_error(const std::vector<float>& got, const std::vector<float>& want, size_t offset) {
  double dmax = 0, wmax = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    dmax = std::max(dmax, std::fabs(double(got[i]) - want[offset + i]));
    wmax = std::max(wmax, std::fabs(double(want[offset + i])));
  }
  return dmax / wmax;
}

constexpr double kTol = 1e-5;

TEST(KvCache, TokenByTokenEqualsFullForward) {
  auto be = ops::make_cpu_backend(2);
  for (auto [kv, tied] : {std::pair<int64_t, bool>{2, false}, {4, true}, {1, false}}) {
    SCOPED_TRACE(cat("kv heads ", kv, tied ? ", tied" : ""));
    Llama model(tiny_config(kv, tied), *be);
    model.init_weights(11);
    const int64_t T = 12, V = model.config().vocab_size;
    auto ids = some_ids(T, V);
    model.forward(ids, 1, T);
    auto full = be->to_host_f32(model.logits());

    KvCache cache(model.config(), *be, 16);
    for (int64_t t = 0; t < T; ++t) {
      ops::Tensor logits = model.forward_cached(cache, std::span(ids).subspan(t, 1), t);
      ASSERT_EQ(logits.shape(), (ops::Shape{1, V}));
      EXPECT_LE(rel_error(be->to_host_f32(logits), full, t * V), kTol) << "position " << t;
      EXPECT_EQ(cache.length(), t + 1);
    }
  }
}

TEST(KvCache, PrefillThenDecodeEqualsFullForward) {
  auto be = ops::make_cpu_backend(2);
  Llama model(tiny_config(2, false), *be);
  model.init_weights(5);
  const int64_t T = 10, P = 6, V = model.config().vocab_size;
  auto ids = some_ids(T, V);
  model.forward(ids, 1, T);
  auto full = be->to_host_f32(model.logits());

  KvCache cache(model.config(), *be, T);
  ops::Tensor all = model.forward_cached(cache, std::span(ids).first(P), 0, /*all_logits=*/true);
  ASSERT_EQ(all.shape(), (ops::Shape{P, V}));
  EXPECT_LE(rel_error(be->to_host_f32(all), full, 0), kTol);
  // A chunk of three after the prefill, then the last token alone (only its logits).
  ops::Tensor chunk = model.forward_cached(cache, std::span(ids).subspan(P, 3), P, true);
  EXPECT_LE(rel_error(be->to_host_f32(chunk), full, P * V), kTol);
  ops::Tensor last = model.forward_cached(cache, std::span(ids).subspan(T - 1, 1), T - 1);
  EXPECT_LE(rel_error(be->to_host_f32(last), full, (T - 1) * V), kTol);
  EXPECT_EQ(cache.length(), T);

  // The full forward's own state is untouched by cached inference.
  EXPECT_EQ(be->to_host_f32(model.logits()), full);
}

TEST(KvCache, RewindRecomputesFromAnEarlierPosition) {
  auto be = ops::make_cpu_backend(1);
  Llama model(tiny_config(2, true), *be);
  model.init_weights(3);
  const int64_t V = model.config().vocab_size;
  auto ids = some_ids(8, V);
  KvCache cache(model.config(), *be, 8);
  model.forward_cached(cache, std::span(ids).first(8), 0);
  // Replace positions 5..7 with other tokens; the result is that of a fresh cache over the new text.
  std::vector<int32_t> other = ids;
  other[5] = 1, other[6] = 2, other[7] = 3;
  auto rewound = be->to_host_f32(model.forward_cached(cache, std::span(other).subspan(5, 3), 5));
  KvCache fresh(model.config(), *be, 8);
  auto want = be->to_host_f32(model.forward_cached(fresh, std::span(other).first(8), 0));
  EXPECT_LE(rel_error(rewound, want, 0), kTol);
  EXPECT_EQ(cache.length(), 8);
}

TEST(KvCache, ClearErrors) {
  auto be = ops::make_cpu_backend(1);
  Llama model(tiny_config(2, false), *be);
  KvCache cache(model.config(), *be, 4);
  EXPECT_EQ(cache.bytes(), size_t(2 * 2 * 4 * 2 * 8 * sizeof(float)));
  std::vector<int32_t> ids = {1, 2, 3};
  auto expect_error = [&](const std::function<void()>& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { model.forward_cached(cache, ids, 1); }, "leaves a gap");
  model.forward_cached(cache, ids, 0);
  expect_error([&] { model.forward_cached(cache, ids, 3); }, "do not fit a KV cache of 4");
  std::vector<int32_t> bad = {61};
  expect_error([&] { model.forward_cached(cache, bad, 3); }, "outside the vocabulary");
  expect_error([&] { model.forward_cached(cache, {}, 3); }, "no tokens");
  Llama other(tiny_config(1, false), *be);
  expect_error([&] { other.forward_cached(cache, ids, 0); }, "another shape");
  expect_error([&] { KvCache(model.config(), *be, 0); }, "capacity must be positive");
}

}  // namespace
}  // namespace agpt::model
