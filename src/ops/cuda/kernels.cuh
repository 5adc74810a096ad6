// Launchers of the CUDA backend's kernels (one .cu file per family). Each takes raw device
// pointers and the stream; shapes were checked by ops::Backend before we get here.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace agpt::ops::cuda {

// Activation tensors (embeddings out, norms, rope, swiglu, residual adds, logits and the gradients
// of all of these) are fp32 or bf16; every kernel computes in fp32 and rounds on store (round to
// nearest even). Weights, norm weights, per-row statistics (rstd, lse, losses), weight gradients
// and optimizer state are always fp32.
enum class Elem : uint8_t { kF32, kBF16 };

// elementwise.cu
// Rows of the table (fp32 or bf16: table_e) hold vocabulary entries [vocab_begin, vocab_begin + V);
// other ids give zero rows.
void embedding_forward(void* out, Elem e, const int32_t* ids, const void* table, Elem table_e, int64_t N, int64_t D,
                       int64_t vocab_begin, int64_t V, cudaStream_t s);
// Rows of dout grouped by token: rows order[start[u]..start[u+1]) all have token token[u].
// dtable (fp32) += Σ dout rows, summed in position order.
void embedding_backward(float* dtable, const int32_t* order, const int32_t* start, const int32_t* token,
                        int64_t unique, const void* dout, Elem e, int64_t D, cudaStream_t s);
void rope(void* x, Elem e, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t hd,
          int64_t pos0, bool inverse, cudaStream_t s);
void swiglu_forward(void* out, const void* gate, const void* up, Elem e, int64_t n, cudaStream_t s);
void swiglu_backward(void* dgate, void* dup, const void* dout, const void* gate, const void* up, Elem e, int64_t n,
                     cudaStream_t s);
void add(void* out, const void* a, const void* b, Elem e, int64_t n, cudaStream_t s);
void scale(void* x, Elem e, float f, int64_t n, cudaStream_t s);
// out = in converted (fp32 <-> bf16, or a plain copy when the types match).
void cast(void* out, Elem out_e, const void* in, Elem in_e, int64_t n, cudaStream_t s);
// out += in converted (fp32 or bf16 out, fp32 in): folds fp32 scratch gradients into activations.
void add_from_f32(void* out, Elem out_e, const float* in, int64_t n, cudaStream_t s);
struct AdamWConstants {
  float decay, w1, b2, w2, step_size, bias2_sqrt, eps, grad_scale;
};
// copy (bf16, may be null): also receives the updated p rounded to bf16, as cast() would round it.
void adamw(float* p, const float* g, float* m, float* v, void* copy, int64_t n, const AdamWConstants& c,
           cudaStream_t s);
// The multi-tensor form: one launch, one block per chunk (a piece of one tensor), each chunk with its
// own weight decay: c.decay is replaced by the chunk's 1 - lr·weight_decay, computed in double and
// rounded as the host's adamw constants are, so the table does not change with the learning rate.
// vec: the chunk's pointers are 16-byte aligned (adamw_vectorizable) so it may use 16-byte accesses.
struct AdamWChunk {
  float* p;
  const float* g;
  float* m;
  float* v;
  void* copy;
  int64_t n;
  double weight_decay;
  int64_t vec;
};
bool adamw_vectorizable(const float* p, const float* g, const float* m, const float* v, const void* copy);
void adamw_chunks(const AdamWChunk* chunks, int64_t count, const AdamWConstants& c, double lr, cudaStream_t s);
// The same update on `sms` blocks that each hold an SM to themselves (looping over the chunks), to
// run beside products that leave those SMs free (bench/train_overlap_bench). The same arithmetic per
// element as adamw_chunks (adamw_span on each chunk).
void adamw_chunks_own_sms(const AdamWChunk* chunks, int64_t count, const AdamWConstants& c, double lr, int sms,
                          cudaStream_t s);

// reduce.cu
void rmsnorm_forward(void* out, float* rstd, const void* x, const float* w, Elem e, int64_t N, int64_t D, float eps,
                     cudaStream_t s);
// partial: scratch of rmsnorm_dw_chunks(N) * D floats. dx (Elem e) and dw (fp32) may be null.
int64_t rmsnorm_dw_chunks(int64_t N);
void rmsnorm_backward(void* dx, float* dw, float* partial, const void* dout, const void* x, const float* w,
                      const float* rstd, Elem e, int64_t N, int64_t D, cudaStream_t s);
// Adds Σ x² (in double) over many tensors to *result (a device double) in two launches: the caller
// cuts them into chunks (chunks: a device array of `count` {pointer, length}), each block sums one
// chunk into partial[chunk] (count doubles), and one block adds the partials in chunk order to
// *result. Deterministic for a given chunking.
struct SumChunk {
  const float* x;
  int64_t n;
};
void sum_squares_chunks(double* result, double* partial, const SumChunk* chunks, int64_t count, cudaStream_t s);
// Logit columns are vocabulary entries [vocab_begin, vocab_begin + V); a target outside them has no
// one-hot term here (loss 0 in forward; softmax only in backward). Targets < 0 are ignored rows.
void cross_entropy_forward(float* losses, float* lse, const void* logits, Elem e, const int32_t* targets, int64_t N,
                           int64_t V, int64_t vocab_begin, cudaStream_t s);
// May run in place (dlogits == logits).
void cross_entropy_backward(void* dlogits, const void* logits, Elem e, const float* lse, const int32_t* targets,
                            int64_t N, int64_t V, int64_t vocab_begin, float scale, cudaStream_t s);
// Both in one launch over the whole vocabulary (vocab_begin 0), the same results; dlogits may be logits.
void cross_entropy_forward_backward(float* losses, float* lse, void* dlogits, const void* logits, Elem e,
                                    const int32_t* targets, int64_t N, int64_t V, float scale, cudaStream_t s);

// attention.cu (q [B,Tq,H,hd], k/v [B,Tk,KV,hd], query t at position Tk-Tq+t; lse [B,H,Tq])
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B,
                       int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd, cudaStream_t s);
// delta: scratch of B*H*T floats.
void attention_backward(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse, int64_t B, int64_t T,
                        int64_t H, int64_t KV, int64_t hd, cudaStream_t s);

}  // namespace agpt::ops::cuda
