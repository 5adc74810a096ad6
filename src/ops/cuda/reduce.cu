// Row reductions of the CUDA backend: RMSNorm, cross-entropy, and the squared norm used for
// gradient clipping. One block per row; reductions in a fixed tree order, and cross-row sums
// (RMSNorm's weight gradient, the global norm) in two passes with partials summed in order, so
// the results do not depend on scheduling. Activations (x, out, dx, dout, logits, dlogits) are fp32
// or bf16 (kernels are templates on the element type T): loaded to fp32, computed in fp32, rounded
// on store; statistics, norm weights and their gradients are fp32.
#include <cuda_bf16.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/elem.cuh"
#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {
namespace {

constexpr int kRowThreads = 256;
constexpr int64_t kDwRowsPerChunk = 64;
constexpr int kSumBlocks = 512;

template <typename T>
__global__ void rmsnorm_forward_kernel(T* out, float* rstd, const T* x, const float* w, int64_t D, float eps) {
  __shared__ float shared[32];
  const int64_t n = blockIdx.x;
  const T* xr = x + n * D;
  float ss = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    float v = load(xr + i);
    ss += v * v;
  }
  ss = block_sum(ss, shared);
  float r = rsqrtf(ss / static_cast<float>(D) + eps);
  if (threadIdx.x == 0) rstd[n] = r;
  T* orow = out + n * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) store(orow + i, w[i] * (load(xr + i) * r));
}

template <typename T>
__global__ void rmsnorm_dx_kernel(T* dx, const T* dout, const T* x, const float* w, const float* rstd, int64_t D) {
  __shared__ float shared[32];
  const int64_t n = blockIdx.x;
  const T* xr = x + n * D;
  const T* gr = dout + n * D;
  float s = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += (w[i] * load(gr + i)) * load(xr + i);
  s = block_sum(s, shared);
  const float r = rstd[n];
  const float c = r * r * r * s / static_cast<float>(D);
  T* dr = dx + n * D;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    store(dr + i, load(dr + i) + (r * (w[i] * load(gr + i)) - c * load(xr + i)));
}

// partial[chunk, i] = Σ over the chunk's rows of dout * (x * rstd), one thread per column.
template <typename T>
__global__ void rmsnorm_dw_partial_kernel(float* partial, const T* dout, const T* x, const float* rstd, int64_t N,
                                          int64_t D) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= D) return;
  const int64_t begin = blockIdx.y * kDwRowsPerChunk;
  const int64_t end = begin + kDwRowsPerChunk < N ? begin + kDwRowsPerChunk : N;
  float acc = 0;
  for (int64_t n = begin; n < end; ++n) acc += load(dout + n * D + i) * (load(x + n * D + i) * rstd[n]);
  partial[blockIdx.y * D + i] = acc;
}

__global__ void rmsnorm_dw_sum_kernel(float* dw, const float* partial, int64_t chunks, int64_t D) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= D) return;
  float acc = 0;
  for (int64_t c = 0; c < chunks; ++c) acc += partial[c * D + i];
  dw[i] += acc;
}

// Fixed grid: block b sums elements b*256+t, stepping by the grid; the partials are then summed in
// block order by one block.
__global__ void sum_squares_partial_kernel(double* partial, const float* x, int64_t n) {
  __shared__ double shared[32];
  double acc = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    acc += static_cast<double>(x[i]) * x[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_squares_final_kernel(double* result, const double* partial, int count) {
  __shared__ double shared[32];
  double acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) *result += acc;
}

template <typename T>
__global__ void cross_entropy_forward_kernel(float* losses, float* lse, const T* logits, const int32_t* targets,
                                             int64_t V, int64_t vocab_begin) {
  __shared__ float shared[32];
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, load(row + j));
  m = block_max(m, shared);
  float sum = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) sum += expf(load(row + j) - m);
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) {
    float l = m + logf(sum);
    lse[n] = l;
    const int32_t y = targets[n];
    const int64_t col = static_cast<int64_t>(y) - vocab_begin;  // outside [0, V): another shard's target
    losses[n] = y < 0 || col < 0 || col >= V ? 0.0f : l - load(row + col);
  }
}

