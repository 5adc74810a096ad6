// Writes a trained byte-level BPE model as a Hugging Face `tokenizer.json` that HF `tokenizers`
// (>= 0.20, for the list-of-pairs merges form) and transformers' PreTrainedTokenizerFast load as is:
//   added_tokens   the special tokens (special, not normalized, no strip)
//   normalizer     null
//   pre_tokenizer  Sequence[Split(Regex pattern, Isolated), ByteLevel(no prefix space, no regex)]
//   post_processor ByteLevel, or Sequence[ByteLevel, TemplateProcessing] that prepends a BOS token
//   decoder        ByteLevel
//   model          BPE: vocab (byte-level text -> id, in id order; special tokens by their text),
//                  merges as [["left", "right"], ...] in rank order
#pragma once
#include <string>

#include "text/bpe_trainer.h"

namespace agpt::text {

struct TokenizerJsonOptions {
  // When set, encodings get this special token prepended (post_processor TemplateProcessing), as
  // Llama-3's tokenizer.json does with <|begin_of_text|>. Must be one of the model's special tokens.
  std::string bos_token;
};

// The tokenizer.json text (pretty-printed with two spaces, like HF). Throws Error when the model is
// inconsistent (duplicate token texts, merges naming unknown ids or results missing from the vocab).
std::string to_tokenizer_json(const BpeModel& model, const TokenizerJsonOptions& options = {});

// Hugging Face reads the Split pattern with Oniguruma (Ruby syntax), which differs from PCRE2 in
// one construct seen in real patterns: a possessive interval `X{n,m}+` (tiktoken 0.14's cl100k has
// `\p{N}{1,3}+`) is read as `(?:X{n,m})+`, so "12345678" stays one piece instead of 123|456|78.
// Returns a message naming the problem and the fix, or "" when the pattern has no such construct.
std::string hf_pattern_problem(const std::string& pattern);

// Writes to_tokenizer_json(model, options) to path atomically.
void write_tokenizer_json(const std::string& path, const BpeModel& model, const TokenizerJsonOptions& options = {});

}  // namespace agpt::text
