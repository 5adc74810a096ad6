// Shared by the trainer tests: a fresh temporary run directory and the tiny model config they train.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include "train/config.h"

namespace agpt::train::test_util {

// TMP/agpt_<prefix>_<name>_<pid>, emptied and created.
inline std::filesystem::path fresh_dir(const std::string& prefix, const std::string& name) {
  std::filesystem::path d =
      std::filesystem::temp_directory_path() / ("agpt_" + prefix + "_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// A 2-layer, 32-wide Llama over a 256-token vocabulary; 2 x 2 samples per step on one thread.
inline TrainConfig tiny_config(const std::string& mixture, const std::filesystem::path& out, int64_t steps) {
  std::string toml = R"(
[model]
preset = "none"
vocab_size = 256
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 2
num_attention_heads = 4
num_key_value_heads = 2
[train]
micro_batch = 2
grad_accum = 2
lr = 3e-3
min_lr = 3e-4
warmup = 2
weight_decay = 0.1
eval_batches = 2
log_every = 1000
threads = 1
)";
  return TrainConfig::parse(toml, "test.toml",
                            {{"data.mixture", mixture}, {"train.out_dir", out.string()}, {"train.steps", std::to_string(steps)}});
}

}  // namespace agpt::train::test_util
