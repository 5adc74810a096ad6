// Elementwise and gather/scatter kernels of the CUDA backend: the same formulas, in the same
// order, as the CPU reference (src/ops/cpu/cpu_backend.cpp), so fp32 results agree to rounding.
#include <cuda_bf16.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {
namespace {

constexpr int kThreads = 256;

// Grid-stride loop over [0, n) with 64-bit indices (N*V passes 2^31 for big vocabularies).
#define AGPT_GRID_LOOP(i, n)                                                                        \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n);            \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table, int64_t N, int64_t D) {
  AGPT_GRID_LOOP(i, N * D) {
    int64_t n = i / D, d = i % D;
    out[i] = table[static_cast<int64_t>(ids[n]) * D + d];
  }
}

// One block per distinct token: its rows are summed in position order (deterministic, no atomics).
__global__ void embedding_backward_kernel(float* dtable, const int32_t* order, const int32_t* start,
                                          const int32_t* token, const float* dout, int64_t D) {
  const int64_t u = blockIdx.x;
  float* row = dtable + static_cast<int64_t>(token[u]) * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = row[d];
    for (int32_t i = start[u]; i < start[u + 1]; ++i) acc += dout[static_cast<int64_t>(order[i]) * D + d];
    row[d] = acc;
  }
}

__global__ void rope_kernel(float* x, const float* cs, const float* sn, int64_t B, int64_t T, int64_t H, int64_t hd,
                            int64_t pos0, bool inverse) {
  const int64_t half = hd / 2;
  AGPT_GRID_LOOP(idx, B * T * H * half) {
    int64_t i = idx % half;
    int64_t bth = idx / half;  // (b*T + t)*H + h
    int64_t t = (bth / H) % T;
    int64_t pos = pos0 + t;
    float c = cs[pos * half + i], s = sn[pos * half + i];
    float* v = x + bth * hd;
    float x1 = v[i], x2 = v[i + half];
    if (!inverse) {
      v[i] = x1 * c - x2 * s;
      v[i + half] = x2 * c + x1 * s;
    } else {
      v[i] = x1 * c + x2 * s;
      v[i + half] = x2 * c - x1 * s;
    }
  }
}

__global__ void swiglu_forward_kernel(float* out, const float* gate, const float* up, int64_t n) {
  AGPT_GRID_LOOP(i, n) {
    float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dout, const float* gate,
                                       const float* up, int64_t n) {
  AGPT_GRID_LOOP(i, n) {
    float g = gate[i], u = up[i], d = dout[i];
    float sig = 1.0f / (1.0f + expf(-g));
    dgate[i] += d * u * (sig * (1.0f + g * (1.0f - sig)));
    dup[i] += d * (g * sig);
  }
}

__global__ void add_kernel(float* out, const float* a, const float* b, int64_t n) {
  AGPT_GRID_LOOP(i, n) out[i] = a[i] + b[i];
}

__global__ void scale_kernel(float* x, float f, int64_t n) {
  AGPT_GRID_LOOP(i, n) x[i] *= f;
}

__global__ void to_bf16_kernel(__nv_bfloat16* out, const float* in, int64_t n) {
  AGPT_GRID_LOOP(i, n) out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, AdamWConstants c) {
  AGPT_GRID_LOOP(i, n) {
    float gi = g[i] * c.grad_scale;
    float pi = p[i] * c.decay;
    float mi = m[i] + c.w1 * (gi - m[i]);
    float vi = v[i] * c.b2 + c.w2 * gi * gi;
    float denom = sqrtf(vi) / c.bias2_sqrt + c.eps;
    p[i] = pi + c.step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t D, cudaStream_t s) {
  if (N * D == 0) return;
  embedding_forward_kernel<<<blocks_for(N * D, kThreads), kThreads, 0, s>>>(out, ids, table, N, D);
  AGPT_CUDA_LAUNCHED("embedding_forward");
}

void embedding_backward(float* dtable, const int32_t* order, const int32_t* start, const int32_t* token,
                        int64_t unique, const float* dout, int64_t D, cudaStream_t s) {
  if (unique == 0 || D == 0) return;
  embedding_backward_kernel<<<static_cast<unsigned>(unique), kThreads, 0, s>>>(dtable, order, start, token, dout, D);
  AGPT_CUDA_LAUNCHED("embedding_backward");
}

void rope(float* x, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0,
          bool inverse, cudaStream_t s) {
  int64_t n = B * T * H * (hd / 2);
  if (n == 0) return;
  rope_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, cos, sin, B, T, H, hd, pos0, inverse);
  AGPT_CUDA_LAUNCHED("rope");
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  swiglu_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(out, gate, up, n);
  AGPT_CUDA_LAUNCHED("swiglu_forward");
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                     cudaStream_t s) {
  if (n == 0) return;
  swiglu_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(dgate, dup, dout, gate, up, n);
  AGPT_CUDA_LAUNCHED("swiglu_backward");
}

void add(float* out, const float* a, const float* b, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  add_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(out, a, b, n);
  AGPT_CUDA_LAUNCHED("add");
}

void scale(float* x, float f, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  scale_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(x, f, n);
  AGPT_CUDA_LAUNCHED("scale");
}

void to_bf16(void* out, const float* in, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  to_bf16_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<__nv_bfloat16*>(out), in, n);
  AGPT_CUDA_LAUNCHED("to_bf16");
}

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConstants& c, cudaStream_t s) {
  if (n == 0) return;
  adamw_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(p, g, m, v, n, c);
  AGPT_CUDA_LAUNCHED("adamw");
}

}  // namespace agpt::ops::cuda
