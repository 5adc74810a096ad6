// Tensor-core causal grouped-query attention for bf16 activations, flash-attention-2 style (see
// attention_mma.cuh for the contract).
//
// All products use mma.sync.m16n8k16 (bf16 operands, fp32 accumulators; sm_80 and later). Every
// block has 4 warps (128 threads); a tile is 64 rows (queries or keys) and each warp owns 16 of
// them, so score tiles (16 x 64 per warp) and output accumulators (16 x HD per warp) live in
// registers in the mma accumulator layout: lane = 4 * gr + tg holds rows gr and gr + 8, columns
// 8 * j + 2 * tg + {0, 1} of each 8-column block j. That layout is also the A-operand layout of
// the next product, so P (or dS) goes from accumulators to bf16 A fragments without shared memory.
//
// Shared tiles are bf16, row-major, row stride HD + 8 elements (16 bytes of padding: the 8 row
// addresses of one ldmatrix 8x8 matrix fall in 8 different 16-byte bank groups). Operands are
// read with ldmatrix (.trans where the tile's rows are the product's k dimension). Global tiles
// arrive by cp.async (16 bytes per thread per copy; rows past the end are zero-filled), double
// buffered: the next tile is in flight while the current one is used.
//
// Forward: one block per (64-query tile, h, b), key tiles 0..last visible in order, online
// softmax in base 2 (scores pre-multiplied by log2(e)/sqrt(hd)). Backward: delta = rowsum(dout *
// out); dK/dV: one block per (64-key tile, kv head g, b) that loops over the group's query heads
// in order and, for each, over the query tiles that see the key tile (keys are the mma rows:
// Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ, dV += Pᵀ·dO, dK += dSᵀ·Q); dQ: one block per (64-query tile, h, b)
// looping over the visible key tiles (S = Q·Kᵀ, dP = dO·Vᵀ, dQ += dS·K). P is recomputed as
// exp2(s * scale * log2(e) - lse * log2(e)). No atomics: every output element is summed by one
// thread in a fixed order, so results are bitwise reproducible.
#include <cuda_bf16.h>

#include <atomic>

#include "ops/cuda/attention_mma.cuh"
#include "ops/cuda/attention_launch.cuh"
#include "ops/cuda/cuda_common.cuh"

