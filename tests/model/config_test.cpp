#include "model/config.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "base/file.h"
#include "test_util.h"

namespace agpt::model {
namespace {

nlohmann::json base_config() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 100, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 128,
    "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2})");
}

void expect_error(const nlohmann::json& j, const std::string& needle) {
  try {
    LlamaConfig::from_json(j);
    ADD_FAILURE() << "no error; expected '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(LlamaConfig, ReadsTransformers5Configs) {
  std::string path = testing::testdata("llama-ref/llama-tiny-tied/model/config.json");
  if (!file_exists(path)) GTEST_SKIP();
  LlamaConfig c = LlamaConfig::load(path);
  EXPECT_EQ(c.vocab_size, 384);
  EXPECT_EQ(c.hidden_size, 96);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.num_attention_heads, 6);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rope_theta, 500000.0);  // from rope_parameters
  EXPECT_EQ(c.rope_scaling.type, "default");
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.torch_dtype, "float32");  // "dtype" in transformers 5
}

TEST(LlamaConfig, DefaultsAndTransformers4Rope) {
  nlohmann::json j = base_config();
  j.erase("num_key_value_heads");
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  j["eos_token_id"] = {128001, 128008, 128009};
  LlamaConfig c = LlamaConfig::from_json(j);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids.size(), 3u);

  // to_json -> from_json keeps everything.
  LlamaConfig back = LlamaConfig::from_json(nlohmann::json::parse(c.to_json().dump()));
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(back.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.to_json()["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(c.to_json()["rope_parameters"]["rope_type"], "llama3");
}

TEST(LlamaConfig, ClearErrors) {
  auto with = [](const char* key, nlohmann::json v) {
    nlohmann::json j = base_config();
    j[key] = v;
    return j;
  };
  expect_error(with("num_attention_heads", 3), "not divisible by num_attention_heads");
  expect_error(with("num_key_value_heads", 3), "must be a multiple of num_key_value_heads");
  expect_error(with("hidden_size", "64"), "\"hidden_size\" must be an integer");
  expect_error(with("vocab_size", 0), "vocab_size must be positive");
  expect_error(with("head_dim", 15), "must be even");
  expect_error(with("model_type", "gpt2"), "agpt reads Llama models");
  expect_error(with("hidden_act", "gelu"), "not supported");
  expect_error(with("attention_bias", true), "attention_bias");
  expect_error(with("rms_norm_eps", -1), "rms_norm_eps");
  expect_error(with("rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}), "rope_type \"yarn\" is not supported");
  expect_error(with("rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}), "llama3 needs");
  expect_error(with("eos_token_id", "x"), "token id");
  nlohmann::json j = base_config();
  j.erase("vocab_size");
  expect_error(j, "missing \"vocab_size\"");
  expect_error(nlohmann::json::array(), "JSON object");
  // A typo is ignored with a warning naming the key it resembles.
  nlohmann::json typo = base_config();
  typo["rms_norm_epz"] = 1e-6;
  ::testing::internal::CaptureStderr();
  EXPECT_NO_THROW(LlamaConfig::from_json(typo));
  std::string warning = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warning.find("unknown key \"rms_norm_epz\" ignored (did you mean \"rms_norm_eps\"?)"), std::string::npos)
      << warning;
  // head_dim given explicitly may differ from hidden/heads (as in transformers).
  EXPECT_NO_THROW(LlamaConfig::from_json(with("head_dim", 32)));
}

TEST(LlamaConfig, RopeInvFreq) {
  LlamaConfig c = LlamaConfig::from_json(base_config());
  auto inv = rope_inv_freq(c);
  ASSERT_EQ(inv.size(), 8u);
  for (size_t i = 0; i < inv.size(); ++i) EXPECT_NEAR(inv[i], std::pow(10000.0, -2.0 * i / 16), 1e-7 * inv[i] + 1e-12);

  // Llama 3.1: theta 5e5, head_dim 128, factor 8, low 1, high 4, original 8192.
  nlohmann::json j = base_config();
  j["hidden_size"] = 512;
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  c = LlamaConfig::from_json(j);
  inv = rope_inv_freq(c);
  ASSERT_EQ(inv.size(), 64u);
  for (size_t i = 0; i < inv.size(); ++i) {
    double f = std::pow(500000.0, -2.0 * i / 128), wavelen = 2 * M_PI / f, want;
    if (wavelen < 8192 / 4.0) want = f;                // high frequencies kept
    else if (wavelen > 8192 / 1.0) want = f / 8;       // low frequencies slowed by the factor
    else {                                             // smooth band in between
      double smooth = (8192 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - smooth) * f / 8 + smooth * f;
    }
    EXPECT_NEAR(inv[i], want, 2e-6 * want) << i;
  }
}

// Mutated config.json texts: each either parses into a valid config or fails with agpt::Error.
TEST(LlamaConfig, MutatedConfigsGiveCleanErrors) {
  nlohmann::json j = base_config();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  const std::string good = j.dump();
  uint64_t state = 3;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  const char alphabet[] = "0123456789-.eE\"{}[],: truefalsnl";
  int valid = 0, rejected = 0;
  ::testing::internal::CaptureStderr();  // typo warnings ("did you mean ...")
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text = good;
    for (int e = 1 + static_cast<int>(next() % 3); e > 0; --e)
      text[next() % text.size()] = alphabet[next() % (sizeof alphabet - 1)];
    nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) continue;
    try {
      LlamaConfig c = LlamaConfig::from_json(parsed);
      c.validate();
      ++valid;
    } catch (const Error&) {
      ++rejected;
    }
  }
  ::testing::internal::GetCapturedStderr();
  EXPECT_GT(valid, 0);
  EXPECT_GT(rejected, 0);
}

// The float32 inv_freq transformers 5.17 computed (model.rotary_emb.inv_freq) for a config agpt
// wrote: head_dim 16, theta 5e5, llama3 scaling factor 8, low 1, high 4, original 64 positions, so
// that one frequency is kept, one interpolated and six slowed down.
TEST(LlamaConfig, RopeInvFreqLlama3EqualsTransformers) {
  nlohmann::json j = base_config();
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  auto inv = rope_inv_freq(LlamaConfig::from_json(j));
  const double hf[] = {1.0, 0.07940301299095154, 0.004700753837823868, 0.0009115831344388425,
                       0.00017677668074611574, 3.428102354519069e-05, 6.647869668086059e-06, 1.289173155782919e-06};
  ASSERT_EQ(inv.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(inv[i], static_cast<float>(hf[i])) << i;
}

}  // namespace
}  // namespace agpt::model
