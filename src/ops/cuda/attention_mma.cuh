// Tensor-core causal grouped-query attention for bf16 activations (flash-attention-2 style,
// mma.sync m16n8k16 bf16 with fp32 accumulation). Same layouts and semantics as
// attention_tiled.cuh, but q, k, v, out and dout are __nv_bfloat16 (passed as void*):
//   q, out, dout [B, Tq, H, hd]; k, v [B, Tk, KV, hd]; lse [B, H, Tq] fp32 (natural log of the sum
//   of exp of the scores scaled by 1/sqrt(hd)); query t sits at position Tk - Tq + t and attends
//   keys 0..Tk-Tq+t.
// Backward (Tq == Tk == T) ADDS into the fp32 buffers dq, dk, dv; delta is scratch of B*H*T floats.
//
// Numerics: products of bf16 operands summed in fp32; the probabilities P and the score gradients
// dS are rounded to bf16 before they enter the P·V, Pᵀ·dO, dSᵀ·Q and dS·K products (as
// FlashAttention does). Softmax statistics, lse, delta and all accumulators are fp32.
//
// Each launcher returns false, having done nothing, when it does not handle the call: hd not 64
// or 128, H % KV != 0, Tk < Tq, a tensor pointer not 16-byte aligned, a grid dimension out of
// range, or a device whose opt-in shared memory per block is too small (or older than sm_80).
// The caller then uses another path. Deterministic: no atomics, fixed summation order.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace agpt::ops::cuda {

bool attention_forward_mma(void* out, float* lse, const void* q, const void* k, const void* v, int64_t B,
                           int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd, cudaStream_t s);

bool attention_backward_mma(float* dq, float* dk, float* dv, float* delta, const void* dout, const void* q,
                            const void* k, const void* v, const void* out, const float* lse, int64_t B,
                            int64_t T, int64_t H, int64_t KV, int64_t hd, cudaStream_t s);

}  // namespace agpt::ops::cuda
