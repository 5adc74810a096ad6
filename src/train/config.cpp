#include "train/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "base/file.h"
#include "text/tokenizer.h"

namespace agpt::train {
namespace {

enum class Kind { kInt, kFloat, kString, kBool };

struct Entry {
  KeyInfo info;
  Kind kind;
  std::function<void*(TrainConfig&)> at;
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "string";
    case Kind::kBool: return "bool";
  }
  return "?";
}

#define AGPT_KEY(section, field, kind, traj, help)                                                  \
  Entry {                                                                                           \
    KeyInfo{#section "." #field, kind_name(kind), help, traj}, kind,                                \
        [](TrainConfig& c) -> void* { return &c.section.field; }                                     \
  }

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      AGPT_KEY(model, preset, Kind::kString, true, "tiny | 124M | 350M | 1B | 7B | none: the shape; explicit fields override it"),
      AGPT_KEY(model, vocab_size, Kind::kInt, true, "vocabulary size; 0: from data.tokenizer"),
      AGPT_KEY(model, hidden_size, Kind::kInt, true, "model width; 0: preset"),
      AGPT_KEY(model, intermediate_size, Kind::kInt, true, "SwiGLU MLP width; 0: preset"),
      AGPT_KEY(model, num_hidden_layers, Kind::kInt, true, "layers; 0: preset"),
      AGPT_KEY(model, num_attention_heads, Kind::kInt, true, "query heads; 0: preset"),
      AGPT_KEY(model, num_key_value_heads, Kind::kInt, true, "key/value heads (GQA); 0: preset"),
      AGPT_KEY(model, head_dim, Kind::kInt, true, "head dimension; 0: hidden_size / heads"),
      AGPT_KEY(model, max_position_embeddings, Kind::kInt, true, "positions; 0: the data's seq_len"),
      AGPT_KEY(model, rope_theta, Kind::kFloat, true, "RoPE base; 0: preset (10000; 500000 for 1B)"),
      AGPT_KEY(model, rms_norm_eps, Kind::kFloat, true, "RMSNorm epsilon"),
      AGPT_KEY(model, tie_word_embeddings, Kind::kBool, true, "share embedding and lm_head; default: preset"),
      AGPT_KEY(model, init_from, Kind::kString, true, "start from this HF model directory instead of random init"),
      AGPT_KEY(data, mixture, Kind::kString, true, "directory written by `agpt data mix` (mixture.json)"),
      AGPT_KEY(data, dataset, Kind::kString, true, "or one token dataset PREFIX (.bin/.idx), planned by the trainer"),
      AGPT_KEY(data, list, Kind::kString, true, "or an ALCF data file list (weight prefix corpus), planned like `agpt data mix`"),
      AGPT_KEY(data, seq_len, Kind::kInt, true, "tokens per sample; required with data.dataset/list, checked with data.mixture"),
      AGPT_KEY(data, split, Kind::kString, true, "with data.dataset/list: document split train,valid,test (Megatron --split)"),
      AGPT_KEY(data, valid_samples, Kind::kInt, true, "with data.dataset/list: validation samples to plan"),
      AGPT_KEY(data, seed, Kind::kInt, true, "with data.dataset/list: seed of the sample order"),
      AGPT_KEY(data, tokenizer, Kind::kString, false, "tokenizer.json: vocabulary size; copied into checkpoints"),
      AGPT_KEY(train, micro_batch, Kind::kInt, true, "sequences per forward/backward"),
      AGPT_KEY(train, grad_accum, Kind::kInt, true, "micro-batches per optimizer step (global batch = micro_batch x grad_accum)"),
      AGPT_KEY(train, steps, Kind::kInt, true, "optimizer steps (the schedule's length)"),
      AGPT_KEY(train, lr, Kind::kFloat, true, "peak learning rate"),
      AGPT_KEY(train, min_lr, Kind::kFloat, true, "learning rate at the last step"),
      AGPT_KEY(train, warmup, Kind::kInt, true, "linear warmup steps"),
      AGPT_KEY(train, schedule, Kind::kString, true, "cosine | linear | wsd (warmup-stable-decay)"),
      AGPT_KEY(train, decay_fraction, Kind::kFloat, true, "wsd: fraction of steps in the final linear decay"),
      AGPT_KEY(train, weight_decay, Kind::kFloat, true, "AdamW decoupled weight decay (tensors of 2+ dimensions only)"),
      AGPT_KEY(train, beta1, Kind::kFloat, true, "AdamW beta1"),
      AGPT_KEY(train, beta2, Kind::kFloat, true, "AdamW beta2"),
      AGPT_KEY(train, eps, Kind::kFloat, true, "AdamW epsilon"),
      AGPT_KEY(train, clip, Kind::kFloat, true, "global gradient-norm clipping; <= 0: off"),
      AGPT_KEY(train, init_std, Kind::kFloat, true, "std of the normal init of matrices (norm weights start at 1)"),
      AGPT_KEY(train, seed, Kind::kInt, true, "seed of the weight init"),
      AGPT_KEY(train, eval_every, Kind::kInt, false, "validate every N steps; 0: only at the end"),
      AGPT_KEY(train, eval_batches, Kind::kInt, false, "micro-batches per validation"),
      AGPT_KEY(train, checkpoint_every, Kind::kInt, false, "checkpoint every N steps; 0: only at the end"),
      AGPT_KEY(train, keep_last, Kind::kInt, false, "checkpoints kept (older ones are deleted)"),
      AGPT_KEY(train, async_checkpoint, Kind::kBool, false,
               "write checkpoints on a background thread from a copy in host memory while training goes on"),
      AGPT_KEY(train, out_dir, Kind::kString, false, "run directory: metrics.jsonl, checkpoints/"),
      AGPT_KEY(train, log_every, Kind::kInt, false, "console line every N steps"),
      AGPT_KEY(train, max_bad_steps, Kind::kInt, false, "consecutive skipped steps before training stops"),
      AGPT_KEY(train, spike_zscore, Kind::kFloat, true, "> 0: skip a step whose loss is this many std devs above the recent mean"),
      AGPT_KEY(train, spike_window, Kind::kInt, true, "steps in the loss-spike window"),
      AGPT_KEY(train, peak_flops, Kind::kFloat, false, "machine peak FLOP/s for MFU; 0: MFU not reported"),
      AGPT_KEY(train, threads, Kind::kInt, false, "CPU threads; 0: all cores"),
      AGPT_KEY(train, device, Kind::kString, false, "compute device: cpu, cuda or cuda:N"),
      AGPT_KEY(train, plot, Kind::kBool, false, "draw the curves into OUT/plots/ (as `agpt plot`) at checkpoints and at the end"),
      AGPT_KEY(train, recompute, Kind::kBool, false, "activation recomputation: less memory, about one more forward of compute"),
      AGPT_KEY(train, optimizer_cpu_offload, Kind::kBool, false,
               "keep the AdamW moments in host memory and stream them through the GPU at each update (8 bytes a "
               "parameter less on the GPU; Megatron's --optimizer-cpu-offload); not with the distributed optimizer"),
      AGPT_KEY(train, optimizer_offload_fraction, Kind::kFloat, false,
               "with optimizer_cpu_offload: the share of the parameters (embedding and first layers first) whose "
               "moments go to host memory; the rest stay on the GPU (Megatron's --optimizer-offload-fraction)"),
      AGPT_KEY(train, update_in_backward, Kind::kBool, false,
               "the optimizer step inside the backward (torchtune's optimizer_in_bwd): on Hopper with bf16, the "
               "products that compute the large Linear weights' gradients apply AdamW to them too; needs clip = 0, "
               "grad_accum = 1 and one rank (the update runs before the gradient norm is known)"),
      AGPT_KEY(train, deterministic, Kind::kBool, false,
               "bit-reproducible kernels only: a run repeats and resumes bit for bit (Megatron's --deterministic-mode); "
               "false lets CUDA sum dQ with atomics in cuDNN's attention backward, as PyTorch's SDPA does: about 1% "
               "faster at the 1B shape, and runs then agree only to rounding"),
      AGPT_KEY(train, precision, Kind::kString, true, "fp32; or on CUDA tf32 or bf16: how matrix products run (tensors stay fp32)"),
      AGPT_KEY(train, distributed_optimizer, Kind::kBool, false,
               "with several ranks: shard the AdamW state (ZeRO-1, Megatron's --use-distributed-optimizer); off: all-reduce"),
      AGPT_KEY(train, param_dtype, Kind::kString, true,
               "fp32 | bf16: with the distributed optimizer, bf16 keeps the model's weights in bf16 and the fp32 master "
               "weights sharded with the AdamW state (Megatron's --bf16): 6 + 12/N bytes a parameter instead of 8 + 8/N"),
      AGPT_KEY(train, overlap_grad_reduce, Kind::kBool, false,
               "with the distributed optimizer: reduce gradient buckets during backward (Megatron's --overlap-grad-reduce)"),
      AGPT_KEY(train, bucket_size, Kind::kInt, false, "elements per gradient bucket when overlapping (Megatron's default 40M)"),
      AGPT_KEY(train, overlap_param_gather, Kind::kBool, false,
               "with the distributed optimizer: gather each bucket's updated parameters while the next forward computes "
               "the earlier layers (Megatron's --overlap-param-gather)"),
      AGPT_KEY(train, dist_timeout, Kind::kFloat, false,
               "with several ranks: seconds a collective may wait before the rank exits with an error (code 3); 0: off"),
      AGPT_KEY(train, straggler_every, Kind::kInt, false, "with several ranks: compare the ranks' step times every N steps; 0: off"),
      AGPT_KEY(train, straggler_factor, Kind::kFloat, false, "a rank slower than the median step time by this factor is logged"),
      AGPT_KEY(train, tensor_parallel, Kind::kInt, false,
               "ranks that split each layer (Megatron's --tensor-model-parallel-size; `--tp K`); ranks = data parallel x this"),
  };
  return table;
}
#undef AGPT_KEY

