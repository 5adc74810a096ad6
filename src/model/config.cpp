#include "model/config.h"

#include <cmath>
#include <filesystem>
#include <numbers>
#include <set>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "model/safetensors.h"

namespace agpt::model {
namespace {

// Keys this file reads.
const std::vector<std::string> kUsedKeys = {
    "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps",
    "rope_theta", "rope_scaling", "rope_parameters", "tie_word_embeddings", "bos_token_id", "eos_token_id",
    "initializer_range", "torch_dtype", "dtype", "hidden_act", "attention_bias", "mlp_bias",
    "attention_dropout", "pretraining_tp", "quantization_config"};
// Keys transformers writes that do not change the model's math.
const std::set<std::string> kIgnoredKeys = {"transformers_version", "use_cache", "pad_token_id", "_name_or_path",
                                            "output_attentions", "output_hidden_states", "return_dict",
                                            "torchscript", "id2label", "label2id", "tokenizer_class"};

int64_t get_int(const nlohmann::json& j, const char* key, const std::string& where, int64_t fallback,
                bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(where, ": missing \"", key, "\"");
    return fallback;
  }
  if (!it->is_number_integer()) fail(where, ": \"", key, "\" must be an integer, got ", it->dump());
  return it->get<int64_t>();
}

double get_number(const nlohmann::json& j, const char* key, const std::string& where, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) fail(where, ": \"", key, "\" must be a number, got ", it->dump());
  return it->get<double>();
}

bool get_bool(const nlohmann::json& j, const char* key, const std::string& where, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(where, ": \"", key, "\" must be true or false, got ", it->dump());
  return it->get<bool>();
}

std::vector<int64_t> get_ids(const nlohmann::json& j, const char* key, const std::string& where) {
  std::vector<int64_t> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  auto one = [&](const nlohmann::json& v) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      fail(where, ": \"", key, "\" must be a token id or a list of token ids, got ", it->dump());
    out.push_back(v.get<int64_t>());
  };
  if (it->is_array())
    for (const auto& v : *it) one(v);
  else
    one(*it);
  return out;
}

// rope_scaling (transformers 4) or rope_parameters (transformers 5).
void parse_rope(const nlohmann::json& r, const std::string& where, LlamaConfig& c) {
  if (r.is_null()) return;
  if (!r.is_object()) fail(where, ": rope settings must be an object, got ", r.dump());
  if (r.contains("rope_theta")) c.rope_theta = get_number(r, "rope_theta", where, c.rope_theta);
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    auto it = r.find(key);
    if (it != r.end() && !it->is_null()) {
      if (!it->is_string()) fail(where, ": \"", key, "\" must be a string");
      type = it->get<std::string>();
      break;
    }
  }
  if (type != "default" && type != "linear" && type != "llama3")
    fail(where, ": rope_type \"", type, "\" is not supported (agpt supports default, linear and llama3)");
  c.rope_scaling.type = type;
  c.rope_scaling.factor = get_number(r, "factor", where, 1.0);
  if (type == "llama3") {
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
      if (!r.contains(key)) fail(where, ": rope_type llama3 needs \"", key, "\"");
    c.rope_scaling.low_freq_factor = get_number(r, "low_freq_factor", where, 1.0);
    c.rope_scaling.high_freq_factor = get_number(r, "high_freq_factor", where, 4.0);
    c.rope_scaling.original_max_position_embeddings =
        get_int(r, "original_max_position_embeddings", where, 8192, true);
  } else if (type == "linear" && !r.contains("factor")) {
    fail(where, ": rope_type linear needs \"factor\"");
  }
}

}  // namespace

void LlamaConfig::fill_defaults() {
  if (num_key_value_heads == 0) num_key_value_heads = num_attention_heads;
  if (head_dim == 0 && num_attention_heads > 0) head_dim = hidden_size / num_attention_heads;
}

