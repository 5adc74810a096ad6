// Elementwise and gather/scatter kernels of the CUDA backend: the same formulas, in the same
// order, as the CPU reference (src/ops/cpu/cpu_backend.cpp), so fp32 results agree to rounding.
// Activations are fp32 or bf16 (each kernel is a template on the element type T); values are
// loaded to fp32, computed in fp32, and rounded to nearest even on store when T is bf16.
#include <cuda_bf16.h>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/elem.cuh"
#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {
namespace {

constexpr int kThreads = 256;

// Grid-stride loop over [0, n) with 64-bit indices (N*V passes 2^31 for big vocabularies).
#define AGPT_GRID_LOOP(i, n)                                                                        \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n);            \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename T>
__global__ void embedding_forward_kernel(T* out, const int32_t* ids, const float* table, int64_t N, int64_t D,
                                         int64_t vocab_begin, int64_t V) {
  AGPT_GRID_LOOP(i, N * D) {
    int64_t n = i / D, d = i % D;
    const int64_t row = static_cast<int64_t>(ids[n]) - vocab_begin;  // outside: another shard's id
    store(out + i, row >= 0 && row < V ? table[row * D + d] : 0.0f);
  }
}

// One block per distinct token: its rows are summed in position order (deterministic, no atomics).
template <typename T>
__global__ void embedding_backward_kernel(float* dtable, const int32_t* order, const int32_t* start,
                                          const int32_t* token, const T* dout, int64_t D) {
  const int64_t u = blockIdx.x;
  float* row = dtable + static_cast<int64_t>(token[u]) * D;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = row[d];
    for (int32_t i = start[u]; i < start[u + 1]; ++i) acc += load(dout + static_cast<int64_t>(order[i]) * D + d);
    row[d] = acc;
  }
}

template <typename E>
__global__ void rope_kernel(E* x, const float* cs, const float* sn, int64_t B, int64_t T, int64_t H, int64_t hd,
                            int64_t pos0, bool inverse) {
  const int64_t half = hd / 2;
  AGPT_GRID_LOOP(idx, B * T * H * half) {
    int64_t i = idx % half;
    int64_t bth = idx / half;  // (b*T + t)*H + h
    int64_t t = (bth / H) % T;
    int64_t pos = pos0 + t;
    float c = cs[pos * half + i], s = sn[pos * half + i];
    E* v = x + bth * hd;
    float x1 = load(v + i), x2 = load(v + i + half);
    if (!inverse) {
      store(v + i, x1 * c - x2 * s);
      store(v + i + half, x2 * c + x1 * s);
    } else {
      store(v + i, x1 * c + x2 * s);
      store(v + i + half, x2 * c - x1 * s);
    }
  }
}

template <typename T>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, int64_t n) {
  AGPT_GRID_LOOP(i, n) {
    float g = load(gate + i);
    store(out + i, g / (1.0f + expf(-g)) * load(up + i));
  }
}

template <typename T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  AGPT_GRID_LOOP(i, n) {
    float g = load(gate + i), u = load(up + i), d = load(dout + i);
    float sig = 1.0f / (1.0f + expf(-g));
    store(dgate + i, load(dgate + i) + d * u * (sig * (1.0f + g * (1.0f - sig))));
    store(dup + i, load(dup + i) + d * (g * sig));
  }
}

template <typename T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t n) {
  AGPT_GRID_LOOP(i, n) store(out + i, load(a + i) + load(b + i));
}

template <typename T>
__global__ void scale_kernel(T* x, float f, int64_t n) {
  AGPT_GRID_LOOP(i, n) store(x + i, load(x + i) * f);
}

template <typename To, typename From>
__global__ void cast_kernel(To* out, const From* in, int64_t n) {
  AGPT_GRID_LOOP(i, n) store(out + i, load(in + i));
}

