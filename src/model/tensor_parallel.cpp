// Tensor parallelism inside the one model: how tensors are cut among the group's ranks, gathered
// back for checkpoints, and how the vocabulary-parallel cross-entropy combines its shards.
#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "model/llama.h"

namespace agpt::model {

using ops::Tensor;

Shard block_shard(int dim, int64_t total, int size, int rank, const char* what) {
  if (size < 1 || rank < 0 || rank >= size) fail("block_shard: rank ", rank, " of ", size);
  const int64_t block = (total + size - 1) / size;
  const int64_t begin = std::min<int64_t>(total, block * rank);
  const int64_t count = std::min<int64_t>(total - begin, block);
  if (count <= 0)
    fail("tensor parallelism over ", size, " ranks leaves rank ", rank, " no ", what, " (", total,
         " in all, blocks of ", block, "); use fewer tensor-parallel ranks");
  return Shard{dim, begin, count, total};
}

namespace {
// Rows and columns of a full tensor seen as a matrix (1-D tensors: one row).
int64_t rows_of(const ops::Shape& s) { return s.size() >= 2 ? s[0] : 1; }
int64_t cols_of(const ops::Shape& s) { return s.empty() ? 1 : s.back(); }
}  // namespace

std::vector<float> Llama::slice_local(const Parameter& p, std::span<const float> full) const {
  if (static_cast<int64_t>(full.size()) != ops::shape_numel(p.full_shape))
    fail("slice_local: ", full.size(), " values for '", p.name, "' of shape ", ops::shape_string(p.full_shape));
  if (!p.shard.split()) return {full.begin(), full.end()};
  const int64_t rows = rows_of(p.full_shape), cols = cols_of(p.full_shape);
  const Shard& s = p.shard;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(p.value.numel()));
  if (s.dim == 0) {
    out.assign(full.begin() + s.begin * cols, full.begin() + (s.begin + s.count) * cols);
  } else {
    for (int64_t r = 0; r < rows; ++r)
      out.insert(out.end(), full.begin() + r * cols + s.begin, full.begin() + r * cols + s.begin + s.count);
  }
  return out;
}

std::vector<float> Llama::gather_full(const Parameter& p, const Tensor& local) const {
  if (local.shape() != p.value.shape())
    fail("gather_full: ", local.describe(), " is not shaped like '", p.name, "' ", p.value.describe());
  if (!p.shard.split() || !tp_) return backend_->to_host_f32(local);
  ops::Backend& be = *backend_;
  const int K = tp_->size();
  const int64_t rows = rows_of(p.full_shape), cols = cols_of(p.full_shape);
  const Shard& s = p.shard;
  // Every rank sends a block of the largest slice (the last vocabulary block may be shorter).
  const int64_t block = (s.full + K - 1) / K;
  const int64_t per_rank = s.dim == 0 ? block * cols : rows * block;
  Tensor send = be.widened(local);  // bf16 parameters (train.param_dtype) travel as fp32 here
  if (s.count != block) {
    send = be.zeros({per_rank});
    Tensor head = send.view(0, local.shape());
    be.cast(head, local);
  }
  Tensor all = be.empty({per_rank * K});
  tp_->all_gather(send.reshape({per_rank}), all);
  const std::vector<float> got = be.to_host_f32(all);
  std::vector<float> full(static_cast<size_t>(rows * cols));
  for (int r = 0; r < K; ++r) {
    const int64_t begin = std::min<int64_t>(s.full, block * r), count = std::min<int64_t>(s.full - begin, block);
    const float* src = got.data() + r * per_rank;
    if (s.dim == 0) {
      std::copy(src, src + count * cols, full.begin() + begin * cols);
    } else {
      for (int64_t row = 0; row < rows; ++row)
        std::copy(src + row * count, src + (row + 1) * count, full.begin() + row * cols + begin);
    }
  }
  return full;
}

// After the vocabulary-parallel cross-entropy each rank holds, per row, the logsumexp of its
// vocabulary block and, where the target is its own, lse - target logit. The whole vocabulary's
// logsumexp and the loss follow from every rank's pair; backward then needs that logsumexp.
void Llama::combine_vocab_shards(std::span<const int32_t> targets) {
  ops::Backend& be = *backend_;
  Activations& A = acts_;
  const int K = tp_->size();
  const int64_t N = A.B * A.T, block = (config_.vocab_size + K - 1) / K;
  Tensor lse_all = be.empty({K * N}), loss_all = be.empty({K * N});
  tp_->all_gather(A.lse_ce, lse_all);
  tp_->all_gather(A.losses, loss_all);
  const std::vector<float> lse = be.to_host_f32(lse_all), loss = be.to_host_f32(loss_all);
  std::vector<float> total_lse(static_cast<size_t>(N)), total_loss(static_cast<size_t>(N), 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    double m = -INFINITY;
    for (int r = 0; r < K; ++r) m = std::max(m, static_cast<double>(lse[r * N + n]));
    double sum = 0;
    for (int r = 0; r < K; ++r) sum += std::exp(static_cast<double>(lse[r * N + n]) - m);
    const double l = m + std::log(sum);
    total_lse[n] = static_cast<float>(l);
    if (targets[n] < 0) continue;
    const int64_t owner = targets[n] / block;
    const double target_logit = static_cast<double>(lse[owner * N + n]) - static_cast<double>(loss[owner * N + n]);
    total_loss[n] = static_cast<float>(l - target_logit);
  }
  be.upload(A.lse_ce, total_lse.data(), total_lse.size() * sizeof(float));
  be.upload(A.losses, total_loss.data(), total_loss.size() * sizeof(float));
}

}  // namespace agpt::model
