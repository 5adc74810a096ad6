// Row reductions of the CUDA backend: RMSNorm, cross-entropy, and the squared norm used for
// gradient clipping. Reductions run in a fixed tree order, and cross-row sums (RMSNorm's weight
// gradient, the global norm) in two passes with partials summed in order, so the results do not
// depend on scheduling (no atomics anywhere). Activations (x, out, dx, dout, logits, dlogits) are
// fp32 or bf16 (kernels are templates on the element type T): loaded to fp32, computed in fp32,
// rounded on store; statistics, norm weights and their gradients are fp32.
//
// These ops only move memory, so what matters is how: where every pointer is 16-byte aligned and
// the row length is a multiple of 8, a thread takes 8 consecutive elements at a time (one 16-byte
// access for bf16, two for fp32) and issues several such loads before using any; other shapes
// take one-element kernels with the same formulas (a different, but equally fixed, summation
// order). RMSNorm keeps a row in registers between its reduction and its output, and its backward
// makes dx and the weight-gradient partials in one pass over dout and x. Cross-entropy's forward
// reads each row once, keeping a running maximum and the sum of exponentials relative to it.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/elem.cuh"
#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {
namespace {

constexpr int kRowThreads = 256;         // one-element RMSNorm kernels: one block per row
constexpr int kNormBlock = 256;          // 8-wide RMSNorm kernels: 256 / tpr rows at a time
constexpr int64_t kDwRowsPerChunk = 16;  // rows per partial of RMSNorm's weight gradient
constexpr int kCeThreads = 512;          // cross-entropy: one block per row
// The forward's exponentials: exp(t) = exp2f(t * log2 e) for t = x - max <= 0 (exp2f: 2 ulp, and
// the product's rounding adds |t| * 2^-24 relative, so the terms that dominate the sum, t near 0,
// are as exact as expf's; the long tail gets ~1e-6 relative, well inside the sum's own error).
// A third of expf's instructions: the forward is otherwise bound by arithmetic, not memory.
constexpr float kLog2e = 1.4426950408889634f;
// 8-wide groups each thread loads before using any: 64 bytes in flight per thread.
template <typename T>
constexpr int kCeUnroll = 64 / (8 * static_cast<int>(sizeof(T)));
constexpr int kSumThreads = 256;

// ---- 8-wide access (load8/store8: elem.cuh) ----------------------------------------------------
// Streaming loads for data used once (cross-entropy's logits, 100s of MB; gradients in
// sum_squares), kept packed until used so that several can be in flight in few registers.
template <typename T>
struct Raw8;
template <>
struct Raw8<float> {
  float4 a, b;
};
template <>
struct Raw8<__nv_bfloat16> {
  uint4 u;
};
__device__ __forceinline__ Raw8<float> ldcs8(const float* p) {
  return {__ldcs(reinterpret_cast<const float4*>(p)), __ldcs(reinterpret_cast<const float4*>(p) + 1)};
}
__device__ __forceinline__ Raw8<__nv_bfloat16> ldcs8(const __nv_bfloat16* p) {
  return {__ldcs(reinterpret_cast<const uint4*>(p))};
}
__device__ __forceinline__ Raw8<float> ld8raw(const float* p) {
  return {reinterpret_cast<const float4*>(p)[0], reinterpret_cast<const float4*>(p)[1]};
}
__device__ __forceinline__ Raw8<__nv_bfloat16> ld8raw(const __nv_bfloat16* p) {
  return {*reinterpret_cast<const uint4*>(p)};
}
__device__ __forceinline__ void unpack(const Raw8<float>& r, float (&f)[8]) {
  f[0] = r.a.x, f[1] = r.a.y, f[2] = r.a.z, f[3] = r.a.w, f[4] = r.b.x, f[5] = r.b.y, f[6] = r.b.z, f[7] = r.b.w;
}
__device__ __forceinline__ void unpack(const Raw8<__nv_bfloat16>& r, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&r.u);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 t = __bfloat1622float2(h[k]);
    f[2 * k] = t.x, f[2 * k + 1] = t.y;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- RMSNorm --------------------------------------------------------------------------------------

// One-element kernels (D not a multiple of 8, unaligned pointers, very long rows): one block per row.
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

// The 8-wide kernels: a row is D/8 groups of 8 elements, spread over `tpr` consecutive threads (a
// power of two, 32..256); thread t of a row holds groups t, t + tpr, ... (kVec of them at most) in
// registers. A block of kNormBlock threads works on kNormBlock / tpr rows at a time.
struct RowPlan {
  int tpr = 0, vec = 0;  // vec 0: the row is too long for the 8-wide kernels
};
RowPlan plan_rows(int64_t D) {
  const int64_t groups = D / 8;
  for (int tpr = 32; tpr <= kNormBlock; tpr *= 2)
    if (groups <= tpr) return {tpr, 1};
  for (int vec = 2; vec <= 8; vec *= 2)
    if (groups <= static_cast<int64_t>(kNormBlock) * vec) return {kNormBlock, vec};
  return {};
}

// Sum over the tpr threads of each row (rows are consecutive runs of tpr threads); every thread of
// the block must call it. Warp butterfly, then the row's warps in order: a fixed order.
__device__ __forceinline__ float row_sum(float v, int tpr, float* shared) {
  v = warp_sum(v);
  if (tpr == 32) return v;
  const int warp = threadIdx.x >> 5, per_row = tpr >> 5;
  __syncthreads();  // shared may still be read by a previous call
  if ((threadIdx.x & 31) == 0) shared[warp] = v;
  __syncthreads();
  const int first = warp & ~(per_row - 1);
  float r = 0;
  for (int k = 0; k < per_row; ++k) r += shared[first + k];
  return r;
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kNormBlock) rmsnorm_forward_vec_kernel(T* out, float* rstd, const T* x,
                                                                          const float* w, int64_t N, int64_t D,
                                                                          int tpr, float eps) {
  __shared__ float shared[kNormBlock / 32];
  const int rows = kNormBlock / tpr, t = threadIdx.x % tpr;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * rows + threadIdx.x / tpr;
  const bool live = n < N;
  const int64_t G = D / 8;
  const T* xr = x + (live ? n : 0) * D;
  float v[kVec][8];
  float ss = 0;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int64_t g = t + static_cast<int64_t>(k) * tpr;
    if (live && g < G) load8(xr + 8 * g, v[k]);
  }
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int64_t g = t + static_cast<int64_t>(k) * tpr;
    if (live && g < G)
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += v[k][e] * v[k][e];
  }
  ss = row_sum(ss, tpr, shared);
  if (!live) return;
  const float r = rsqrtf(ss / static_cast<float>(D) + eps);
  if (t == 0) rstd[n] = r;
  T* orow = out + n * D;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const int64_t g = t + static_cast<int64_t>(k) * tpr;
    if (g < G) {
      float wv[8], o[8];
      load8(w + 8 * g, wv);
#pragma unroll
      for (int e = 0; e < 8; ++e) o[e] = wv[e] * (v[k][e] * r);
      store8(orow + 8 * g, o);
    }
  }
}