template <typename T>
__global__ void add_from_f32_kernel(T* out, const float* in, int64_t n) {
  AGPT_GRID_LOOP(i, n) store(out + i, load(out + i) + in[i]);
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

void embedding_forward(void* out, Elem e, const int32_t* ids, const float* table, int64_t N, int64_t D,
                       int64_t vocab_begin, int64_t V, cudaStream_t s) {
  if (N * D == 0) return;
  dispatch(e, [&]<typename T>() {
    embedding_forward_kernel<T><<<blocks_for(N * D, kThreads), kThreads, 0, s>>>(static_cast<T*>(out), ids, table,
                                                                                 N, D, vocab_begin, V);
  });
  AGPT_CUDA_LAUNCHED("embedding_forward");
}

void embedding_backward(float* dtable, const int32_t* order, const int32_t* start, const int32_t* token,
                        int64_t unique, const void* dout, Elem e, int64_t D, cudaStream_t s) {
  if (unique == 0 || D == 0) return;
  dispatch(e, [&]<typename T>() {
    embedding_backward_kernel<T><<<static_cast<unsigned>(unique), kThreads, 0, s>>>(
        dtable, order, start, token, static_cast<const T*>(dout), D);
  });
  AGPT_CUDA_LAUNCHED("embedding_backward");
}

void rope(void* x, Elem e, const float* cos, const float* sin, int64_t B, int64_t T, int64_t H, int64_t hd,
          int64_t pos0, bool inverse, cudaStream_t s) {
  int64_t n = B * T * H * (hd / 2);
  if (n == 0) return;
  dispatch(e, [&]<typename E>() {
    rope_kernel<E><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<E*>(x), cos, sin, B, T, H, hd, pos0,
                                                                inverse);
  });
  AGPT_CUDA_LAUNCHED("rope");
}

void swiglu_forward(void* out, const void* gate, const void* up, Elem e, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  dispatch(e, [&]<typename T>() {
    swiglu_forward_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, s>>>(
        static_cast<T*>(out), static_cast<const T*>(gate), static_cast<const T*>(up), n);
  });
  AGPT_CUDA_LAUNCHED("swiglu_forward");
}

void swiglu_backward(void* dgate, void* dup, const void* dout, const void* gate, const void* up, Elem e, int64_t n,
                     cudaStream_t s) {
  if (n == 0) return;
  dispatch(e, [&]<typename T>() {
    swiglu_backward_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, s>>>(
        static_cast<T*>(dgate), static_cast<T*>(dup), static_cast<const T*>(dout), static_cast<const T*>(gate),
        static_cast<const T*>(up), n);
  });
  AGPT_CUDA_LAUNCHED("swiglu_backward");
}

void add(void* out, const void* a, const void* b, Elem e, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  dispatch(e, [&]<typename T>() {
    add_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(out), static_cast<const T*>(a),
                                                               static_cast<const T*>(b), n);
  });
  AGPT_CUDA_LAUNCHED("add");
}

void scale(void* x, Elem e, float f, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  dispatch(e, [&]<typename T>() {
    scale_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(x), f, n);
  });
  AGPT_CUDA_LAUNCHED("scale");
}

void cast(void* out, Elem out_e, const void* in, Elem in_e, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  dispatch(out_e, [&]<typename To>() {
    dispatch(in_e, [&]<typename From>() {
      cast_kernel<To, From><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<To*>(out),
                                                                         static_cast<const From*>(in), n);
    });
  });
  AGPT_CUDA_LAUNCHED("cast");
}

void add_from_f32(void* out, Elem out_e, const float* in, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  dispatch(out_e, [&]<typename T>() {
    add_from_f32_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<T*>(out), in, n);
  });
  AGPT_CUDA_LAUNCHED("add_from_f32");
}

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConstants& c, cudaStream_t s) {
  if (n == 0) return;
  adamw_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(p, g, m, v, n, c);
  AGPT_CUDA_LAUNCHED("adamw");
}

}  // namespace agpt::ops::cuda
