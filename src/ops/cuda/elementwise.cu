// Elementwise and gather/scatter kernels of the CUDA backend: the same formulas, in the same
// order, as the CPU reference (src/ops/cpu/cpu_backend.cpp), so fp32 results agree to rounding.
// Activations are fp32 or bf16 (each kernel is a template on the element type T); values are
// loaded to fp32, computed in fp32, and rounded to nearest even on store when T is bf16.
#include <cuda_bf16.h>

#include <cstdint>
#include <initializer_list>

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

// ---- 8 elements per thread with 16-byte accesses ------------------------------------------------
// The streaming kernels below (SwiGLU, add, scale, cast) are memory-bound: bf16 read two bytes at a
// time leaves most of the bandwidth unused. Where every pointer is 16-byte aligned a thread takes
// 8 consecutive elements (one 16-byte access for bf16, two for fp32); the last n % 8 elements, and
// unaligned calls, take the one-element path. Same formulas per element either way.
__device__ __forceinline__ void load8(const float* p, float (&f)[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}
__device__ __forceinline__ void load8(const __nv_bfloat16* p, float (&f)[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 t = __bfloat1622float2(h[k]);
    f[2 * k] = t.x, f[2 * k + 1] = t.y;
  }
}
__device__ __forceinline__ void store8(float* p, const float (&f)[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, const float (&f)[8]) {
  uint4 u;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
  for (int k = 0; k < 4; ++k) h[k] = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
  *reinterpret_cast<uint4*>(p) = u;
}

inline bool aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// Threads for n elements taken 8 at a time (vec) or one at a time.
inline unsigned blocks_for_map(int64_t n, bool vec) { return blocks_for(vec ? (n + 7) / 8 : n, kThreads); }

// out[i] = fn(a[i], b[i]) (b unused by unary functions).
template <typename To, typename Ta, typename Tb, typename Fn>
__global__ void map2_kernel(To* out, const Ta* a, const Tb* b, int64_t n, bool vec, Fn fn) {
  int64_t first = 0;
  if (vec) {
    const int64_t groups = n / 8;
    AGPT_GRID_LOOP(g, groups) {
      float x[8], y[8], r[8];
      load8(a + 8 * g, x);
      if constexpr (Fn::kArity == 2) load8(b + 8 * g, y);
#pragma unroll
      for (int k = 0; k < 8; ++k) r[k] = fn(x[k], Fn::kArity == 2 ? y[k] : 0.0f);
      store8(out + 8 * g, r);
    }
    first = groups * 8;
  }
  AGPT_GRID_LOOP(j, n - first) {
    const int64_t i = first + j;
    store(out + i, fn(load(a + i), Fn::kArity == 2 ? load(b + i) : 0.0f));
  }
}

struct SwigluFn {
  static constexpr int kArity = 2;
  __device__ float operator()(float g, float u) const { return g / (1.0f + expf(-g)) * u; }
};
struct AddFn {
  static constexpr int kArity = 2;
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct ScaleFn {
  static constexpr int kArity = 1;
  float f;
  __device__ float operator()(float a, float) const { return a * f; }
};
struct IdentityFn {
  static constexpr int kArity = 1;
  __device__ float operator()(float a, float) const { return a; }
};

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

// dgate += dout * up * silu'(gate), dup += dout * silu(gate).
__device__ __forceinline__ void swiglu_grad(float g, float u, float d, float& dg, float& du) {
  float sig = 1.0f / (1.0f + expf(-g));
  dg += d * u * (sig * (1.0f + g * (1.0f - sig)));
  du += d * (g * sig);
}

template <typename T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n,
                                       bool vec) {
  int64_t first = 0;
  if (vec) {
    const int64_t groups = n / 8;
    AGPT_GRID_LOOP(gi, groups) {
      const int64_t o = 8 * gi;
      float g[8], u[8], d[8], dg[8], du[8];
      load8(gate + o, g), load8(up + o, u), load8(dout + o, d), load8(dgate + o, dg), load8(dup + o, du);
#pragma unroll
      for (int k = 0; k < 8; ++k) swiglu_grad(g[k], u[k], d[k], dg[k], du[k]);
      store8(dgate + o, dg), store8(dup + o, du);
    }
    first = groups * 8;
  }
  AGPT_GRID_LOOP(j, n - first) {
    const int64_t i = first + j;
    float dg = load(dgate + i), du = load(dup + i);
    swiglu_grad(load(gate + i), load(up + i), load(dout + i), dg, du);
    store(dgate + i, dg), store(dup + i, du);
  }
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
  const bool vec = aligned16({out, gate, up});
  dispatch(e, [&]<typename T>() {
    map2_kernel<<<blocks_for_map(n, vec), kThreads, 0, s>>>(static_cast<T*>(out), static_cast<const T*>(gate),
                                                           static_cast<const T*>(up), n, vec, SwigluFn{});
  });
  AGPT_CUDA_LAUNCHED("swiglu_forward");
}

void swiglu_backward(void* dgate, void* dup, const void* dout, const void* gate, const void* up, Elem e, int64_t n,
                     cudaStream_t s) {
  if (n == 0) return;
  const bool vec = aligned16({dgate, dup, dout, gate, up});
  dispatch(e, [&]<typename T>() {
    swiglu_backward_kernel<T><<<blocks_for_map(n, vec), kThreads, 0, s>>>(
        static_cast<T*>(dgate), static_cast<T*>(dup), static_cast<const T*>(dout), static_cast<const T*>(gate),
        static_cast<const T*>(up), n, vec);
  });
  AGPT_CUDA_LAUNCHED("swiglu_backward");
}

void add(void* out, const void* a, const void* b, Elem e, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  const bool vec = aligned16({out, a, b});
  dispatch(e, [&]<typename T>() {
    map2_kernel<<<blocks_for_map(n, vec), kThreads, 0, s>>>(static_cast<T*>(out), static_cast<const T*>(a),
                                                           static_cast<const T*>(b), n, vec, AddFn{});
  });
  AGPT_CUDA_LAUNCHED("add");
}

void scale(void* x, Elem e, float f, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  const bool vec = aligned16({x});
  dispatch(e, [&]<typename T>() {
    map2_kernel<<<blocks_for_map(n, vec), kThreads, 0, s>>>(static_cast<T*>(x), static_cast<const T*>(x),
                                                           static_cast<const T*>(x), n, vec, ScaleFn{f});
  });
  AGPT_CUDA_LAUNCHED("scale");
}

void cast(void* out, Elem out_e, const void* in, Elem in_e, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  const bool vec = aligned16({out, in});
  dispatch(out_e, [&]<typename To>() {
    dispatch(in_e, [&]<typename From>() {
      map2_kernel<<<blocks_for_map(n, vec), kThreads, 0, s>>>(static_cast<To*>(out), static_cast<const From*>(in),
                                                             static_cast<const From*>(in), n, vec, IdentityFn{});
    });
  });
  AGPT_CUDA_LAUNCHED("cast");
}

void add_from_f32(void* out, Elem out_e, const float* in, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  const bool vec = aligned16({out, in});
  dispatch(out_e, [&]<typename T>() {
    map2_kernel<<<blocks_for_map(n, vec), kThreads, 0, s>>>(static_cast<T*>(out), static_cast<const T*>(out), in, n,
                                                           vec, AddFn{});
  });
  AGPT_CUDA_LAUNCHED("add_from_f32");
}

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConstants& c, cudaStream_t s) {
  if (n == 0) return;
  adamw_kernel<<<blocks_for(n, kThreads), kThreads, 0, s>>>(p, g, m, v, n, c);
  AGPT_CUDA_LAUNCHED("adamw");
}

}  // namespace agpt::ops::cuda
