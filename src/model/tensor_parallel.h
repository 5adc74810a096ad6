// Tensor parallelism (Megatron-LM's column/row-parallel layers), as the model sees it: a group of
// ranks that split every layer, and how each tensor is cut among them.
//
// With a group of size K, each rank holds:
//   q/k/v_proj, gate/up_proj   rows for its H/K query heads, KV/K key/value heads, F/K MLP columns
//                              (column-parallel: outputs split, inputs whole);
//   o_proj, down_proj          the matching input columns (row-parallel: partial outputs summed);
//   embed_tokens, lm_head      a block of ceil(V/K) vocabulary rows (vocabulary-parallel);
//   norm weights               whole (replicated; their gradients come out equal on every rank).
// The forward sums the row-parallel outputs and the embedding over the group; the backward sums the
// input gradient of the column-parallel layers. The model stays one definition (model/llama.cpp).
//
// The model defines this interface; dist:: implements it over a communicator (train/), so the
// model layer does not depend on how bytes travel.
#pragma once
#include <cstdint>

#include "ops/tensor.h"

namespace agpt::model {

class TensorParallelGroup {
 public:
  virtual ~TensorParallelGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // t = Σ over the group of t; activations (fp32 or the backend's bf16).
  virtual void all_reduce_sum(ops::Tensor& t) = 0;
  // out [size*n]: rank r's fp32 in [n] lands at out[r*n, (r+1)*n).
  virtual void all_gather(const ops::Tensor& in, ops::Tensor& out) = 0;
};

// How a parameter's local value is cut from the full (checkpoint) tensor: along `dim` (0: rows,
// 1: columns), elements [begin, begin + count) of `full`; dim -1: the whole tensor on every rank.
struct Shard {
  int dim = -1;
  int64_t begin = 0;
  int64_t count = 0;
  int64_t full = 0;
  bool split() const { return dim >= 0; }
};

// Rank `rank`'s block of `total` items split over `size` ranks in blocks of ceil(total/size) (the
// last block may be shorter). Fails, naming `what`, when a rank would get nothing.
Shard block_shard(int dim, int64_t total, int size, int rank, const char* what);

}  // namespace agpt::model
