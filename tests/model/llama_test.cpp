// The Llama model beyond the PyTorch references: checkpoints (save/load, bf16, shards, bad
// weights), determinism across thread counts, ignore-index, accounting.
#include "model/llama.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "base/file.h"
#include "model/adamw.h"
#include "ops/cpu/cpu_backend.h"
#include "test_util.h"

namespace agpt::model {
namespace {

using testing::TempDir;

LlamaConfig small_config(bool tied) {
  LlamaConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 16;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000;
  c.tie_word_embeddings = tied;
  c.fill_defaults();
  return c;
}

std::vector<int32_t> some_ids(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % vocab);
  return ids;
}

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Only Linear weights get their gradient from one product (the update in the backward may apply
// to them); the embedding table, which a tied lm_head shares, and the norms do not. A backend
// without fused products (the CPU) updates nothing in the backward: the step is unchanged.
TEST(Llama, OneProductGradientsAndTheUpdateInBackward) {
  auto backend = ops::make_cpu_backend(1);
  for (bool tied : {true, false}) {
    Llama m(small_config(tied), *backend);
    for (const Parameter& p : m.parameters()) {
      const bool linear = p.name.find("_proj.weight") != std::string::npos || p.name == "lm_head.weight";
      EXPECT_EQ(p.one_product_gradient, linear) << p.name;
    }
  }
  const std::vector<int32_t> ids = some_ids(16, 50), targets = shift_targets(ids, 2, 8);
  std::vector<float> losses[2];
  std::vector<std::vector<float>> weights[2];
  for (int arranged = 0; arranged < 2; ++arranged) {
    Llama m(small_config(true), *backend);
    m.init_weights(3);
    AdamW opt(*backend, m.parameters(), AdamWConfig{.lr = 1e-2});
    for (int step = 0; step < 3; ++step) {
      losses[arranged].push_back(m.forward(ids, targets, 2, 8, true));
      if (arranged) opt.arrange_update_in_backward(m.parameters());
      m.backward(ops::Grad::kWrite);
      opt.step(m.parameters());
      EXPECT_EQ(opt.updated_in_backward(), 0u);
    }
    if (arranged) {  // an arranged step cannot be clipped (the backward may have updated already)
      opt.arrange_update_in_backward(m.parameters());
      EXPECT_THROW(opt.step(m.parameters(), -1.0, 0.5f), Error);
    }
    for (const Parameter& p : m.parameters()) weights[arranged].push_back(backend->to_host_f32(p.value));
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(weights[0], weights[1]);
}

TEST(Llama, SaveAndLoadGiveIdenticalLogits) {
  auto be = ops::make_cpu_backend(2);
  for (bool tied : {false, true}) {
    TempDir dir;
    Llama a(small_config(tied), *be);
    a.init_weights(7);
    auto ids = some_ids(2 * 9, 50);
    a.forward(ids, 2, 9);
    auto want = be->to_host_f32(a.logits());
    a.save(dir.path());
    EXPECT_TRUE(file_exists(dir.file("config.json")));
    EXPECT_TRUE(file_exists(dir.file("model.safetensors")));
    Llama b = Llama::load(dir.path(), *be);
    b.forward(ids, 2, 9);
    EXPECT_EQ(be->to_host_f32(b.logits()), want);
    WeightReader w(dir.path());
    EXPECT_EQ(w.contains("lm_head.weight"), !tied);
    EXPECT_EQ(SafetensorsFile(dir.file("model.safetensors")).metadata().at("format"), "pt");
  }
}

TEST(Llama, SaveBf16AndSharded) {
  auto be = ops::make_cpu_backend(2);
  Llama a(small_config(false), *be);
  a.init_weights(3);
  TempDir bf, sharded;
  a.save(bf.path(), StDType::BF16);
  EXPECT_EQ(LlamaConfig::load(bf.path()).torch_dtype, "bfloat16");
  Llama b = Llama::load(bf.path(), *be);
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    auto x = be->to_host_f32(a.parameters()[i].value), y = be->to_host_f32(b.parameters()[i].value);
    for (size_t j = 0; j < x.size(); ++j) ASSERT_NEAR(y[j], x[j], std::fabs(x[j]) / 256) << a.parameters()[i].name;
  }
  a.save(sharded.path(), StDType::F32, /*max_shard_bytes=*/4096);
  EXPECT_TRUE(file_exists(sharded.file("model.safetensors.index.json")));
  Llama c = Llama::load(sharded.path(), *be);
  for (size_t i = 0; i < a.parameters().size(); ++i)
    EXPECT_EQ(be->to_host_f32(c.parameters()[i].value), be->to_host_f32(a.parameters()[i].value));
}

TEST(Llama, LoadsTheReferenceCheckpointAndWritesItBack) {
  std::string src = testing::testdata("llama-ref/llama-tiny/model");
  if (!file_exists(src + "/config.json")) GTEST_SKIP();
  auto be = ops::make_cpu_backend(2);
  Llama a = Llama::load(src, *be);
  EXPECT_EQ(a.num_parameters(), 158'016);  // 2·512·64 + 2·(2·64 + 2·64·64 + 2·32·64 + 3·176·64) + 64
  TempDir dir;
  a.save(dir.path());
  Llama b = Llama::load(dir.path(), *be);
  WeightReader orig(src);
  for (const Parameter& p : b.parameters()) EXPECT_EQ(be->to_host_f32(p.value), orig.read_f32(p.name)) << p.name;
  nlohmann::json written = nlohmann::json::parse(read_file(dir.file("config.json")));
  EXPECT_EQ(written["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(written["model_type"], "llama");
  EXPECT_EQ(written["torch_dtype"], "float32");
  EXPECT_EQ(written["num_key_value_heads"], 2);
}

TEST(Llama, RejectsMismatchedOrBadWeights) {
  auto be = ops::make_cpu_backend(1);
  LlamaConfig cfg = small_config(false);
  Llama a(cfg, *be);
  a.init_weights(1);
  auto tensors = [&] {
    std::vector<NamedTensor> t;
    for (const Parameter& p : a.parameters()) t.push_back({p.name, p.value.shape(), be->to_host_f32(p.value)});
    return t;
  };
  auto try_load = [&](const std::vector<NamedTensor>& t, const LlamaConfig& c) {
    TempDir dir;
    write_weights(dir.path(), t, StDType::F32);
    c.save(dir.file("config.json"));
    Llama::load(dir.path(), *be);
  };
  {
    auto t = tensors();
    t.erase(t.begin() + 3);
    expect_error([&] { try_load(t, cfg); }, "no tensor named 'model.layers.0.self_attn.k_proj.weight'");
  }
  {
    LlamaConfig wider = cfg;
    wider.intermediate_size = 48;
    expect_error([&] { try_load(tensors(), wider); }, "does config.json match the weights?");
  }
  {
    auto t = tensors();
    t.push_back({"model.layers.9.mlp.up_proj.weight", {2}, {1, 2}});
    expect_error([&] { try_load(t, cfg); }, "tensors the model does not have: model.layers.9.mlp.up_proj.weight");
  }
  {
    auto t = tensors();
    t[5].values[3] = NAN;
    expect_error([&] { try_load(t, cfg); }, "non-finite value");
  }
  {  // a tied model may carry lm_head.weight when it equals embed_tokens
    LlamaConfig tied = cfg;
    tied.tie_word_embeddings = true;
    auto t = tensors();
    t.back().values = t.front().values;
    EXPECT_NO_THROW(try_load(t, tied));
    t.back().values[0] += 1;
    expect_error([&] { try_load(t, tied); }, "lm_head.weight differs");
  }
}

// Logits, loss and every gradient are bit-identical with 1 and 2 threads.
// init_weights is specified, not just deterministic: element j of matrix parameter i is the
// Box-Muller normal of draws 2j+1 and 2j+2 of a SplitMix64 started at seed * 0x100000001b3 + i,
// times initializer_range; norm weights are ones. (Parallel filling must not change this.)
TEST(Llama, InitWeightsIsTheDocumentedStream) {
  auto be = ops::make_cpu_backend(2);
  LlamaConfig c = small_config(false);
  c.vocab_size = 3000;  // the embedding spans several fill chunks of 2^20 elements
  c.hidden_size = 400;
  c.intermediate_size = 800;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 100;
  Llama m(c, *be);
  m.init_weights(42);
  auto expected = [&](size_t i, int64_t j) {
    uint64_t state = 42 * 0x100000001b3ull + i;
    auto next = [&] {
      uint64_t z = (state += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      return z ^ (z >> 31);
    };
    double u1 = 0, u2 = 0;
    for (int64_t k = 0; k <= j; ++k) {
      u1 = 1.0 - static_cast<double>(next() >> 11) * 0x1p-53;
      u2 = static_cast<double>(next() >> 11) * 0x1p-53;
    }
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2) * 0.02);
  };
  const auto embed = be->to_host_f32(m.parameters()[0].value);
  ASSERT_EQ(embed.size(), 1'200'000u);
  for (int64_t j : {0, 1, 77, 1048575, 1048576, 1199999}) EXPECT_EQ(embed[j], expected(0, j)) << j;
  const auto q = be->to_host_f32(m.parameters()[2].value);
  EXPECT_EQ(q[12345], expected(2, 12345));
  for (float v : be->to_host_f32(m.parameters()[1].value)) ASSERT_EQ(v, 1.0f);
}

TEST(Llama, DeterministicAcrossThreadCounts) {
  auto run = [](int threads) {
    auto be = ops::make_cpu_backend(threads);
    Llama m(small_config(true), *be);
    m.init_weights(5);
    auto ids = some_ids(3 * 12, 50);
    float loss = m.forward(ids, shift_targets(ids, 3, 12), 3, 12);
    std::vector<std::vector<float>> out = {be->to_host_f32(m.logits()), {loss}};
    m.zero_grad();
    m.backward();
    for (const Parameter& p : m.parameters()) out.push_back(be->to_host_f32(p.grad));
    return out;
  };
  EXPECT_EQ(run(1), run(2));
}

// backward(Grad::kWrite) over gradients full of leftovers gives zero_grad() + backward()'s bits,
// tied and untied; a following kAdd backward accumulates as usual.
TEST(Llama, BackwardWriteModeEqualsZeroGradThenBackward) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    auto be = ops::make_cpu_backend(2);
    Llama m(small_config(tied), *be);
    m.init_weights(3);
    auto ids = some_ids(2 * 10, 50);
    auto targets = shift_targets(ids, 2, 10);
    auto grads = [&] {
      std::vector<std::vector<float>> out;
      for (const Parameter& p : m.parameters()) out.push_back(be->to_host_f32(p.grad));
      return out;
    };
    EXPECT_THROW(  // no gradients yet: adding needs zero_grad first
        {
          m.forward(ids, targets, 2, 10);
          m.backward();
        },
        Error);
    m.forward(ids, targets, 2, 10);
    m.backward(ops::Grad::kWrite);  // allocates them
    auto written_fresh = grads();
    for (Parameter& p : m.parameters()) {  // leftovers
      std::vector<float> junk(static_cast<size_t>(p.grad.numel()), 7.5f);
      be->upload(p.grad, junk.data(), junk.size() * sizeof(float));
    }
    m.forward(ids, targets, 2, 10);
    m.backward(ops::Grad::kWrite);
    auto written = grads();
    m.zero_grad();
    m.forward(ids, targets, 2, 10);
    m.backward();
    EXPECT_EQ(written, grads());
    EXPECT_EQ(written, written_fresh);
    m.forward(ids, targets, 2, 10);
    m.backward(ops::Grad::kAdd);
    auto twice = grads();
    for (size_t i = 0; i < twice.size(); ++i)
      for (size_t j = 0; j < twice[i].size(); ++j) ASSERT_NEAR(twice[i][j], 2 * written[i][j], 1e-6) << i;
  }
}

TEST(Llama, IgnoredTargetsAndInputChecks) {
  auto be = ops::make_cpu_backend(2);
  Llama m(small_config(false), *be);
  m.init_weights(9);
  auto ids = some_ids(2 * 8, 50);
  std::vector<int32_t> none(ids.size(), kIgnoreIndex);
  EXPECT_EQ(m.forward(ids, none, 2, 8), 0.0f);
  m.zero_grad();
  m.backward();
  for (const Parameter& p : m.parameters())
    for (float g : be->to_host_f32(p.grad)) ASSERT_EQ(g, 0.0f) << p.name;

  // The loss is the mean of the per-position losses at the targets kept.
  auto targets = shift_targets(ids, 2, 8);
  targets[2] = kIgnoreIndex;
  float loss = m.forward(ids, targets, 2, 8);
  auto per = be->to_host_f32(m.losses());
  double sum = 0;
  int valid = 0;
  for (size_t i = 0; i < targets.size(); ++i)
    if (targets[i] != kIgnoreIndex) sum += per[i], ++valid;
    else EXPECT_EQ(per[i], 0.0f);
  EXPECT_EQ(valid, 13);
  EXPECT_NEAR(loss, sum / valid, 1e-6);

  auto bad = ids;
  bad[4] = 50;
  expect_error([&] { m.forward(bad, 2, 8); }, "outside the vocabulary");
  targets[0] = -3;
  expect_error([&] { m.forward(ids, targets, 2, 8); }, "not the ignore index");
  expect_error([&] { m.forward(ids, 3, 8); }, "token ids for a 3x8 batch");
  m.forward(ids, 2, 8);  // no targets
  expect_error([&] { m.backward(); }, "call forward with targets first");
  // Longer sequences than max_position_embeddings still work (the RoPE table grows).
  auto long_ids = some_ids(40, 50);
  EXPECT_NO_THROW(m.forward(long_ids, shift_targets(long_ids, 1, 40), 1, 40));
}

// A tiny model learns a repeated sequence: the loss falls steadily under AdamW.
TEST(Llama, TrainsOnARepeatedSequence) {
  auto be = ops::make_cpu_backend(2);
  Llama m(small_config(false), *be);
  m.init_weights(11);
  AdamWConfig cfg;
  cfg.lr = 3e-3;
  AdamW opt(*be, m.parameters(), cfg);
  auto ids = some_ids(2 * 16, 50);
  auto targets = shift_targets(ids, 2, 16);
  float first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    float loss = m.forward(ids, targets, 2, 16);
    if (step == 0) first = loss;
    last = loss;
    m.zero_grad();
    m.backward();
    double norm = global_grad_norm(*be, m.parameters());
    opt.step(m.parameters(), cfg.lr, clip_coefficient(norm, 1.0));
  }
  EXPECT_NEAR(first, std::log(50.0), 0.2);
  EXPECT_LT(last, first * 0.5);
}

// Moments in host memory for the first share of the parameters (optimizer offload): the same
// training, bit for bit, as with all moments on the device; moments read and written either way.
TEST(Llama, AdamWWithOffloadedMomentsMatchesDeviceMoments) {
  auto be = ops::make_cpu_backend(1);
  Llama a(small_config(false), *be), b(small_config(false), *be);
  a.init_weights(5);
  b.init_weights(5);
  AdamWConfig cfg;
  cfg.lr = 3e-3;
  AdamW on_device(*be, a.parameters(), cfg), half(*be, b.parameters(), cfg, 0.5);
  size_t host = 0;
  for (size_t i = 0; i < b.parameters().size(); ++i) host += half.on_host(i);
  EXPECT_TRUE(half.on_host(0));
  EXPECT_FALSE(half.on_host(b.parameters().size() - 1));
  EXPECT_GT(host, 1u);
  auto ids = some_ids(2 * 16, 50);
  auto targets = shift_targets(ids, 2, 16);
  for (int step = 0; step < 3; ++step) {
    for (auto [m, opt] : {std::pair{&a, &on_device}, std::pair{&b, &half}}) {
      m->forward(ids, targets, 2, 16, /*for_backward=*/true);
      m->zero_grad();
      m->backward();
      opt->step(m->parameters(), cfg.lr, clip_coefficient(global_grad_norm(*be, m->parameters()), 1.0));
    }
  }
  for (size_t i = 0; i < a.parameters().size(); ++i) {
    EXPECT_EQ(be->to_host_f32(b.parameters()[i].value), be->to_host_f32(a.parameters()[i].value)) << i;
    EXPECT_EQ(half.moment(i, 0), on_device.moment(i, 0)) << i;
    EXPECT_EQ(half.moment(i, 1), on_device.moment(i, 1)) << i;
  }
  std::vector<float> m0 = half.moment(0, 0);
  m0[0] = 42;
  half.set_moment(0, 0, m0);
  EXPECT_EQ(half.moment(0, 0)[0], 42.0f);
  EXPECT_THROW(half.set_moment(0, 1, std::vector<float>(3)), Error);
  EXPECT_THROW(AdamW(*be, a.parameters(), cfg, 1.5), Error);
}

TEST(Llama, ParameterCountsAndFlops) {
  // Llama-3.2-1B shape (tied) and Llama-3-8B shape (untied): published parameter counts.
  LlamaConfig c;
  c.vocab_size = 128256;
  c.hidden_size = 2048;
  c.intermediate_size = 8192;
  c.num_hidden_layers = 16;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.tie_word_embeddings = true;
  c.fill_defaults();
  EXPECT_EQ(parameter_count(c), 1'235'814'400);
  c.vocab_size = 128256;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_hidden_layers = 32;
  c.head_dim = 128;
  c.tie_word_embeddings = false;
  EXPECT_EQ(parameter_count(c), 8'030'261'248);
  // FLOPs: 6 per matmul parameter per token plus 12·L·d·T for attention.
  LlamaConfig s = small_config(false);
  int64_t per_layer = 2 * 32 * 32 + 2 * 16 * 32 + 3 * 40 * 32;
  EXPECT_EQ(matmul_parameter_count(s), 2 * per_layer + 50 * 32);
  EXPECT_DOUBLE_EQ(train_flops_per_token(s, 100), 6.0 * (2 * per_layer + 50 * 32) + 12.0 * 2 * 32 * 100);
  MemoryEstimate mem = estimate_memory(s, 1, 100);
  EXPECT_EQ(mem.adam_states, 2 * mem.gradients);
  EXPECT_GT(mem.activations, 100.0 * 50 * 4);  // at least the logits
}

}  // namespace
}  // namespace agpt::model