// dx and the weight-gradient partials in one pass: block b takes rows [b*C, b*C + C) (C =
// kDwRowsPerChunk), kNormBlock / tpr of them at a time; each thread keeps Σ dout * (x * rstd) of
// its columns over its rows, and the block's row slots are added in slot order into
// partial[b, :]. dx (may be null) += rstd * (w*dout) - rstd³ * Σ(w*dout*x) / D * x.
template <typename T, int kVec>
__global__ void __launch_bounds__(kNormBlock, kVec == 1 ? 4 : 2) rmsnorm_backward_vec_kernel(T* dx, float* partial, const T* dout,
                                                                           const T* x, const float* w,
                                                                           const float* rstd, int64_t N, int64_t D,
                                                                           int tpr) {
  extern __shared__ float fold[];  // D floats when partial is wanted and there are several slots
  __shared__ float shared[kNormBlock / 32];
  const int slots = kNormBlock / tpr, slot = threadIdx.x / tpr, t = threadIdx.x % tpr;
  const int64_t G = D / 8;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kDwRowsPerChunk;
  const int64_t end = begin + kDwRowsPerChunk < N ? begin + kDwRowsPerChunk : N;
  float acc[kVec][8];
#pragma unroll
  for (int k = 0; k < kVec; ++k)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[k][e] = 0;
  // The next row's dout, x, dx are loaded (packed) while this row is reduced and written.
  Raw8<T> rg[kVec], rx[kVec], rd[kVec];
  auto fetch = [&](int64_t n) {
    const int64_t off = n * D;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const int64_t gi = t + static_cast<int64_t>(k) * tpr;
      if (gi < G) {
        rg[k] = ld8raw(dout + off + 8 * gi);
        rx[k] = ld8raw(x + off + 8 * gi);
        if (dx) rd[k] = ld8raw(dx + off + 8 * gi);
      }
    }
  };
  if (begin + slot < end) fetch(begin + slot);
  for (int64_t base = begin; base < end; base += slots) {  // the same trip count in every thread
    const int64_t n = base + slot;
    const bool live = n < end;
    const int64_t off = (live ? n : 0) * D;
    float g[kVec][8], xv[kVec][8], d[kVec][8];
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const int64_t gi = t + static_cast<int64_t>(k) * tpr;
      if (live && gi < G) {
        unpack(rg[k], g[k]);
        unpack(rx[k], xv[k]);
        if (dx) unpack(rd[k], d[k]);
      }
    }
    if (n + slots < end) fetch(n + slots);
    const float r = live ? rstd[n] : 0.0f;
    if (dx) {
      float s = 0;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const int64_t gi = t + static_cast<int64_t>(k) * tpr;
        if (live && gi < G) {
          float wv[8];
          load8(w + 8 * gi, wv);
#pragma unroll
          for (int e = 0; e < 8; ++e) s += (wv[e] * g[k][e]) * xv[k][e];
        }
      }
      s = row_sum(s, tpr, shared);
      const float c = r * r * r * s / static_cast<float>(D);
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const int64_t gi = t + static_cast<int64_t>(k) * tpr;
        if (live && gi < G) {
          float wv[8];
          load8(w + 8 * gi, wv);
#pragma unroll
          for (int e = 0; e < 8; ++e) d[k][e] = d[k][e] + (r * (wv[e] * g[k][e]) - c * xv[k][e]);
          store8(dx + off + 8 * gi, d[k]);
        }
      }
    }
    if (partial) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const int64_t gi = t + static_cast<int64_t>(k) * tpr;
        if (live && gi < G)
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[k][e] += g[k][e] * (xv[k][e] * r);
      }
    }
  }
  if (!partial) return;
  float* prow = partial + static_cast<int64_t>(blockIdx.x) * D;
  if (slots == 1) {
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const int64_t gi = t + static_cast<int64_t>(k) * tpr;
      if (gi < G) store8(prow + 8 * gi, acc[k]);
    }
    return;
  }
  for (int s = 0; s < slots; ++s) {  // fold = acc of slot 0, + slot 1, ...: slot order
    if (slot == s) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const int64_t gi = t + static_cast<int64_t>(k) * tpr;
        if (gi < G)
#pragma unroll
          for (int e = 0; e < 8; ++e) fold[8 * gi + e] = s == 0 ? acc[k][e] : fold[8 * gi + e] + acc[k][e];
      }
    }
    __syncthreads();
  }
  for (int64_t i = threadIdx.x; i < D; i += kNormBlock) prow[i] = fold[i];
}

