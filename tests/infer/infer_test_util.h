// Helpers for the inference tests: a small byte-level BPE tokenizer trained in memory and a tiny
// random Llama over its vocabulary.
#pragma once
#include <memory>
#include <string>

#include "model/llama.h"
#include "text/bpe_trainer.h"
#include "text/tokenizer.h"
#include "text/tokenizer_json_writer.h"

namespace agpt::infer::testing {

// 300 ids: <|endoftext|> (id 0, the EOS), 256 bytes, 43 merges learned from English-like text.
// bos: also a <|begin_of_text|> token that the post-processor prepends (Llama 3 style).
inline std::string tokenizer_json(bool bos = false) {
  text::BpeTrainerOptions o;
  o.vocab_size = bos ? 301 : 300;
  o.special_tokens = {"<|endoftext|>"};
  if (bos) o.special_tokens.push_back("<|begin_of_text|>");
  o.show_progress = false;
  o.threads = 1;
  text::BpeTrainer trainer(o);
  const char* words[] = {"the", "model", "learns", "from", "data", "and", "energy", "of", "a", "graph", "cell"};
  std::string text;
  for (int i = 0; i < 400; ++i) text += std::string(words[(i * 7) % 11]) + (i % 9 == 8 ? ".\n" : " ");
  trainer.add_text(text);
  text::TokenizerJsonOptions jo;
  if (bos) jo.bos_token = "<|begin_of_text|>";
  return text::to_tokenizer_json(trainer.train(), jo);
}

inline std::unique_ptr<text::Tokenizer> make_tokenizer(bool bos = false) {
  return std::make_unique<text::Tokenizer>(text::parse_tokenizer_json(tokenizer_json(bos), "test tokenizer"));
}

inline model::LlamaConfig tiny_config(int64_t vocab, int64_t max_positions = 64) {
  model::LlamaConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = max_positions;
  c.rms_norm_eps = 1e-5;
  c.initializer_range = 0.5;  // far from uniform logits, so greedy text varies
  c.fill_defaults();
  return c;
}

}  // namespace agpt::infer::testing
