// The training loop: a Llama model on the CPU backend, AdamW, an LR schedule, gradient
// accumulation and clipping, guards against non-finite values and loss spikes, validation,
// metrics (OUT/metrics.jsonl) and atomic, verified checkpoints with bit-exact resume.
//
//   TrainConfig cfg = TrainConfig::load("run.toml");
//   Trainer t(cfg, {.resume = true});
//   t.run();
//
// One step = grad_accum micro-batches from the data loader. A sample is seq_len + 1 tokens; the
// model sees inputs = tokens[0 .. seq_len) and targets = tokens[1 .. seq_len], which is Hugging
// Face's labels=input_ids loss on the full window (its last position predicts nothing) without
// computing that last position. Micro-batch losses are means over their tokens; the step's
// gradient is their average (each micro-batch has the same number of tokens).
//
// With train.plot (the default) the curves are drawn into OUT/plots/ (as `agpt plot OUT`) after
// every checkpoint, so the last ones include the final validation.
#pragma once
#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataset/mixture.h"
#include "dataset/sample_source.h"
#include "dist/communicator.h"
#include "dist/watchdog.h"
#include "model/adamw.h"
#include "model/llama.h"
#include "ops/backend.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/distributed_optimizer.h"
#include "train/schedule.h"
#include "train/tensor_parallel_group.h"

namespace agpt::train {

struct TrainOptions {
  bool resume = false;        // continue from OUT/checkpoints (the newest valid checkpoint)
  int64_t stop_after = -1;    // >= 0: stop (with a checkpoint) once this step is done
  bool quiet = false;         // no console lines (metrics.jsonl is still written)
  // The ranks training together (data parallel over all of them, or over groups of
  // train.tensor_parallel ranks that split each layer); nullptr: this process alone. Rank 0 writes
  // metrics, plots and checkpoints; every data-parallel rank reads its own part of the stream.
  dist::Communicator* comm = nullptr;
};

// What one step did (also written to metrics.jsonl).
struct StepRecord {
  int64_t step = 0;
  double loss = 0;       // mean over the step's micro-batches
  double lr = 0;
  double grad_norm = 0;  // of the averaged gradient, before clipping
  bool skipped = false;  // non-finite loss/gradient or a loss spike: no update
  std::string reason;    // why it was skipped
  int64_t updated_in_backward = -1;  // train.update_in_backward: parameters the backward updated (-1: not arranged)
};

struct EvalRecord {
  int64_t step = 0;
  double loss = 0;
  double perplexity = 0;
  uint64_t tokens = 0;
};

class Trainer {
 public:
  // Builds the model (random init from train.seed, model.init_from, or the resumed checkpoint),
  // opens the data and the run directory. Throws agpt::Error for bad configs and data.
  Trainer(const TrainConfig& config, TrainOptions options = {});
  ~Trainer();

  // Trains until train.steps (or options.stop_after). A final checkpoint is always written.
  void run();
  // Validation loss over up to eval_batches micro-batches of the valid split (nullopt: no samples).
  std::optional<EvalRecord> evaluate();

  const TrainConfig& config() const { return config_; }
  const model::LlamaConfig& model_config() const { return model_->config(); }
  model::Llama& model() { return *model_; }
  const TrainerState& state() const { return state_; }
  const std::vector<StepRecord>& history() const { return history_; }   // steps run by this object
  const std::vector<EvalRecord>& evals() const { return evals_; }
  const std::string& resumed_from() const { return resumed_from_; }     // "" for a fresh start
  const std::string& last_checkpoint() const { return last_checkpoint_; }
  std::string checkpoint_root() const;
  int64_t seq_len() const { return seq_len_; }
  const dataset::SampleSource& data() const { return *source_; }