namespace agpt::ops::cuda {
namespace {

using bf16 = __nv_bfloat16;

constexpr int kTile = 64;       // queries per query tile = keys per key tile
constexpr int kThreads = 128;   // 4 warps x 16 rows
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Minimum resident blocks per multiprocessor asked of the compiler (__launch_bounds__), which
// caps registers per thread at 65536 / (128 * n). Overridable for tuning builds. Measured on an
// H200 (124M shape and H=32/KV=8 hd=64): fwd 4 or 3, dK/dV 2, dQ 2 or 4 were no faster (bwd up to
// 13% slower at the 124M shape) than these defaults.
#ifndef AGPT_ATTN_MMA_FWD_MINB
#define AGPT_ATTN_MMA_FWD_MINB 1
#endif
#ifndef AGPT_ATTN_MMA_DKDV_MINB64
#define AGPT_ATTN_MMA_DKDV_MINB64 3
#endif
#ifndef AGPT_ATTN_MMA_DQ_MINB64
#define AGPT_ATTN_MMA_DQ_MINB64 3
#endif
#ifndef AGPT_ATTN_MMA_BWD_MINB128
#define AGPT_ATTN_MMA_BWD_MINB128 2
#endif
constexpr int kFwdMinBlocks = AGPT_ATTN_MMA_FWD_MINB;
constexpr int kDkdvMinBlocks64 = AGPT_ATTN_MMA_DKDV_MINB64;
constexpr int kDqMinBlocks64 = AGPT_ATTN_MMA_DQ_MINB64;
constexpr int kBwdMinBlocks128 = AGPT_ATTN_MMA_BWD_MINB128;

// ---- PTX wrappers -------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared; zero-filled (nothing read) when !pred.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool pred) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(pred ? 16 : 0)
               : "memory");
}
// 4 bytes global -> shared; zero-filled when !pred.
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool pred) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(pred ? 4 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c[16x8] += a[16x16] * b[16x8]; a row-major fragment, b column-major fragment.
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats rounded to bf16, lo in the low half (the lower column).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// ---- fragment helpers ---------------------------------------------------------------------------
// For a shared tile T (row stride LDS):
//  A fragment of rows r0..r0+15, k columns k0..k0+15 (T row-major [m][k]):     ldsm_a
//  B fragments of two 8-column n blocks n0..n0+15 when T is [n][k] (Kᵀ-like):   ldsm_b_nk -> {b0,b1} x 2
//  B fragments of two 8-column n blocks n0..n0+15 when T is [k][n] (V-like):    ldsm_b_kn -> {b0,b1} x 2

template <int LDS>
__device__ __forceinline__ void ldsm_a(uint32_t (&a)[4], const bf16* t, int r0, int k0, int lane) {
  ldsm_x4(a, t + (r0 + (lane & 15)) * LDS + k0 + ((lane >> 4) << 3));
}
template <int LDS>
__device__ __forceinline__ void ldsm_b_nk(uint32_t (&b)[4], const bf16* t, int n0, int k0, int lane) {
  ldsm_x4(b, t + (n0 + (lane & 7) + ((lane >> 4) << 3)) * LDS + k0 + (((lane >> 3) & 1) << 3));
}
template <int LDS>
__device__ __forceinline__ void ldsm_b_kn(uint32_t (&b)[4], const bf16* t, int k0, int n0, int lane) {
  ldsm_x4_t(b, t + (k0 + (lane & 7) + (((lane >> 3) & 1) << 3)) * LDS + n0 + ((lane >> 4) << 3));
}

// acc[16 x 64] (8 n blocks) = A[16 x HD] · Tᵀ where the shared tile T is [64][HD] (rows = n).
// A comes from the shared tile As (rows r0..r0+15).
template <int HD>
__device__ __forceinline__ void gemm_abt(float (&acc)[8][4], const bf16* As, int r0, const bf16* Bs, int lane) {
  constexpr int LDS = HD + 8;
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
    uint32_t a[4];
    ldsm_a<LDS>(a, As, r0, kk * 16, lane);
#pragma unroll
    for (int n2 = 0; n2 < 4; ++n2) {
      uint32_t b[4];
      ldsm_b_nk<LDS>(b, Bs, n2 * 16, kk * 16, lane);
      mma16816(acc[2 * n2], a, b[0], b[1]);
      mma16816(acc[2 * n2 + 1], a, b[2], b[3]);
    }
  }
}

// acc[16 x HD] += P[16 x 64] · T where P is in accumulator layout (rounded to bf16 here) and the
// shared tile T is [64][HD] (rows = k).
template <int HD>
__device__ __forceinline__ void gemm_pv(float (&acc)[HD / 8][4], const float (&p)[8][4], const bf16* Bs, int lane) {
  constexpr int LDS = HD + 8;
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    const uint32_t a[4] = {pack_bf16(p[2 * kk][0], p[2 * kk][1]), pack_bf16(p[2 * kk][2], p[2 * kk][3]),
                           pack_bf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                           pack_bf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int d2 = 0; d2 < HD / 16; ++d2) {
      uint32_t b[4];
      ldsm_b_kn<LDS>(b, Bs, kk * 16, d2 * 16, lane);
      mma16816(acc[2 * d2], a, b[0], b[1]);
      mma16816(acc[2 * d2 + 1], a, b[2], b[3]);
    }
  }
}

// Copies rows [0, rows) of a 64 x HD bf16 tile (global row stride `stride` elements) into shared
// memory (row stride HD + 8); rows >= rows are zero-filled. All 128 threads take part.
template <int HD>
__device__ __forceinline__ void load_tile(bf16* dst, const bf16* src, int64_t stride, int rows) {
  constexpr int C = HD / 8;  // 16-byte chunks per row
  constexpr int N = kTile * C / kThreads;
#pragma unroll
  for (int it = 0; it < N; ++it) {
    const int i = static_cast<int>(threadIdx.x) + it * kThreads;
    const int row = i / C, c = (i % C) * 8;
    const bool ok = row < rows;
    cp_async16(dst + row * (HD + 8) + c, ok ? src + row * stride + c : src, ok);
  }
}

