// Trainer: writing checkpoints. Three ways, each synchronous or in the background
// (train.async_checkpoint):
//   - one process, or all-reduce data parallelism: rank 0 writes the model and its optimizer;
//   - the distributed optimizer (ZeRO-1), with or without tensor parallelism: rank 0 makes the
//     directory, every rank writes its own moment shard (under tensor parallelism, parts of its
//     slices), the data-parallel replicas share out the weight files (each tensor-parallel group
//     putting its files' tensors together), rank 0 completes it with every digest;
//   - tensor parallelism without the distributed optimizer (or without a shared directory): the
//     group of data-parallel rank 0 puts the slices back together and rank 0 writes whole tensors.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <sstream>

#include "base/error.h"
#include "base/log.h"
#include "train/trainer.h"

namespace agpt::train {

namespace fs = std::filesystem;

namespace {

// " (X GB in Y s, Z GB/s)" for a checkpoint directory: at 7B a checkpoint is ~96 GB, and its time
// is time not training.
std::string size_and_rate(const std::string& dir, std::chrono::steady_clock::time_point started) {
  std::error_code ec;
  uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) bytes += e.file_size(ec);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char buf[96];
  std::snprintf(buf, sizeof buf, " (%.2f GB in %.1f s, %.2f GB/s)", static_cast<double>(bytes) / 1e9, secs,
                secs > 0 ? static_cast<double>(bytes) / 1e9 / secs : 0.0);
  return buf;
}

// What each rank reports to rank 0 about the files it wrote: a line "name<TAB>bytes<TAB>checksum"
// per file, or "!" and what went wrong, so that no rank waits for one that gave up.
std::string encode_written(const model::WrittenFiles& written) {
  std::string out;
  for (const auto& [name, d] : written) out += cat(name, "\t", d.bytes, "\t", d.fnv1a64, "\n");
  return out;
}

model::WrittenFiles decode_written(const std::vector<std::string>& from_ranks) {
  model::WrittenFiles written;
  for (const std::string& text : from_ranks) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string name;
      FileDigest d;
      std::getline(fields, name, '\t');
      if (!(fields >> d.bytes >> d.fnv1a64)) fail("a rank's report of its checkpoint files is garbled: '", line, "'");
      written[name] = d;
    }
  }
  return written;
}

constexpr uint64_t kWeightFileBytes = 5'000'000'000ull;  // Hugging Face's shard size

// The step's wait for a background checkpoint: the copy into host memory.
void log_copied(int64_t step, std::chrono::steady_clock::time_point started, const char* then) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  log_info("checkpoint of step ", step, ": copied to host memory in ", buf, " s, ", then);
}

// A test hook: AGPT_FAULT_UNSHARED_DIR=RANK makes that rank report a sharded checkpoint's directory
// as not visible, as on a host without the shared filesystem (one host cannot have that otherwise).
bool fault_unshared_dir(int rank) {
  const char* v = std::getenv("AGPT_FAULT_UNSHARED_DIR");
  if (!v) return false;
  char* end = nullptr;
  const long r = std::strtol(v, &end, 10);
  if (end == v || *end != '\0') fail("AGPT_FAULT_UNSHARED_DIR='", v, "': expected a RANK (a fault-injection hook for tests)");
  return r == rank;
}

}  // namespace

Trainer::~Trainer() {
  // A background checkpoint write finishes before the trainer goes (an error can only be told now;
  // a sharded one stays uncommitted, its directory hidden).
  if (checkpoint_write_.valid()) {
    try {
      last_checkpoint_ = checkpoint_write_.get();
    } catch (const std::exception& e) {
      log_warn("the checkpoint of step ", checkpoint_write_step_, " could not be written: ", e.what());
    }
  }
  if (shard_write_.valid()) shard_write_.wait();
}

