// Training checkpoints: one directory per saved step, written so that a crash at any moment leaves
// the previous checkpoints intact and a damaged one is detected on resume.
//
//   OUT/checkpoints/
//     latest                      "step_0000200\n", replaced atomically after a checkpoint is complete
//     step_0000100/
//       config.json, model.safetensors      Hugging Face LlamaForCausalLM layout (Llama::save)
//       tokenizer.json                      when the run names one (data.tokenizer)
//       optimizer.safetensors               AdamW moments: exp_avg.<param name>, exp_avg_sq.<param name>
//       (or, from the distributed optimizer: optimizer-00001-of-00004.safetensors ..., one per rank,
//        each holding the parts of parameters that rank owned, and with bf16 parameters their fp32
//        master values; see MomentPart)
//       trainer_state.json                  step, data-stream state, RNG, config + hash, file checksums
//
// Writing: everything goes into checkpoints/.tmp.step_NNNNNNN, each file fsynced, the directory
// fsynced, then renamed to step_NNNNNNN; `latest` is then replaced atomically; older checkpoints
// beyond keep_last are deleted. Checksums: FNV-1a (64-bit) over each file's 8-byte little-endian
// words (the tail bytewise), plus one over trainer_state.json itself.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataset/mixture.h"
#include "model/adamw.h"
#include "model/llama.h"

