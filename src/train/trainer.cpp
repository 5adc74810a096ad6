#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>
#include <cmath>
#include <cstdio>
#include <array>
#include <filesystem>
#include <future>
#include <sstream>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "dataset/loader.h"
#include "dist/nccl_communicator.h"
#include "ops/backend_factory.h"
#include "plot/run_plots.h"
#include "train/memory_plan.h"

namespace fs = std::filesystem;

namespace agpt::train {
namespace {

double rss_mib() {
  std::ifstream f("/proc/self/statm");
  long long pages = 0, resident = 0;
  if (!(f >> pages >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::string duration(double s) {
  char buf[32];
  long long t = std::llround(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

std::string rate(double v) {
  char buf[32];
  if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// "27.3 GFLOP/s", "1.75 PFLOP/s": a 2-core laptop and 8 GPUs both read at a glance.
std::string flops_rate(double v) {
  const char* unit = "G";
  double scaled = v / 1e9;
  if (v >= 1e15) unit = "P", scaled = v / 1e15;
  else if (v >= 1e12) unit = "T", scaled = v / 1e12;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g %sFLOP/s", scaled, unit);
  return buf;
}

uint64_t splitmix_next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Splits micro-batch rows of seq_len + 1 tokens into inputs [B, T] and next-token targets [B, T].
void split_window(const dataset::Batch& batch, int64_t B, int64_t T, int64_t vocab, std::vector<int32_t>& ids,
                  std::vector<int32_t>& targets) {
  ids.resize(static_cast<size_t>(B * T));
  targets.resize(ids.size());
  for (int64_t b = 0; b < B; ++b) {
    const uint32_t* row = batch.tokens.data() + b * (T + 1);
    for (int64_t t = 0; t <= T; ++t)
      if (row[t] >= static_cast<uint64_t>(vocab))
        fail("token id ", row[t], " in training sample ", batch.first_index + static_cast<uint64_t>(b),
             " is outside the model's vocabulary (vocab_size ", vocab,
             "); does model.vocab_size / data.tokenizer match the tokenizer that made the data?");
    for (int64_t t = 0; t < T; ++t) {
      ids[b * T + t] = static_cast<int32_t>(row[t]);
      targets[b * T + t] = static_cast<int32_t>(row[t + 1]);
    }
  }
}

// Keeps the metrics lines of steps <= step (a resumed run rewrites what came after its checkpoint).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // a torn last line from a crash: dropped
    }
  }
  write_file_atomic(path, kept);
}

// A test hook: AGPT_FAULT_HANG=RANK:STEP makes that rank stop responding before the gradient
// reduction of that step, as a hung GPU or a dead node would (the watchdog test uses it).
// AGPT_FAULT_SLOW=RANK:SECONDS makes that rank sleep so long in every step, as a slow node would
// (the straggler test uses it).
struct FaultHang {
  int rank = -1;
  int64_t step = -1;
  int slow_rank = -1;
  double slow_s = 0;
};
FaultHang fault_hang() {
  FaultHang h;
  if (const char* v = std::getenv("AGPT_FAULT_HANG")) {
    long long rank = -1, step = -1;
    if (std::sscanf(v, "%lld:%lld", &rank, &step) != 2)
      fail("AGPT_FAULT_HANG='", v, "': expected RANK:STEP (a fault-injection hook for tests)");
    h.rank = static_cast<int>(rank), h.step = step;
  }
  if (const char* v = std::getenv("AGPT_FAULT_SLOW")) {
    long long rank = -1;
    double s = 0;
    if (std::sscanf(v, "%lld:%lf", &rank, &s) != 2 || !(s >= 0))
      fail("AGPT_FAULT_SLOW='", v, "': expected RANK:SECONDS (a fault-injection hook for tests)");
    h.slow_rank = static_cast<int>(rank), h.slow_s = s;
  }
  return h;
}

}  // namespace

Trainer::Trainer(const TrainConfig& config, TrainOptions options) : config_(config), options_(options) {
  config_.validate();
  const TrainSection& t = config_.train;
  if (options_.comm) {
    host_comm_ = options_.comm;
  } else {
    own_comm_ = dist::make_single_communicator();
    host_comm_ = own_comm_.get();
  }
  comm_ = host_comm_;
  std::error_code ec;
  fs::create_directories(t.out_dir, ec);
  if (ec) fail(t.out_dir, ": cannot create the run directory (", ec.message(), ")");
  // Under mpirun every rank takes the GPU of its local rank (one process per GPU, as Megatron).
  std::string device = t.device;
  if (world() > 1 && device == "cuda") device = "cuda:" + std::to_string(host_comm_->local_rank());
  backend_ = ops::make_backend(device, static_cast<int>(t.threads), t.precision, t.deterministic != 0);
  if (!t.deterministic && backend_->device() == ops::Device::kCuda)
    log_info("train.deterministic = false: CUDA may sum with atomics (runs agree to rounding, not bit for bit)");
  if (world() > 1 && backend_->device() == ops::Device::kCuda) {
    nccl_ = dist::make_nccl_communicator(*host_comm_, *backend_);
    comm_ = nccl_.get();
  }
  dp_comm_ = comm_;
  if (t.tensor_parallel > 1) {
    groups_ = make_parallel_groups(*comm_, static_cast<int>(t.tensor_parallel));
    tp_group_ = std::make_unique<CommTensorParallel>(*groups_.tp);
    dp_comm_ = groups_.dp.get();
  }
  watchdog_ = std::make_unique<dist::Watchdog>(*host_comm_, world() > 1 ? t.dist_timeout : 0.0);
  open_data();

  if (!config_.model.init_from.empty()) {
    model_ = std::make_unique<model::Llama>(model::Llama::load(config_.model.init_from, *backend_, tp_group_.get()));
    if (model_->config().max_position_embeddings < seq_len_)
      log_warn(config_.model.init_from, ": max_position_embeddings ", model_->config().max_position_embeddings,
               " is below data.seq_len ", seq_len_, " (positions past it are extrapolated)");
  } else {
    model_ = std::make_unique<model::Llama>(config_.llama_config(seq_len_), *backend_, tp_group_.get());
  }
  // The gradient norm sums the split parameters over the tensor-parallel group and counts each
  // replicated one (equal on every rank of the group) once.
  for (const model::Parameter& p : model_->parameters())
    norm_counted_.push_back(!tp_group_ || p.shard.split() || groups_.tp_rank == 0);
  model_->set_recompute(t.recompute != 0);
  check_model_state_fits();
  model::AdamWConfig ac;
  ac.lr = t.lr, ac.beta1 = t.beta1, ac.beta2 = t.beta2, ac.eps = t.eps, ac.weight_decay = t.weight_decay;
  if (dp_size() > 1 && t.distributed_optimizer) {
    if (t.optimizer_cpu_offload)
      fail("train.optimizer_cpu_offload works with one data-parallel rank or train.distributed_optimizer = false "
           "(the distributed optimizer already divides the AdamW state among ", dp_size(), " ranks)");
    dist_optimizer_ = std::make_unique<DistributedOptimizer>(*dp_comm_, *backend_, model_->parameters(), ac,
                                                             t.overlap_grad_reduce ? t.bucket_size : 0,
                                                             t.param_dtype == "bf16");
    if (tp_group_) dist_optimizer_->set_tensor_parallel_norm(groups_.tp.get(), norm_counted_);
    if (t.overlap_param_gather) {
      dist_optimizer_->set_overlap_param_gather(true);
      model_->set_params_needed_hook([this](size_t first, size_t count) { dist_optimizer_->wait_params(first, count); });
    }
  } else {
    if (t.param_dtype == "bf16" && leader())
      log_warn("train.param_dtype = bf16 takes the distributed optimizer over 2 or more data-parallel ranks; this run "
               "keeps fp32 parameters");
    optimizer_ = std::make_unique<model::AdamW>(*backend_, model_->parameters(), ac,
                                                t.optimizer_cpu_offload ? t.optimizer_offload_fraction : 0.0);
  }
  if (t.update_in_backward && world() > 1)
    fail("train.update_in_backward works on one rank: with ", world(),
         " ranks the gradients are summed across them after the backward, so the update cannot run inside it");
  // Offloading is for models that barely fit: no bf16 copies of all the weights either.
  if (t.optimizer_cpu_offload) model_->set_weight_copy_reuse(false);
  schedule_ = {t.schedule, t.lr, t.min_lr, t.warmup, t.steps, t.decay_fraction};

  const std::string root = checkpoint_root();
  const uint64_t hash = config_.trajectory_hash();
  std::string found;
  if (options_.resume) {
    found = find_resume_checkpoint(root);
    if (found.empty() && !list_checkpoints(root).empty())
      fail(root, ": no checkpoint there is valid (see the warnings above); move them away to start afresh");
    if (found.empty()) log_info("--resume: no checkpoint in ", root, " yet; starting a new run");
  } else if (!list_checkpoints(root).empty()) {
    fail(t.out_dir, " already holds checkpoints: pass --resume to continue that run, or choose another train.out_dir");
  }
  if (!found.empty()) {
    if (dist_optimizer_) {
      state_ = load_checkpoint(found, *model_, [&](size_t i, int which, std::span<const float> values) {
        dist_optimizer_->load_moment(i, which, values);
      });
      dist_optimizer_->set_steps(state_.optimizer_steps);
    } else {
      state_ = load_checkpoint(found, *model_, *optimizer_);
    }
    resumed_from_ = found;
    if (state_.config_hash != hash) {
      // Another number of ranks with grad_accum scaled to keep the global batch is the same run.
      TrainConfig same = config_;
      int64_t old_accum = t.grad_accum;
      try {
        old_accum = state_.config.at("train").at("grad_accum").get<int64_t>();
      } catch (const nlohmann::json::exception&) {
      }
      same.train.grad_accum = old_accum;
      if (same.trajectory_hash() == state_.config_hash && old_accum * state_.ranks == t.grad_accum * dp_size())
        log_info("resuming ", found, " written by ", state_.ranks, " data-parallel rank(s) x grad_accum ", old_accum,
                 " on ", dp_size(), " data-parallel rank(s) x grad_accum ", t.grad_accum, ": the same global batch");
      else
        log_warn("resuming ", found, " with changed settings (config hash ", std::hex, state_.config_hash, " -> ", hash,
                 std::dec, "): the run will not match an uninterrupted one");
    }
    if (state_.step > t.steps) fail(found, " is at step ", state_.step, ", past train.steps = ", t.steps);
    check_resumed_data();
    log_info("resumed from ", found, " at step ", state_.step, " (", state_.consumed, " samples consumed)");
  } else {
    if (config_.model.init_from.empty()) model_->init_weights(static_cast<uint64_t>(t.seed));
    state_.rng_seed = static_cast<uint64_t>(t.seed);
    state_.rng_state = static_cast<uint64_t>(t.seed);
  }
  // The fp32 values are final (initialised or loaded): the master shards keep them.
  if (dist_optimizer_ && dist_optimizer_->bf16_params()) dist_optimizer_->shard_master_weights();
  state_.config_hash = hash;
  state_.config = config_.to_json();
  state_.ranks = dp_size();  // data-parallel ranks: what the global batch depends on
  state_.data_order = source_->order();
  state_.data_plan = source_->fingerprint();

  if (world() > 1) hosts_ = host_comm_->all_gather(host_comm_->host());
  if (t.async_checkpoint && (leader() || sharded_checkpoints())) {
    // Page-locking the checkpoint's copy takes seconds (15 GB at 1B, 96 GB at 7B on one rank):
    // begin it now, beside the first steps, rather than at the first checkpoint.
    const auto [weights, moments] = snapshot_sizes();
    snapshot_reservation_ =
        std::async(std::launch::async, [this, weights, moments] { allocate_snapshot_memory(weights, moments); });
  }
  if (!leader()) return;  // rank 0 writes the run directory
  const std::string metrics_path = (fs::path(t.out_dir) / "metrics.jsonl").string();
  if (!found.empty()) truncate_metrics(metrics_path, state_.step);
  else write_file_atomic(metrics_path, "");
  metrics_.open(metrics_path, std::ios::app);
  if (!metrics_) fail(metrics_path, ": cannot open for writing");
  write_file_atomic((fs::path(t.out_dir) / "config.toml").string(), config_.to_toml());
}

// The model's state per GPU under this layout, logged; a state that alone exceeds the device
// stops the run here with the options that would fit (instead of an allocation failing later).
void Trainer::check_model_state_fits() const {
  const int64_t device = backend_->device_memory_bytes();
  if (device <= 0) return;
  const TrainSection& t = config_.train;
  StateLayout layout;
  for (const model::Parameter& p : model_->parameters()) layout.parameters += p.value.numel();
  layout.data_parallel = dp_size();
  layout.distributed_optimizer = dp_size() > 1 && t.distributed_optimizer;
  layout.bf16_params = t.param_dtype == "bf16";
  layout.bf16_products = t.precision == "bf16";
  layout.offload_fraction = t.optimizer_cpu_offload ? t.optimizer_offload_fraction : 0.0;
  if (const std::string problem = does_not_fit(layout, device); !problem.empty()) fail(problem);
  if (!options_.quiet && leader()) log_info("model state per GPU: ", describe(layout, model_state_bytes(layout)));
}

std::string Trainer::checkpoint_root() const { return (fs::path(config_.train.out_dir) / "checkpoints").string(); }

void Trainer::open_data() {
  const DataSection& d = config_.data;
  const TrainSection& t = config_.train;
  const uint64_t needed = static_cast<uint64_t>(t.steps * t.micro_batch * t.grad_accum * dp_size());
  if (!d.mixture.empty()) {
    source_ = dataset::load_sample_source(d.mixture);  // `agpt data mix --order agpt` or `--order megatron`
    seq_len_ = static_cast<int64_t>(source_->seq_len());
    if (d.seq_len && d.seq_len != seq_len_)
      fail(config_.source, ": data.seq_len = ", d.seq_len, " but the mixture ", d.mixture, " was planned with seq_len ",
           seq_len_, " (re-plan it with `agpt data mix --seq-len`, or drop data.seq_len)");
  } else {
    seq_len_ = d.seq_len;
    fs::path dir = fs::path(t.out_dir) / "data";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail(dir.string(), ": cannot create (", ec.message(), ")");
    std::string list = d.list;  // the mixture section of the config: planned here as `agpt data mix` would
    if (list.empty()) {
      list = (dir / "list.txt").string();
      if (leader())
        write_file_atomic(list, "# written by agpt train from data.dataset\n1 " + fs::absolute(d.dataset).string() + " data\n");
      host_comm_->barrier();  // every rank plans from the list rank 0 wrote
    }
    dataset::MixtureOptions o;
    o.list_path = list;
    o.seq_len = static_cast<uint64_t>(d.seq_len);
    o.samples = {needed, static_cast<uint64_t>(d.valid_samples), 0};
    o.seed = static_cast<uint64_t>(d.seed);
    o.split = dataset::parse_split(d.split);
    auto m = dataset::Mixture::plan(o);
    if (leader()) m.save(dir.string());
    source_ = dataset::sample_source(std::make_shared<const dataset::Mixture>(std::move(m)));
  }
  for (const std::string& w : source_->warnings()) log_warn("data: ", w);
  if (source_->end_index(dataset::Split::kTrain) < needed)
    fail("the training data is planned for ", source_->end_index(dataset::Split::kTrain), " samples, but ", t.steps,
         " steps x micro_batch ", t.micro_batch, " x grad_accum ", t.grad_accum, " x ", dp_size(),
         " data-parallel ranks need ", needed,
         "; plan more with `agpt data mix --samples ", needed, "` or train fewer steps");
}

// A checkpoint continues the stream it was trained on: the same order, and for the Megatron order
// the same plan (its order is only defined for a whole Megatron plan, so it cannot continue under a
// changed mixture the way the agpt order can).
void Trainer::check_resumed_data() const {
  const std::string order = source_->order();
  const std::string& where = config_.data.mixture.empty() ? std::string("the data section") : config_.data.mixture;
  if (state_.data_order != order)
    fail(resumed_from_, " was trained on the ", state_.data_order, " sample order, but ", where, " is in the ", order,
         " order; resume with the plan the run was started with (a run cannot switch sample orders)");
  if (order == "megatron" && state_.data_plan != 0 && state_.data_plan != source_->fingerprint())
    fail(resumed_from_, " was trained on another Megatron-order plan than ", where,
         ": resuming with a changed mixture is not supported for the Megatron order (its sample order is only "
         "defined for a whole Megatron plan); resume with the original plan, or use `agpt data mix --order agpt`");
  if (order == "agpt" && state_.data_plan != 0 && state_.data_plan != source_->fingerprint())
    log_warn(resumed_from_, ": the data plan changed since this checkpoint; the stream continues at sample ",
             state_.consumed, " of the new plan");
}

void Trainer::write_metrics(const nlohmann::ordered_json& j) {
  if (!leader()) return;
  metrics_ << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  metrics_.flush();
}

// A plot is a convenience: failing to draw one (a full disk, say) must not stop training.
bool Trainer::draw_plots() {
  if (!leader()) return false;
  const std::string& out = config_.train.out_dir;
  try {
    plot::Run run{plot::run_label(out), plot::read_metrics(out)};
    plot::write_plots({run}, plot::PlotOptions{});
    return true;
  } catch (const std::exception& e) {
    log_warn("plots of ", out, " not drawn: ", e.what());
    return false;
  }
}

// Why a step with this loss is skipped (empty: it is not): a non-finite loss, or a spike above
// the recent losses (train.spike_zscore).
std::string Trainer::skip_reason(float loss) const {
  const TrainSection& t = config_.train;
  if (!std::isfinite(loss)) return "non-finite loss";
  if (t.spike_zscore > 0 && static_cast<int64_t>(state_.loss_window.size()) >= t.spike_window) {
    double mean = 0, var = 0;
    for (float x : state_.loss_window) mean += x;
    mean /= static_cast<double>(state_.loss_window.size());
    for (float x : state_.loss_window) var += (x - mean) * (x - mean);
    double sd = std::sqrt(var / static_cast<double>(state_.loss_window.size()));
    if (sd > 0 && (loss - mean) / sd > t.spike_zscore) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "loss spike (%.4f is %.1f std devs above the recent mean %.4f)", loss,
                    (loss - mean) / sd, mean);
      return buf;
    }
  }
  return {};
}

double Trainer::reduce_gradients(int64_t step) {
  const int64_t micro_batches = config_.train.grad_accum * dp_size();
  auto guard = watchdog_->guard("reduction of the gradients at step " + std::to_string(step));
  if (dist_optimizer_) return dist_optimizer_->reduce_gradients(1.0f / static_cast<float>(micro_batches));
  auto& params = model_->parameters();
  if (dp_size() > 1)
    for (auto& p : params) dp_comm_->all_reduce_sum(p.grad);
  if (micro_batches > 1) {
    const float inv = 1.0f / static_cast<float>(micro_batches);
    for (auto& p : params) backend_->scale(p.grad, inv);
  }
  return local_grad_norm();
}

double Trainer::local_grad_norm() {
  if (!tp_group_) return model::global_grad_norm(*backend_, model_->parameters());
  std::vector<ops::Tensor> counted;
  for (size_t i = 0; i < model_->parameters().size(); ++i)
    if (norm_counted_[i]) counted.push_back(model_->parameters()[i].grad);
  double sq[1] = {backend_->sum_squares(counted)};
  groups_.tp->all_reduce_sum(sq);
  return std::sqrt(sq[0]);
}

// Ranks wait for the slowest at every collective, so a slow GPU or node slows all of them: compare
// the time each rank spent computing (before the gradient reduction) and name the slow ones.
void Trainer::report_stragglers(int64_t step, double busy_s) {
  std::vector<double> times;
  {
    auto guard = watchdog_->guard("comparing step times at step " + std::to_string(step));
    times = host_comm_->all_gather(busy_s);
  }
  if (!leader()) return;
  std::vector<double> sorted = times;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[(sorted.size() - 1) / 2];  // the lower median: with 2 ranks, the faster one
  nlohmann::ordered_json slow = nlohmann::ordered_json::array();
  for (size_t r = 0; r < times.size(); ++r) {
    if (!(median > 0) || times[r] <= median * config_.train.straggler_factor) continue;
    char buf[256];
    std::snprintf(buf, sizeof buf, "straggler at step %lld: rank %zu (host %s) computed for %.3f s, the median rank %.3f s (%.2fx)",
                  static_cast<long long>(step), r, r < hosts_.size() ? hosts_[r].c_str() : "?", times[r], median,
                  times[r] / median);
    log_warn(buf);
    slow.push_back({{"rank", r}, {"host", r < hosts_.size() ? hosts_[r] : "?"}, {"compute_s", times[r]}});
  }
  nlohmann::ordered_json j;
  j["step"] = step;
  j["rank_compute_s"] = times;
  if (!slow.empty()) j["stragglers"] = slow;
  write_metrics(j);
}

std::optional<EvalRecord> Trainer::evaluate() {
  using dataset::Split;
  const int64_t B = config_.train.micro_batch, T = seq_len_;
  const uint64_t begin = source_->start_index(Split::kValid), end = source_->end_index(Split::kValid);
  const uint64_t available = (end - begin) / static_cast<uint64_t>(B);
  const uint64_t batches = std::min<uint64_t>(available, static_cast<uint64_t>(config_.train.eval_batches));
  if (batches == 0) return std::nullopt;
  dataset::Batch batch;
  batch.tokens.resize(static_cast<size_t>(B * (T + 1)));
  std::vector<int32_t> ids, targets;
  double sum = 0;
  // Batch i is evaluated by data-parallel rank i % dp_size (with its tensor-parallel group); the
  // sum meets on every rank.
  for (uint64_t i = static_cast<uint64_t>(dp_rank()); i < batches; i += static_cast<uint64_t>(dp_size())) {
    batch.first_index = begin + i * static_cast<uint64_t>(B);
    for (int64_t b = 0; b < B; ++b)
      source_->read(Split::kValid, batch.first_index + static_cast<uint64_t>(b), batch.tokens.data() + b * (T + 1));
    split_window(batch, B, T, model_->config().vocab_size, ids, targets);
    sum += model_->forward(ids, targets, B, T);
  }
  if (dp_size() > 1) {
    auto guard = watchdog_->guard("summing the validation loss at step " + std::to_string(state_.step));
    double v[1] = {sum};
    dp_comm_->all_reduce_sum(v);
    sum = v[0];
  }
  EvalRecord r;
  r.step = state_.step;
  r.loss = sum / static_cast<double>(batches);
  r.perplexity = std::exp(r.loss);
  r.tokens = batches * static_cast<uint64_t>(B * T);
  return r;
}

void Trainer::run() {
  using clock = std::chrono::steady_clock;
  const TrainSection& t = config_.train;
  const int64_t B = t.micro_batch, T = seq_len_;
  const int64_t last = options_.stop_after >= 0 ? std::min(t.steps, options_.stop_after) : t.steps;
  if (state_.step >= last) {
    if (!options_.quiet) log_info("nothing to do: already at step ", state_.step, " of ", last);
    return;
  }
  dataset::LoaderOptions lo;
  lo.split = dataset::Split::kTrain;
  lo.micro_batch = static_cast<uint64_t>(B);
  lo.rank = dp_rank();
  lo.world = dp_size();
  lo.prefetch = static_cast<size_t>(2 * t.grad_accum + 2);
  dataset::Loader loader(source_, lo, state_.consumed);
  auto& params = model_->parameters();
  const double flops_per_token = model_->train_flops_per_token(T);
  // MFU against the dense bf16 peak of an H100/H200 SXM (989 TFLOP/s) on a GPU, as Megatron and
  // nanoGPT report it, unless train.peak_flops names the machine's own.
  const double peak_flops =
      t.peak_flops > 0 ? t.peak_flops : (backend_->device() == ops::Device::kCuda ? 989e12 : 0.0);
  const uint64_t tokens_per_step = static_cast<uint64_t>(B * T * t.grad_accum * dp_size());
  const FaultHang hang = fault_hang();
  std::vector<int32_t> ids, targets;
  if (!options_.quiet)
    log_info("training ", model_->num_parameters(), " parameters, steps ", state_.step + 1, "..", last, " of ", t.steps,
             ", ", tokens_per_step, " tokens per step (micro_batch ", B, " x grad_accum ", t.grad_accum,
             dp_size() > 1 ? " x " + std::to_string(dp_size()) + " ranks" : std::string(), " x seq_len ", T, ")",
             dp_size() > 1 ? std::string(", data parallel over ") + comm_->name() +
                                 (dist_optimizer_ ? " with the distributed optimizer" : " with all-reduce")
                           : std::string(),
             tp_group_ ? ", tensor parallel over " + std::to_string(tp_group_->size()) + " ranks" : std::string());
  const auto run_start = clock::now();
  const int64_t first = state_.step + 1;

  for (int64_t step = first; step <= last; ++step) {
    const auto t0 = clock::now();
    double loss_sum = 0;
    for (int64_t a = 0; a < t.grad_accum; ++a) {
      // The first micro-batch writes the gradients (no zeroing pass), the others add to them.
      const ops::Grad grads = a == 0 ? ops::Grad::kWrite : ops::Grad::kAdd;
      dataset::Batch batch = loader.next();
      split_window(batch, B, T, model_->config().vocab_size, ids, targets);
      {
        // The first forward waits for the parameter all-gathers queued by the last step.
        std::optional<dist::Watchdog::Guard> gather;
        if (a == 0 && dist_optimizer_ && t.overlap_param_gather)
          gather.emplace(watchdog_->guard("forward with the parameter all-gather at step " + std::to_string(step)));
        loss_sum += model_->forward(ids, targets, B, T, /*for_backward=*/true);
      }
      // The update inside the backward, unless this step's loss already says it will be skipped.
      if (t.update_in_backward && optimizer_ && skip_reason(static_cast<float>(loss_sum)).empty())
        optimizer_->arrange_update_in_backward(model_->parameters(), learning_rate(schedule_, step));
      if (a + 1 == t.grad_accum && dist_optimizer_ && t.overlap_grad_reduce) {
        // The last micro-batch's backward starts each bucket's reduction as soon as it is complete.
        model_->set_grads_ready_hook([this](size_t first, size_t count) { dist_optimizer_->grads_ready(first, count); });
        auto guard = watchdog_->guard("backward with gradient reduction at step " + std::to_string(step));
        model_->backward(grads);
        model_->set_grads_ready_hook(nullptr);
      } else {
        model_->backward(grads);
      }
    }
    if (hang.slow_rank == host_comm_->rank()) std::this_thread::sleep_for(std::chrono::duration<double>(hang.slow_s));
    const double busy = std::chrono::duration<double>(clock::now() - t0).count();
    if (hang.rank == host_comm_->rank() && hang.step == step) {
      log_warn("fault injection (AGPT_FAULT_HANG): rank ", hang.rank, " stops responding at step ", step);
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    StepRecord r;
    r.step = step;
    if (dp_size() > 1) {
      auto guard = watchdog_->guard("summing the loss at step " + std::to_string(step));
      double v[1] = {loss_sum};
      dp_comm_->all_reduce_sum(v);
      loss_sum = v[0];
    }
    r.loss = loss_sum / static_cast<double>(t.grad_accum * dp_size());
    // The update's host work before the wait for the gradient norm, not after it while the GPU idles.
    if (optimizer_ && !dist_optimizer_) optimizer_->prepare_step(params);
    r.grad_norm = reduce_gradients(step);
    r.lr = learning_rate(schedule_, step);
    const float loss_f = static_cast<float>(r.loss);
    r.reason = skip_reason(loss_f);
    if (r.reason.empty() && !std::isfinite(r.grad_norm)) r.reason = "non-finite gradient norm";
    r.skipped = !r.reason.empty();
    if (r.skipped && optimizer_ && optimizer_->arranged() && optimizer_->cancel_update_in_backward() > 0)
      fail("step ", step, ": ", r.reason, " after the update inside the backward had changed the weights "
           "(train.update_in_backward cannot skip such a step): resume from the last checkpoint with "
           "train.update_in_backward = false");
    if (!r.skipped) {
      const float clip = model::clip_coefficient(r.grad_norm, t.clip);
      if (dist_optimizer_) {
        auto guard = watchdog_->guard("all-gather of the updated parameters at step " + std::to_string(step));
        dist_optimizer_->step(r.lr, clip);
        if (!t.overlap_param_gather) backend_->synchronize();
        state_.optimizer_steps = dist_optimizer_->steps();
      } else {
        const bool arranged = optimizer_->arranged();
        optimizer_->step(params, r.lr, clip);
        state_.optimizer_steps = optimizer_->steps();
        if (arranged) r.updated_in_backward = static_cast<int64_t>(optimizer_->updated_in_backward());
        if (arranged && !in_backward_reported_ && leader()) {  // say once whether it takes effect
          in_backward_reported_ = true;
          if (r.updated_in_backward > 0)
            log_info("train.update_in_backward: ", r.updated_in_backward, " of ", params.size(),
                     " parameters updated by the products that compute their gradients");
          else
            log_warn("train.update_in_backward: no parameter was updated in the backward (that needs agpt's Hopper "
                     "products with train.precision = \"bf16\" and large Linear weights); the update runs after it");
        }
      }
      state_.bad_streak = 0;
      state_.loss_window.push_back(loss_f);
      if (static_cast<int64_t>(state_.loss_window.size()) > t.spike_window)
        state_.loss_window.erase(state_.loss_window.begin());
    } else {
      state_.bad_streak++;
      state_.skipped++;
      log_warn("step ", step, ": skipped the update: ", r.reason, " (loss ", r.loss, ", gradient norm ", r.grad_norm, ")");
    }
    splitmix_next(state_.rng_state);
    state_.step = step;
    state_.consumed = loader.consumed();
    state_.stream = loader.state();
    state_.tokens += tokens_per_step;
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    state_.elapsed += dt;
    history_.push_back(r);

    const double tps = dt > 0 ? static_cast<double>(tokens_per_step) / dt : 0;
    nlohmann::ordered_json j;
    j["step"] = step;
    j["loss"] = std::isfinite(r.loss) ? nlohmann::ordered_json(r.loss) : nlohmann::ordered_json(nullptr);
    j["lr"] = r.lr;
    j["grad_norm"] = std::isfinite(r.grad_norm) ? nlohmann::ordered_json(r.grad_norm) : nlohmann::ordered_json(nullptr);
    j["tokens"] = state_.tokens;
    j["tokens_per_s"] = tps;
    j["flops_per_s"] = flops_per_token * tps;
    if (peak_flops > 0) j["mfu"] = flops_per_token * tps / (peak_flops * world());  // per GPU
    if (world() > 1) j["ranks"] = world();
    if (tp_group_) j["tensor_parallel"] = tp_group_->size();
    j["elapsed"] = state_.elapsed;
    j["rss_mib"] = rss_mib();
    if (int64_t peak = backend_->peak_memory_bytes(); peak > 0) j["device_peak_mib"] = static_cast<double>(peak) / (1 << 20);
    if (r.skipped) j["skipped"] = r.reason;
    if (r.updated_in_backward >= 0) j["updated_in_backward"] = r.updated_in_backward;
    write_metrics(j);

    if (world() > 1 && t.straggler_every > 0 && step % t.straggler_every == 0) report_stragglers(step, busy);
    if (state_.bad_streak >= t.max_bad_steps)
      fail("training stopped at step ", step, ": ", state_.bad_streak, " steps in a row were skipped (last: ", r.reason,
           "). Lower train.lr, raise train.warmup, check the data, or resume from the last checkpoint in ",
           checkpoint_root());

    if (!options_.quiet && leader() && (step % t.log_every == 0 || step == last || step == first)) {
      const double run_s = std::chrono::duration<double>(clock::now() - run_start).count();
      const double eta = run_s / static_cast<double>(step - first + 1) * static_cast<double>(last - step);
      char buf[256], mfu[32] = "";
      if (peak_flops > 0) std::snprintf(mfu, sizeof mfu, "  MFU %.1f%%", 100 * flops_per_token * tps / (peak_flops * world()));
      std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f  lr %.3e  gnorm %.3f  %s tok/s  %s%s  elapsed %s  eta %s%s",
                    static_cast<long long>(step), static_cast<long long>(t.steps), r.loss, r.lr, r.grad_norm,
                    rate(tps).c_str(), flops_rate(flops_per_token * tps).c_str(), mfu, duration(state_.elapsed).c_str(),
                    duration(eta).c_str(), r.skipped ? "  (skipped)" : "");
      log_line("train", buf);
    }
    if ((t.eval_every > 0 && step % t.eval_every == 0) || step == t.steps) {
      if (auto e = evaluate()) {
        evals_.push_back(*e);
        nlohmann::ordered_json ej;
        ej["step"] = step;
        ej["val_loss"] = e->loss;
        ej["val_perplexity"] = e->perplexity;
        ej["val_tokens"] = e->tokens;
        write_metrics(ej);
        if (!options_.quiet && leader()) {
          char buf[128];
          std::snprintf(buf, sizeof buf, "step %lld  validation loss %.4f  perplexity %.2f", static_cast<long long>(step),
                        e->loss, e->perplexity);
          log_line("eval", buf);
        }
      }
    }
    if ((t.checkpoint_every > 0 && step % t.checkpoint_every == 0) || step == last) {
      checkpoint();
      if (t.plot && draw_plots() && step == last && !options_.quiet)
        log_info("plots in ", (fs::path(t.out_dir) / "plots").string(), " (overview.png: loss, lr, gradient norm, tokens/s)");
    } else {
      finish_checkpoint_write(false);  // a background write that failed stops the run at once
    }
  }
  if (t.async_checkpoint) {
    finish_checkpoint_write();  // the run ends with its last checkpoint complete
    if (world() > 1) {
      auto guard = watchdog_->guard("waiting for rank 0 to write the last checkpoint");
      host_comm_->broadcast(last_checkpoint_, 0);
    }
  }
}

}  // namespace agpt::train