const Entry* find_entry(const std::string& name) {
  for (const Entry& e : entries())
    if (e.info.name == name) return &e;
  return nullptr;
}

std::vector<std::string> all_names() {
  std::vector<std::string> names;
  for (const Entry& e : entries()) names.push_back(e.info.name);
  return names;
}

[[noreturn]] void unknown_key(const std::string& where, const std::string& key) {
  fail(where, ": unknown key '", key, "' (did you mean '", closest(key, all_names()),
       "'? `agpt train --help` lists every key)");
}

int64_t parse_int(const std::string& where, const std::string& key, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (!text.empty() && errno == 0 && *end == '\0') return v;
  // 1e4, 2.5e6: accepted when integral.
  double d = std::strtod(text.c_str(), &end);
  if (!text.empty() && *end == '\0' && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18)
    return static_cast<int64_t>(d);
  fail(where, ": ", key, " must be an integer, not '", text, "'");
}

double parse_float(const std::string& where, const std::string& key, const std::string& text) {
  char* end = nullptr;
  double d = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') fail(where, ": ", key, " must be a number, not '", text, "'");
  if (!std::isfinite(d)) fail(where, ": ", key, " must be finite, not '", text, "'");
  return d;
}

int64_t parse_bool(const std::string& where, const std::string& key, const std::string& text) {
  if (text == "true" || text == "1") return 1;
  if (text == "false" || text == "0") return 0;
  fail(where, ": ", key, " must be true or false, not '", text, "'");
}

