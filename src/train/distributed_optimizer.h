// The distributed optimizer (ZeRO stage 1; Megatron's --use-distributed-optimizer): data-parallel
// ranks hold the whole model, but each keeps the fp32 AdamW state of only its 1/world of the
// parameters. After the backward passes of a step:
//   1. the gradients, packed in one flat buffer, are reduce-scattered: rank r receives the sum over
//      ranks of its shard [r*S, (r+1)*S) (S = padded parameter count / world);
//   2. the global gradient norm comes from each rank's shard (one all-reduce of a double);
//   3. each rank runs AdamW on its shard (the same arithmetic as model::AdamW, parameter by
//      parameter, so weight decay follows each parameter);
//   4. the updated parameters, packed in one flat buffer too, are all-gathered.
// Every parameter's value and grad become views into the two flat buffers (Tensor::view); each
// parameter starts at a multiple of 64 elements (aligned for GEMMs and NCCL).
//
// bf16 parameters (train.param_dtype = "bf16"; Megatron's --bf16 with its distributed optimizer):
// the model's parameters become bf16 (the values every product reads anyway) and each rank keeps
// the fp32 master values of its shard beside its moments. Step 3 updates the master shard and
// rounds it into the bf16 values, and step 4 gathers bf16 (half the bytes). Per parameter:
// 2 (bf16 values) + 4 (fp32 gradients) + 12/N (master and moments) bytes, against 4 + 4 + 8/N
// (and the products' bf16 copies of the fp32 weights).
//
// Checkpoints stay independent of the layout: each rank writes the parts of parameters it owns
// (owned_parts, local_moment; or gather_moment() collects the full moments on rank 0), and
// load_moment() takes a full moment and keeps this rank's shard, so a run saved with N ranks
// resumes with any other number.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "dist/communicator.h"
#include "model/adamw.h"
#include "model/llama.h"
#include "ops/backend.h"

namespace agpt::train {

// Where each parameter sits in the flat buffers, and which slices are whose. The buffers are cut
// into buckets of whole parameters (Megatron's gradient buckets); each bucket is sharded over the
// ranks on its own, so its reduce-scatter can start as soon as its gradients are complete.
struct FlatLayout {
  struct Bucket {
    size_t first_param = 0, end_param = 0;  // parameters [first_param, end_param)
    int64_t start = 0;   // flat offset
    int64_t size = 0;    // elements, padded to a multiple of world x alignment
    int64_t shard = 0;   // size / world: rank r owns [start + r*shard, start + (r+1)*shard)
    int64_t local = 0;   // where this bucket's shard starts in a rank's shard buffers
  };
  std::vector<int64_t> offsets;  // per parameter, elements from the start of the flat buffer
  std::vector<int64_t> numels;
  std::vector<Bucket> buckets;   // in flat order
  int64_t total = 0;             // flat elements
  int64_t shard = 0;             // elements a rank owns (the sum of its bucket shards)
  // bucket_elems <= 0: one bucket. Otherwise buckets close, from the last parameter backwards (the
  // order backward completes them), once they hold at least bucket_elems elements.
  static FlatLayout plan(const std::vector<model::Parameter>& params, int world, int64_t bucket_elems = 0,
                         int64_t align = 64);
};

class DistributedOptimizer {
 public:
  // bucket_elems: see FlatLayout::plan (0: one bucket, reduced after the whole backward pass).
  // bf16_params: see above; the parameters stay fp32 (so that a checkpoint or an initialisation
  // can set them exactly) until shard_master_weights(), which must come before the first step.
  DistributedOptimizer(dist::Communicator& comm, ops::Backend& backend, std::vector<model::Parameter>& params,
                       const model::AdamWConfig& config, int64_t bucket_elems = 0, bool bf16_params = false);
  // bf16 parameters: keeps this rank's shard of the fp32 values as the master copy, makes every
  // parameter a bf16 view of the rounded values and frees the fp32 values (then allocates the
  // gradients, so that both fp32 copies never coexist with the model's). Once.
  void shard_master_weights();
  bool bf16_params() const { return bf16_params_; }