template <int HD>
constexpr size_t tile_bytes() {
  return sizeof(bf16) * kTile * (HD + 8);
}
template <int HD>
constexpr size_t fwd_smem_bytes() {  // Q, K x2, V x2
  return 5 * tile_bytes<HD>();
}
template <int HD>
constexpr size_t dkdv_smem_bytes() {  // K, V, Q x2, dO x2; lse x2, delta x2
  return 6 * tile_bytes<HD>() + 4 * kTile * sizeof(float);
}
template <int HD>
constexpr size_t dq_smem_bytes() {  // Q, dO, K x2, V x2
  return 6 * tile_bytes<HD>();
}

// ---- forward ------------------------------------------------------------------------------------
// grid (ceil(Tq/64), H, B); blockIdx.x = 0 takes the LAST query tile (the most key tiles) first.
template <int HD>
__global__ void __launch_bounds__(kThreads, HD <= 64 ? kFwdMinBlocks : 1)
    attention_forward_mma_kernel(bf16* __restrict__ out, float* __restrict__ lse, const bf16* __restrict__ q,
                                 const bf16* __restrict__ k, const bf16* __restrict__ v, int64_t Tq, int64_t Tk,
                                 int H, int KV, float sl2) {
  constexpr int LDS = HD + 8, KD = HD / 16, ND = HD / 8, TE = kTile * LDS;
  extern __shared__ uint4 smem_u4[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_u4);
  bf16* sK = sQ + TE;      // 2 stages
  bf16* sV = sK + 2 * TE;  // 2 stages

  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int gr = lane >> 2, tg = lane & 3;
  const int64_t t0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * kTile;
  const int h = static_cast<int>(blockIdx.y);
  const int64_t b = blockIdx.z;
  const int g = h / (H / KV);
  const int qrows = static_cast<int>(Tq - t0 < kTile ? Tq - t0 : kTile);
  const int64_t qstride = static_cast<int64_t>(H) * HD, kstride = static_cast<int64_t>(KV) * HD;
  const bf16* kbase = k + (b * Tk * KV + g) * static_cast<int64_t>(HD);
  const bf16* vbase = v + (b * Tk * KV + g) * static_cast<int64_t>(HD);
  const int64_t p0 = Tk - Tq + t0;                                 // position of local row 0
  const int nkt = static_cast<int>((p0 + qrows - 1) / kTile) + 1;  // key tiles any row sees

  load_tile<HD>(sQ, q + ((b * Tq + t0) * H + h) * HD, qstride, qrows);
  {
    const int krows = static_cast<int>(Tk < kTile ? Tk : kTile);
    load_tile<HD>(sK, kbase, kstride, krows);
    load_tile<HD>(sV, vbase, kstride, krows);
  }
  cp_async_commit();

  uint32_t qf[KD][4];
  float o[ND][4];
#pragma unroll
  for (int d = 0; d < ND; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int wr = warp * 16;  // the warp's first local row

  for (int kt = 0; kt < nkt; ++kt) {
    if (kt + 1 < nkt) {
      const int64_t k1 = static_cast<int64_t>(kt + 1) * kTile;
      const int krows = static_cast<int>(Tk - k1 < kTile ? Tk - k1 : kTile);
      const int st = (kt + 1) & 1;
      load_tile<HD>(sK + st * TE, kbase + k1 * kstride, kstride, krows);
      load_tile<HD>(sV + st * TE, vbase + k1 * kstride, kstride, krows);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* cK = sK + (kt & 1) * TE;
    const bf16* cV = sV + (kt & 1) * TE;
    if (kt == 0) {
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) ldsm_a<LDS>(qf[kk], sQ, wr, kk * 16, lane);
    }

    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
      for (int n2 = 0; n2 < 4; ++n2) {
        uint32_t bb[4];
        ldsm_b_nk<LDS>(bb, cK, n2 * 16, kk * 16, lane);
        mma16816(s[2 * n2], qf[kk], bb[0], bb[1]);
        mma16816(s[2 * n2 + 1], qf[kk], bb[2], bb[3]);
      }
    }

    // Key k0 + c is visible to local row r iff c - r <= p0 - k0 (= lim).
    const int64_t lim = p0 - static_cast<int64_t>(kt) * kTile;
    const bool need_mask = lim < kTile - 1 - wr;  // some (c, r) of this warp has c - r > lim
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[j][e] * sl2;
        if (need_mask) {
          const int c = 8 * j + 2 * tg + (e & 1), r = wr + gr + 8 * (e >> 1);
          if (c - r > lim) x = -INFINITY;
        }
        s[j][e] = x;
      }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 8; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * i], s[j][2 * i + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float mnew = fmaxf(m[i], mx);
      const float mref = mnew == -INFINITY ? 0.f : mnew;  // nothing visible yet
      const float corr = exp2f(m[i] - mref);
      m[i] = mnew;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        s[j][2 * i] = exp2f(s[j][2 * i] - mref);
        s[j][2 * i + 1] = exp2f(s[j][2 * i + 1] - mref);
        sum += s[j][2 * i] + s[j][2 * i + 1];
      }
      l[i] = l[i] * corr + sum;  // this thread's partial; the quad is summed at the end
