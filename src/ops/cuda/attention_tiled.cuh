// Tiled fp32 causal grouped-query attention (flash-attention-2 style): the fast path in front of
// the simple one-warp-per-row kernels of attention.cu. Same layouts and semantics as
// attention_forward / attention_backward in kernels.cuh:
//   q, out, dout [B, Tq, H, hd]; k, v [B, Tk, KV, hd]; lse [B, H, Tq] (natural log, scores scaled
//   by 1/sqrt(hd)); query t sits at position Tk - Tq + t and attends keys 0..Tk-Tq+t.
// Backward (Tq == Tk == T) ADDS into dq, dk, dv; delta is scratch of B*H*T floats.
//
// Each launcher returns false, having done nothing, when it does not handle the call: hd not 64
// or 128, H % KV != 0, Tk < Tq, a tensor pointer not 16-byte aligned, a grid dimension out of
// range, or a device whose opt-in shared memory per block is too small. The caller then uses the
// simple kernels. Deterministic: no atomics, fixed summation order.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace agpt::ops::cuda {

bool attention_forward_tiled(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B,
                             int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd, cudaStream_t s);

bool attention_backward_tiled(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* q,
                              const float* k, const float* v, const float* out, const float* lse, int64_t B,
                              int64_t T, int64_t H, int64_t KV, int64_t hd, cudaStream_t s);

}  // namespace agpt::ops::cuda