// dw[i] += Σ_c partial[c, i]: 32 columns per block; thread (cx, cy) sums chunks cy, cy + 32, ...
// in order, then the 32 partial sums are added in cy order.
__global__ void __launch_bounds__(1024) rmsnorm_dw_sum_kernel(float* dw, const float* partial, int64_t chunks,
                                                              int64_t D) {
  __shared__ float s[32][33];
  const int cx = threadIdx.x & 31, cy = threadIdx.x >> 5;
  const int64_t i = blockIdx.x * 32LL + cx;
  float acc = 0;
  if (i < D) {
    int64_t c = cy;
    for (; c + 3 * 32 < chunks; c += 4 * 32) {  // four independent loads in flight, summed in order
      const float a = partial[c * D + i], b = partial[(c + 32) * D + i], d = partial[(c + 64) * D + i],
                  e = partial[(c + 96) * D + i];
      acc += a;
      acc += b;
      acc += d;
      acc += e;
    }
    for (; c < chunks; c += 32) acc += partial[c * D + i];
  }
  s[cy][cx] = acc;
  __syncthreads();
  if (cy == 0 && i < D) {
    float total = 0;
    for (int k = 0; k < 32; ++k) total += s[k][cx];
    dw[i] += total;
  }
}

// ---- squared norm ----------------------------------------------------------------------------------

