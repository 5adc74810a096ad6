// Elementwise and gather/scatter kernels of the CUDA backend: the same formulas, in the same
// order, as the CPU reference (src/ops/cpu/cpu_backend.cpp), so fp32 results agree to rounding.
// Activations are fp32 or bf16 (each kernel is a template on the element type T); values are
// loaded to fp32, computed in fp32, and rounded to nearest even on store when T is bf16.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "ops/cuda/adamw_math.cuh"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/elem.cuh"
#include "ops/cuda/kernels.cuh"
#include "ops/cuda/rope_math.cuh"
#include "ops/cuda/swiglu_math.cuh"

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
  __device__ float operator()(float g, float u) const { return swiglu_value(g, u); }
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

template <typename T, typename W>
__global__ void embedding_forward_kernel(T* out, const int32_t* ids, const W* table, int64_t N, int64_t D,
                                         int64_t vocab_begin, int64_t V) {
  AGPT_GRID_LOOP(i, N * D) {
    int64_t n = i / D, d = i % D;
    const int64_t row = static_cast<int64_t>(ids[n]) - vocab_begin;  // outside: another shard's id
    store(out + i, row >= 0 && row < V ? load(table + row * D + d) : 0.0f);
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

// RoPE rotates the pair (i, i + hd/2) of every row by the angle of the row's position (rope_math.cuh).

// x [B*T*H rows of hd]; with kVec each thread takes 8 consecutive pairs (16-byte accesses: needs
// hd/2 % 8 == 0 and aligned pointers), else one.
template <typename E, bool kVec>
__global__ void rope_kernel(E* x, const float* cs, const float* sn, int64_t B, int64_t T, int64_t H, int64_t hd,
                            int64_t pos0, bool inverse) {
  const int64_t half = hd / 2, per_row = kVec ? half / 8 : half;
  AGPT_GRID_LOOP(idx, B * T * H * per_row) {
    const int64_t i = (idx % per_row) * (kVec ? 8 : 1);
    const int64_t bth = idx / per_row;  // (b*T + t)*H + h
    const int64_t pos = pos0 + (bth / H) % T;
    E* v = x + bth * hd;
    if constexpr (kVec) {
      float x1[8], x2[8], c[8], s[8];
      load8(v + i, x1), load8(v + i + half, x2), load8(cs + pos * half + i, c), load8(sn + pos * half + i, s);
#pragma unroll
      for (int k = 0; k < 8; ++k) rope_pair(x1[k], x2[k], c[k], s[k], inverse);
      store8(v + i, x1), store8(v + i + half, x2);
    } else {
      float x1 = load(v + i), x2 = load(v + i + half);
      rope_pair(x1, x2, cs[pos * half + i], sn[pos * half + i], inverse);
      store(v + i, x1), store(v + i + half, x2);
    }
  }
}

// SwiGLU's backward writes dgate and dup (swiglu_math.cuh), not adds.

template <typename T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n,
                                       bool vec) {
  int64_t first = 0;
  if (vec) {
    const int64_t groups = n / 8;
    AGPT_GRID_LOOP(gi, groups) {
      const int64_t o = 8 * gi;
      float g[8], u[8], d[8], dg[8], du[8];
      load8(gate + o, g), load8(up + o, u), load8(dout + o, d);
#pragma unroll
      for (int k = 0; k < 8; ++k) swiglu_grad(g[k], u[k], d[k], dg[k], du[k]);
      store8(dgate + o, dg), store8(dup + o, du);
    }
    first = groups * 8;
  }
  AGPT_GRID_LOOP(j, n - first) {
    const int64_t i = first + j;
    float dg, du;
    swiglu_grad(load(gate + i), load(up + i), load(dout + i), dg, du);
    store(dgate + i, dg), store(dup + i, du);
  }
}

// Four elements per thread with 16-byte accesses when all four tensors are 16-byte aligned; thread
// tid of `stride` threads takes every stride-th group.
__device__ __forceinline__ void adamw_span(float* p, const float* g, float* m, float* v, __nv_bfloat16* copy,
                                           int64_t n, bool vec, const AdamWConstants& c, int64_t tid, int64_t stride) {
  int64_t first = 0;
  if (vec) {
    const int64_t groups = n / 4;
    for (int64_t i = tid; i < groups; i += stride) {
      float4 pp = reinterpret_cast<float4*>(p)[i], gg = reinterpret_cast<const float4*>(g)[i];
      float4 mm = reinterpret_cast<float4*>(m)[i], vv = reinterpret_cast<float4*>(v)[i];
      adamw_one(pp.x, gg.x, mm.x, vv.x, c);
      adamw_one(pp.y, gg.y, mm.y, vv.y, c);
      adamw_one(pp.z, gg.z, mm.z, vv.z, c);
      adamw_one(pp.w, gg.w, mm.w, vv.w, c);
      reinterpret_cast<float4*>(p)[i] = pp, reinterpret_cast<float4*>(m)[i] = mm, reinterpret_cast<float4*>(v)[i] = vv;
      if (copy) {
        __nv_bfloat162 lo = __floats2bfloat162_rn(pp.x, pp.y), hi = __floats2bfloat162_rn(pp.z, pp.w);
        uint2 u;
        u.x = *reinterpret_cast<uint32_t*>(&lo), u.y = *reinterpret_cast<uint32_t*>(&hi);
        reinterpret_cast<uint2*>(copy)[i] = u;
      }
    }
    first = groups * 4;
  }
  for (int64_t j = tid; j < n - first; j += stride) {
    const int64_t i = first + j;
    adamw_one(p[i], g[i], m[i], v[i], c);
    if (copy) copy[i] = __float2bfloat16_rn(p[i]);
  }
}

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, __nv_bfloat16* copy, int64_t n, bool vec,
                             AdamWConstants c) {
  adamw_span(p, g, m, v, copy, n, vec, c, blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x,
             static_cast<int64_t>(gridDim.x) * blockDim.x);
}

