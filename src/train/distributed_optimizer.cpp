#include "train/distributed_optimizer.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace agpt::train {

FlatLayout FlatLayout::plan(const std::vector<model::Parameter>& params, int world, int64_t align) {
  if (world < 1) fail("distributed optimizer: world size ", world, " < 1");
  FlatLayout l;
  int64_t at = 0;
  for (const model::Parameter& p : params) {
    at = (at + align - 1) / align * align;
    l.offsets.push_back(at);
    l.numels.push_back(p.value.numel());
    at += p.value.numel();
  }
  const int64_t unit = align * world;
  l.total = std::max<int64_t>(unit, (at + unit - 1) / unit * unit);
  l.shard = l.total / world;
  return l;
}

DistributedOptimizer::DistributedOptimizer(dist::Communicator& comm, ops::Backend& backend,
                                           std::vector<model::Parameter>& params, const model::AdamWConfig& config)
    : comm_(&comm), backend_(&backend), params_(&params), config_(config) {
  // Reuses model::AdamW's validation of the settings.
  (void)model::AdamW(backend, {}, config);
  layout_ = FlatLayout::plan(params, comm.size());
  values_ = backend.zeros({layout_.total});
  grads_ = backend.zeros({layout_.total});
  grad_shard_ = backend.zeros({layout_.shard});
  m_ = backend.zeros({layout_.shard});
  v_ = backend.zeros({layout_.shard});
  for (size_t i = 0; i < params.size(); ++i) {
    model::Parameter& p = params[i];
    if (p.value.dtype() != ops::DType::kF32) fail("distributed optimizer: parameter ", p.name, " is not fp32");
    ops::Tensor value = values_.view(layout_.offsets[i], p.value.shape());
    backend.copy(value, p.value);
    p.value = value;
    p.grad = grads_.view(layout_.offsets[i], p.value.shape());
  }
}

double DistributedOptimizer::reduce_gradients(float scale) {
  comm_->reduce_scatter_sum(grads_, grad_shard_);
  if (scale != 1.0f) backend_->scale(grad_shard_, scale);
  const ops::Tensor shard[] = {grad_shard_};
  double sq[1] = {backend_->sum_squares(shard)};
  comm_->all_reduce_sum(sq);
  return std::sqrt(sq[0]);
}

void DistributedOptimizer::step(double lr, float grad_scale) {
  ++steps_;
  ops::AdamWStep s;
  s.lr = lr < 0 ? config_.lr : lr;
  s.beta1 = config_.beta1;
  s.beta2 = config_.beta2;
  s.eps = config_.eps;
  s.step = steps_;
  s.grad_scale = grad_scale;
  const int64_t begin = layout_.shard * comm_->rank(), end = begin + layout_.shard;
  for (size_t i = 0; i < params_->size(); ++i) {
    // The part of parameter i inside [begin, end).
    const int64_t lo = std::max(begin, layout_.offsets[i]);
    const int64_t hi = std::min(end, layout_.offsets[i] + layout_.numels[i]);
    if (lo >= hi) continue;
    s.weight_decay = (*params_)[i].decay ? config_.weight_decay : 0.0;
    ops::Tensor value = values_.view(lo, {hi - lo});
    ops::Tensor grad = grad_shard_.view(lo - begin, {hi - lo});
    ops::Tensor m = m_.view(lo - begin, {hi - lo}), v = v_.view(lo - begin, {hi - lo});
    backend_->adamw(value, grad, m, v, s);
  }
  ops::Tensor mine = values_.view(begin, {layout_.shard});
  comm_->all_gather(mine, values_);
}

std::vector<float> DistributedOptimizer::gather_moment(int which) {
  const std::vector<float> local = backend_->to_host_f32(which == 0 ? m_ : v_);
  return comm_->gather_to_root(local);
}

std::span<const float> DistributedOptimizer::param_slice(std::span<const float> flat, size_t i) const {
  if (i >= layout_.offsets.size() || static_cast<int64_t>(flat.size()) != layout_.total)
    fail("distributed optimizer: no parameter ", i, " in a flat moment of ", flat.size(), " elements");
  return flat.subspan(static_cast<size_t>(layout_.offsets[i]), static_cast<size_t>(layout_.numels[i]));
}

void DistributedOptimizer::load_moment(size_t i, int which, std::span<const float> values) {
  if (i >= layout_.offsets.size() || static_cast<int64_t>(values.size()) != layout_.numels[i])
    fail("distributed optimizer: moment of parameter ", i, " has ", values.size(), " values");
  const int64_t begin = layout_.shard * comm_->rank(), end = begin + layout_.shard;
  const int64_t lo = std::max(begin, layout_.offsets[i]);
  const int64_t hi = std::min(end, layout_.offsets[i] + layout_.numels[i]);
  if (lo >= hi) return;
  ops::Tensor dst = (which == 0 ? m_ : v_).view(lo - begin, {hi - lo});
  backend_->upload(dst, values.data() + (lo - layout_.offsets[i]), static_cast<size_t>(hi - lo) * sizeof(float));
}

}  // namespace agpt::train
