// The Llama shapes of the CUDA issue's benchmark table (124M, 1B, 7B) with their default
// micro-batch, shared by the GPU training benchmarks so they measure the same models.
#pragma once
#include <string>

#include "base/error.h"
#include "model/config.h"

namespace agpt::bench {

struct Shape {
  std::string name;
  model::LlamaConfig config;
  int batch, seq;  // the table's micro-batch: batch sequences of seq tokens
};

inline Shape make_shape(const std::string& name) {
  model::LlamaConfig c;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.tie_word_embeddings = true;
  if (name == "124M") {
    c.vocab_size = 50304, c.hidden_size = 768, c.intermediate_size = 2048, c.num_hidden_layers = 12;
    c.num_attention_heads = 12, c.num_key_value_heads = 12;
    return {name, c, 16, 1024};
  }
  if (name == "1B") {
    c.vocab_size = 128256, c.hidden_size = 2048, c.intermediate_size = 8192, c.num_hidden_layers = 16;
    c.num_attention_heads = 32, c.num_key_value_heads = 8;
    return {name, c, 4, 2048};
  }
  if (name == "7B") {
    c.vocab_size = 128256, c.hidden_size = 4096, c.intermediate_size = 14336, c.num_hidden_layers = 32;
    c.num_attention_heads = 32, c.num_key_value_heads = 8, c.tie_word_embeddings = false;
    return {name, c, 1, 4096};
  }
  fail("--shape must be 124M, 1B or 7B, not '", name, "'");
}

}  // namespace agpt::bench