namespace agpt::train {

// Everything besides tensors that continuing a run needs.
struct TrainerState {
  int64_t step = 0;             // steps done (the schedule's position; skipped steps included)
  int64_t optimizer_steps = 0;  // AdamW updates applied (its bias-correction count)
  uint64_t consumed = 0;        // training samples consumed
  dataset::StreamState stream;  // per-source counts at `consumed` (resume under a changed mixture)
  std::string data_order = "agpt";  // the sample order trained on ("agpt" or "megatron")
  uint64_t data_plan = 0;           // SampleSource::fingerprint() of the plan (0: unknown, older checkpoints)
  uint64_t rng_seed = 0;        // the run's seed and generator state (no randomness is drawn per step
  uint64_t rng_state = 0;       // today; kept so dropout-like features resume exactly)
  uint64_t config_hash = 0;     // TrainConfig::trajectory_hash()
  int64_t bad_streak = 0;       // consecutive skipped steps at this point
  int64_t skipped = 0;          // skipped steps so far
  std::vector<float> loss_window;  // the spike detector's recent losses
  uint64_t tokens = 0;          // training tokens processed
  int64_t ranks = 1;            // data-parallel ranks that wrote it (the global batch is grad_accum x ranks)
  double elapsed = 0;           // seconds of training so far (over all resumed runs)
  nlohmann::ordered_json config;  // the resolved TrainConfig::to_json()
};

// 64-bit FNV-1a over 8-byte words; checksum_file maps the file.
uint64_t checksum_bytes(std::string_view data);
uint64_t checksum_file(const std::string& path);

std::string checkpoint_name(int64_t step);  // "step_0000100"

// The AdamW moments of parameter i (which: 0 = exp_avg, 1 = exp_avg_sq), full shape, in host
// memory, valid until the next call: how a checkpoint reads the optimizer whatever its layout (one
// rank, or sharded ZeRO-1). A view, so that moments already in host memory are not copied; a
// source that must fetch them keeps one buffer and returns a view of it.
using MomentView = std::function<std::span<const float>(size_t param, int which)>;
// Receives a moment from a checkpoint, cut to the parameter's local shape (its tensor-parallel
// slice; the whole tensor without tensor parallelism). The sharded optimizer keeps its own part.
using MomentSink = std::function<void(size_t param, int which, std::span<const float> values)>;
// The full value of parameter i (under tensor parallelism: gathered from the group beforehand),
// valid until the next call.
using WeightView = std::function<std::span<const float>(size_t param)>;
// A MomentView of a single (unsharded) AdamW: each moment downloaded into `buffer`, reused.
MomentView adamw_moments(model::AdamW& optimizer, std::vector<float>& buffer);

// Writes a checkpoint of `state.step` under root (OUT/checkpoints) and returns its directory.
// tokenizer_path: copied in when non-empty. Keeps the newest keep_last checkpoints.
std::string save_checkpoint(const std::string& root, const model::Llama& model, model::AdamW& optimizer,
                            const TrainerState& state, const std::string& tokenizer_path, int64_t keep_last);
// weights: the full parameter values when the model is split (tensor parallelism); empty: the
// model's own values.
std::string save_checkpoint(const std::string& root, const model::Llama& model, const MomentView& moments,
                            int64_t optimizer_steps, const TrainerState& state, const std::string& tokenizer_path,
                            int64_t keep_last, const WeightView& weights = nullptr);

// The distributed optimizer (ZeRO-1) writes its moments as they are sharded, one file per data-
// parallel rank (optimizer-00001-of-00004.safetensors, ...), so that no rank gathers them all: each
// file holds, for every parameter part the rank owns, the 1-D tensors exp_avg.<name> and
// exp_avg_sq.<name> and the metadata offset.<name> (the part's first element in the flattened
// parameter). Loading puts each parameter back together from all the files, so any layout resumes.
// With bf16 parameters (train.param_dtype) a part also holds master.<name>, the fp32 master values:
// loading puts them in place of the weight files' values (the bf16 ones the model computed with).
// Under tensor parallelism a part of a split parameter lies in a rank's slice of it: `slice` says
// which (metadata slice.<name> = "dim:begin:count" of the full tensor), and offset counts within
// the flattened slice.
struct MomentPart {
  size_t param;    // index into the model's parameters
  int64_t offset;  // first element within the flattened parameter (or its slice)
  std::span<const float> m, v;
  std::span<const float> master = {};  // empty: none
  model::Shard slice = {};             // not split: the whole tensor
};
std::string moment_shard_file(int rank, int ranks);  // "optimizer-00001-of-00004.safetensors"
FileDigest write_moment_shard(const std::string& dir, const std::vector<model::TensorSpec>& params, int rank,
                              int ranks, int64_t optimizer_steps, const std::vector<MomentPart>& parts);

// A checkpoint written by several ranks: the leader makes the directory (begin_checkpoint: the
// hidden .tmp one), the ranks write their files into it (the weights, their moment shards), and the
// leader completes it with all the files' digests (commit_checkpoint: the tokenizer, the state,
// the rename, `latest`).
std::string begin_checkpoint(const std::string& root, int64_t step);
std::string commit_checkpoint(const std::string& root, const std::string& begun, const model::WrittenFiles& written,
                              const TrainerState& state, const std::string& tokenizer_path, int64_t keep_last);

// A checkpoint held in host memory, apart from the model and the GPU, so that a background thread
// can write it while training goes on (train.async_checkpoint). The functions hand out views of
// memory that the snapshot's owner keeps until the write is done.
struct CheckpointSnapshot {
  model::LlamaConfig config;
  std::vector<model::TensorSpec> params;  // names, full shapes
  WeightView weights;
  MomentView moments;
  int64_t optimizer_steps = 0;
  TrainerState state;
};
// The same files as the model's save_checkpoint for the same values, bit for bit.
std::string save_checkpoint(const std::string& root, const CheckpointSnapshot& snapshot,
                            const std::string& tokenizer_path, int64_t keep_last);

// Checks one checkpoint directory: trainer_state.json parses and matches its own checksum, every
// listed file exists with its size and checksum. Returns "" when valid, else what is wrong.
std::string verify_checkpoint(const std::string& dir);

// The newest valid checkpoint under root: the one `latest` names, else (with a warning for each
// damaged one) the next older step_* directory that verifies. "" when there is none.
std::string find_resume_checkpoint(const std::string& root);

// Loads weights, AdamW moments and the trainer state from a verified checkpoint into a model and
// optimizer of the same shape (errors name the mismatching tensor).
TrainerState load_checkpoint(const std::string& dir, model::Llama& model, model::AdamW& optimizer);
// The same for any optimizer layout: the moments go to `moments`; the caller sets its step count
// from the returned state's optimizer_steps.
TrainerState load_checkpoint(const std::string& dir, model::Llama& model, const MomentSink& moments);

// Step numbers of the step_* directories under root, ascending.
std::vector<int64_t> list_checkpoints(const std::string& root);

}  // namespace agpt::train