#pragma unroll
      for (int d = 0; d < ND; ++d) {
        o[d][2 * i] *= corr;
        o[d][2 * i + 1] *= corr;
      }
    }

    gemm_pv<HD>(o, s, cV, lane);
    __syncthreads();  // everyone is done with this stage before it is refilled
  }

  float inv[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    inv[i] = 1.0f / l[i];
  }
  // Stage the warp's 16 output rows in its own rows of sQ (only this warp read them), then write
  // them out 16 bytes per lane.
  bf16* stage = sQ + wr * LDS;
#pragma unroll
  for (int j = 0; j < ND; ++j) {
    *reinterpret_cast<uint32_t*>(stage + gr * LDS + 8 * j + 2 * tg) = pack_bf16(o[j][0] * inv[0], o[j][1] * inv[0]);
    *reinterpret_cast<uint32_t*>(stage + (gr + 8) * LDS + 8 * j + 2 * tg) =
        pack_bf16(o[j][2] * inv[1], o[j][3] * inv[1]);
  }
  __syncwarp();
#pragma unroll
  for (int i = lane; i < 16 * ND; i += 32) {
    const int rr = i / ND, c = (i % ND) * 8, row = wr + rr;
    if (row < qrows)
      *reinterpret_cast<uint4*>(out + ((b * Tq + t0 + row) * H + h) * HD + c) =
          *reinterpret_cast<const uint4*>(stage + rr * LDS + c);
  }
  if (tg == 0) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int row = wr + gr + 8 * i;
      if (row < qrows) lse[(b * H + h) * Tq + t0 + row] = (m[i] + log2f(l[i])) * kLn2;
    }
  }
}

// ---- backward: delta ----------------------------------------------------------------------------
// delta[(b*H + h)*T + t] = dout · out for that row (fp32 sum of bf16 products); HD/8 consecutive
// threads (8 or 16, inside one warp) share a row, 8 elements each, summed by a fixed xor tree.
constexpr int kDeltaThreads = 256;
template <int HD>
__global__ void attention_delta_mma_kernel(float* __restrict__ delta, const bf16* __restrict__ dout,
                                           const bf16* __restrict__ out, int64_t rows, int64_t T, int H) {
  constexpr int G = HD / 8;
  static_assert(G <= 32 && 32 % G == 0);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kDeltaThreads + threadIdx.x;
  const int64_t n = i / G;  // row of [B, T, H]
  const int c = static_cast<int>(i % G) * 8;
  float sum = 0.f;
  if (n < rows) {
    const uint4 a = __ldg(reinterpret_cast<const uint4*>(dout + n * HD + c));
    const uint4 o = __ldg(reinterpret_cast<const uint4*>(out + n * HD + c));
    const __nv_bfloat162* a2 = reinterpret_cast<const __nv_bfloat162*>(&a);
    const __nv_bfloat162* o2 = reinterpret_cast<const __nv_bfloat162*>(&o);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 af = __bfloat1622float2(a2[e]), of = __bfloat1622float2(o2[e]);
      sum = fmaf(af.x, of.x, sum);
      sum = fmaf(af.y, of.y, sum);
    }
  }
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (n < rows && c == 0) {
    const int64_t h = n % H, bt = n / H, t = bt % T, b = bt / T;
    delta[(b * H + h) * T + t] = sum;
  }
}

