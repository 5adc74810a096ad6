// Picks a compute backend by name, as users write it on the command line or in a config:
// "cpu", "cuda" (device 0) or "cuda:N".
#pragma once
#include <memory>
#include <string_view>

#include "ops/backend.h"

namespace agpt::ops {

// threads: CPU threads for the CPU backend (<= 0: all cores); ignored by CUDA.
// precision: "fp32" everywhere; CUDA only: "tf32" (fp32 tensors, TF32 matrix products) or "bf16"
// (bf16 activations and matrix products, fp32 weights/gradients/optimizer; see CudaOptions).
// deterministic: bit-reproducible kernels only (the default); false lets CUDA use faster kernels
// whose sums' order varies from run to run (cuDNN's attention backward summing dQ with atomics, as
// PyTorch's SDPA does). The CPU backend is deterministic either way.
std::unique_ptr<Backend> make_backend(std::string_view device, int threads = 0, std::string_view precision = "fp32",
                                      bool deterministic = true);

}  // namespace agpt::ops
