// The layout of a data-parallel x tensor-parallel job, and the model's tensor-parallel group
// (model/tensor_parallel.h) carried by a dist::Communicator.
//
// Ranks are numbered as in Megatron-LM: the tensor-parallel rank varies fastest, so a group of K
// consecutive ranks (usually the GPUs of one host, joined by NVLink) splits each layer, and ranks
// with the same tensor-parallel rank form a data-parallel group.
#pragma once
#include <memory>

#include "dist/communicator.h"
#include "model/tensor_parallel.h"

namespace agpt::train {

class CommTensorParallel final : public model::TensorParallelGroup {
 public:
  explicit CommTensorParallel(dist::Communicator& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void all_reduce_sum(ops::Tensor& t) override { comm_.all_reduce_sum(t); }
  void all_gather(const ops::Tensor& in, ops::Tensor& out) override { comm_.all_gather(in, out); }

 private:
  dist::Communicator& comm_;
};

// The groups of one rank in a world of `world.size()` = DP x TP ranks.
struct ParallelGroups {
  int tp_size = 1, dp_size = 1;
  int tp_rank = 0, dp_rank = 0;
  std::unique_ptr<dist::Communicator> tp;  // the ranks splitting this rank's layers
  std::unique_ptr<dist::Communicator> dp;  // the ranks holding the same slices (data parallel)
};

// Splits `world` (a collective on it). Fails with advice when tp does not divide the world size.
ParallelGroups make_parallel_groups(dist::Communicator& world, int tp);

}  // namespace agpt::train
