// Text generation with a Llama and its tokenizer: encode the prompt, prefill a KV cache with it,
// then sample one token at a time, streaming text pieces to a callback as they become final.
//
//   infer::Generator gen(model, tokenizer);
//   infer::GenerateOptions o;  o.max_tokens = 100;  o.sampling.temperature = 0;
//   auto r = gen.generate("Once upon a time", o, [](std::string_view piece) { std::cout << piece; });
//
// Generation stops at max_tokens, at an end-of-sequence token (config.json eos_token_id, the
// tokenizer's EOS such as <|endoftext|>; neither is shown), at a stop string (not shown), or when
// the model's context (max_position_embeddings) is full.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "infer/sampler.h"
#include "model/llama.h"
#include "text/tokenizer.h"

namespace agpt::infer {

struct GenerateOptions {
  int64_t max_tokens = 200;  // new tokens at most (>= 0)
  SamplerOptions sampling;
  std::vector<std::string> stop;  // stop strings (non-empty)
  bool stop_at_eos = true;
};

enum class StopReason { kMaxTokens, kEos, kStopString, kContextFull };
const char* stop_reason_name(StopReason reason);  // "max_tokens", "eos", "stop_string", "context_full"

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> tokens;  // generated ids, the EOS excluded (all of them, text cut by a stop string or not)
  std::string text;             // what was streamed: the generated text, cut before a stop string
  StopReason reason = StopReason::kMaxTokens;
  // Prefill: the prompt's forward. Decode: every later step (sampling plus a one-token forward).
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t decode_steps = 0;  // one-token forwards run
  double prefill_tokens_per_second() const;
  double decode_tokens_per_second() const;
};

using TextCallback = std::function<void(std::string_view piece)>;

class Generator {
 public:
  // The model's vocabulary may be larger than the tokenizer's (padded embeddings): ids the tokenizer
  // cannot decode are never sampled.
  Generator(model::Llama& model, const text::Tokenizer& tokenizer);

  // The prompt's ids: special-token text is matched (as Hugging Face does), and the tokenizer's
  // post-processor prefix (e.g. Llama 3's <|begin_of_text|>) is prepended but not its suffix (an
  // EOS would end the text). An empty result becomes [BOS] or, without one, [EOS] (GPT-2 style
  // "start of a document"); fails when the tokenizer has neither.
  std::vector<int32_t> prompt_ids(std::string_view prompt) const;

  GenerateResult generate(std::string_view prompt, const GenerateOptions& options, const TextCallback& on_text = {});
  GenerateResult generate_ids(std::vector<int32_t> prompt_ids, const GenerateOptions& options,
                              const TextCallback& on_text = {});

  // The ids that end generation: config.json's eos_token_id(s) and the tokenizer's EOS.
  const std::set<int32_t>& eos_ids() const { return eos_ids_; }

 private:
  model::Llama& model_;
  const text::Tokenizer& tokenizer_;
  std::set<int32_t> eos_ids_;
  int64_t sample_vocab_;  // ids [0, sample_vocab_) may be sampled
};

}  // namespace agpt::infer