// One block per chunk; float4 loads when the chunk starts 16-byte aligned.
__global__ void __launch_bounds__(kSumThreads) sum_squares_chunk_kernel(double* partial, const SumChunk* chunks) {
  __shared__ double shared[32];
  const SumChunk c = chunks[blockIdx.x];
  double acc = 0;
  int64_t first = 0;
  if ((reinterpret_cast<uintptr_t>(c.x) & 15u) == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(c.x);
    const int64_t n4 = c.n / 4;
    for (int64_t i = threadIdx.x; i < n4; i += blockDim.x) {
      const float4 v = __ldcs(x4 + i);
      acc += static_cast<double>(v.x) * v.x;
      acc += static_cast<double>(v.y) * v.y;
      acc += static_cast<double>(v.z) * v.z;
      acc += static_cast<double>(v.w) * v.w;
    }
    first = n4 * 4;
  }
  for (int64_t i = first + threadIdx.x; i < c.n; i += blockDim.x) acc += static_cast<double>(c.x[i]) * c.x[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_squares_chunks_final_kernel(double* result, const double* partial, int64_t count) {
  __shared__ double shared[32];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) *result += acc;
}

// ---- cross-entropy -----------------------------------------------------------------------------------

// (m, s) pairs: s = Σ exp(x - m) over the values seen, m their maximum (-inf and s = 0 for none).
// Combining is symmetric (fp addition commutes), so every lane of a butterfly gets the same bits.
__device__ __forceinline__ void ms_combine(float& m, float& s, float m2, float s2) {
  const float mm = fmaxf(m, m2);
  if (mm == -INFINITY) {
    s = 0;
    return;
  }
  s = s * expf(m - mm) + s2 * expf(m2 - mm);
  m = mm;
}

// The block's (m, s) pairs combined: warp butterflies, then warps in order. Returns the logsumexp
// (to every thread).
__device__ __forceinline__ float block_lse(float m, float s) {
  __shared__ float sm[32], ss[32];
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
    ms_combine(m, s, m2, s2);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) sm[warp] = m, ss[warp] = s;
  __syncthreads();
  float bm = sm[0], bs = ss[0];
  for (int k = 1; k < warps; ++k) ms_combine(bm, bs, sm[k], ss[k]);
  return bm + logf(bs);
}

