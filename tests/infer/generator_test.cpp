// The generator on a tiny random Llama: greedy generation equals argmax over the full forward,
// seeds fix sampled text, and each stop condition (max tokens, EOS, stop strings across tokens,
// the context) ends generation with the right text.
#include "infer/generator.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "infer_test_util.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::infer {
namespace {

class GeneratorTest : public ::testing::Test {
 protected:
  std::unique_ptr<ops::Backend> be = ops::make_cpu_backend(1);
  std::unique_ptr<text::Tokenizer> tok = testing::make_tokenizer();
  model::Llama model{testing::tiny_config(static_cast<int64_t>(tok->vocab_size())), *be};
  void SetUp() override { model.init_weights(17); }

  GenerateOptions greedy(int64_t max_tokens) {
    GenerateOptions o;
    o.max_tokens = max_tokens;
    o.sampling.temperature = 0;
    o.stop_at_eos = false;
    return o;
  }
};

TEST_F(GeneratorTest, GreedyEqualsArgmaxOfTheFullForward) {
  Generator gen(model, *tok);
  std::vector<std::string> pieces;
  GenerateResult r = gen.generate("the model learns", greedy(10), [&](std::string_view p) { pieces.emplace_back(p); });
  ASSERT_EQ(r.tokens.size(), 10u);
  EXPECT_EQ(r.reason, StopReason::kMaxTokens);
  EXPECT_EQ(r.decode_steps, 9);

  std::vector<int32_t> ids = r.prompt_ids;
  for (int32_t want_next : r.tokens) {
    model.forward(ids, 1, static_cast<int64_t>(ids.size()));
    auto logits = be->to_host_f32(model.logits());
    std::span<const float> last(logits.data() + (ids.size() - 1) * logits.size() / ids.size(), logits.size() / ids.size());
    EXPECT_EQ(argmax(last), want_next) << "after " << ids.size() << " tokens";
    ids.push_back(want_next);
  }
  std::vector<uint32_t> generated(r.tokens.begin(), r.tokens.end());
  EXPECT_EQ(r.text, tok->decode(generated));
  std::string streamed;
  for (const std::string& p : pieces) streamed += p;
  EXPECT_EQ(streamed, r.text);
  // Greedy is deterministic.
  EXPECT_EQ(gen.generate("the model learns", greedy(10)).tokens, r.tokens);
}

TEST_F(GeneratorTest, SeedsFixSampledText) {
  Generator gen(model, *tok);
  auto sampled = [&](uint64_t seed) {
    GenerateOptions o;
    o.max_tokens = 12;
    o.stop_at_eos = false;
    o.sampling = {1.0, 0, 1.0, seed};
    return gen.generate("data and", o).tokens;
  };
  EXPECT_EQ(sampled(3), sampled(3));
  EXPECT_NE(sampled(3), sampled(4));
}

TEST_F(GeneratorTest, StopStringAcrossATokenBoundaryIsCutOut) {
  Generator gen(model, *tok);
  GenerateResult full = gen.generate("energy of a", greedy(16));
  // A stop string made of the last byte of token 5 and the first byte of token 6.
  std::string left = tok->token_bytes(static_cast<uint32_t>(full.tokens[5]));
  std::string right = tok->token_bytes(static_cast<uint32_t>(full.tokens[6]));
  std::string stop = left.substr(left.size() - 1) + right.substr(0, 1);
  GenerateOptions o = greedy(16);
  o.stop = {stop};
  std::string streamed;
  GenerateResult r = gen.generate("energy of a", o, [&](std::string_view p) { streamed += p; });
  EXPECT_EQ(r.reason, StopReason::kStopString);
  EXPECT_EQ(r.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(streamed, r.text);
  EXPECT_LE(r.tokens.size(), 7u);
}

TEST_F(GeneratorTest, EosEndsGenerationAndIsNotShown) {
  Generator probe(model, *tok);
  int32_t first = probe.generate("graph", greedy(1)).tokens.at(0);
  // Declare the greedy continuation an EOS in config.json: generation ends before showing it.
  model::LlamaConfig c = model.config();
  c.eos_token_ids = {first};
  model::Llama with_eos(c, *be);
  with_eos.init_weights(17);
  Generator gen(with_eos, *tok);
  EXPECT_TRUE(gen.eos_ids().count(first));
  EXPECT_TRUE(gen.eos_ids().count(0));  // the tokenizer's <|endoftext|>
  GenerateOptions o = greedy(5);
  o.stop_at_eos = true;
  GenerateResult r = gen.generate("graph", o);
  EXPECT_EQ(r.reason, StopReason::kEos);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.text, "");
}

TEST_F(GeneratorTest, ContextLimitAndPromptErrors) {
  model::Llama short_model(testing::tiny_config(static_cast<int64_t>(tok->vocab_size()), 12), *be);
  short_model.init_weights(17);
  Generator gen(short_model, *tok);
  std::vector<int32_t> prompt = {5, 6, 7, 8, 9, 10, 11, 12};
  GenerateResult r = gen.generate_ids(prompt, greedy(100));
  EXPECT_EQ(r.reason, StopReason::kContextFull);
  EXPECT_EQ(r.tokens.size(), 5u);  // positions 8..12: the last one predicted from the full context
  try {
    gen.generate_ids(std::vector<int32_t>(13, 5), greedy(1));
    ADD_FAILURE() << "no error for a prompt longer than the context";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than the model's context of 12"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(gen.generate_ids(prompt, greedy(0)).tokens.empty());
  GenerateOptions bad = greedy(3);
  bad.max_tokens = -1;
  EXPECT_THROW(gen.generate_ids(prompt, bad), Error);
}

TEST_F(GeneratorTest, PromptIdsTakeTheTemplatePrefixOnly) {
  Generator gen(model, *tok);
  EXPECT_EQ(gen.prompt_ids(""), std::vector<int32_t>{0});  // no BOS: start from <|endoftext|>
  std::vector<uint32_t> plain = tok->encode("a cell", true);
  EXPECT_EQ(gen.prompt_ids("a cell"), std::vector<int32_t>(plain.begin(), plain.end()));
  EXPECT_EQ(gen.prompt_ids("<|endoftext|>"), std::vector<int32_t>{0});  // special text is matched

  auto bos_tok = testing::make_tokenizer(true);
  model::Llama m(testing::tiny_config(static_cast<int64_t>(bos_tok->vocab_size())), *be);
  Generator with_bos(m, *bos_tok);
  uint32_t bos = *bos_tok->bos_id();
  std::vector<int32_t> want = {static_cast<int32_t>(bos)};
  for (uint32_t id : bos_tok->encode("a cell", true)) want.push_back(static_cast<int32_t>(id));
  EXPECT_EQ(with_bos.prompt_ids("a cell"), want);
  EXPECT_EQ(with_bos.prompt_ids(""), std::vector<int32_t>{static_cast<int32_t>(bos)});
}

}  // namespace
}  // namespace agpt::infer