// The chunk's 1 - lr·weight_decay as the host computes AdamW's constants (double, no fused
// multiply-add, rounded to float once).
__device__ __forceinline__ float chunk_decay(double lr, double weight_decay) {
  return __double2float_rn(__dsub_rn(1.0, __dmul_rn(lr, weight_decay)));
}

// One block per chunk of the multi-tensor update.
__global__ void adamw_chunks_kernel(const AdamWChunk* chunks, AdamWConstants c, double lr) {
  const AdamWChunk ch = chunks[blockIdx.x];
  c.decay = chunk_decay(lr, ch.weight_decay);
  adamw_span(ch.p, ch.g, ch.m, ch.v, static_cast<__nv_bfloat16*>(ch.copy), ch.n, ch.vec != 0, c, threadIdx.x,
             blockDim.x);
}

// The multi-tensor update on a fixed grid that loops over the chunks: each block of 1024 threads
// asks for more than half an SM's shared memory (unused), so no other block shares its SM. Launched
// beside products that leave that many SMs free (cuBLAS's SM count target), it gets SMs of its own.
constexpr int kOwnSmThreads = 1024;
constexpr int kOwnSmSharedBytes = 120 * 1024;

__global__ void __launch_bounds__(kOwnSmThreads) adamw_chunks_own_sms_kernel(const AdamWChunk* chunks, int64_t count,
                                                                            AdamWConstants c, double lr) {
  for (int64_t i = blockIdx.x; i < count; i += gridDim.x) {
    const AdamWChunk ch = chunks[i];
    c.decay = chunk_decay(lr, ch.weight_decay);
    adamw_span(ch.p, ch.g, ch.m, ch.v, static_cast<__nv_bfloat16*>(ch.copy), ch.n, ch.vec != 0, c, threadIdx.x,
               blockDim.x);
  }
}

}  // namespace

void embedding_forward(void* out, Elem e, const int32_t* ids, const void* table, Elem table_e, int64_t N, int64_t D,
                       int64_t vocab_begin, int64_t V, cudaStream_t s) {
  if (N * D == 0) return;
  dispatch(e, [&]<typename T>() {
    dispatch(table_e, [&]<typename W>() {
      embedding_forward_kernel<T, W><<<blocks_for(N * D, kThreads), kThreads, 0, s>>>(
          static_cast<T*>(out), ids, static_cast<const W*>(table), N, D, vocab_begin, V);
    });
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
  const int64_t half = hd / 2;
  if (B * T * H * half == 0) return;
  const bool vec = half % 8 == 0 && aligned16({x, cos, sin});
  dispatch(e, [&]<typename E>() {
    if (vec)
      rope_kernel<E, true><<<blocks_for(B * T * H * (half / 8), kThreads), kThreads, 0, s>>>(
          static_cast<E*>(x), cos, sin, B, T, H, hd, pos0, inverse);
    else
      rope_kernel<E, false><<<blocks_for(B * T * H * half, kThreads), kThreads, 0, s>>>(
          static_cast<E*>(x), cos, sin, B, T, H, hd, pos0, inverse);
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

bool adamw_vectorizable(const float* p, const float* g, const float* m, const float* v, const void* copy) {
  return aligned16({p, g, m, v}) && reinterpret_cast<uintptr_t>(copy) % 8 == 0;
}

void adamw_chunks(const AdamWChunk* chunks, int64_t count, const AdamWConstants& c, double lr, cudaStream_t s) {
  if (count == 0) return;
  if (count > INT32_MAX) ::agpt::fail("adamw_chunks: ", count, " chunks is more than one launch takes");
  adamw_chunks_kernel<<<static_cast<unsigned>(count), kThreads, 0, s>>>(chunks, c, lr);
  AGPT_CUDA_LAUNCHED("adamw_chunks");
}

void adamw_chunks_own_sms(const AdamWChunk* chunks, int64_t count, const AdamWConstants& c, double lr, int sms,
                          cudaStream_t s) {
  if (count == 0) return;
  if (sms < 1) ::agpt::fail("adamw_chunks_own_sms: needs at least one SM, got ", sms);
  static const bool configured = [] {
    AGPT_CUDA_CHECK(cudaFuncSetAttribute(adamw_chunks_own_sms_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         kOwnSmSharedBytes));
    return true;
  }();
  (void)configured;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(sms, count));
  adamw_chunks_own_sms_kernel<<<blocks, kOwnSmThreads, kOwnSmSharedBytes, s>>>(chunks, count, c, lr);
  AGPT_CUDA_LAUNCHED("adamw_chunks_own_sms");
}

void adamw(float* p, const float* g, float* m, float* v, void* copy, int64_t n, const AdamWConstants& c,
           cudaStream_t s) {
  if (n == 0) return;
  const bool vec = adamw_vectorizable(p, g, m, v, copy);
  adamw_kernel<<<blocks_for(vec ? (n + 3) / 4 : n, kThreads), kThreads, 0, s>>>(
      p, g, m, v, static_cast<__nv_bfloat16*>(copy), n, vec, c);
  AGPT_CUDA_LAUNCHED("adamw");
}

}  // namespace agpt::ops::cuda