void Trainer::checkpoint() {
  const TrainSection& t = config_.train;
  finish_checkpoint_write();  // one write at a time
  const std::string step = std::to_string(state_.step);
  const auto started = std::chrono::steady_clock::now();
  if (sharded_checkpoints() && sharded_checkpoint(t.async_checkpoint != 0, started)) return;
  // Without a shared directory the distributed optimizer's moments are gathered, synchronously.
  const bool async = t.async_checkpoint != 0 && !sharded_checkpoints();
  if (async && leader()) reserve_snapshot_memory();
  // Tensor parallelism: the sharded moments (and with bf16 parameters the fp32 master values, which
  // the weight files then hold) meet on data-parallel rank 0 (flat, in this rank's tensor-parallel
  // slices).
  std::vector<float> m, v, master;
  const bool bf16_params = dist_optimizer_ && dist_optimizer_->bf16_params();
  if (dist_optimizer_) {
    auto guard = watchdog_->guard("gathering the optimizer state for the checkpoint of step " + step);
    dist_optimizer_->wait_all_params();
    backend_->synchronize();
    m = dist_optimizer_->gather_moment(0);
    v = dist_optimizer_->gather_moment(1);
    if (bf16_params) master = dist_optimizer_->gather_moment(2);
    log_debug("checkpoint of step ", step, ": optimizer state gathered in ",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), " s");
  }
  auto local_moment = [&](size_t i, int which) -> std::vector<float> {  // which 2: the master values
    if (!dist_optimizer_) return optimizer_->moment(i, which);
    auto slice = dist_optimizer_->param_slice(which == 0 ? m : which == 1 ? v : master, i);
    return std::vector<float>(slice.begin(), slice.end());
  };
  // Under tensor parallelism the group of data-parallel rank 0 puts the slices back together, so
  // the checkpoint holds whole tensors under their names whatever the layout that wrote it.
  std::vector<std::vector<float>> full_values, full_moments[2];
  if (tp_group_ && dp_rank() == 0) {
    auto guard = watchdog_->guard("gathering the tensor-parallel slices for the checkpoint of step " + step);
    const auto& params = model_->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (bf16_params)
        full_values.push_back(model_->gather_full(params[i], backend_->from_host(params[i].value.shape(), local_moment(i, 2))));
      else
        full_values.push_back(model_->gather_full(params[i], params[i].value));
      for (int which = 0; which < 2; ++which) {
        ops::Tensor local = backend_->from_host(params[i].value.shape(), local_moment(i, which));
        full_moments[which].push_back(model_->gather_full(params[i], local));
      }
    }
  }
  const int64_t optimizer_steps = dist_optimizer_ ? dist_optimizer_->steps() : optimizer_->steps();
  if (async) {
    if (leader()) start_checkpoint_write(optimizer_steps, full_values, full_moments, started);
    return;  // no barrier: the other ranks go on training
  }
  if (leader()) {
    // Views where the moments are in host memory already; the device moments of a single optimizer
    // download into one reused buffer.
    std::vector<float> buffer;
    MomentView moments;
    if (tp_group_)
      moments = [&](size_t i, int which) { return std::span<const float>(full_moments[which].at(i)); };
    else if (dist_optimizer_)
      moments = [&](size_t i, int which) { return dist_optimizer_->param_slice(which == 0 ? m : v, i); };
    else
      moments = adamw_moments(*optimizer_, buffer);
    WeightView weights = nullptr;
    if (tp_group_) weights = [&](size_t i) { return std::span<const float>(full_values.at(i)); };
    else if (bf16_params) weights = [&](size_t i) { return dist_optimizer_->param_slice(master, i); };
    last_checkpoint_ = save_checkpoint(checkpoint_root(), *model_, moments, optimizer_steps, state_,
                                       config_.data.tokenizer, t.keep_last, weights);
  }
  if (world() > 1) {
    // Every rank learns the path, and none runs ahead of a checkpoint that is not complete yet.
    auto guard = watchdog_->guard("waiting for rank 0 to write the checkpoint of step " + step);
    host_comm_->broadcast(last_checkpoint_, 0);
  }
  if (!options_.quiet && leader()) log_info("checkpoint ", last_checkpoint_, size_and_rate(last_checkpoint_, started));
}