void assign_text(TrainConfig& c, const Entry& e, const std::string& text, const std::string& where) {
  void* p = e.at(c);
  switch (e.kind) {
    case Kind::kInt: *static_cast<int64_t*>(p) = parse_int(where, e.info.name, text); break;
    case Kind::kFloat: *static_cast<double*>(p) = parse_float(where, e.info.name, text); break;
    case Kind::kString: *static_cast<std::string*>(p) = text; break;
    case Kind::kBool: *static_cast<int64_t*>(p) = parse_bool(where, e.info.name, text); break;
  }
}

void assign_node(TrainConfig& c, const Entry& e, const toml::node& node, const std::string& where) {
  void* p = e.at(c);
  const std::string& key = e.info.name;
  switch (e.kind) {
    case Kind::kInt:
      if (auto v = node.as_integer()) {
        *static_cast<int64_t*>(p) = v->get();
      } else if (auto f = node.as_floating_point()) {  // steps = 1e4
        double d = f->get();
        if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) >= 9.0e18)
          fail(where, ": ", key, " must be an integer, not ", d);
        *static_cast<int64_t*>(p) = static_cast<int64_t>(d);
      } else {
        fail(where, ": ", key, " must be an integer");
      }
      break;
    case Kind::kFloat:
      if (auto v = node.as_floating_point()) {
        if (!std::isfinite(v->get())) fail(where, ": ", key, " must be finite");
        *static_cast<double*>(p) = v->get();
      } else if (auto i = node.as_integer()) {
        *static_cast<double*>(p) = static_cast<double>(i->get());
      } else {
        fail(where, ": ", key, " must be a number");
      }
      break;
    case Kind::kString:
      if (auto v = node.as_string()) *static_cast<std::string*>(p) = v->get();
      else if (e.info.name == "model.preset" && node.is_number())  // preset = 1B is not valid TOML anyway
        fail(where, ": ", key, " must be a string, e.g. \"124M\"");
      else fail(where, ": ", key, " must be a string (in quotes)");
      break;
    case Kind::kBool:
      if (auto v = node.as_boolean()) *static_cast<int64_t*>(p) = v->get() ? 1 : 0;
      else if (auto i = node.as_integer(); i && (i->get() == 0 || i->get() == 1)) *static_cast<int64_t*>(p) = i->get();
      else fail(where, ": ", key, " must be true or false");
      break;
  }
}

