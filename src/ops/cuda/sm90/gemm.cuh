// agpt's own bf16 matrix products for Hopper (sm_90a: TMA loads, wgmma, one loading warpgroup and
// two multiplying ones, persistent thread blocks), written so that the element-wise work around a
// product can run in its epilogue instead of in a separate pass over memory:
//   - the MLP's gate and up products with SwiGLU: h = silu(x·Wgᵀ)·(x·Wuᵀ) written beside g and u;
//   - the down product's input gradient with SwiGLU's backward: dg, du from dY·Wd, g and u, the
//     gradient dh never stored.
// cuBLAS has no such epilogues. All matrices are row-major bf16 with fp32 accumulation; shapes must
// be multiples of the tiles (shape_ok), which every training shape of the Llama presets is.
#pragma once
#include <cuda_runtime.h>

namespace agpt::ops::cuda::sm90 {

// True when the current device is a Hopper GPU (compute capability 9.0) these kernels run on.
bool device_supported();

// M % 128 == 0, N % 256 == 0, K % 64 == 0 (swiglu: F % 128 == 0).
bool shape_ok(long M, long N, long K);

// C[M,N] = A[M,K]·B[N,K]ᵀ (B K-major, as a weight stored [out, in]).
void gemm_nt(void* C, const void* A, const void* B, int M, int N, int K, cudaStream_t stream);
// C[M,N] = A[M,K]·B[K,N] (B N-major, as a weight used for an input gradient).
void gemm_nn(void* C, const void* A, const void* B, int M, int N, int K, cudaStream_t stream);

// g = x·Wgᵀ, u = x·Wuᵀ, h = silu(g)·u, all [M, F]; g and u are rounded to bf16 before h, as the
// separate ops do. x [M, K], Wg and Wu [F, K].
void swiglu_forward(void* h, void* g, void* u, const void* x, const void* Wg, const void* Wu, int M, int F, int K,
                    cudaStream_t stream);
// dh = dY·Wd (dY [M, K], Wd [K, F]); dg = dh·u·silu'(g), du = dh·silu(g), [M, F]; dh rounded to
// bf16 first, as the separate ops store it.
void swiglu_backward(void* dg, void* du, const void* dY, const void* Wd, const void* g, const void* u, int M, int F,
                     int K, cudaStream_t stream);

}  // namespace agpt::ops::cuda::sm90