// Fails on every rank if any rank's report starts with "!".
void Trainer::fail_if_any_rank_failed(const std::vector<std::string>& from_ranks, int64_t step) const {
  for (size_t r = 0; r < from_ranks.size(); ++r)
    if (!from_ranks[r].empty() && from_ranks[r][0] == '!')
      fail("the checkpoint of step ", step, " could not be written: rank ", r, ": ", from_ranks[r].substr(1),
           " (earlier checkpoints in ", checkpoint_root(), " are whole)");
}

// The distributed optimizer without tensor parallelism: every rank writes its own moment shard into
// the directory that rank 0 begins, so nothing is gathered (at 7B the gather took 40-51 s and 64 GB
// of rank 0's memory) and the shards are written side by side, with the weight files shared out.
// In the background, each rank first copies its shard and its weight files' tensors into page-locked
// memory and writes from there; the ranks commit the checkpoint together once all are done
// (finish_checkpoint_write). Needs train.out_dir on a filesystem every rank sees; where it is
// not, returns false (warned once) and the caller gathers the moments on rank 0 instead.
bool Trainer::sharded_checkpoint(bool async, std::chrono::steady_clock::time_point started) {
  const int64_t step = state_.step;
  auto guard = watchdog_->guard("writing the checkpoint of step " + std::to_string(step));
  std::string begun;
  if (leader()) {
    try {
      begun = begin_checkpoint(checkpoint_root(), step);
    } catch (const std::exception& e) {
      begun = std::string("!") + e.what();
    }
  }
  host_comm_->broadcast(begun, 0);
  fail_if_any_rank_failed({begun}, step);
  std::error_code ec;
  double hidden[1] = {fs::is_directory(begun, ec) && !fault_unshared_dir(host_comm_->rank()) ? 0.0 : 1.0};
  host_comm_->all_reduce_sum(hidden);
  if (hidden[0] > 0) {
    if (leader() && !warned_unshared_out_dir_)
      log_warn(begun, " is not visible to ", hidden[0], " of the ", world(), " ranks (no shared filesystem?): "
               "checkpoints gather the optimizer moments on rank 0 instead, synchronously");
    warned_unshared_out_dir_ = true;
    return false;
  }
  dist_optimizer_->wait_all_params();
  backend_->synchronize();
  const int64_t optimizer_steps = dist_optimizer_->steps();
  const std::vector<model::TensorSpec> specs = model_->tensor_specs();
  // One moment shard per rank (under tensor parallelism too); the weight files shared out among
  // the data-parallel replicas.
  const int rank = host_comm_->rank(), ranks = world(), replica = dp_rank(), replicas = dp_size();
  const bool tp = tp_group_ != nullptr;
  const auto& params = model_->parameters();
  // This rank's parts of the moments at m and v, and of the master values at `master` (bf16
  // parameters; else nullptr), in its shard's layout. Under tensor parallelism the parts lie in
  // this rank's slices, and a replicated parameter's parts are written by tensor-parallel rank 0.
  auto parts_at = [&](const float* m, const float* v, const float* master) {
    std::vector<MomentPart> parts;
    for (const auto& part : dist_optimizer_->owned_parts(replica)) {
      const model::Parameter& p = params[part.param];
      if (tp && !p.shard.split() && groups_.tp_rank != 0) continue;
      const auto at = static_cast<size_t>(part.local), n = static_cast<size_t>(part.count);
      parts.push_back({part.param, part.offset, std::span(m + at, n), std::span(v + at, n),
                       master ? std::span(master + at, n) : std::span<const float>(),
                       tp && p.shard.split() ? p.shard : model::Shard{}});
    }
    return parts;
  };
  const bool bf16_params = dist_optimizer_->bf16_params();
  // Under tensor parallelism the tensors of this replica's weight files are put together in its
  // group first (a collective; tensor-parallel rank 0 writes them).
  const std::vector<size_t> own_weights = own_weight_tensors();
  std::vector<std::vector<float>> gathered;
  if (tp) {
    auto gather_guard = watchdog_->guard("gathering the tensor-parallel slices of the weight files of step " +
                                         std::to_string(step));
    gathered.resize(params.size());
    for (size_t i : own_weights) {
      std::vector<float> full = model_->gather_full(params[i], params[i].value);
      if (groups_.tp_rank == 0) gathered[i] = std::move(full);
    }
  }
  const bool writes_weights = !tp || groups_.tp_rank == 0;
  if (!async) {
    std::string report;
    try {
      const std::vector<float> m = dist_optimizer_->local_moment(0), v = dist_optimizer_->local_moment(1);
      const std::vector<float> master = bf16_params ? dist_optimizer_->local_moment(2) : std::vector<float>();
      model::WrittenFiles written;
      written[moment_shard_file(rank, ranks)] = write_moment_shard(
          begun, specs, rank, ranks, optimizer_steps, parts_at(m.data(), v.data(), bf16_params ? master.data() : nullptr));
      // The weight files too are shared out (every replica holds the whole model): file i by replica i % N.
      if (!tp) {
        written.merge(model_->save(begun, sharded_weight_dtype(), kWeightFileBytes, {replica, replicas}));
      } else if (writes_weights) {
        WeightView view = [&](size_t i) { return std::span<const float>(gathered.at(i)); };
        written.merge(model::save_model(begun, model_->config(), specs, view, sharded_weight_dtype(), kWeightFileBytes,
                                        {replica, replicas}));
      }
      report = encode_written(written);
    } catch (const std::exception& e) {
      report = std::string("!") + e.what();
    }
    commit_sharded_checkpoint(begun, host_comm_->all_gather(report), state_, started, false);
    return true;
  }
  reserve_snapshot_memory();
  for (int which = 0; which < (bf16_params ? 3 : 2); ++which)
    dist_optimizer_->local_moment(which, std::span(snapshot_moments_[which].get(), snapshot_moment_floats_));
  const std::vector<size_t> written_weights = writes_weights ? own_weights : std::vector<size_t>();
  WeightView weights = copy_weights_to_snapshot(written_weights, tp ? &gathered : nullptr);
  const model::StDType weight_dtype = sharded_weight_dtype();
  if (!options_.quiet && leader()) log_copied(step, started, "every rank writing its part in the background");
  // The lambda holds the buffers (shared pointers) and copies of everything else it reads.
  shard_write_ = std::async(std::launch::async, [=, m = snapshot_moments_[0], v = snapshot_moments_[1],
                                                 master = snapshot_moments_[2],
                                                 parts = parts_at(snapshot_moments_[0].get(), snapshot_moments_[1].get(),
                                                                  bf16_params ? snapshot_moments_[2].get() : nullptr),
                                                 config = model_->config()] {
    model::WrittenFiles written;
    written[moment_shard_file(rank, ranks)] = write_moment_shard(begun, specs, rank, ranks, optimizer_steps, parts);
    if (!written_weights.empty())
      written.merge(model::save_model(begun, config, specs, weights, weight_dtype, kWeightFileBytes, {replica, replicas}));
    return written;
  });
  shard_write_begun_ = begun;
  shard_write_state_ = state_;
  shard_write_started_ = started;
  return true;
}