  // Overlap (Megatron's --overlap-grad-reduce): give this to Llama::set_grads_ready_hook for the
  // last micro-batch of a step; each bucket's reduce-scatter is queued once backward has completed
  // all its parameters, and runs beside the backward of the earlier layers.
  void grads_ready(size_t first, size_t count);
  // Steps 1 and 2 above: reduce-scatter the gradient sums (the buckets not started by
  // grads_ready), multiply them by `scale` (1 / the number of micro-batches over all ranks, for a
  // mean), return the global norm of the result.
  double reduce_gradients(float scale);
  // Steps 3 and 4: AdamW on this rank's shard with grad_scale (clipping), then all-gather, bucket
  // by bucket.
  void step(double lr, float grad_scale);

  // Overlap of the parameter all-gather (Megatron's --overlap-param-gather): step() only queues
  // each bucket's all-gather; give wait_params to Llama::set_params_needed_hook so the next
  // forward waits for each bucket just before it reads it. Nothing may read the parameters
  // before: wait_all_params() first (checkpoints).
  void set_overlap_param_gather(bool on) { overlap_param_gather_ = on; }
  void wait_params(size_t first, size_t count);
  void wait_all_params() { wait_params(0, params_->size()); }

  // Tensor parallelism: the parameters are this rank's slices, so the global norm also sums over
  // the tensor-parallel group `tp`; counted[i] says whether parameter i's squares count here (the
  // split ones on every rank, the replicated ones on one rank of the group only).
  void set_tensor_parallel_norm(dist::Communicator* tp, std::vector<char> counted);

  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  const FlatLayout& layout() const { return layout_; }
  const model::AdamWConfig& config() const { return config_; }

  // which: 0 the first moment, 1 the second, 2 the fp32 master values (bf16 parameters only).
  // Collective: the full state `which`, flat, on rank 0 ({} elsewhere).
  // Moves pieces of at most kGatherStagingElems elements in all through a staging tensor.
  std::vector<float> gather_moment(int which);
  static constexpr int64_t kGatherStagingElems = int64_t{1} << 26;  // 256 MiB of device memory
  // Parameter i's slice of a flat moment from gather_moment.
  std::span<const float> param_slice(std::span<const float> flat, size_t i) const;
  // Keeps this rank's part of parameter i's full moment `values` (every rank calls it).
  void load_moment(size_t i, int which, std::span<const float> values);

  // A part of parameter `param` that a rank owns: elements [offset, offset + count) of the
  // flattened parameter, at `local` in that rank's shard.
  struct OwnedPart {
    size_t param;
    int64_t offset, count, local;
  };
  // The parts rank `rank` owns, in flat order (checkpoints written shard by shard).
  std::vector<OwnedPart> owned_parts(int rank) const;
  // This rank's shard of `which` (0, 1 or 2, as for gather_moment) in host memory: layout().shard floats.
  std::vector<float> local_moment(int which) const;
  void local_moment(int which, std::span<float> out) const;

 private:
  dist::Communicator* comm_;
  ops::Backend* backend_;
  std::vector<model::Parameter>* params_;
  model::AdamWConfig config_;
  FlatLayout layout_;
  // [total]: every parameter's value and grad are views into these. Each bucket's gradient is
  // reduce-scattered in place: this rank's slice of it (own_grads) holds the summed gradient.
  // With bf16 parameters values_ is bf16 (after shard_master_weights) and master_ [shard] holds
  // this rank's fp32 values.
  ops::Tensor values_, grads_;
  ops::Tensor m_, v_;              // [shard]: this rank's AdamW moments
  ops::Tensor master_;
  bool bf16_params_ = false;
  const ops::Tensor& state(int which) const;
  void require_ready(const char* what) const;
  int64_t steps_ = 0;
  size_t ready_from_ = 0;      // parameters [ready_from_, end) have their whole gradient
  size_t buckets_started_ = 0; // buckets from the end already queued for reduction this step
  bool overlap_param_gather_ = false;
  std::vector<int> gather_ticket_;  // per bucket: its queued all-gather (-1: none pending)
  dist::Communicator* tp_ = nullptr;
  std::vector<char> norm_counted_;  // empty: every parameter
  // Calls f(i, flat_lo, flat_hi, local) for each part of parameter i that this rank's shard owns:
  // flat range [flat_lo, flat_hi) of the flat buffers, starting at `local` in the shard buffers.
  template <typename F>
  void for_each_owned(F&& f) const;
  template <typename F>
  void for_each_owned_by(int64_t rank, F&& f) const;
  ops::Tensor own_grads(const FlatLayout::Bucket& b) const;
};

}  // namespace agpt::train