nlohmann::ordered_json value_json(TrainConfig& c, const Entry& e) {
  void* p = e.at(c);
  switch (e.kind) {
    case Kind::kInt: return *static_cast<int64_t*>(p);
    case Kind::kFloat: return *static_cast<double*>(p);
    case Kind::kString: return *static_cast<std::string*>(p);
    case Kind::kBool: {
      int64_t v = *static_cast<int64_t*>(p);
      if (v < 0) return nullptr;
      return v != 0;
    }
  }
  return nullptr;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

}  // namespace

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& c : candidates) {
    // A key given without its section ("lr") matches "train.lr" exactly.
    size_t dot = c.find('.');
    size_t d = edit_distance(name, c);
    if (dot != std::string::npos) d = std::min(d, edit_distance(name, c.substr(dot + 1)) + 1);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

const std::vector<KeyInfo>& key_table() {
  static const std::vector<KeyInfo> infos = [] {
    std::vector<KeyInfo> out;
    TrainConfig defaults;
    for (const Entry& e : entries()) {
      KeyInfo k = e.info;
      nlohmann::ordered_json v = value_json(defaults, e);
      k.help += " [default: " + (v.is_null() ? std::string("preset") : v.dump()) + "]";
      out.push_back(k);
    }
    return out;
  }();
  return infos;
}

void TrainConfig::set(const std::string& key, const std::string& value) {
  const Entry* e = find_entry(key);
  if (!e) unknown_key("command line", "--" + key);
  assign_text(*this, *e, value, "command line");
}

TrainConfig TrainConfig::parse(const std::string& toml_text, const std::string& label,
                               const std::vector<std::pair<std::string, std::string>>& overrides) {
  TrainConfig c;
  c.source = label;
  toml::table root;
  try {
    root = toml::parse(toml_text, label);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    fail(label, ":", where.line, ":", where.column, ": TOML syntax error: ", e.description());
  }
  for (auto&& [section_key, section_node] : root) {
    std::string section(section_key.str());
    const toml::table* table = section_node.as_table();
    if (section != "model" && section != "data" && section != "train") {
      if (!table) unknown_key(label, section);  // a top-level key: suggest section.key
      fail(label, ": unknown section [", section, "] (did you mean [", closest(section, {"model", "data", "train"}),
           "]? sections are [model], [data], [train])");
    }
    if (!table) fail(label, ": '", section, "' must be a section [", section, "]");
    for (auto&& [key, node] : *table) {
      std::string name = section + "." + std::string(key.str());
      const Entry* e = find_entry(name);
      auto line = node.source().begin.line;
      std::string where = cat(label, ":", line);
      if (!e) unknown_key(where, name);
      assign_node(c, *e, node, where);
    }
  }
  for (const auto& [k, v] : overrides) c.set(k, v);
  c.validate();
  return c;
}

TrainConfig TrainConfig::load(const std::string& path,
                              const std::vector<std::pair<std::string, std::string>>& overrides) {
  return parse(read_file(path), path, overrides);
}

void TrainConfig::validate() const {
  const std::string& w = source;
  const TrainSection& t = train;
  static const std::vector<std::string> presets = {"tiny", "124M", "350M", "1B", "7B", "none"};
  if (std::find(presets.begin(), presets.end(), model.preset) == presets.end())
    fail(w, ": model.preset '", model.preset, "' is not one of tiny, 124M, 350M, 1B, 7B, none (did you mean '",
         closest(model.preset, presets), "'?)");
  for (auto [name, v] : {std::pair<const char*, int64_t>{"vocab_size", model.vocab_size},
                         {"hidden_size", model.hidden_size}, {"intermediate_size", model.intermediate_size},
                         {"num_hidden_layers", model.num_hidden_layers}, {"num_attention_heads", model.num_attention_heads},
                         {"num_key_value_heads", model.num_key_value_heads}, {"head_dim", model.head_dim},
                         {"max_position_embeddings", model.max_position_embeddings}})
    if (v < 0) fail(w, ": model.", name, " must not be negative (0 means: from the preset or the data)");
  if (model.rope_theta < 0) fail(w, ": model.rope_theta must be positive (0: preset)");
  if (model.rms_norm_eps <= 0) fail(w, ": model.rms_norm_eps must be positive");
  if (int(!data.mixture.empty()) + int(!data.dataset.empty()) + int(!data.list.empty()) != 1)
    fail(w, ": give exactly one of data.mixture (a directory from `agpt data mix`), data.dataset (a token dataset "
         "prefix) or data.list (an ALCF data file list)");
  if ((!data.dataset.empty() || !data.list.empty()) && data.seq_len <= 0)
    fail(w, ": data.seq_len is required with data.dataset and data.list");
  if (data.seq_len < 0) fail(w, ": data.seq_len must be positive");
  if (data.valid_samples < 0) fail(w, ": data.valid_samples must not be negative");
  if (t.micro_batch < 1) fail(w, ": train.micro_batch must be at least 1");
  if (t.grad_accum < 1) fail(w, ": train.grad_accum must be at least 1");
  if (t.steps < 1) fail(w, ": train.steps must be at least 1");
  if (!(t.lr > 0)) fail(w, ": train.lr must be positive");
  if (t.min_lr < 0 || t.min_lr > t.lr) fail(w, ": train.min_lr must be in [0, train.lr]");
  if (t.warmup < 0) fail(w, ": train.warmup must not be negative");
  if (t.schedule != "cosine" && t.schedule != "linear" && t.schedule != "wsd")
    fail(w, ": train.schedule '", t.schedule, "' is not one of cosine, linear, wsd (did you mean '",
         closest(t.schedule, {"cosine", "linear", "wsd"}), "'?)");
  if (t.decay_fraction < 0 || t.decay_fraction > 1) fail(w, ": train.decay_fraction must be in [0, 1]");
  if (t.weight_decay < 0) fail(w, ": train.weight_decay must not be negative");
  if (t.beta1 < 0 || t.beta1 >= 1) fail(w, ": train.beta1 must be in [0, 1)");
  if (t.beta2 < 0 || t.beta2 >= 1) fail(w, ": train.beta2 must be in [0, 1)");
  if (!(t.eps > 0)) fail(w, ": train.eps must be positive");
  if (!(t.init_std > 0)) fail(w, ": train.init_std must be positive");
  if (t.eval_every < 0) fail(w, ": train.eval_every must not be negative");
  if (t.eval_batches < 0) fail(w, ": train.eval_batches must not be negative");
  if (t.checkpoint_every < 0) fail(w, ": train.checkpoint_every must not be negative");
  if (t.keep_last < 1) fail(w, ": train.keep_last must be at least 1");
  if (t.out_dir.empty()) fail(w, ": train.out_dir must not be empty");
  if (t.log_every < 1) fail(w, ": train.log_every must be at least 1");
  if (t.max_bad_steps < 1) fail(w, ": train.max_bad_steps must be at least 1");
  if (t.spike_zscore < 0) fail(w, ": train.spike_zscore must not be negative (0: off)");
  if (t.spike_window < 2) fail(w, ": train.spike_window must be at least 2");
  if (t.update_in_backward && (t.clip > 0 || t.grad_accum != 1))
    fail(w, ": train.update_in_backward needs train.clip = 0 and train.grad_accum = 1 (the update runs inside the "
         "backward, before the gradient norm or the other micro-batches' gradients exist); set them or turn it off");
  if (t.peak_flops < 0) fail(w, ": train.peak_flops must not be negative");
  if (t.threads < 0) fail(w, ": train.threads must not be negative");
  if (t.device != "cpu" && t.device != "cuda" && !t.device.starts_with("cuda:"))
    fail(w, ": train.device is '", t.device, "', expected cpu, cuda or cuda:N");
  if (t.precision != "fp32" && t.precision != "tf32" && t.precision != "bf16")
    fail(w, ": train.precision is '", t.precision, "', expected fp32, tf32 or bf16");
  if (t.param_dtype != "fp32" && t.param_dtype != "bf16")
    fail(w, ": train.param_dtype is '", t.param_dtype, "', expected fp32 or bf16");
  if (t.bucket_size < 1) fail(w, ": train.bucket_size must be at least 1");
  if (!(t.optimizer_offload_fraction >= 0 && t.optimizer_offload_fraction <= 1))
    fail(w, ": train.optimizer_offload_fraction must be between 0 and 1, not ", t.optimizer_offload_fraction);
  if (t.dist_timeout < 0) fail(w, ": train.dist_timeout must not be negative (0: off)");
  if (t.straggler_every < 0) fail(w, ": train.straggler_every must not be negative (0: off)");
  if (!(t.straggler_factor > 1)) fail(w, ": train.straggler_factor must be above 1");
  if (t.tensor_parallel < 1) fail(w, ": train.tensor_parallel must be at least 1 (1: no tensor parallelism)");
  if (t.precision != "fp32" && t.device == "cpu")
    fail(w, ": train.precision ", t.precision, " needs train.device cuda (the CPU backend is fp32)");
}

nlohmann::ordered_json TrainConfig::to_json() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  TrainConfig copy = *this;
  for (const Entry& e : entries()) {
    std::string section = e.info.name.substr(0, e.info.name.find('.'));
    std::string key = e.info.name.substr(e.info.name.find('.') + 1);
    j[section][key] = value_json(copy, e);
  }
  return j;
}