// Rank 0 completes a sharded checkpoint from every rank's report; every rank learns its path.
void Trainer::commit_sharded_checkpoint(const std::string& begun, const std::vector<std::string>& reports,
                                        const TrainerState& state, std::chrono::steady_clock::time_point started,
                                        bool background) {
  fail_if_any_rank_failed(reports, state.step);
  std::string done;
  if (leader()) {
    try {
      done = commit_checkpoint(checkpoint_root(), begun, decode_written(reports), state, config_.data.tokenizer,
                               config_.train.keep_last);
    } catch (const std::exception& e) {
      done = std::string("!") + e.what();
    }
  }
  host_comm_->broadcast(done, 0);
  fail_if_any_rank_failed({done}, state.step);
  last_checkpoint_ = done;
  if (!options_.quiet && leader())
    log_info("checkpoint ", done, size_and_rate(done, started), background ? ", written in the background" : "");
}

// Floats of the weights' copy and of each moment's (the distributed optimizer's: the tensors of
// this rank's weight files and its shard of the moments).
std::pair<size_t, size_t> Trainer::snapshot_sizes() const {
  size_t total = 0;
  for (const auto& p : model_->parameters()) total += static_cast<size_t>(ops::shape_numel(p.full_shape));
  if (sharded_checkpoints()) {
    size_t own = 0;
    if (!tp_group_ || groups_.tp_rank == 0)  // tensor parallelism: rank 0 of each group writes the weights
      for (size_t i : own_weight_tensors()) own += static_cast<size_t>(ops::shape_numel(model_->parameters()[i].full_shape));
    return {own, static_cast<size_t>(dist_optimizer_->layout().shard)};
  }
  return {total, total};
}