void LlamaConfig::validate(const std::string& where) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) fail(where, ": ", key, " must be positive, got ", v);
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("max_position_embeddings", max_position_embeddings);
  if (vocab_size > (int64_t{1} << 31) - 1) fail(where, ": vocab_size ", vocab_size, " exceeds 2^31-1");
  const int64_t kMaxDim = int64_t{1} << 20;
  for (auto [key, v] : {std::pair{"hidden_size", hidden_size}, {"intermediate_size", intermediate_size},
                        {"head_dim", head_dim}, {"num_attention_heads", num_attention_heads},
                        {"num_hidden_layers", num_hidden_layers}})
    if (v > kMaxDim) fail(where, ": ", key, " = ", v, " is implausibly large");
  if (head_dim % 2 != 0) fail(where, ": head_dim ", head_dim, " must be even (RoPE rotates pairs)");
  if (num_attention_heads % num_key_value_heads != 0)
    fail(where, ": num_attention_heads (", num_attention_heads, ") must be a multiple of num_key_value_heads (",
         num_key_value_heads, ")");
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps))
    fail(where, ": rms_norm_eps must be a positive number, got ", rms_norm_eps);
  if (!(rope_theta > 1) || !std::isfinite(rope_theta))
    fail(where, ": rope_theta must be a number above 1, got ", rope_theta);
  if (!(rope_scaling.factor > 0) || !std::isfinite(rope_scaling.factor))
    fail(where, ": rope scaling factor must be positive, got ", rope_scaling.factor);
  if (rope_scaling.type == "llama3") {
    if (!(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor) || !(rope_scaling.low_freq_factor > 0))
      fail(where, ": llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor");
    if (rope_scaling.original_max_position_embeddings <= 0)
      fail(where, ": original_max_position_embeddings must be positive");
  }
}

LlamaConfig LlamaConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": a config must be a JSON object");
  for (const auto& [key, _] : j.items()) {
    if (std::find(kUsedKeys.begin(), kUsedKeys.end(), key) != kUsedKeys.end() || kIgnoredKeys.count(key)) continue;
    std::string near = closest_name(key, kUsedKeys);
    if (!near.empty())
      log_warn(where, ": unknown key \"", key, "\" ignored (did you mean \"", near, "\"?)");
    else
      log_debug(where, ": key \"", key, "\" ignored");
  }
  if (j.contains("model_type") && !j["model_type"].is_null() && j["model_type"] != "llama")
    fail(where, ": model_type is ", j["model_type"].dump(), "; agpt reads Llama models (\"llama\")");
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    fail(where, ": hidden_act ", j["hidden_act"].dump(), " is not supported (Llama uses \"silu\")");
  if (get_bool(j, "attention_bias", where, false)) fail(where, ": attention_bias true is not supported");
  if (get_bool(j, "mlp_bias", where, false)) fail(where, ": mlp_bias true is not supported");
  if (j.contains("quantization_config") && !j["quantization_config"].is_null())
    fail(where, ": quantized checkpoints are not supported; use fp32, fp16 or bf16 weights");

  LlamaConfig c;
  c.vocab_size = get_int(j, "vocab_size", where, 0, true);
  c.hidden_size = get_int(j, "hidden_size", where, 0, true);
  c.intermediate_size = get_int(j, "intermediate_size", where, 0, true);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", where, 0, true);
  c.num_attention_heads = get_int(j, "num_attention_heads", where, 0, true);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", where, 0, false);
  c.head_dim = get_int(j, "head_dim", where, 0, false);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", where, 2048, false);
  c.rms_norm_eps = get_number(j, "rms_norm_eps", where, 1e-6);
  c.rope_theta = get_number(j, "rope_theta", where, 10000.0);
  if (j.contains("rope_scaling")) parse_rope(j["rope_scaling"], where, c);
  if (j.contains("rope_parameters")) parse_rope(j["rope_parameters"], where, c);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, false);
  c.bos_token_ids = get_ids(j, "bos_token_id", where);
  c.eos_token_ids = get_ids(j, "eos_token_id", where);
  c.initializer_range = get_number(j, "initializer_range", where, 0.02);
  for (const char* key : {"torch_dtype", "dtype"})
    if (j.contains(key) && j[key].is_string()) c.torch_dtype = j[key].get<std::string>();
  if (c.num_attention_heads > 0 && c.head_dim == 0 && c.hidden_size % c.num_attention_heads != 0)
    fail(where, ": hidden_size (", c.hidden_size, ") is not divisible by num_attention_heads (",
         c.num_attention_heads, "); set head_dim explicitly");
  if (c.bos_token_ids.size() > 1) fail(where, ": bos_token_id must be a single id");
  c.fill_defaults();
  c.validate(where);
  return c;
}