std::string TrainConfig::to_toml() const {
  std::ostringstream os;
  nlohmann::ordered_json j = to_json();
  bool first = true;
  for (auto& [section, keys] : j.items()) {
    os << (first ? "" : "\n") << "[" << section << "]\n";
    first = false;
    for (auto& [k, v] : keys.items()) {
      if (v.is_null()) os << "# " << k << " = (preset)\n";
      else os << k << " = " << v.dump() << "\n";  // JSON strings, numbers and booleans are TOML too
    }
  }
  return os.str();
}

uint64_t TrainConfig::trajectory_hash() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  TrainConfig copy = *this;
  for (const Entry& e : entries()) {
    // Added after checkpoints existed: counted only when set, so their hashes stay the same.
    if (e.info.name == "train.param_dtype" && copy.train.param_dtype == "fp32") continue;
    if (e.info.trajectory) j[e.info.name] = value_json(copy, e);
  }
  return fnv1a(j.dump());
}

model::LlamaConfig TrainConfig::llama_config(int64_t seq_len) const {
  model::LlamaConfig c;
  c.rope_theta = 10000.0;
  bool tie = true;
  const std::string& p = model.preset;
  auto shape = [&](int64_t d, int64_t f, int64_t l, int64_t h, int64_t kv) {
    c.hidden_size = d, c.intermediate_size = f, c.num_hidden_layers = l, c.num_attention_heads = h,
    c.num_key_value_heads = kv;
  };
  if (p == "tiny") shape(128, 384, 4, 4, 4);
  else if (p == "124M") shape(768, 2048, 12, 12, 12);
  else if (p == "350M") shape(1024, 2816, 24, 16, 16);
  else if (p == "1B") shape(2048, 8192, 16, 32, 8), c.head_dim = 64, c.rope_theta = 500000.0;
  else if (p == "7B") shape(4096, 11008, 32, 32, 32), tie = false;
  if (model.hidden_size) c.hidden_size = model.hidden_size;
  if (model.intermediate_size) c.intermediate_size = model.intermediate_size;
  if (model.num_hidden_layers) c.num_hidden_layers = model.num_hidden_layers;
  if (model.num_attention_heads) c.num_attention_heads = model.num_attention_heads;
  if (model.num_key_value_heads) c.num_key_value_heads = model.num_key_value_heads;
  else if (model.num_attention_heads && p != "1B") c.num_key_value_heads = model.num_attention_heads;
  if (model.head_dim) c.head_dim = model.head_dim;
  else if (model.hidden_size || model.num_attention_heads) c.head_dim = 0;  // recomputed
  if (model.rope_theta > 0) c.rope_theta = model.rope_theta;
  if (model.tie_word_embeddings >= 0) tie = model.tie_word_embeddings != 0;
  c.tie_word_embeddings = tie;
  c.rms_norm_eps = model.rms_norm_eps;
  c.initializer_range = train.init_std;
  c.max_position_embeddings = model.max_position_embeddings ? model.max_position_embeddings : seq_len;
  if (c.max_position_embeddings < seq_len)
    fail(source, ": model.max_position_embeddings (", c.max_position_embeddings, ") is below data.seq_len (", seq_len, ")");
  c.vocab_size = model.vocab_size;
  if (c.vocab_size == 0) {
    if (data.tokenizer.empty())
      fail(source, ": the vocabulary size is unknown: set model.vocab_size or data.tokenizer (a tokenizer.json)");
    auto tok = text::load_tokenizer(data.tokenizer);
    c.vocab_size = static_cast<int64_t>(tok->vocab_size());
  }
  if (p == "none" && (!c.hidden_size || !c.intermediate_size || !c.num_hidden_layers || !c.num_attention_heads))
    fail(source, ": model.preset = \"none\" needs hidden_size, intermediate_size, num_hidden_layers and num_attention_heads");
  c.fill_defaults();
  c.validate(source + " [model]");
  return c;
}

std::vector<std::pair<std::string, std::string>> parse_overrides(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a.find('.') == std::string::npos)
      fail("unexpected argument '", a, "': settings are given as --section.key value (e.g. --train.lr 3e-4)");
    std::string key = a.substr(2), value;
    size_t eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) fail("--", key, " needs a value");
      value = args[++i];
    }
    if (!find_entry(key)) unknown_key("command line", "--" + key);
    out.emplace_back(key, value);
  }
  return out;
}

}  // namespace agpt::train