// ---- backward: dK, dV ---------------------------------------------------------------------------
// grid (ceil(T/64), KV, B); blockIdx.x = 0 (the key tile with the most query tiles) first. The
// block's 64 keys are the mma rows (warp w: keys 16w..16w+15); a query tile gives the columns.
template <int HD>
__global__ void __launch_bounds__(kThreads, HD <= 64 ? kDkdvMinBlocks64 : kBwdMinBlocks128)
    attention_dkdv_mma_kernel(float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ delta,
                              const bf16* __restrict__ dout, const bf16* __restrict__ q, const bf16* __restrict__ k,
                              const bf16* __restrict__ v, const float* __restrict__ lse, int64_t T, int H, int KV,
                              float scale, float sl2) {
  constexpr int LDS = HD + 8, ND = HD / 8, TE = kTile * LDS;
  extern __shared__ uint4 smem_u4[];
  bf16* sK = reinterpret_cast<bf16*>(smem_u4);
  bf16* sV = sK + TE;
  bf16* sQ = sV + TE;      // 2 stages
  bf16* sO = sQ + 2 * TE;  // dout, 2 stages
  float* sL = reinterpret_cast<float*>(sO + 2 * TE);  // lse, 2 stages of 64
  float* sD = sL + 2 * kTile;                         // delta, 2 stages of 64

  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int gr = lane >> 2, tg = lane & 3;
  const int kt = static_cast<int>(blockIdx.x);
  const int64_t k0 = static_cast<int64_t>(kt) * kTile;
  const int g = static_cast<int>(blockIdx.y);
  const int64_t b = blockIdx.z;
  const int group = H / KV;
  const int krows = static_cast<int>(T - k0 < kTile ? T - k0 : kTile);
  const int64_t qstride = static_cast<int64_t>(H) * HD, kstride = static_cast<int64_t>(KV) * HD;
  const int64_t kvoff = ((b * T + k0) * KV + g) * HD;  // row k0 of kv head g
  const int nqt = static_cast<int>((T + kTile - 1) / kTile);
  const int per_head = nqt - kt;  // query tiles kt..nqt-1 see this key tile
  const int n_it = group * per_head;
  const int wr = warp * 16;

  // Starts the copies of step `it` (head g*group + it/per_head, query tile kt + it%per_head).
  auto issue = [&](int it, int st) {
    const int h = g * group + it / per_head;
    const int64_t q0 = static_cast<int64_t>(kt + it % per_head) * kTile;
    const int qrows = static_cast<int>(T - q0 < kTile ? T - q0 : kTile);
    const int64_t qoff = ((b * T + q0) * H + h) * HD;
    load_tile<HD>(sQ + st * TE, q + qoff, qstride, qrows);
    load_tile<HD>(sO + st * TE, dout + qoff, qstride, qrows);
    const int64_t roff = (b * H + h) * T + q0;
    if (tid < kTile)
      cp_async4(sL + st * kTile + tid, lse + roff + (tid < qrows ? tid : 0), tid < qrows);
    else
      cp_async4(sD + st * kTile + (tid - kTile), delta + roff + (tid - kTile < qrows ? tid - kTile : 0),
                tid - kTile < qrows);
  };

  load_tile<HD>(sK, k + kvoff, kstride, krows);
  load_tile<HD>(sV, v + kvoff, kstride, krows);
  issue(0, 0);
  cp_async_commit();

  float dka[ND][4], dva[ND][4];
#pragma unroll
  for (int d = 0; d < ND; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) dka[d][e] = dva[d][e] = 0.f;

  for (int it = 0; it < n_it; ++it) {
    if (it + 1 < n_it) {
      issue(it + 1, (it + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int st = it & 1;
    const bf16* cQ = sQ + st * TE;
    const bf16* cO = sO + st * TE;
    const float* cL = sL + st * kTile;
    const float* cD = sD + st * kTile;
    const int64_t q0 = static_cast<int64_t>(kt + it % per_head) * kTile;

    float s[8][4], dp[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = dp[j][e] = 0.f;
    gemm_abt<HD>(s, sK, wr, cQ, lane);   // Sᵀ = K Qᵀ
    gemm_abt<HD>(dp, sV, wr, cO, lane);  // dPᵀ = V dOᵀ

    // Masked: key > query (causal) or query >= T (columns past the end of a ragged tile).
    const bool need_mask = (q0 < k0 + kTile - 1) || (q0 + kTile > T);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int c = 8 * j + 2 * tg;
      const float2 lc = *reinterpret_cast<const float2*>(cL + c);
      const float2 dc = *reinterpret_cast<const float2*>(cD + c);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int cc = c + (e & 1);
        const float lv = (e & 1) ? lc.y : lc.x, dv_ = (e & 1) ? dc.y : dc.x;
        bool visible = true;
        if (need_mask) {
          const int64_t key = k0 + wr + gr + 8 * (e >> 1), query = q0 + cc;
          visible = key <= query && query < T;
        }
        const float pv = visible ? exp2f(fmaf(s[j][e], sl2, -lv * kLog2e)) : 0.f;
        s[j][e] = pv;
        dp[j][e] = pv * (dp[j][e] - dv_) * scale;
      }
    }
    gemm_pv<HD>(dva, s, cO, lane);   // dV += Pᵀ dO
    gemm_pv<HD>(dka, dp, cQ, lane);  // dK += dSᵀ Q
    __syncthreads();  // everyone is done with this stage before it is refilled
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = wr + gr + 8 * i;
    if (r < krows) {
      float* dkrow = dk + kvoff + r * kstride;
      float* dvrow = dv + kvoff + r * kstride;
#pragma unroll
      for (int j = 0; j < ND; ++j) {
        const int c = 8 * j + 2 * tg;
        float2 x = *reinterpret_cast<float2*>(dkrow + c);
        x.x += dka[j][2 * i];
        x.y += dka[j][2 * i + 1];
        *reinterpret_cast<float2*>(dkrow + c) = x;
        float2 y = *reinterpret_cast<float2*>(dvrow + c);
        y.x += dva[j][2 * i];
        y.y += dva[j][2 * i + 1];
        *reinterpret_cast<float2*>(dvrow + c) = y;
      }
    }
  }
}

// ---- backward: dQ -------------------------------------------------------------------------------
// grid (ceil(T/64), H, B); blockIdx.x = 0 takes the LAST query tile (the most key tiles) first.
template <int HD>
__global__ void __launch_bounds__(kThreads, HD <= 64 ? kDqMinBlocks64 : kBwdMinBlocks128)
    attention_dq_mma_kernel(float* __restrict__ dq, const float* __restrict__ delta, const bf16* __restrict__ dout,
                            const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                            const float* __restrict__ lse, int64_t T, int H, int KV, float scale, float sl2) {
  constexpr int LDS = HD + 8, ND = HD / 8, TE = kTile * LDS;
  extern __shared__ uint4 smem_u4[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_u4);
  bf16* sO = sQ + TE;      // dout
  bf16* sK = sO + TE;      // 2 stages
  bf16* sV = sK + 2 * TE;  // 2 stages

  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int gr = lane >> 2, tg = lane & 3;
  const int qt = static_cast<int>(gridDim.x - 1 - blockIdx.x);
  const int64_t q0 = static_cast<int64_t>(qt) * kTile;
  const int h = static_cast<int>(blockIdx.y);
  const int64_t b = blockIdx.z;
  const int g = h / (H / KV);
  const int qrows = static_cast<int>(T - q0 < kTile ? T - q0 : kTile);
  const int64_t qstride = static_cast<int64_t>(H) * HD, kstride = static_cast<int64_t>(KV) * HD;
  const int64_t qoff = ((b * T + q0) * H + h) * HD;
  const bf16* kbase = k + (b * T * KV + g) * static_cast<int64_t>(HD);
  const bf16* vbase = v + (b * T * KV + g) * static_cast<int64_t>(HD);
  const int nkt = qt + 1;
  const int wr = warp * 16;

  load_tile<HD>(sQ, q + qoff, qstride, qrows);
  load_tile<HD>(sO, dout + qoff, qstride, qrows);
  {
    const int krows = static_cast<int>(T < kTile ? T : kTile);
    load_tile<HD>(sK, kbase, kstride, krows);
    load_tile<HD>(sV, vbase, kstride, krows);
  }
  cp_async_commit();

  float lr[2], dr[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = wr + gr + 8 * i;
    lr[i] = r < qrows ? lse[(b * H + h) * T + q0 + r] * kLog2e : 0.f;
    dr[i] = r < qrows ? delta[(b * H + h) * T + q0 + r] : 0.f;
  }

  float dqa[ND][4];
#pragma unroll
  for (int d = 0; d < ND; ++d) dqa[d][0] = dqa[d][1] = dqa[d][2] = dqa[d][3] = 0.f;

  for (int kt = 0; kt < nkt; ++kt) {
    if (kt + 1 < nkt) {
      const int64_t k1 = static_cast<int64_t>(kt + 1) * kTile;
      const int krows = static_cast<int>(T - k1 < kTile ? T - k1 : kTile);
      const int st = (kt + 1) & 1;
      load_tile<HD>(sK + st * TE, kbase + k1 * kstride, kstride, krows);
      load_tile<HD>(sV + st * TE, vbase + k1 * kstride, kstride, krows);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const bf16* cK = sK + (kt & 1) * TE;
    const bf16* cV = sV + (kt & 1) * TE;

    float s[8][4], dp[8][4];
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = dp[j][e] = 0.f;
    gemm_abt<HD>(s, sQ, wr, cK, lane);   // S = Q Kᵀ
    gemm_abt<HD>(dp, sO, wr, cV, lane);  // dP = dO Vᵀ

    // Causal: the diagonal tile only (key tile qt). Rows past T are never written.
    const bool need_mask = kt == qt;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e >> 1;
        bool visible = true;
        if (need_mask) visible = 8 * j + 2 * tg + (e & 1) <= wr + gr + 8 * i;
        const float pv = visible ? exp2f(fmaf(s[j][e], sl2, -lr[i])) : 0.f;
        dp[j][e] = pv * (dp[j][e] - dr[i]) * scale;
      }
    gemm_pv<HD>(dqa, dp, cK, lane);  // dQ += dS K
    __syncthreads();  // everyone is done with this stage before it is refilled
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = wr + gr + 8 * i;
    if (r < qrows) {
      float* dqrow = dq + qoff + r * qstride;
#pragma unroll
      for (int j = 0; j < ND; ++j) {
        const int c = 8 * j + 2 * tg;
        float2 x = *reinterpret_cast<float2*>(dqrow + c);
        x.x += dqa[j][2 * i];
        x.y += dqa[j][2 * i + 1];
        *reinterpret_cast<float2*>(dqrow + c) = x;
      }
    }
  }
}

// ---- host helpers -------------------------------------------------------------------------------

// Per device (0..63): bit set once checked. Tensor-core bf16 mma needs compute capability >= 8.0.
std::atomic<uint64_t> arch_checked{0}, arch_ok{0};
bool device_ok() {
  int dev = 0;
  AGPT_CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = dev >= 0 && dev < 64 ? (uint64_t{1} << dev) : 0;
  if (bit != 0 && (arch_checked.load(std::memory_order_acquire) & bit) != 0)
    return (arch_ok.load(std::memory_order_acquire) & bit) != 0;
  int major = 0;
  AGPT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  const bool ok = major >= 8;
  if (ok) arch_ok.fetch_or(bit, std::memory_order_acq_rel);
  arch_checked.fetch_or(bit, std::memory_order_acq_rel);
  return ok;
}

bool shape_ok(int64_t B, int64_t T, int64_t H, int64_t KV, int64_t hd) {
  return attention_shape_ok(B, T, H, KV, hd, kTile);
}

template <int HD>
bool forward_impl(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int64_t B, int64_t Tq,
                  int64_t Tk, int64_t H, int64_t KV, cudaStream_t s) {
  constexpr size_t smem = fwd_smem_bytes<HD>();
  if (!allow_smem<attention_forward_mma_kernel<HD>>(smem)) return false;
  const dim3 grid(static_cast<unsigned>((Tq + kTile - 1) / kTile), static_cast<unsigned>(H),
                  static_cast<unsigned>(B));
  const float sl2 = kLog2e / sqrtf(static_cast<float>(HD));
  attention_forward_mma_kernel<HD><<<grid, kThreads, smem, s>>>(out, lse, q, k, v, Tq, Tk, static_cast<int>(H),
                                                                 static_cast<int>(KV), sl2);
  AGPT_CUDA_LAUNCHED("attention_forward_mma");
  return true;
}

template <int HD>
bool backward_impl(float* dq, float* dk, float* dv, float* delta, const bf16* dout, const bf16* q, const bf16* k,
                   const bf16* v, const bf16* out, const float* lse, int64_t B, int64_t T, int64_t H, int64_t KV,
                   cudaStream_t s) {
  constexpr size_t smem_kv = dkdv_smem_bytes<HD>(), smem_q = dq_smem_bytes<HD>();
  // Check both before launching anything, so that false means nothing was done.
  if (!allow_smem<attention_dkdv_mma_kernel<HD>>(smem_kv)) return false;
  if (!allow_smem<attention_dq_mma_kernel<HD>>(smem_q)) return false;
  const int64_t rows = B * T * H;
  const int64_t delta_blocks = (rows * (HD / 8) + kDeltaThreads - 1) / kDeltaThreads;
  if (delta_blocks > kMaxGridX) return false;
  const float scale = 1.0f / sqrtf(static_cast<float>(HD));
  const float sl2 = scale * kLog2e;
  const unsigned tiles = static_cast<unsigned>((T + kTile - 1) / kTile);

  attention_delta_mma_kernel<HD><<<static_cast<unsigned>(delta_blocks), kDeltaThreads, 0, s>>>(
      delta, dout, out, rows, T, static_cast<int>(H));
  AGPT_CUDA_LAUNCHED("attention_backward_mma delta");
  attention_dkdv_mma_kernel<HD>
      <<<dim3(tiles, static_cast<unsigned>(KV), static_cast<unsigned>(B)), kThreads, smem_kv, s>>>(
          dk, dv, delta, dout, q, k, v, lse, T, static_cast<int>(H), static_cast<int>(KV), scale, sl2);
  AGPT_CUDA_LAUNCHED("attention_backward_mma dk dv");
  attention_dq_mma_kernel<HD>
      <<<dim3(tiles, static_cast<unsigned>(H), static_cast<unsigned>(B)), kThreads, smem_q, s>>>(
          dq, delta, dout, q, k, v, lse, T, static_cast<int>(H), static_cast<int>(KV), scale, sl2);
  AGPT_CUDA_LAUNCHED("attention_backward_mma dq");
  return true;
}

}  // namespace

bool attention_forward_mma(void* out, float* lse, const void* q, const void* k, const void* v, int64_t B,
                           int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd, cudaStream_t s) {
  if (!shape_ok(B, Tq, H, KV, hd) || Tk < Tq) return false;
  if (!aligned16(out) || !aligned16(q) || !aligned16(k) || !aligned16(v)) return false;
  if (!device_ok()) return false;
  if (B == 0 || Tq == 0) return true;  // nothing to compute
  bf16* o = static_cast<bf16*>(out);
  const bf16 *qq = static_cast<const bf16*>(q), *kk = static_cast<const bf16*>(k), *vv = static_cast<const bf16*>(v);
  return hd == 64 ? forward_impl<64>(o, lse, qq, kk, vv, B, Tq, Tk, H, KV, s)
                  : forward_impl<128>(o, lse, qq, kk, vv, B, Tq, Tk, H, KV, s);
}

bool attention_backward_mma(float* dq, float* dk, float* dv, float* delta, const void* dout, const void* q,
                            const void* k, const void* v, const void* out, const float* lse, int64_t B, int64_t T,
                            int64_t H, int64_t KV, int64_t hd, cudaStream_t s) {
  if (!shape_ok(B, T, H, KV, hd)) return false;
  if (!aligned16(dq) || !aligned16(dk) || !aligned16(dv) || !aligned16(dout) || !aligned16(q) || !aligned16(k) ||
      !aligned16(v) || !aligned16(out))
    return false;
  if (!device_ok()) return false;
  if (B == 0 || T == 0) return true;  // nothing to compute
  const bf16 *g = static_cast<const bf16*>(dout), *qq = static_cast<const bf16*>(q),
             *kk = static_cast<const bf16*>(k), *vv = static_cast<const bf16*>(v),
             *oo = static_cast<const bf16*>(out);
  return hd == 64 ? backward_impl<64>(dq, dk, dv, delta, g, qq, kk, vv, oo, lse, B, T, H, KV, s)
                  : backward_impl<128>(dq, dk, dv, delta, g, qq, kk, vv, oo, lse, B, T, H, KV, s);
}

}  // namespace agpt::ops::cuda