// Page-locked host memory for the checkpoint's copy (a copy into pageable memory runs at a few
// GB/s), kept from one checkpoint to the next; normally reserved already by the constructor.
void Trainer::reserve_snapshot_memory() {
  if (snapshot_reservation_.valid()) snapshot_reservation_.get();  // begun in the background at the start
  const auto [weights, moments] = snapshot_sizes();
  allocate_snapshot_memory(weights, moments);
}

void Trainer::allocate_snapshot_memory(size_t weights, size_t moments) {
  if (snapshot_weight_floats_ != weights) {
    snapshot_weights_ = backend_->allocate_host_f32(weights);
    snapshot_weight_floats_ = weights;
  }
  if (snapshot_moment_floats_ != moments) {
    // The third: a sharded checkpoint's master values (bf16 parameters).
    const bool master = sharded_checkpoints() && dist_optimizer_->bf16_params();
    for (int which = 0; which < 3; ++which)
      snapshot_moments_[which] = which < 2 || master ? backend_->allocate_host_f32(moments) : nullptr;
    snapshot_moment_floats_ = moments;
  }
}

// Parameters `which` of the model into the page-locked copy (tensor parallelism: the gathered full
// values), one after the other, as a view that holds the buffer and knows only those.
WeightView Trainer::copy_weights_to_snapshot(const std::vector<size_t>& which,
                                             const std::vector<std::vector<float>>* full_values) {
  const auto& params = model_->parameters();
  constexpr size_t kNone = SIZE_MAX;
  std::vector<size_t> at(params.size(), kNone), numel(params.size());
  size_t offset = 0;
  ops::Tensor staging;  // bf16 parameters: widened on the device piece by piece
  int64_t widest = 0;
  for (size_t i : which) widest = std::max(widest, params[i].value.numel());
  for (size_t i : which) {
    numel.at(i) = static_cast<size_t>(ops::shape_numel(params[i].full_shape));
    at[i] = offset;
    float* to = snapshot_weights_.get() + offset;
    offset += numel[i];
    if (offset > snapshot_weight_floats_) fail("checkpoint: the weights' copy is too small (", snapshot_weight_floats_, ")");
    if (full_values) {
      std::copy(full_values->at(i).begin(), full_values->at(i).end(), to);
    } else if (params[i].value.dtype() == ops::DType::kF32) {
      backend_->download(params[i].value, to, numel[i] * sizeof(float));
    } else {
      // bf16 (train.param_dtype): widened into fp32 on the device and copied at the page-locked
      // rate, not downloaded into pageable memory and widened by one host thread (7B: seconds).
      constexpr int64_t kPiece = int64_t{1} << 26;
      const ops::Tensor flat = params[i].value.reshape({params[i].value.numel()});
      if (!staging.defined()) staging = backend_->empty({std::min(kPiece, widest)});
      for (int64_t at = 0; at < flat.numel(); at += staging.numel()) {
        const int64_t n = std::min(staging.numel(), flat.numel() - at);
        ops::Tensor wide = staging.view(0, {n});
        backend_->cast(wide, flat.view(at, {n}));
        backend_->download(wide, to + at, static_cast<size_t>(n) * sizeof(float));
      }
    }
  }
  return [buffer = snapshot_weights_, at, numel](size_t i) {
    if (at.at(i) == kNone) fail("checkpoint: parameter ", i, " was not copied for this rank's weight files");
    return std::span<const float>(buffer.get() + at[i], numel[i]);
  };
}