LlamaConfig LlamaConfig::load(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "config.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    fail(file, ": not valid JSON (", e.what(), ")");
  }
  return from_json(j, file);
}

nlohmann::ordered_json LlamaConfig::to_json() const {
  nlohmann::ordered_json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = bos_token_ids.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(bos_token_ids[0]);
  if (eos_token_ids.empty())
    j["eos_token_id"] = nullptr;
  else if (eos_token_ids.size() == 1)
    j["eos_token_id"] = eos_token_ids[0];
  else
    j["eos_token_id"] = eos_token_ids;
  j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["initializer_range"] = initializer_range;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["mlp_bias"] = false;
  j["num_attention_heads"] = num_attention_heads;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_key_value_heads"] = num_key_value_heads;
  j["pretraining_tp"] = 1;
  j["rms_norm_eps"] = rms_norm_eps;
  // transformers 4 reads rope_theta + rope_scaling, transformers 5 rope_parameters; write both.
  nlohmann::ordered_json scaling = nullptr;
  nlohmann::ordered_json params = {{"rope_theta", rope_theta}, {"rope_type", rope_scaling.type}};
  if (rope_scaling.type != "default") {
    scaling = {{"rope_type", rope_scaling.type}, {"factor", rope_scaling.factor}};
    params["factor"] = rope_scaling.factor;
    if (rope_scaling.type == "llama3") {
      for (auto* s : {&scaling, &params}) {
        (*s)["low_freq_factor"] = rope_scaling.low_freq_factor;
        (*s)["high_freq_factor"] = rope_scaling.high_freq_factor;
        (*s)["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
      }
    }
  }
  j["rope_parameters"] = params;
  j["rope_scaling"] = scaling;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  j["vocab_size"] = vocab_size;
  return j;
}

void LlamaConfig::save(const std::string& path) const {
  validate(path);
  write_file_atomic(path, to_json().dump(2) + "\n");
}

std::vector<float> rope_inv_freq(const LlamaConfig& c) {
  // transformers: inv_freq = 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32.
  const int64_t half = c.head_dim / 2;
  const float base = static_cast<float>(c.rope_theta);
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    float e = static_cast<float>(2 * i) / static_cast<float>(c.head_dim);
    float p = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(e)));
    inv[i] = 1.0f / p;
  }
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "linear") {
    for (float& f : inv) f /= static_cast<float>(s.factor);
  } else if (s.type == "llama3") {
    // Llama 3.1: long wavelengths are slowed down by `factor`, short ones kept, and the band in
    // between interpolated smoothly. Scalars meet float tensors as in transformers.
    const double old_len = static_cast<double>(s.original_max_position_embeddings);
    const float low_wavelen = static_cast<float>(old_len / s.low_freq_factor);
    const float high_wavelen = static_cast<float>(old_len / s.high_freq_factor);
    const float factor = static_cast<float>(s.factor);
    for (float& f : inv) {
      float wavelen = static_cast<float>(2 * std::numbers::pi) / f;
      float scaled = wavelen > low_wavelen ? f / factor : f;
      bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      if (medium) {
        float smooth = (static_cast<float>(old_len) / wavelen - static_cast<float>(s.low_freq_factor)) /
                       static_cast<float>(s.high_freq_factor - s.low_freq_factor);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv;
}

}  // namespace agpt::model
