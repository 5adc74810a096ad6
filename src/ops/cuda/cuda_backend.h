// The CUDA backend: the op interface of ops/backend.h on one NVIDIA GPU. Tensors live in device
// memory (stream-ordered allocations from CUDA's pool); every op is queued on one stream, and
// download() waits for it. This first version computes in fp32 like the CPU reference (cuBLAS
// SGEMM without TF32, warp-per-row attention), so it can be checked against it op by op.
#pragma once
#include <memory>
#include <string>

#include "ops/backend.h"

namespace agpt::ops {

// True when this binary was built with the CUDA backend (nvcc found at configure time).
bool cuda_compiled();
// Number of visible CUDA devices; 0 when none (or no driver, or not compiled in).
int cuda_device_count();
// How fp32 matrix products run: "fp32" (IEEE fp32 products, the reference), "tf32" (tensor cores
// with 10-bit-mantissa inputs; PyTorch's allow_tf32) or "bf16" (operands rounded to bf16, fp32
// accumulation and output; tensors and every other op stay fp32).
struct CudaOptions {
  std::string matmul = "fp32";
  // Activations and their gradients: "fp32", or "bf16" (needs matmul "bf16"): half the memory and
  // traffic; every kernel still computes in fp32.
  std::string activations = "fp32";
  // Attention for bf16 activations: "auto" (cuDNN's fused flash attention in its deterministic
  // form where cuDNN is built in and takes the shape, for sequence lengths that are multiples of
  // 64 — training's; others keep agpt's kernels, since cuDNN builds a plan per shape), "cudnn" (the
  // same), "cudnn-atomic" (cuDNN's faster backward that sums dQ with atomics, as FlashAttention-2
  // and PyTorch's SDPA do: results are not bit-reproducible), or "agpt" (agpt's own tensor-core
  // kernels only). $AGPT_CUDA_ATTENTION overrides it.
  std::string attention = "auto";
  // Matrix products for bf16 activations: "auto" (on Hopper, agpt's own kernels, src/ops/cuda/sm90,
  // with the element-wise work in their epilogue: q, k and v as one product with RoPE; the MLP's
  // gate/up products with SwiGLU; the down product's input gradient with SwiGLU's backward; the
  // input gradients of layers sharing an input as one product; other written input gradients of up
  // to 16,384 outputs (the lm_head's stay cuBLAS). Every other product, and other GPUs, use cuBLAS)
  // or "cublas" (cuBLAS only). $AGPT_CUDA_PRODUCTS overrides it.
  std::string products = "auto";
};
// Fails with a clear message when CUDA is not compiled in or the device does not exist.
std::unique_ptr<Backend> make_cuda_backend(int device_index = 0, const CudaOptions& options = {});

}  // namespace agpt::ops
