#include "train/distributed_optimizer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "base/error.h"

namespace agpt::train {

FlatLayout FlatLayout::plan(const std::vector<model::Parameter>& params, int world, int64_t bucket_elems,
                            int64_t align) {
  if (world < 1) fail("distributed optimizer: world size ", world, " < 1");
  FlatLayout l;
  // Bucket boundaries, walking back from the last parameter.
  std::vector<std::pair<size_t, size_t>> ranges;  // [first, end), last bucket first
  size_t end = params.size();
  int64_t acc = 0;
  for (size_t i = params.size(); i-- > 0;) {
    acc += params[i].value.numel();
    if ((bucket_elems > 0 && acc >= bucket_elems) || i == 0) {
      ranges.emplace_back(i, end);
      end = i, acc = 0;
    }
  }
  std::reverse(ranges.begin(), ranges.end());
  l.offsets.resize(params.size());
  l.numels.resize(params.size());
  const int64_t unit = align * world;
  for (auto [first, last] : ranges) {
    Bucket b;
    b.first_param = first, b.end_param = last;
    b.start = l.total;
    int64_t at = 0;
    for (size_t i = first; i < last; ++i) {
      at = (at + align - 1) / align * align;
      l.offsets[i] = b.start + at;
      l.numels[i] = params[i].value.numel();
      at += l.numels[i];
    }
    b.size = std::max<int64_t>(unit, (at + unit - 1) / unit * unit);
    b.shard = b.size / world;
    b.local = l.shard;
    l.total += b.size;
    l.shard += b.shard;
    l.buckets.push_back(b);
  }
  return l;
}

DistributedOptimizer::DistributedOptimizer(dist::Communicator& comm, ops::Backend& backend,
                                           std::vector<model::Parameter>& params, const model::AdamWConfig& config,
                                           int64_t bucket_elems, bool bf16_params)
    : comm_(&comm), backend_(&backend), params_(&params), config_(config), bf16_params_(bf16_params) {
  // Reuses model::AdamW's validation of the settings.
  (void)model::AdamW(backend, {}, config);
  layout_ = FlatLayout::plan(params, comm.size(), bucket_elems);
  values_ = backend.zeros({layout_.total});
  m_ = backend.zeros({layout_.shard});
  v_ = backend.zeros({layout_.shard});
  for (size_t i = 0; i < params.size(); ++i) {
    model::Parameter& p = params[i];
    if (p.value.dtype() != ops::DType::kF32) fail("distributed optimizer: parameter ", p.name, " is not fp32");
    ops::Tensor value = values_.view(layout_.offsets[i], p.value.shape());
    backend.copy(value, p.value);
    p.value = value;
  }
  if (!bf16_params_) {
    grads_ = backend.zeros({layout_.total});
    for (size_t i = 0; i < params.size(); ++i) params[i].grad = grads_.view(layout_.offsets[i], params[i].value.shape());
  }
  ready_from_ = params.size();
}

void DistributedOptimizer::shard_master_weights() {
  if (!bf16_params_ || master_.defined())
    fail("distributed optimizer: shard_master_weights() is for bf16 parameters, once");
  const int64_t r = comm_->rank();
  master_ = backend_->empty({layout_.shard});
  ops::Tensor rounded = backend_->empty({layout_.total}, ops::DType::kBF16);
  backend_->cast(rounded, values_);
  for (const FlatLayout::Bucket& b : layout_.buckets) {
    ops::Tensor mine = master_.view(b.local, {b.shard});
    backend_->copy(mine, values_.view(b.start + r * b.shard, {b.shard}));
  }
  auto& params = *params_;
  for (size_t i = 0; i < params.size(); ++i) params[i].value = rounded.view(layout_.offsets[i], params[i].value.shape());
  values_ = rounded;  // the fp32 values go
  backend_->synchronize();  // (CUDA: the freed memory goes back to the device before the next big allocation)
  grads_ = backend_->zeros({layout_.total});
  for (size_t i = 0; i < params.size(); ++i) params[i].grad = grads_.view(layout_.offsets[i], params[i].value.shape());
}

void DistributedOptimizer::require_ready(const char* what) const {
  if (!grads_.defined())
    fail("distributed optimizer: ", what, " before shard_master_weights() (bf16 parameters)");
}

const ops::Tensor& DistributedOptimizer::state(int which) const {
  if (which == 0) return m_;
  if (which == 1) return v_;
  if (which == 2 && master_.defined()) return master_;
  fail("distributed optimizer: no state ", which, which == 2 ? " (the master values exist with bf16 parameters only)" : "");
}

void DistributedOptimizer::grads_ready(size_t first, size_t count) {
  if (first + count < ready_from_) fail("distributed optimizer: gradients completed out of order (parameters ", first, "..",
                                        first + count, " before ", ready_from_, ")");
  ready_from_ = std::min(ready_from_, first);
  // Queue every bucket (from the last) whose parameters are all complete; every rank sees the same
  // sequence of calls, so the collectives are issued in the same order everywhere.
  const size_t n = layout_.buckets.size();
  while (buckets_started_ < n && layout_.buckets[n - 1 - buckets_started_].first_param >= ready_from_) {
    const FlatLayout::Bucket& b = layout_.buckets[n - 1 - buckets_started_];
    ops::Tensor out = own_grads(b);  // in place: this rank's slice of the bucket
    comm_->reduce_scatter_sum_async(grads_.view(b.start, {b.size}), out);
    ++buckets_started_;
  }
}

template <typename F>
void DistributedOptimizer::for_each_owned(F&& f) const {
  for_each_owned_by(comm_->rank(), std::forward<F>(f));
}

template <typename F>
void DistributedOptimizer::for_each_owned_by(int64_t r, F&& f) const {
  for (const FlatLayout::Bucket& b : layout_.buckets) {
    const int64_t begin = b.start + r * b.shard, end = begin + b.shard;
    for (size_t i = b.first_param; i < b.end_param; ++i) {
      const int64_t lo = std::max(begin, layout_.offsets[i]);
      const int64_t hi = std::min(end, layout_.offsets[i] + layout_.numels[i]);
      if (lo < hi) f(i, lo, hi, b.local + (lo - begin));
    }
  }
}

ops::Tensor DistributedOptimizer::own_grads(const FlatLayout::Bucket& b) const {
  return grads_.view(b.start + comm_->rank() * b.shard, {b.shard});
}

double DistributedOptimizer::reduce_gradients(float scale) {
  require_ready("reduce_gradients");
  ready_from_ = 0;
  grads_ready(0, 0);  // the buckets the hook did not start (all of them without overlap)
  comm_->wait_async();
  ready_from_ = params_->size();
  buckets_started_ = 0;
  std::vector<ops::Tensor> counted;
  for (const FlatLayout::Bucket& b : layout_.buckets) {
    ops::Tensor own = own_grads(b);
    if (scale != 1.0f) backend_->scale(own, scale);
    if (norm_counted_.empty()) counted.push_back(own);
  }
  if (!norm_counted_.empty()) {
    for_each_owned([&](size_t i, int64_t lo, int64_t hi, int64_t) {
      if (norm_counted_[i]) counted.push_back(grads_.view(lo, {hi - lo}));
    });
  }
  double sq[1] = {backend_->sum_squares(counted)};
  comm_->all_reduce_sum(sq);
  if (tp_) tp_->all_reduce_sum(sq);
  return std::sqrt(sq[0]);
}

void DistributedOptimizer::set_tensor_parallel_norm(dist::Communicator* tp, std::vector<char> counted) {
  if (counted.size() != params_->size())
    fail("distributed optimizer: ", counted.size(), " norm flags for ", params_->size(), " parameters");
  tp_ = tp;
  norm_counted_ = std::move(counted);
}

void DistributedOptimizer::step(double lr, float grad_scale) {
  require_ready("step");
  wait_all_params();  // the last step's gathers, in case no forward waited for them
  ++steps_;
  ops::AdamWStep s = model::adamw_step_settings(config_, lr, steps_, grad_scale);
  const int64_t r = comm_->rank();
  gather_ticket_.assign(layout_.buckets.size(), -1);
  size_t bucket = 0;
  // Each bucket's all-gather follows its own update (in flat order: the embedding, which the next
  // forward reads first, starts first) and, when overlapping, runs beside the later updates.
  auto gather = [&](size_t b) {
    const FlatLayout::Bucket& k = layout_.buckets[b];
    ops::Tensor all = values_.view(k.start, {k.size});
    ops::Tensor mine = values_.view(k.start + r * k.shard, {k.shard});
    if (bf16_params_) backend_->cast(mine, master_.view(k.local, {k.shard}));  // the updated master, rounded
    if (overlap_param_gather_) gather_ticket_[b] = comm_->all_gather_async(mine, all);
    else comm_->all_gather(mine, all);
  };
  for_each_owned([&](size_t i, int64_t lo, int64_t hi, int64_t local) {
    for (; i >= layout_.buckets[bucket].end_param; ++bucket) gather(bucket);
    s.weight_decay = (*params_)[i].decay ? config_.weight_decay : 0.0;
    ops::Tensor value = bf16_params_ ? master_.view(local, {hi - lo}) : values_.view(lo, {hi - lo});
    ops::Tensor grad = grads_.view(lo, {hi - lo});
    ops::Tensor m = m_.view(local, {hi - lo}), v = v_.view(local, {hi - lo});
    backend_->adamw(value, grad, m, v, s);
  });
  for (; bucket < layout_.buckets.size(); ++bucket) gather(bucket);
}

void DistributedOptimizer::wait_params(size_t first, size_t count) {
  for (size_t b = 0; b < gather_ticket_.size(); ++b) {
    const FlatLayout::Bucket& k = layout_.buckets[b];
    if (gather_ticket_[b] < 0 || k.end_param <= first || k.first_param >= first + count) continue;
    comm_->wait(gather_ticket_[b]);
    gather_ticket_[b] = -1;
  }
}

std::vector<float> DistributedOptimizer::gather_moment(int which) {
  // Piece by piece through the communicator's tensor all-gather (NCCL over NVLink on GPUs; the host
  // MPI gather of a 7B model's 16 GB shards took a minute), into a small staging tensor that rank 0
  // copies straight into its place in the flat buffer: each rank's piece of a bucket shard is
  // contiguous in flat order.
  const ops::Tensor& shard = state(which);
  const int64_t ranks = comm_->size();
  const bool root = comm_->rank() == 0;
  std::vector<float> flat;
  if (root) flat.resize(static_cast<size_t>(layout_.total));
  int64_t widest = 0;
  for (const FlatLayout::Bucket& b : layout_.buckets) widest = std::max(widest, b.shard);
  const int64_t piece = std::min(widest, std::max<int64_t>(1, kGatherStagingElems / ranks));
  if (piece == 0) return flat;
  ops::Tensor staging = backend_->empty({piece * ranks});
  for (const FlatLayout::Bucket& b : layout_.buckets) {
    for (int64_t off = 0; off < b.shard; off += piece) {
      const int64_t n = std::min(piece, b.shard - off);
      ops::Tensor out = staging.view(0, {n * ranks});
      comm_->all_gather(shard.view(b.local + off, {n}), out);
      if (!root) continue;
      for (int64_t r = 0; r < ranks; ++r)
        backend_->download(out.view(r * n, {n}), flat.data() + b.start + r * b.shard + off,
                           static_cast<size_t>(n) * sizeof(float));
    }
  }
  return flat;
}

std::span<const float> DistributedOptimizer::param_slice(std::span<const float> flat, size_t i) const {
  if (i >= layout_.offsets.size() || static_cast<int64_t>(flat.size()) != layout_.total)
    fail("distributed optimizer: no parameter ", i, " in a flat moment of ", flat.size(), " elements");
  return flat.subspan(static_cast<size_t>(layout_.offsets[i]), static_cast<size_t>(layout_.numels[i]));
}

void DistributedOptimizer::load_moment(size_t i, int which, std::span<const float> values) {
  if (i >= layout_.offsets.size() || static_cast<int64_t>(values.size()) != layout_.numels[i])
    fail("distributed optimizer: moment of parameter ", i, " has ", values.size(), " values");
  const int64_t r = comm_->rank();
  for (const FlatLayout::Bucket& b : layout_.buckets) {
    if (i < b.first_param || i >= b.end_param) continue;
    const int64_t begin = b.start + r * b.shard, end = begin + b.shard;
    const int64_t lo = std::max(begin, layout_.offsets[i]);
    const int64_t hi = std::min(end, layout_.offsets[i] + layout_.numels[i]);
    if (lo >= hi) return;
    ops::Tensor dst = (which == 0 ? m_ : v_).view(b.local + (lo - begin), {hi - lo});
    backend_->upload(dst, values.data() + (lo - layout_.offsets[i]), static_cast<size_t>(hi - lo) * sizeof(float));
  }
}

std::vector<DistributedOptimizer::OwnedPart> DistributedOptimizer::owned_parts(int rank) const {
  if (rank < 0 || rank >= comm_->size()) fail("distributed optimizer: no rank ", rank, " of ", comm_->size());
  std::vector<OwnedPart> parts;
  for_each_owned_by(rank, [&](size_t i, int64_t lo, int64_t hi, int64_t local) {
    parts.push_back({i, lo - layout_.offsets[i], hi - lo, local});
  });
  return parts;
}

std::vector<float> DistributedOptimizer::local_moment(int which) const {
  std::vector<float> out(static_cast<size_t>(layout_.shard));
  local_moment(which, out);
  return out;
}

void DistributedOptimizer::local_moment(int which, std::span<float> out) const {
  if (static_cast<int64_t>(out.size()) != layout_.shard)
    fail("distributed optimizer: room for ", out.size(), " moment values, the shard has ", layout_.shard);
  const ops::Tensor& shard = state(which);
  if (!out.empty()) backend_->download(shard, out.data(), out.size() * sizeof(float));
}

}  // namespace agpt::train
