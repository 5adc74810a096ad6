// Launchers of the CUDA backend's fp32 kernels (one .cu file per family). Each takes raw device
// pointers and the stream; shapes were checked by ops::Backend before we get here.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace agpt::ops::cuda {

// elementwise.cu
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t D, cudaStream_t s);
// Rows of dout grouped by token: rows order[start[u]..start[u+1]) all have token token[u].
void embedding_backward(float* dtable, const int32_t* order, const int32_t* start, const int32_t* token,
                        int64_t unique, const float* dout, int64_t D, cudaStream_t s);
void rope(float* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0,
          bool inverse, cudaStream_t s);
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, cudaStream_t s);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                     cudaStream_t s);
void add(float* out, const float* a, const float* b, int64_t n, cudaStream_t s);
void scale(float* x, float f, int64_t n, cudaStream_t s);
struct AdamWConstants {
  float decay, w1, b2, w2, step_size, bias2_sqrt, eps, grad_scale;
};
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConstants& c, cudaStream_t s);

// Rounds fp32 to bf16 (round to nearest even), for bf16 matrix products of fp32 tensors.
void to_bf16(void* out, const float* in, int64_t n, cudaStream_t s);

// reduce.cu
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t D, float eps,
                     cudaStream_t s);
// partial: scratch of rmsnorm_dw_chunks(N) * D floats.
int64_t rmsnorm_dw_chunks(int64_t N);
void rmsnorm_backward(float* dx, float* dw, float* partial, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t N, int64_t D, cudaStream_t s);
// Adds Σ x² (in double) to *result (a device double). partial: sum_squares_blocks() doubles.
int sum_squares_blocks();
void sum_squares(double* result, double* partial, const float* x, int64_t n, cudaStream_t s);
void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* targets, int64_t N,
                           int64_t V, cudaStream_t s);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int32_t* targets,
                            int64_t N, int64_t V, float scale, cudaStream_t s);

// attention.cu (q [B,Tq,H,hd], k/v [B,Tk,KV,hd], query t at position Tk-Tq+t; lse [B,H,Tq])
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B,
                       int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd, cudaStream_t s);
// delta: scratch of B*H*T floats.
void attention_backward(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse, int64_t B, int64_t T,
                        int64_t H, int64_t KV, int64_t hd, cudaStream_t s);

}  // namespace agpt::ops::cuda
