// LlamaConfig: the shape of a Llama model, read from and written to Hugging Face config.json
// (LlamaForCausalLM). Both spellings of RoPE settings are understood: transformers 4
// (rope_theta + rope_scaling) and transformers 5 (rope_parameters).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace agpt::model {

struct RopeScaling {
  std::string type = "default";  // "default", "linear" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  std::vector<int64_t> bos_token_ids;  // 0 or 1 entries
  std::vector<int64_t> eos_token_ids;  // Llama 3 lists several
  double initializer_range = 0.02;
  std::string torch_dtype = "float32";  // what the saved weights are

  // Fills defaults (kv heads, head_dim) and checks every constraint; throws agpt::Error naming the
  // field and the fix. `where` prefixes messages (a path).
  void validate(const std::string& where = "config") const;
  void fill_defaults();

  // Parses a config.json object; unknown keys are warned about (with the closest known key).
  static LlamaConfig from_json(const nlohmann::json& j, const std::string& where = "config.json");
  static LlamaConfig load(const std::string& path);  // a config.json file or a model directory
  // The config.json that transformers loads as LlamaForCausalLM.
  nlohmann::ordered_json to_json() const;
  void save(const std::string& path) const;  // atomic

  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }
};

// RoPE inverse frequencies [head_dim/2] as transformers computes them in float32, with the
// config's scaling applied (llama3: the smooth long-context interpolation of Llama 3.1).
std::vector<float> rope_inv_freq(const LlamaConfig& config);

}  // namespace agpt::model