// This thread's running (max, Σ exp(x - max)) over its 8-wide groups of a row (V / 8 = G groups),
// rescaling the sum when the maximum grows. kStream: streaming loads (the row is not read again).
// keep (may be null): shared memory that receives the row's first `kept` groups for a second pass
// (those are not read from memory again either: streaming loads).
template <typename T, bool kStream>
__device__ __forceinline__ void ce_row_max_sum(const T* row, int64_t G, float& m, float& s, Raw8<T>* keep = nullptr,
                                               int64_t kept = 0) {
  for (int64_t g0 = threadIdx.x; g0 < G; g0 += kCeUnroll<T> * kCeThreads) {
    Raw8<T> raw[kCeUnroll<T>];
#pragma unroll
    for (int u = 0; u < kCeUnroll<T>; ++u) {
      const int64_t g = g0 + u * kCeThreads;
      if (g < G) raw[u] = kStream || g < kept ? ldcs8(row + 8 * g) : ld8raw(row + 8 * g);
    }
#pragma unroll
    for (int u = 0; u < kCeUnroll<T>; ++u) {
      if (g0 + u * kCeThreads < G) {
        if (keep && g0 + u * kCeThreads < kept) keep[g0 + u * kCeThreads] = raw[u];
        float f[8];
        unpack(raw[u], f);
        float gm = f[0];
#pragma unroll
        for (int e = 1; e < 8; ++e) gm = fmaxf(gm, f[e]);
        if (gm > m) {
          s *= exp2f((m - gm) * kLog2e);
          m = gm;
        }
        if (m != -INFINITY)
#pragma unroll
          for (int e = 0; e < 8; ++e) s += exp2f((f[e] - m) * kLog2e);
      }
    }
  }
}

// drow = scale * (softmax(row) - onehot(col)) over 8-wide groups, from the row's logsumexp l.
// The target gets (p*scale) - scale computed in fp32 with explicit roundings (no fused
// multiply-add): bit for bit what fp32 got when it was stored as p*scale and fixed up by
// `-= scale`, and rounded to bf16 only once. In place (drow == row) is safe: each element is read
// and then written by the same thread.
// keep (may be null): the row's first `kept` groups as ce_row_max_sum kept them in shared memory,
// read instead of row.
template <typename T>
__device__ __forceinline__ void ce_row_grad(T* drow, const T* row, int64_t G, float l, int64_t col, float scale,
                                            const Raw8<T>* keep = nullptr, int64_t kept = 0) {
  for (int64_t g0 = threadIdx.x; g0 < G; g0 += kCeUnroll<T> * kCeThreads) {
    Raw8<T> raw[kCeUnroll<T>];
#pragma unroll
    for (int u = 0; u < kCeUnroll<T>; ++u) {
      const int64_t g = g0 + u * kCeThreads;
      if (g < G) raw[u] = keep && g < kept ? keep[g] : ldcs8(row + 8 * g);
    }
#pragma unroll
    for (int u = 0; u < kCeUnroll<T>; ++u) {
      const int64_t g = g0 + u * kCeThreads;
      if (g < G) {
        float f[8];
        unpack(raw[u], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          float d = expf(f[e] - l) * scale;
          if (8 * g + e == col) d = __fsub_rn(d, scale);
          f[e] = d;
        }
        store8(drow + 8 * g, f);
      }
    }
  }
}