// May run in place (dlogits == logits): every element, the target included, is read and then
// written by the same thread, so no thread sees another's output and no barrier is needed. The
// target gets (p*scale) - scale computed in fp32 with explicit roundings (no fused multiply-add):
// bit for bit what fp32 got when it was stored as p*scale and fixed up by `-= scale`, and rounded
// to bf16 only once.
template <typename T>
__global__ void cross_entropy_backward_kernel(T* dlogits, const T* logits, const float* lse, const int32_t* targets,
                                              int64_t V, int64_t vocab_begin, float scale) {
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  T* drow = dlogits + n * V;
  const int32_t y = targets[n];
  if (y < 0) {
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) store(drow + j, 0.0f);
    return;
  }
  const float l = lse[n];
  const int64_t col = static_cast<int64_t>(y) - vocab_begin;  // may be outside this shard: no one-hot term
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    float g = expf(load(row + j) - l) * scale;
    if (j == col) g = __fsub_rn(g, scale);
    store(drow + j, g);
  }
}

}  // namespace

void rmsnorm_forward(void* out, float* rstd, const void* x, const float* w, Elem e, int64_t N, int64_t D, float eps,
                     cudaStream_t s) {
  if (N == 0) return;
  dispatch(e, [&]<typename T>() {
    rmsnorm_forward_kernel<T><<<static_cast<unsigned>(N), kRowThreads, 0, s>>>(
        static_cast<T*>(out), rstd, static_cast<const T*>(x), w, D, eps);
  });
  AGPT_CUDA_LAUNCHED("rmsnorm_forward");
}

int64_t rmsnorm_dw_chunks(int64_t N) { return (N + kDwRowsPerChunk - 1) / kDwRowsPerChunk; }

void rmsnorm_backward(void* dx, float* dw, float* partial, const void* dout, const void* x, const float* w,
                      const float* rstd, Elem e, int64_t N, int64_t D, cudaStream_t s) {
  if (N == 0 || D == 0) return;
  if (dx) {
    dispatch(e, [&]<typename T>() {
      rmsnorm_dx_kernel<T><<<static_cast<unsigned>(N), kRowThreads, 0, s>>>(
          static_cast<T*>(dx), static_cast<const T*>(dout), static_cast<const T*>(x), w, rstd, D);
    });
    AGPT_CUDA_LAUNCHED("rmsnorm_backward dx");
  }
  if (dw) {
    const int64_t chunks = rmsnorm_dw_chunks(N);
    dim3 grid(static_cast<unsigned>((D + 255) / 256), static_cast<unsigned>(chunks));
    dispatch(e, [&]<typename T>() {
      rmsnorm_dw_partial_kernel<T><<<grid, 256, 0, s>>>(partial, static_cast<const T*>(dout),
                                                        static_cast<const T*>(x), rstd, N, D);
    });
    AGPT_CUDA_LAUNCHED("rmsnorm_backward dw");
    rmsnorm_dw_sum_kernel<<<static_cast<unsigned>((D + 255) / 256), 256, 0, s>>>(dw, partial, chunks, D);
    AGPT_CUDA_LAUNCHED("rmsnorm_backward dw sum");
  }
}

int sum_squares_blocks() { return kSumBlocks; }

void sum_squares(double* result, double* partial, const float* x, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  sum_squares_partial_kernel<<<kSumBlocks, 256, 0, s>>>(partial, x, n);
  AGPT_CUDA_LAUNCHED("sum_squares");
  sum_squares_final_kernel<<<1, 256, 0, s>>>(result, partial, kSumBlocks);
  AGPT_CUDA_LAUNCHED("sum_squares final");
}

void cross_entropy_forward(float* losses, float* lse, const void* logits, Elem e, const int32_t* targets, int64_t N,
                           int64_t V, int64_t vocab_begin, cudaStream_t s) {
  if (N == 0) return;
  dispatch(e, [&]<typename T>() {
    cross_entropy_forward_kernel<T><<<static_cast<unsigned>(N), 512, 0, s>>>(losses, lse, static_cast<const T*>(logits),
                                                                             targets, V, vocab_begin);
  });
  AGPT_CUDA_LAUNCHED("cross_entropy_forward");
}

void cross_entropy_backward(void* dlogits, const void* logits, Elem e, const float* lse, const int32_t* targets,
                            int64_t N, int64_t V, int64_t vocab_begin, float scale, cudaStream_t s) {
  if (N == 0) return;
  dispatch(e, [&]<typename T>() {
    cross_entropy_backward_kernel<T><<<static_cast<unsigned>(N), 512, 0, s>>>(
        static_cast<T*>(dlogits), static_cast<const T*>(logits), lse, targets, V, vocab_begin, scale);
  });
  AGPT_CUDA_LAUNCHED("cross_entropy_backward");
}

}  // namespace agpt::ops::cuda