// The type of a sharded checkpoint's weight files: the model's own. With bf16 parameters the moment
// shards hold the fp32 master values, so the weight files need not (half the bytes).
model::StDType Trainer::sharded_weight_dtype() const {
  return dist_optimizer_ && dist_optimizer_->bf16_params() ? model::StDType::BF16 : model::StDType::F32;
}

// The parameters whose weight files this rank writes in a sharded checkpoint.
std::vector<size_t> Trainer::own_weight_tensors() const {
  const auto plan = model::plan_weight_files(model_->tensor_specs(), sharded_weight_dtype(), kWeightFileBytes);
  return model::tensors_of_share(plan, {dp_rank(), dp_size()});
}

// Copies what the checkpoint holds into the page-locked memory (the weights, the moments), then
// writes it on another thread while training goes on. The copy is all the step waits for.
void Trainer::start_checkpoint_write(int64_t optimizer_steps, const std::vector<std::vector<float>>& full_values,
                                     const std::vector<std::vector<float>> (&full_moments)[2],
                                     std::chrono::steady_clock::time_point started) {
  auto snap = std::make_shared<CheckpointSnapshot>();
  snap->config = model_->config();
  snap->optimizer_steps = optimizer_steps;
  snap->state = state_;
  snap->params = model_->tensor_specs();
  std::vector<size_t> all(snap->params.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  snap->weights = copy_weights_to_snapshot(all, tp_group_ ? &full_values : nullptr);
  std::vector<size_t> at, numel;  // the moments lie as the weights do
  size_t offset = 0;
  for (const auto& p : snap->params) {
    numel.push_back(static_cast<size_t>(ops::shape_numel(p.shape)));
    at.push_back(offset);
    offset += numel.back();
  }
  for (size_t i = 0; i < snap->params.size(); ++i)
    for (int which = 0; which < 2; ++which) {
      float* to = snapshot_moments_[which].get() + at[i];
      if (tp_group_) std::copy(full_moments[which].at(i).begin(), full_moments[which].at(i).end(), to);
      else optimizer_->copy_moment(i, which, std::span<float>(to, numel[i]));
    }
  snap->moments = [m = snapshot_moments_[0], v = snapshot_moments_[1], at, numel](size_t i, int which) {
    return std::span<const float>((which == 0 ? m : v).get() + at.at(i), numel[i]);
  };
  if (!options_.quiet) log_copied(state_.step, started, "writing it in the background");
  checkpoint_write_step_ = state_.step;
  checkpoint_write_ = std::async(std::launch::async, [snap, root = checkpoint_root(), tokenizer = config_.data.tokenizer,
                                                      keep = config_.train.keep_last, quiet = options_.quiet, started] {
    std::string dir = save_checkpoint(root, *snap, tokenizer, keep);
    if (!quiet) log_info("checkpoint ", dir, size_and_rate(dir, started), ", written in the background");
    return dir;
  });
}

void Trainer::finish_checkpoint_write(bool wait) {
  if (shard_write_.valid()) {
    // Every rank has one (begun at the same step), so the ranks decide together: without `wait`,
    // only once all are done.
    if (!wait) {
      double busy[1] = {shard_write_.wait_for(std::chrono::seconds(0)) == std::future_status::ready ? 0.0 : 1.0};
      host_comm_->all_reduce_sum(busy);
      if (busy[0] > 0) return;
    }
    auto guard = watchdog_->guard("finishing the checkpoint of step " + std::to_string(shard_write_state_.step));
    std::string report;
    try {
      report = encode_written(shard_write_.get());
    } catch (const std::exception& e) {
      report = std::string("!") + e.what();
    }
    commit_sharded_checkpoint(shard_write_begun_, host_comm_->all_gather(report), shard_write_state_,
                              shard_write_started_, true);
    return;
  }
  if (!checkpoint_write_.valid()) return;
  if (!wait && checkpoint_write_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
  try {
    last_checkpoint_ = checkpoint_write_.get();
  } catch (const std::exception& e) {
    fail("the checkpoint of step ", checkpoint_write_step_, " could not be written: ", e.what(),
         " (earlier checkpoints in ", checkpoint_root(), " are whole)");
  }
}

}  // namespace agpt::train
