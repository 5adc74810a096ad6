// agpt's own bf16 matrix products for Hopper (sm_90a: TMA loads, wgmma, one loading warpgroup and
// two multiplying ones, persistent thread blocks), written so that the element-wise work around a
// product can run in its epilogue instead of in a separate pass over memory:
//   - the MLP's gate and up products with SwiGLU: h = silu(x·Wgᵀ)·(x·Wuᵀ) written beside g and u;
//   - the down product's input gradient with SwiGLU's backward: dg, du from dY·Wd, g and u, the
//     gradient dh never stored;
//   - q, k, v as one product with RoPE; input gradients of layers sharing an input (one product).
// cuBLAS has no such epilogues. All matrices are row-major bf16 with fp32 accumulation; shapes must
// be multiples of the tiles (shape_ok), which every training shape of the Llama presets is.
#pragma once
#include <cuda_runtime.h>

#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda::sm90 {

// True when the current device is a Hopper GPU (compute capability 9.0) these kernels run on.
bool device_supported();

// M % 128 == 0, N % 256 == 0, K % 64 == 0 (swiglu: F % 128 == 0).
bool shape_ok(long M, long N, long K);

// C[M,N] = A[M,K]·B[N,K]ᵀ (B K-major, as a weight stored [out, in]).
void gemm_nt(void* C, const void* A, const void* B, int M, int N, int K, cudaStream_t stream);
// C[M,N] = A[M,K]·B[K,N] (B N-major, as a weight used for an input gradient).
void gemm_nn(void* C, const void* A, const void* B, int M, int N, int K, cudaStream_t stream);
// C[M,N] = Σ A_i[M,k_i]·B_i[k_i,N] over 1 to 3 terms, in one product (one rounding): the input
// gradient of Linear layers that share their input (q, k, v; gate, up). Each k_i % 64 == 0.
struct NnTerm {
  const void* a;
  const void* b;
  int k;
};
void gemm_nn_sum(void* C, const NnTerm* terms, int count, int M, int N, cudaStream_t stream);

// g = x·Wgᵀ, u = x·Wuᵀ, h = silu(g)·u, all [M, F]; g and u are rounded to bf16 before h, as the
// separate ops do. x [M, K], Wg and Wu [F, K].
void swiglu_forward(void* h, void* g, void* u, const void* x, const void* Wg, const void* Wu, int M, int F, int K,
                    cudaStream_t stream);
// dh = dY·Wd (dY [M, K], Wd [K, F]); dg = dh·u·silu'(g), du = dh·silu(g), [M, F]; dh rounded to
// bf16 first, as the separate ops store it.
void swiglu_backward(void* dg, void* du, const void* dY, const void* Wd, const void* g, const void* u, int M, int F,
                     int K, cudaStream_t stream);

// Attention's input products with RoPE: q = rope(x·Wqᵀ), k = rope(x·Wkᵀ), v = x·Wvᵀ in one
// product over the three weights (x [M, K]; Wq [Nq, K]; Wk, Wv [Nkv, K]; q [M, Nq]; k, v
// [M, Nkv]), RoPE (rope_math.cuh, HF's rotate_half) applied to each head of hd columns with the
// angles of row pos0 + n % seq of cos, sin ([P, hd/2] fp32). The products are rounded to bf16
// before RoPE, as the separate ops store them.
bool qkv_shape_ok(long M, long Nq, long Nkv, long K, long hd, long seq);  // seq % 128 == 0 too
void qkv_rope_forward(void* q, void* k, void* v, const void* x, const void* wq, const void* wk, const void* wv, int M,
                      int Nq, int Nkv, int K, const float* rope_cos, const float* rope_sin, int hd, int seq, int pos0,
                      cudaStream_t stream);

// A Linear layer's weight gradient dw [O, I] (fp32) = dyᵀ·x over N tokens (dy [N, O], x [N, I]
// bf16), written or added (accumulate); N % 64 == 0, O % 128 == 0, I % 256 == 0.
bool weight_grad_shape_ok(long N, long O, long I);
// How many output tiles (thread blocks' worth of work) an M x N product of whole tiles has.
long output_tiles(long M, long N);
void weight_grad(float* dw, const void* dy, const void* x, int N, int O, int I, bool accumulate, cudaStream_t stream);
// weight_grad, then AdamW on the weight from that gradient in the same kernel (the optimizer step
// in the backward): each tile of param, m, v is updated as soon as its gradient is complete, by
// warps that would otherwise wait, with adamw_one's arithmetic (the same bits as cuda::adamw on
// the stored gradient). copy (bf16, may be null) receives the updated weight rounded.
struct FusedAdamW {
  float* param;
  float* m;
  float* v;
  void* copy;
  AdamWConstants constants;
};
void weight_grad_adamw(float* dw, const void* dy, const void* x, int N, int O, int I, bool accumulate,
                       const FusedAdamW& update, cudaStream_t stream);

}  // namespace agpt::ops::cuda::sm90