 private:
  void open_data();
  void check_resumed_data() const;  // the checkpoint's data order and plan against data.mixture
  void write_metrics(const nlohmann::ordered_json& j);
  // Checkpoints (trainer_checkpoint.cpp).
  void checkpoint();
  bool sharded_checkpoints() const { return dist_optimizer_ != nullptr; }  // each rank writes its moments
  bool sharded_checkpoint(bool async, std::chrono::steady_clock::time_point started);
  void commit_sharded_checkpoint(const std::string& begun, const std::vector<std::string>& reports,
                                 const TrainerState& state, std::chrono::steady_clock::time_point started,
                                 bool background);
  void fail_if_any_rank_failed(const std::vector<std::string>& from_ranks, int64_t step) const;
  // train.async_checkpoint: the background write of the last checkpoint (rank 0's; with sharded
  // checkpoints every rank's, and finishing is collective). Waits for it (wait) or only collects
  // it when it is done, reporting its failure as an agpt::Error.
  void finish_checkpoint_write(bool wait = true);
  std::pair<size_t, size_t> snapshot_sizes() const;
  void reserve_snapshot_memory();
  void allocate_snapshot_memory(size_t weights, size_t moments);  // any thread
  model::StDType sharded_weight_dtype() const;
  void check_model_state_fits() const;
  WeightView copy_weights_to_snapshot(const std::vector<size_t>& which,
                                      const std::vector<std::vector<float>>* full_values = nullptr);
  std::vector<size_t> own_weight_tensors() const;
  void start_checkpoint_write(int64_t optimizer_steps, const std::vector<std::vector<float>>& full_values,
                              const std::vector<std::vector<float>> (&full_moments)[2],
                              std::chrono::steady_clock::time_point started);
  bool draw_plots();  // OUT/plots/ from metrics.jsonl; false (after a warning) when that failed
  void setup_parallel();  // after the backend: NCCL on GPUs, the optimizer layout, the watchdog
  // Averages the micro-batch gradients over every rank; returns the global gradient norm.
  double reduce_gradients(int64_t step);
  std::string skip_reason(float loss) const;
  double local_grad_norm();  // of the model's gradients as they are (over the tensor-parallel group)
  void report_stragglers(int64_t step, double busy_s);
  bool leader() const { return comm_->rank() == 0; }
  int world() const { return comm_->size(); }
  int dp_size() const { return dp_comm_->size(); }  // ranks = dp_size() x tensor parallel
  int dp_rank() const { return dp_comm_->rank(); }

  TrainConfig config_;
  TrainOptions options_;
  std::unique_ptr<ops::Backend> backend_;
  std::shared_ptr<const dataset::SampleSource> source_;  // the planned stream, agpt or Megatron order
  std::unique_ptr<model::Llama> model_;
  std::unique_ptr<model::AdamW> optimizer_;                 // one rank, or all-reduce data parallel
  std::unique_ptr<DistributedOptimizer> dist_optimizer_;    // ZeRO-1 over several ranks
  std::unique_ptr<dist::Communicator> own_comm_;            // single, when options.comm is null
  std::unique_ptr<dist::Communicator> nccl_;                // GPU tensors between ranks
  dist::Communicator* comm_ = nullptr;                      // tensors: nccl_ on GPUs, else the host's
  dist::Communicator* host_comm_ = nullptr;                 // host values
  ParallelGroups groups_;                                   // train.tensor_parallel > 1: this rank's groups
  std::unique_ptr<CommTensorParallel> tp_group_;            // the model's view of groups_.tp (null: none)
  dist::Communicator* dp_comm_ = nullptr;                   // data parallel: comm_, or groups_.dp
  std::vector<char> norm_counted_;                          // per parameter: its squares count on this rank
  std::unique_ptr<dist::Watchdog> watchdog_;
  std::vector<std::string> hosts_;                          // by rank (straggler lines)
  ScheduleConfig schedule_;
  TrainerState state_;
  int64_t seq_len_ = 0;
  std::vector<StepRecord> history_;
  std::vector<EvalRecord> evals_;
  std::string resumed_from_, last_checkpoint_;
  std::future<std::string> checkpoint_write_;  // the background write in progress (leader, async)
  int64_t checkpoint_write_step_ = 0;
  bool warned_unshared_out_dir_ = false;
  bool in_backward_reported_ = false;  // train.update_in_backward: said whether it takes effect
  // Sharded checkpoints in the background: this rank's write, and what committing it needs.
  std::future<model::WrittenFiles> shard_write_;
  std::string shard_write_begun_;
  TrainerState shard_write_state_;
  std::chrono::steady_clock::time_point shard_write_started_;
  // The checkpoint's copy in page-locked host memory (leader, async): kept from one to the next.
  std::shared_ptr<float[]> snapshot_weights_, snapshot_moments_[3];  // [2]: master values (bf16 parameters)
  size_t snapshot_weight_floats_ = 0, snapshot_moment_floats_ = 0;
  std::future<void> snapshot_reservation_;  // the first reservation, made in the background
  std::ofstream metrics_;
};

}  // namespace agpt::train
