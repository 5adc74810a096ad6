// How much device memory a rank's model state takes (weights, gradients, the optimizer's master
// values and moments, the products' bf16 weight copies) under the training layout, before any
// activation: logged at the start of a run, and a run whose state alone exceeds the device stops
// there with the options that would fit, instead of failing later in an allocation.
#pragma once
#include <cstdint>
#include <string>

namespace agpt::train {

struct StateLayout {
  int64_t parameters = 0;          // this rank's (its tensor-parallel slices)
  int data_parallel = 1;           // ranks the distributed optimizer shards over (1: none)
  bool distributed_optimizer = false;
  bool bf16_params = false;        // train.param_dtype = "bf16" (with the distributed optimizer)
  bool bf16_products = false;      // bf16 matrix products: bf16 copies of fp32 weights kept per step
  double offload_fraction = 0;     // train.optimizer_cpu_offload: the share of the moments in host memory
};

struct StateBytes {
  int64_t weights = 0, gradients = 0, master = 0, moments = 0, weight_copies = 0;
  int64_t total() const { return weights + gradients + master + moments + weight_copies; }
};

StateBytes model_state_bytes(const StateLayout& layout);

// "26.8 GiB: weights 13.4 (bf16), gradients 26.8, master weights 8.0 and moments 16.1 (1/4 each)"
std::string describe(const StateLayout& layout, const StateBytes& bytes);

// "" when the state fits device_bytes (0: unknown), else why not and what would fit.
std::string does_not_fit(const StateLayout& layout, int64_t device_bytes);

}  // namespace agpt::train
