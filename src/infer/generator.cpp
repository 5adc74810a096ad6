#include "infer/generator.h"

#include <algorithm>
#include <chrono>

#include "base/error.h"
#include "infer/text_stream.h"
#include "model/kv_cache.h"

namespace agpt::infer {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kMaxTokens: return "max_tokens";
    case StopReason::kEos: return "eos";
    case StopReason::kStopString: return "stop_string";
    case StopReason::kContextFull: return "context_full";
  }
  return "?";
}

double GenerateResult::prefill_tokens_per_second() const {
  return prefill_seconds > 0 ? static_cast<double>(prompt_ids.size()) / prefill_seconds : 0;
}

double GenerateResult::decode_tokens_per_second() const {
  return decode_seconds > 0 ? static_cast<double>(decode_steps) / decode_seconds : 0;
}

Generator::Generator(model::Llama& model, const text::Tokenizer& tokenizer)
    : model_(model), tokenizer_(tokenizer) {
  const int64_t V = model.config().vocab_size;
  sample_vocab_ = std::min<int64_t>(V, static_cast<int64_t>(tokenizer.vocab_size()));
  for (int64_t id : model.config().eos_token_ids)
    if (id >= 0 && id < V) eos_ids_.insert(static_cast<int32_t>(id));
  if (auto eos = tokenizer.eos_id(); eos && *eos < V) eos_ids_.insert(static_cast<int32_t>(*eos));
}

std::vector<int32_t> Generator::prompt_ids(std::string_view prompt) const {
  // encode_with_template gives prefix + ids + suffix; the template alone (of "") is prefix + suffix.
  // The prefix is the longest start of the template that the full encoding shares.
  std::vector<uint32_t> full = tokenizer_.encode_with_template(prompt, true);
  std::vector<uint32_t> plain = tokenizer_.encode(prompt, true);
  std::vector<uint32_t> bare = tokenizer_.encode_with_template("", true);
  size_t prefix = 0;
  for (size_t k = std::min(bare.size(), full.size() - plain.size()) + 1; k-- > 0;) {
    bool head = std::equal(bare.begin(), bare.begin() + k, full.begin());
    bool tail = std::equal(bare.begin() + k, bare.end(), full.begin() + k + plain.size(), full.end());
    if (head && tail) {
      prefix = k;
      break;
    }
  }
  std::vector<int32_t> ids(full.begin(), full.begin() + prefix + plain.size());
  if (ids.empty()) {
    auto start = tokenizer_.bos_id() ? tokenizer_.bos_id() : tokenizer_.eos_id();
    if (!start)
      fail("the prompt is empty and the tokenizer has no BOS or EOS token to start from; give some prompt text");
    ids.push_back(static_cast<int32_t>(*start));
  }
  return ids;
}

GenerateResult Generator::generate(std::string_view prompt, const GenerateOptions& options,
                                   const TextCallback& on_text) {
  return generate_ids(prompt_ids(prompt), options, on_text);
}

GenerateResult Generator::generate_ids(std::vector<int32_t> prompt, const GenerateOptions& options,
                                       const TextCallback& on_text) {
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  const model::LlamaConfig& config = model_.config();
  if (options.max_tokens < 0) fail("max tokens must be >= 0, got ", options.max_tokens);
  if (prompt.empty()) fail("generate: the prompt has no tokens");
  for (int32_t id : prompt)
    if (id < 0 || id >= config.vocab_size)
      fail("the prompt's token ", id, " is outside the model's vocabulary of ", config.vocab_size,
           " (does the tokenizer belong to this model?)");
  const int64_t context = config.max_position_embeddings, P = static_cast<int64_t>(prompt.size());
  if (P > context)
    fail("the prompt has ", P, " tokens, more than the model's context of ", context,
         " positions (max_position_embeddings); shorten it");
  Sampler sampler(options.sampling);
  TextStream stream(options.stop);

  GenerateResult r;
  r.prompt_ids = std::move(prompt);
  // Positions that get a forward: the prompt and every generated token but the last.
  const int64_t capacity = std::min(context, P + std::max<int64_t>(options.max_tokens - 1, 0));
  ops::Backend& be = model_.backend();
  model::KvCache cache(config, be, capacity);
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    r.text += piece;
    if (on_text) on_text(piece);
  };

  Clock::time_point start = Clock::now();
  std::vector<float> logits = be.to_host_f32(model_.forward_cached(cache, r.prompt_ids, 0));
  r.prefill_seconds = seconds_since(start);
  start = Clock::now();
  for (int64_t pos = P;; ++pos) {
    if (static_cast<int64_t>(r.tokens.size()) >= options.max_tokens) {
      r.reason = StopReason::kMaxTokens;
      break;
    }
    int32_t id = sampler.sample(std::span<const float>(logits).first(static_cast<size_t>(sample_vocab_)));
    if (options.stop_at_eos && eos_ids_.count(id)) {
      r.reason = StopReason::kEos;
      break;
    }
    r.tokens.push_back(id);
    emit(stream.push(tokenizer_.token_bytes(static_cast<uint32_t>(id))));
    if (stream.stopped()) {
      r.reason = StopReason::kStopString;
      break;
    }
    if (static_cast<int64_t>(r.tokens.size()) >= options.max_tokens) {
      r.reason = StopReason::kMaxTokens;
      break;
    }
    if (pos >= cache.capacity()) {  // only reached when the context, not max_tokens, is the limit
      r.reason = StopReason::kContextFull;
      break;
    }
    logits = be.to_host_f32(model_.forward_cached(cache, std::span<const int32_t>(&id, 1), pos));
    ++r.decode_steps;
  }
  emit(stream.finish());
  r.decode_seconds = seconds_since(start);
  return r;
}

}  // namespace agpt::infer
