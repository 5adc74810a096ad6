// TrainConfig: everything `agpt train` needs, read from a TOML file with sections [model], [data]
// and [train], each key also settable on the command line as `--section.key value`.
// docs/training.md lists every key with its default; key_table() is the source of truth.
//
//   TrainConfig c = TrainConfig::load("run.toml", {{"train.lr", "3e-4"}});
//
// Unknown sections or keys, values of the wrong type and out-of-range values are agpt::Error,
// naming the file, the key and (for a misspelt key) the closest valid one.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace agpt::train {

struct ModelSection {
  // tiny, 124M, 350M, 1B, 7B, or "none" (every shape field given explicitly). Explicit fields
  // override the preset's.
  std::string preset = "tiny";
  int64_t vocab_size = 0;                // 0: from data.tokenizer
  int64_t hidden_size = 0;               // 0: from the preset (same for the fields below)
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;   // 0: data seq_len
  double rope_theta = 0;                 // 0: preset (10000, 500000 for 1B)
  double rms_norm_eps = 1e-5;
  int64_t tie_word_embeddings = -1;      // -1: preset; 0/1 (TOML booleans accepted)
  std::string init_from;                 // a HF model directory to start from instead of random init
};

struct DataSection {
  std::string mixture;     // a directory written by `agpt data mix` (mixture.json)
  std::string dataset;     // or: one token dataset PREFIX (.bin/.idx); planned by the trainer
  std::string list;        // or: an ALCF data file list (weight prefix corpus); planned by the trainer
  int64_t seq_len = 0;     // with dataset: required; with mixture: must match the plan if given
  std::string split = "1,0,0";   // with dataset: document split train,valid,test
  int64_t valid_samples = 0;     // with dataset: validation samples to plan
  int64_t seed = 1234;           // with dataset: seed of the sample order
  std::string tokenizer;   // tokenizer.json: the vocabulary size, copied into checkpoints
};

struct TrainSection {
  int64_t micro_batch = 4;
  int64_t grad_accum = 1;
  int64_t steps = 1000;
  double lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup = 100;
  std::string schedule = "cosine";  // cosine, linear or wsd
  double decay_fraction = 0.2;       // wsd: the last fraction of steps decays linearly to min_lr
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double clip = 1.0;                 // global gradient-norm clipping; <= 0: off
  double init_std = 0.02;
  int64_t seed = 1234;               // weight init
  int64_t eval_every = 0;            // 0: only at the end (when the valid split has samples)
  int64_t eval_batches = 8;
  int64_t checkpoint_every = 0;      // 0: only at the end of the run
  int64_t keep_last = 3;
  int64_t async_checkpoint = 0;      // 0/1: copy the checkpoint to host memory, write it while training goes on
  std::string out_dir = "runs/train";
  int64_t log_every = 10;            // console lines; metrics.jsonl gets every step
  int64_t max_bad_steps = 5;         // consecutive skipped steps before training stops
  double spike_zscore = 0;           // > 0: skip a step whose loss is this many std devs above the window mean
  int64_t spike_window = 50;
  double peak_flops = 0;             // FLOP/s of the machine for MFU; 0: MFU not reported
  int64_t threads = 0;               // CPU threads; 0: all cores
  std::string device = "cpu";        // cpu, cuda or cuda:N
  int64_t plot = 1;                  // 0/1 (TOML booleans): draw OUT/plots/ at checkpoints and at the end
  int64_t recompute = 0;             // 0/1: keep only each layer's input, recompute the rest in backward
  int64_t optimizer_cpu_offload = 0; // 0/1: AdamW moments in host memory, streamed through the GPU per update
  double optimizer_offload_fraction = 1.0;  // with offload: the share of the parameters whose moments go to the host
  int64_t update_in_backward = 0;   // 0/1: AdamW inside the backward's weight-gradient products (clip 0, grad_accum 1, one rank)
  int64_t deterministic = 1;         // 0/1: bit-reproducible kernels only; 0 lets CUDA sum with atomics (faster attention backward)
  std::string precision = "fp32";    // fp32; tf32 or bf16 (CUDA): how matrix products run
  // Several ranks (mpirun): data parallel over every rank.
  int64_t distributed_optimizer = 1; // 0/1: ZeRO-1 sharded AdamW state; 0: all-reduce, full state per rank
  std::string param_dtype = "fp32";  // fp32; bf16: bf16 weights, fp32 master weights sharded (distributed optimizer)
  int64_t overlap_grad_reduce = 1;   // 0/1: distributed optimizer reduces buckets during backward
  int64_t bucket_size = 40'000'000;  // elements per gradient bucket (overlap)
  int64_t overlap_param_gather = 1;  // 0/1: the next forward waits for each bucket's all-gather only when it needs it
  double dist_timeout = 600;         // seconds before a waiting collective ends the rank (0: off)
  int64_t straggler_every = 100;     // steps between step-time comparisons (0: off)
  double straggler_factor = 1.5;     // slower than median x this: logged as a straggler
  // Tensor parallelism: consecutive groups of this many ranks split every layer (Megatron's
  // column/row-parallel layers); the rest is data parallel. Not part of the trajectory: a run may
  // resume under another layout.
  int64_t tensor_parallel = 1;
};

struct TrainConfig {
  ModelSection model;
  DataSection data;
  TrainSection train;
  std::string source = "<defaults>";  // where it came from (error messages)

  // Parses TOML text (label names it in errors) then applies overrides ("section.key", "value").
  static TrainConfig parse(const std::string& toml_text, const std::string& label,
                           const std::vector<std::pair<std::string, std::string>>& overrides = {});
  static TrainConfig load(const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& overrides = {});
  // Sets one key from its command-line spelling; fails naming the key (or the closest one).
  void set(const std::string& key, const std::string& value);
  // Checks ranges and combinations (a data source given, lr >= min_lr, ...).
  void validate() const;

  // Every key with its value, by section (for trainer_state.json and `agpt train --print-config`).
  nlohmann::ordered_json to_json() const;
  std::string to_toml() const;
  // FNV-1a of the keys that change the training trajectory (not out_dir, logging, checkpointing).
  uint64_t trajectory_hash() const;

  // The Llama shape: preset, explicit fields, vocab from the tokenizer, seq_len for positions.
  model::LlamaConfig llama_config(int64_t seq_len) const;
};

// One settable key: "train.lr", its kind and one line of documentation (with the default).
struct KeyInfo {
  std::string name;
  std::string kind;  // "int", "float", "string", "bool"
  std::string help;
  bool trajectory;   // part of trajectory_hash()
};
const std::vector<KeyInfo>& key_table();

// Splits command-line words into overrides: `--a.b value` or `--a.b=value`. Anything else fails.
std::vector<std::pair<std::string, std::string>> parse_overrides(const std::vector<std::string>& args);

// Levenshtein distance, and the candidate closest to name.
size_t edit_distance(const std::string& a, const std::string& b);
std::string closest(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace agpt::train