// One block per row, one read of the row: each thread keeps a running (max, Σ exp(x - max)) of its
// elements, rescaling the sum when the maximum grows.
template <typename T, bool kVec>
__global__ void __launch_bounds__(kCeThreads, 3) cross_entropy_forward_kernel(float* losses, float* lse, const T* logits,
                                                                           const int32_t* targets, int64_t V,
                                                                           int64_t vocab_begin) {
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  float m = -INFINITY, s = 0;
  if constexpr (kVec) {
    ce_row_max_sum<T, true>(row, V / 8, m, s);
  } else {
    for (int64_t j = threadIdx.x; j < V; j += kCeThreads) {
      const float v = load(row + j);
      if (v > m) {
        s = s * expf(m - v) + 1.0f;
        m = v;
      } else if (m != -INFINITY) {
        s += expf(v - m);
      }
    }
  }
  const float l = block_lse(m, s);
  if (threadIdx.x == 0) {
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
__global__ void __launch_bounds__(kCeThreads, 3) cross_entropy_backward_kernel(T* dlogits, const T* logits,
                                                                            const float* lse, const int32_t* targets,
                                                                            int64_t V, int64_t vocab_begin,
                                                                            float scale) {
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

// The same, 8 elements at a time (V a multiple of 8, both rows 16-byte aligned).
template <typename T>
__global__ void __launch_bounds__(kCeThreads, 3) cross_entropy_backward_vec_kernel(T* dlogits, const T* logits,
                                                                                const float* lse,
                                                                                const int32_t* targets, int64_t V,
                                                                                int64_t vocab_begin, float scale) {
  const int64_t n = blockIdx.x, G = V / 8;
  const T* row = logits + n * V;
  T* drow = dlogits + n * V;
  const int32_t y = targets[n];
  if (y < 0) {
    float z[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t g = threadIdx.x; g < G; g += kCeThreads) store8(drow + 8 * g, z);
    return;
  }
  // col may be outside this shard: no one-hot term.
  ce_row_grad(drow, row, G, lse[n], static_cast<int64_t>(y) - vocab_begin, scale);
}

// Forward and backward over the whole vocabulary in one block per row (V a multiple of 8, rows
// 16-byte aligned). The first pass keeps the row's first `kept` 8-wide groups in dynamic shared
// memory, so the second pass reads only the rest from memory (the whole row for GPT-2's 50,304
// bf16 logits; of Llama 3's 128,256, as much as fits). The second pass writes the gradient (in
// place when dlogits == logits). The same arithmetic as the two kernels above, so the same bits.
template <typename T>
__global__ void __launch_bounds__(kCeThreads, 2) cross_entropy_fused_kernel(float* losses, float* lse, T* dlogits,
                                                                         const T* logits, const int32_t* targets,
                                                                         int64_t V, float scale, int64_t kept) {
  extern __shared__ __align__(16) unsigned char ce_keep[];
  const int64_t n = blockIdx.x, G = V / 8;
  const T* row = logits + n * V;
  T* drow = dlogits + n * V;
  Raw8<T>* keep = kept > 0 ? reinterpret_cast<Raw8<T>*>(ce_keep) : nullptr;
  float m = -INFINITY, s = 0;
  ce_row_max_sum<T, false>(row, G, m, s, keep, kept);
  const float l = block_lse(m, s);
  const int32_t y = targets[n];
  float target_logit = 0;
  if (threadIdx.x == 0 && y >= 0 && y < V) target_logit = load(row + y);
  __syncthreads();  // the target's logit is read before any thread overwrites the row
  if (threadIdx.x == 0) {
    lse[n] = l;
    losses[n] = y < 0 || y >= V ? 0.0f : l - target_logit;
  }
  if (y < 0) {
    float z[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t g = threadIdx.x; g < G; g += kCeThreads) store8(drow + 8 * g, z);
    return;
  }
  ce_row_grad(drow, row, G, l, y, scale, static_cast<const Raw8<T>*>(keep), kept);
}

}  // namespace

void rmsnorm_forward(void* out, float* rstd, const void* x, const float* w, Elem e, int64_t N, int64_t D, float eps,
                     cudaStream_t s) {
  if (N == 0) return;
  const RowPlan p = plan_rows(D);
  const bool vec = D % 8 == 0 && p.vec > 0 && aligned16(out) && aligned16(x) && aligned16(w);
  dispatch(e, [&]<typename T>() {
    T* o = static_cast<T*>(out);
    const T* xi = static_cast<const T*>(x);
    if (!vec) {
      rmsnorm_forward_kernel<T><<<static_cast<unsigned>(N), kRowThreads, 0, s>>>(o, rstd, xi, w, D, eps);
      return;
    }
    const int64_t rows = kNormBlock / p.tpr;
    const unsigned blocks = static_cast<unsigned>((N + rows - 1) / rows);
    switch (p.vec) {
      case 1: rmsnorm_forward_vec_kernel<T, 1><<<blocks, kNormBlock, 0, s>>>(o, rstd, xi, w, N, D, p.tpr, eps); break;
      case 2: rmsnorm_forward_vec_kernel<T, 2><<<blocks, kNormBlock, 0, s>>>(o, rstd, xi, w, N, D, p.tpr, eps); break;
      case 4: rmsnorm_forward_vec_kernel<T, 4><<<blocks, kNormBlock, 0, s>>>(o, rstd, xi, w, N, D, p.tpr, eps); break;
      default: rmsnorm_forward_vec_kernel<T, 8><<<blocks, kNormBlock, 0, s>>>(o, rstd, xi, w, N, D, p.tpr, eps); break;
    }
  });
  AGPT_CUDA_LAUNCHED("rmsnorm_forward");
}

int64_t rmsnorm_dw_chunks(int64_t N) { return (N + kDwRowsPerChunk - 1) / kDwRowsPerChunk; }

void rmsnorm_backward(void* dx, float* dw, float* partial, const void* dout, const void* x, const float* w,
                      const float* rstd, Elem e, int64_t N, int64_t D, cudaStream_t s) {
  if (N == 0 || D == 0 || (!dx && !dw)) return;
  const int64_t chunks = rmsnorm_dw_chunks(N);
  const RowPlan p = plan_rows(D);
  const bool vec = D % 8 == 0 && p.vec > 0 && p.vec <= 2 && (!dx || aligned16(dx)) && aligned16(dout) &&
                   aligned16(x) && aligned16(w) && (!dw || aligned16(partial));
  if (vec) {
    float* part = dw ? partial : nullptr;
    const size_t fold = dw && p.tpr < kNormBlock ? static_cast<size_t>(D) * sizeof(float) : 0;
    const unsigned blocks = static_cast<unsigned>(chunks);
    dispatch(e, [&]<typename T>() {
      T* d = static_cast<T*>(dx);
      const T* g = static_cast<const T*>(dout);
      const T* xi = static_cast<const T*>(x);
      switch (p.vec) {  // 1 or 2: longer rows would not fit in registers
        case 1: rmsnorm_backward_vec_kernel<T, 1><<<blocks, kNormBlock, fold, s>>>(d, part, g, xi, w, rstd, N, D, p.tpr); break;
        default: rmsnorm_backward_vec_kernel<T, 2><<<blocks, kNormBlock, fold, s>>>(d, part, g, xi, w, rstd, N, D, p.tpr); break;
      }
    });
    AGPT_CUDA_LAUNCHED("rmsnorm_backward");
  } else {
    if (dx) {
      dispatch(e, [&]<typename T>() {
        rmsnorm_dx_kernel<T><<<static_cast<unsigned>(N), kRowThreads, 0, s>>>(
            static_cast<T*>(dx), static_cast<const T*>(dout), static_cast<const T*>(x), w, rstd, D);
      });
      AGPT_CUDA_LAUNCHED("rmsnorm_backward dx");
    }
    if (dw) {
      dim3 grid(static_cast<unsigned>((D + 255) / 256), static_cast<unsigned>(chunks));
      dispatch(e, [&]<typename T>() {
        rmsnorm_dw_partial_kernel<T><<<grid, 256, 0, s>>>(partial, static_cast<const T*>(dout),
                                                          static_cast<const T*>(x), rstd, N, D);
      });
      AGPT_CUDA_LAUNCHED("rmsnorm_backward dw");
    }
  }
  if (dw) {
    rmsnorm_dw_sum_kernel<<<static_cast<unsigned>((D + 31) / 32), 1024, 0, s>>>(dw, partial, chunks, D);
    AGPT_CUDA_LAUNCHED("rmsnorm_backward dw sum");
  }
}

void sum_squares_chunks(double* result, double* partial, const SumChunk* chunks, int64_t count, cudaStream_t s) {
  if (count == 0) return;
  if (count > INT32_MAX) ::agpt::fail("sum_squares: ", count, " chunks is above the grid limit");
  sum_squares_chunk_kernel<<<static_cast<unsigned>(count), kSumThreads, 0, s>>>(partial, chunks);
  AGPT_CUDA_LAUNCHED("sum_squares chunks");
  sum_squares_chunks_final_kernel<<<1, 1024, 0, s>>>(result, partial, count);
  AGPT_CUDA_LAUNCHED("sum_squares chunks final");
}

void cross_entropy_forward(float* losses, float* lse, const void* logits, Elem e, const int32_t* targets, int64_t N,
                           int64_t V, int64_t vocab_begin, cudaStream_t s) {
  if (N == 0) return;
  const bool vec = V % 8 == 0 && aligned16(logits);
  dispatch(e, [&]<typename T>() {
    const T* l = static_cast<const T*>(logits);
    if (vec)
      cross_entropy_forward_kernel<T, true><<<static_cast<unsigned>(N), kCeThreads, 0, s>>>(losses, lse, l, targets, V,
                                                                                            vocab_begin);
    else
      cross_entropy_forward_kernel<T, false><<<static_cast<unsigned>(N), kCeThreads, 0, s>>>(losses, lse, l, targets,
                                                                                             V, vocab_begin);
  });
  AGPT_CUDA_LAUNCHED("cross_entropy_forward");
}

void cross_entropy_backward(void* dlogits, const void* logits, Elem e, const float* lse, const int32_t* targets,
                            int64_t N, int64_t V, int64_t vocab_begin, float scale, cudaStream_t s) {
  if (N == 0) return;
  const bool vec = V % 8 == 0 && aligned16(logits) && aligned16(dlogits);
  dispatch(e, [&]<typename T>() {
    T* d = static_cast<T*>(dlogits);
    const T* l = static_cast<const T*>(logits);
    if (vec)
      cross_entropy_backward_vec_kernel<T><<<static_cast<unsigned>(N), kCeThreads, 0, s>>>(d, l, lse, targets, V,
                                                                                          vocab_begin, scale);
    else
      cross_entropy_backward_kernel<T><<<static_cast<unsigned>(N), kCeThreads, 0, s>>>(d, l, lse, targets, V,
                                                                                      vocab_begin, scale);
  });
  AGPT_CUDA_LAUNCHED("cross_entropy_backward");
}

void cross_entropy_forward_backward(float* losses, float* lse, void* dlogits, const void* logits, Elem e,
                                    const int32_t* targets, int64_t N, int64_t V, float scale, cudaStream_t s) {
  if (N == 0) return;
  if (!(V % 8 == 0 && aligned16(logits) && aligned16(dlogits))) {
    cross_entropy_forward(losses, lse, logits, e, targets, N, V, 0, s);
    cross_entropy_backward(dlogits, logits, e, lse, targets, N, V, 0, scale, s);
    return;
  }
  dispatch(e, [&]<typename T>() {
    // As much of the row as a block may keep (rows up to 112 KiB: whole, two blocks per SM; longer
    // ones one block per SM: 1B shape, H100, 1.83 ms keeping 224 KiB of the 250 KiB rows, 1.98
    // keeping 112, 2.19 keeping none), never more than the device allows a block.
    int device = 0, optin = 0;
    AGPT_CUDA_CHECK(cudaGetDevice(&device));
    AGPT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const int64_t limit = std::max<int64_t>(optin - (2 << 10), 0);  // static shared memory besides
    const int64_t group_bytes = static_cast<int64_t>(sizeof(Raw8<T>));
    const int64_t kept = std::min(V * static_cast<int64_t>(sizeof(T)), limit) / group_bytes;
    const int64_t keep_bytes = kept * group_bytes;
    // Above 48 KiB of dynamic shared memory a kernel must ask (per device; cheap to repeat).
    AGPT_CUDA_CHECK(cudaFuncSetAttribute(cross_entropy_fused_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(std::max<int64_t>(keep_bytes, 1))));
    cross_entropy_fused_kernel<T><<<static_cast<unsigned>(N), kCeThreads, keep_bytes, s>>>(
        losses, lse, static_cast<T*>(dlogits), static_cast<const T*>(logits), targets, V, scale, kept);
  });
  AGPT_CUDA_LAUNCHED("cross_entropy_forward_backward");
}

}  // namespace agpt::ops::cuda
