// Tiled fp32 causal grouped-query attention, flash-attention-2 style (see attention_tiled.cuh for
// the contract). Plain fp32 FMAs, no tensor cores: the same numbers as the simple kernels of
// attention.cu up to summation order.
//
// Tiles: 64 queries x 64 keys, head dim HD in {64, 128}. Every block has 256 threads seen as a
// 16 x 16 grid, tx = tid % 16 (a half-warp shares ty), ty = tid / 16. For a 64 x 64 score tile a
// thread owns rows 4*ty + i (i < 4) and columns tx + 16*j (j < 4): a 4 x 4 register tile; row
// reductions (softmax max and sum) are xor-shuffles inside the half-warp. For a 64 x HD output
// tile a thread owns the same 4 rows and the float4 columns 4*tx + 64*jj (jj < HD/64).
//
// Shared tiles are row-major with the row stride padded to HD + 4 floats (64 x 64 probability
// tiles: 68): float4 reads of 8 consecutive rows then hit 8 different 4-bank groups, and the two
// half-warps of a warp (rows 4 apart, 16 banks apart) never collide.
//
// Forward: one block per (query tile, h, b), key tiles 0..last visible in order, online softmax.
// Backward: delta = rowsum(dout * out); dK/dV: one block per (key tile, kv head g, b) that loops
// over the group's query heads in order and, for each, over the query tiles that see the key
// tile; dQ: one block per (query tile, h, b) looping over the visible key tiles. p is recomputed
// as exp(s * scale - lse). No atomics: every output element is summed by one thread in fixed order.
#include <atomic>

#include "ops/cuda/attention_tiled.cuh"
#include "ops/cuda/attention_launch.cuh"
#include "ops/cuda/cuda_common.cuh"

namespace agpt::ops::cuda {
namespace {

constexpr int kTile = 64;        // queries per query tile = keys per key tile
constexpr int kThreads = 256;    // 16 x 16
constexpr int kPLd = kTile + 4;  // row stride of 64 x 64 tiles kept in shared memory

__device__ __forceinline__ float dot4(const float4& a, const float4& b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  acc = fmaf(a.w, b.w, acc);
  return acc;
}

// Component e of v; e is a compile-time constant after unrolling.
__device__ __forceinline__ float comp(const float4& v, int e) {
  return e == 0 ? v.x : e == 1 ? v.y : e == 2 ? v.z : v.w;
}

__device__ __forceinline__ float4 lds4(const float* p) { return *reinterpret_cast<const float4*>(p); }

// acc[0..3] += a * b (one float4 column chunk of an output row).
__device__ __forceinline__ void axpy4(float* acc, float a, const float4& b) {
  acc[0] = fmaf(a, b.x, acc[0]);
  acc[1] = fmaf(a, b.y, acc[1]);
  acc[2] = fmaf(a, b.z, acc[2]);
  acc[3] = fmaf(a, b.w, acc[3]);
}

// A 64 x HD tile of global rows src + r * stride (r < rows; rows beyond are zero), fetched into
// registers first (all loads in flight), then stored to shared memory with row stride HD + 4.
template <int HD>
struct TileLoad {
  static constexpr int kC4 = HD / 4;                      // float4 per row
  static constexpr int kPer = kTile * kC4 / kThreads;     // float4 per thread
  static_assert(kTile * kC4 % kThreads == 0);
  float4 r[kPer];

  __device__ __forceinline__ void fetch(const float* src, int64_t stride, int rows) {
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int i = static_cast<int>(threadIdx.x) + it * kThreads;
      const int row = i / kC4, c = (i % kC4) * 4;
      r[it] = row < rows ? __ldg(reinterpret_cast<const float4*>(src + row * stride + c))
                         : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  }
  __device__ __forceinline__ void store(float* dst) const {
#pragma unroll
    for (int it = 0; it < kPer; ++it) {
      const int i = static_cast<int>(threadIdx.x) + it * kThreads;
      const int row = i / kC4, c = (i % kC4) * 4;
      *reinterpret_cast<float4*>(dst + row * (HD + 4) + c) = r[it];
    }
  }
};

template <int HD>
constexpr size_t fwd_smem_bytes() {  // Qs, Ks (reused for P), Vs
  return sizeof(float) * 3 * kTile * (HD + 4);
}
template <int HD>
constexpr size_t dkdv_smem_bytes() {  // Ks, Vs, Qs, dOs; P, dS; lse, delta
  return sizeof(float) * (4 * kTile * (HD + 4) + 2 * kTile * kPLd + 2 * kTile);
}
template <int HD>
constexpr size_t dq_smem_bytes() {  // Qs, dOs, Ks, Vs (reused for dS)
  return sizeof(float) * 4 * kTile * (HD + 4);
}

// ---- forward ------------------------------------------------------------------------------------
// grid (ceil(Tq/64), H, B); blockIdx.x = 0 takes the LAST query tile (the most key tiles) first.
template <int HD>
__global__ void __launch_bounds__(kThreads, 2)
    attention_forward_tiled_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                                   int64_t Tq, int64_t Tk, int H, int KV, float scale) {
  constexpr int LD = HD + 4, DC = HD / 64;
  static_assert(kTile * kPLd <= kTile * LD, "P tile must fit in the K tile it reuses");
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);
  float* Ks = Qs + kTile * LD;
  float* Vs = Ks + kTile * LD;
  float* Ps = Ks;  // P reuses the K tile once the scores are in registers

  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int64_t t0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * kTile;
  const int h = static_cast<int>(blockIdx.y);
  const int64_t b = blockIdx.z;
  const int g = h / (H / KV);
  const int qrows = static_cast<int>(Tq - t0 < kTile ? Tq - t0 : kTile);
  const int64_t qstride = static_cast<int64_t>(H) * HD, kstride = static_cast<int64_t>(KV) * HD;
  const float* qbase = q + ((b * Tq + t0) * H + h) * HD;
  const int64_t kvbase = (b * Tk * KV + g) * static_cast<int64_t>(HD);  // row 0 of kv head g
  const int64_t p0 = Tk - Tq + t0;                                     // position of local row 0
  const int nkt = static_cast<int>((p0 + qrows - 1) / kTile) + 1;      // key tiles any row sees

  {
    TileLoad<HD> tq;
    tq.fetch(qbase, qstride, qrows);
    tq.store(Qs);
  }

  float acc[4][4 * DC];
  float m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int c = 0; c < 4 * DC; ++c) acc[i][c] = 0.f;
  }

  for (int kt = 0; kt < nkt; ++kt) {
    const int64_t k0 = static_cast<int64_t>(kt) * kTile;
    const int krows = static_cast<int>(Tk - k0 < kTile ? Tk - k0 : kTile);
    __syncthreads();  // the previous tile's P and V reads are done
    {  // one tile at a time: fewer registers live next to the accumulators
      TileLoad<HD> t;
      t.fetch(k + kvbase + k0 * kstride, kstride, krows);
      t.store(Ks);
      t.fetch(v + kvbase + k0 * kstride, kstride, krows);
      t.store(Vs);
    }
    __syncthreads();

    float s[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = 0.f;
#pragma unroll 4
    for (int d = 0; d < HD; d += 4) {
      float4 a[4], bk[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = lds4(Qs + (4 * ty + i) * LD + d);
#pragma unroll
      for (int j = 0; j < 4; ++j) bk[j] = lds4(Ks + (tx + 16 * j) * LD + d);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) s[i][j] = dot4(a[i], bk[j], s[i][j]);
    }

    // Key k0 + c is visible to local row r iff k0 + c <= p0 + r, i.e. c - r <= p0 - k0.
    const int64_t lim = p0 - k0;
    const bool need_mask = lim < kTile - 1;
    float p[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float x = s[i][j] * scale;
        if (need_mask && (tx + 16 * j) - (4 * ty + i) > lim) x = -INFINITY;
        s[i][j] = x;
        mx = fmaxf(mx, x);
      }
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float mnew = fmaxf(m[i], mx);
      const float mref = mnew == -INFINITY ? 0.f : mnew;  // a row with nothing visible yet
      const float corr = expf(m[i] - mref);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        p[i][j] = expf(s[i][j] - mref);
        sum += p[i][j];
      }
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      l[i] = l[i] * corr + sum;
      m[i] = mnew;
#pragma unroll
      for (int c = 0; c < 4 * DC; ++c) acc[i][c] *= corr;
    }

    __syncthreads();  // every thread is done reading Ks before P overwrites it
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) Ps[(4 * ty + i) * kPLd + tx + 16 * j] = p[i][j];
    __syncthreads();

#pragma unroll 2
    for (int c = 0; c < kTile; c += 4) {
      float4 pr[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) pr[i] = lds4(Ps + (4 * ty + i) * kPLd + c);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
#pragma unroll
        for (int jj = 0; jj < DC; ++jj) {
          const float4 vv = lds4(Vs + (c + e) * LD + 4 * tx + 64 * jj);
#pragma unroll
          for (int i = 0; i < 4; ++i) axpy4(&acc[i][4 * jj], comp(pr[i], e), vv);
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = 4 * ty + i;
    if (r < qrows) {
      const float inv = 1.0f / l[i];
      float* orow = out + ((b * Tq + t0 + r) * H + h) * HD;
#pragma unroll
      for (int jj = 0; jj < DC; ++jj) {
        const float* a = &acc[i][4 * jj];
        *reinterpret_cast<float4*>(orow + 4 * tx + 64 * jj) =
            make_float4(a[0] * inv, a[1] * inv, a[2] * inv, a[3] * inv);
      }
      if (tx == 0) lse[(b * H + h) * Tq + t0 + r] = m[i] + logf(l[i]);
    }
  }
}

// ---- backward: delta ----------------------------------------------------------------------------
// delta[(b*H + h)*T + t] = dout · out for that row; HD/4 consecutive threads (16 or 32, inside one
// warp) share a row, one float4 each, summed by a fixed xor tree.
template <int HD>
__global__ void attention_delta_tiled_kernel(float* delta, const float* dout, const float* out, int64_t rows,
                                             int64_t T, int H) {
  constexpr int G = HD / 4;
  static_assert(G <= 32 && 32 % G == 0);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t n = i / G;  // row of [B, T, H]
  const int c = static_cast<int>(i % G) * 4;
  float sum = 0.f;
  if (n < rows) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(dout + n * HD + c));
    const float4 o = __ldg(reinterpret_cast<const float4*>(out + n * HD + c));
    sum = a.x * o.x;
    sum = fmaf(a.y, o.y, sum);
    sum = fmaf(a.z, o.z, sum);
    sum = fmaf(a.w, o.w, sum);
  }
#pragma unroll
  for (int o = G / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (n < rows && c == 0) {
    const int64_t h = n % H, bt = n / H, t = bt % T, b = bt / T;
    delta[(b * H + h) * T + t] = sum;
  }
}

// ---- backward: dK, dV ---------------------------------------------------------------------------
// grid (ceil(T/64), KV, B); blockIdx.x = 0 (the key tile with the most query tiles) first.
// Score tiles are transposed here: rows are the block's keys, columns a tile's queries.
template <int HD>
__global__ void __launch_bounds__(kThreads, HD <= 64 ? 2 : 1)
    attention_dkdv_tiled_kernel(float* dk, float* dv, const float* delta, const float* dout, const float* q,
                                const float* k, const float* v, const float* lse, int64_t T, int H, int KV,
                                float scale) {
  constexpr int LD = HD + 4, DC = HD / 64;
  constexpr int kUnrollD = HD <= 64 ? 1 : 4;  // HD 64 runs 2 blocks/SM: 128 registers, no spills
  extern __shared__ float4 smem4[];
  float* Ks = reinterpret_cast<float*>(smem4);
  float* Vs = Ks + kTile * LD;
  float* Qs = Vs + kTile * LD;
  float* Os = Qs + kTile * LD;  // dout
  float* Ps = Os + kTile * LD;
  float* Ss = Ps + kTile * kPLd;  // dS
  float* Ls = Ss + kTile * kPLd;  // lse of the query tile
  float* Ds = Ls + kTile;         // delta of the query tile

  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int kt = static_cast<int>(blockIdx.x);
  const int64_t k0 = static_cast<int64_t>(kt) * kTile;
  const int g = static_cast<int>(blockIdx.y);
  const int64_t b = blockIdx.z;
  const int group = H / KV;
  const int krows = static_cast<int>(T - k0 < kTile ? T - k0 : kTile);
  const int64_t qstride = static_cast<int64_t>(H) * HD, kstride = static_cast<int64_t>(KV) * HD;
  const int64_t kvoff = ((b * T + k0) * KV + g) * HD;  // row k0 of kv head g
  const int nqt = static_cast<int>((T + kTile - 1) / kTile);

  {
    TileLoad<HD> tk, tv;
    tk.fetch(k + kvoff, kstride, krows);
    tv.fetch(v + kvoff, kstride, krows);
    tk.store(Ks);
    tv.store(Vs);
  }

  float dka[4][4 * DC], dva[4][4 * DC];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int c = 0; c < 4 * DC; ++c) dka[i][c] = dva[i][c] = 0.f;

  for (int hh = 0; hh < group; ++hh) {
    const int h = g * group + hh;
    const float* lse_bh = lse + (b * H + h) * T;
    const float* delta_bh = delta + (b * H + h) * T;
    // Query t sees key k0 iff t >= k0: the query tiles from kt on see this key tile.
    for (int qt = kt; qt < nqt; ++qt) {
      const int64_t q0 = static_cast<int64_t>(qt) * kTile;
      const int qrows = static_cast<int>(T - q0 < kTile ? T - q0 : kTile);
      const int64_t qoff = ((b * T + q0) * H + h) * HD;
      __syncthreads();  // the previous query tile's reads of Qs, Os, Ps, Ss, Ls, Ds are done
      if (tid < kTile) {
        Ls[tid] = tid < qrows ? lse_bh[q0 + tid] : 0.f;
      } else if (tid < 2 * kTile) {
        const int c = tid - kTile;
        Ds[c] = c < qrows ? delta_bh[q0 + c] : 0.f;
      }
      {
        TileLoad<HD> t;
        t.fetch(q + qoff, qstride, qrows);
        t.store(Qs);
        t.fetch(dout + qoff, qstride, qrows);
        t.store(Os);
      }
      __syncthreads();

      float s[4][4], dp[4][4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) s[i][j] = dp[i][j] = 0.f;
#pragma unroll kUnrollD
      for (int d = 0; d < HD; d += 4) {  // s = K Qᵀ
        float4 a[4], bq[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = lds4(Ks + (4 * ty + i) * LD + d);
#pragma unroll
        for (int j = 0; j < 4; ++j) bq[j] = lds4(Qs + (tx + 16 * j) * LD + d);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) s[i][j] = dot4(a[i], bq[j], s[i][j]);
      }
#pragma unroll kUnrollD
      for (int d = 0; d < HD; d += 4) {  // dp = V dOᵀ
        float4 a[4], bo[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = lds4(Vs + (4 * ty + i) * LD + d);
#pragma unroll
        for (int j = 0; j < 4; ++j) bo[j] = lds4(Os + (tx + 16 * j) * LD + d);
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) dp[i][j] = dot4(a[i], bo[j], dp[i][j]);
      }

      // Masked: key > query (causal) or query >= T (rows past the end of a ragged tile).
      const bool need_mask = (q0 < k0 + kTile - 1) || (q0 + kTile > T);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t key = k0 + 4 * ty + i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int c = tx + 16 * j;
          const int64_t query = q0 + c;
          const bool visible = !need_mask || (key <= query && query < T);
          const float pv = visible ? expf(s[i][j] * scale - Ls[c]) : 0.f;
          const float ds = pv * (dp[i][j] - Ds[c]) * scale;
          Ps[(4 * ty + i) * kPLd + c] = pv;
          Ss[(4 * ty + i) * kPLd + c] = ds;
        }
      }
      __syncthreads();

#pragma unroll 2
      for (int c = 0; c < kTile; c += 4) {  // dV += P dO
        float4 pr[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) pr[i] = lds4(Ps + (4 * ty + i) * kPLd + c);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
#pragma unroll
          for (int jj = 0; jj < DC; ++jj) {
            const float4 ov = lds4(Os + (c + e) * LD + 4 * tx + 64 * jj);
#pragma unroll
            for (int i = 0; i < 4; ++i) axpy4(&dva[i][4 * jj], comp(pr[i], e), ov);
          }
        }
      }
#pragma unroll 2
      for (int c = 0; c < kTile; c += 4) {  // dK += dS Q
        float4 sr[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) sr[i] = lds4(Ss + (4 * ty + i) * kPLd + c);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
#pragma unroll
          for (int jj = 0; jj < DC; ++jj) {
            const float4 qv = lds4(Qs + (c + e) * LD + 4 * tx + 64 * jj);
#pragma unroll
            for (int i = 0; i < 4; ++i) axpy4(&dka[i][4 * jj], comp(sr[i], e), qv);
          }
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = 4 * ty + i;
    if (r < krows) {
      float* dkrow = dk + kvoff + r * kstride;
      float* dvrow = dv + kvoff + r * kstride;
#pragma unroll
      for (int jj = 0; jj < DC; ++jj) {
        const int c = 4 * tx + 64 * jj;
        float4 x = *reinterpret_cast<float4*>(dkrow + c);
        x.x += dka[i][4 * jj + 0];
        x.y += dka[i][4 * jj + 1];
        x.z += dka[i][4 * jj + 2];
        x.w += dka[i][4 * jj + 3];
        *reinterpret_cast<float4*>(dkrow + c) = x;
        float4 y = *reinterpret_cast<float4*>(dvrow + c);
        y.x += dva[i][4 * jj + 0];
        y.y += dva[i][4 * jj + 1];
        y.z += dva[i][4 * jj + 2];
        y.w += dva[i][4 * jj + 3];
        *reinterpret_cast<float4*>(dvrow + c) = y;
      }
    }
  }
}

// ---- backward: dQ -------------------------------------------------------------------------------
// grid (ceil(T/64), H, B); blockIdx.x = 0 takes the LAST query tile (the most key tiles) first.
template <int HD>
__global__ void __launch_bounds__(kThreads, HD <= 64 ? 2 : 1)
    attention_dq_tiled_kernel(float* dq, const float* delta, const float* dout, const float* q, const float* k,
                              const float* v, const float* lse, int64_t T, int H, int KV, float scale) {
  constexpr int LD = HD + 4, DC = HD / 64;
  extern __shared__ float4 smem4[];
  float* Qs = reinterpret_cast<float*>(smem4);
  float* Os = Qs + kTile * LD;  // dout
  float* Ks = Os + kTile * LD;
  float* Vs = Ks + kTile * LD;
  float* Ss = Vs;  // dS reuses the V tile once dp is in registers

  const int tid = static_cast<int>(threadIdx.x), tx = tid & 15, ty = tid >> 4;
  const int64_t q0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * kTile;
  const int h = static_cast<int>(blockIdx.y);
  const int64_t b = blockIdx.z;
  const int g = h / (H / KV);
  const int qrows = static_cast<int>(T - q0 < kTile ? T - q0 : kTile);
  const int64_t qstride = static_cast<int64_t>(H) * HD, kstride = static_cast<int64_t>(KV) * HD;
  const int64_t qoff = ((b * T + q0) * H + h) * HD;
  const int64_t kvbase = (b * T * KV + g) * static_cast<int64_t>(HD);  // row 0 of kv head g
  const int nkt = static_cast<int>((q0 + qrows - 1) / kTile) + 1;

  {
    TileLoad<HD> tq, to;
    tq.fetch(q + qoff, qstride, qrows);
    to.fetch(dout + qoff, qstride, qrows);
    tq.store(Qs);
    to.store(Os);
  }
  float lr[4], dr[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = 4 * ty + i;
    lr[i] = r < qrows ? lse[(b * H + h) * T + q0 + r] : 0.f;
    dr[i] = r < qrows ? delta[(b * H + h) * T + q0 + r] : 0.f;
  }

  float dqa[4][4 * DC];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int c = 0; c < 4 * DC; ++c) dqa[i][c] = 0.f;

  for (int kt = 0; kt < nkt; ++kt) {
    const int64_t k0 = static_cast<int64_t>(kt) * kTile;
    const int krows = static_cast<int>(T - k0 < kTile ? T - k0 : kTile);
    __syncthreads();  // the previous key tile's reads of Ks and Ss (= Vs) are done
    {  // one tile at a time: fewer registers live next to the accumulators
      TileLoad<HD> t;
      t.fetch(k + kvbase + k0 * kstride, kstride, krows);
      t.store(Ks);
      t.fetch(v + kvbase + k0 * kstride, kstride, krows);
      t.store(Vs);
    }
    __syncthreads();

    float s[4][4], dp[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) s[i][j] = dp[i][j] = 0.f;
#pragma unroll 4
    for (int d = 0; d < HD; d += 4) {  // s = Q Kᵀ
      float4 a[4], bk[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = lds4(Qs + (4 * ty + i) * LD + d);
#pragma unroll
      for (int j = 0; j < 4; ++j) bk[j] = lds4(Ks + (tx + 16 * j) * LD + d);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) s[i][j] = dot4(a[i], bk[j], s[i][j]);
    }
#pragma unroll 4
    for (int d = 0; d < HD; d += 4) {  // dp = dO Vᵀ
      float4 a[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = lds4(Os + (4 * ty + i) * LD + d);
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = lds4(Vs + (tx + 16 * j) * LD + d);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) dp[i][j] = dot4(a[i], bv[j], dp[i][j]);
    }

    // Causal: key k0 + c visible to query q0 + r iff c - r <= q0 - k0. Rows past T are never
    // written, so they need no mask.
    const int64_t lim = q0 - k0;
    const bool need_mask = lim < kTile - 1;
    float ds[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const bool visible = !need_mask || (tx + 16 * j) - (4 * ty + i) <= lim;
        const float pv = visible ? expf(s[i][j] * scale - lr[i]) : 0.f;
        ds[i][j] = pv * (dp[i][j] - dr[i]) * scale;
      }

    __syncthreads();  // every thread is done reading Vs before dS overwrites it
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) Ss[(4 * ty + i) * kPLd + tx + 16 * j] = ds[i][j];
    __syncthreads();

#pragma unroll 2
    for (int c = 0; c < kTile; c += 4) {  // dQ += dS K
      float4 sr[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) sr[i] = lds4(Ss + (4 * ty + i) * kPLd + c);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
#pragma unroll
        for (int jj = 0; jj < DC; ++jj) {
          const float4 kv = lds4(Ks + (c + e) * LD + 4 * tx + 64 * jj);
#pragma unroll
          for (int i = 0; i < 4; ++i) axpy4(&dqa[i][4 * jj], comp(sr[i], e), kv);
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int r = 4 * ty + i;
    if (r < qrows) {
      float* dqrow = dq + qoff + r * qstride;
#pragma unroll
      for (int jj = 0; jj < DC; ++jj) {
        const int c = 4 * tx + 64 * jj;
        float4 x = *reinterpret_cast<float4*>(dqrow + c);
        x.x += dqa[i][4 * jj + 0];
        x.y += dqa[i][4 * jj + 1];
        x.z += dqa[i][4 * jj + 2];
        x.w += dqa[i][4 * jj + 3];
        *reinterpret_cast<float4*>(dqrow + c) = x;
      }
    }
  }
}

// ---- host helpers -------------------------------------------------------------------------------

bool shape_ok(int64_t B, int64_t T, int64_t H, int64_t KV, int64_t hd) {
  return attention_shape_ok(B, T, H, KV, hd, kTile);
}

template <int HD>
bool forward_impl(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B, int64_t Tq,
                  int64_t Tk, int64_t H, int64_t KV, cudaStream_t s) {
  constexpr size_t smem = fwd_smem_bytes<HD>();
  if (!allow_smem<attention_forward_tiled_kernel<HD>>(smem)) return false;
  const dim3 grid(static_cast<unsigned>((Tq + kTile - 1) / kTile), static_cast<unsigned>(H),
                  static_cast<unsigned>(B));
  const float scale = 1.0f / sqrtf(static_cast<float>(HD));
  attention_forward_tiled_kernel<HD><<<grid, kThreads, smem, s>>>(out, lse, q, k, v, Tq, Tk, static_cast<int>(H),
                                                                   static_cast<int>(KV), scale);
  AGPT_CUDA_LAUNCHED("attention_forward_tiled");
  return true;
}

template <int HD>
bool backward_impl(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* q,
                   const float* k, const float* v, const float* out, const float* lse, int64_t B, int64_t T,
                   int64_t H, int64_t KV, cudaStream_t s) {
  constexpr size_t smem_kv = dkdv_smem_bytes<HD>(), smem_q = dq_smem_bytes<HD>();
  // Check both before launching anything, so that false means nothing was done.
  if (!allow_smem<attention_dkdv_tiled_kernel<HD>>(smem_kv)) return false;
  if (!allow_smem<attention_dq_tiled_kernel<HD>>(smem_q)) return false;
  const int64_t rows = B * T * H;
  const int64_t delta_blocks = (rows * (HD / 4) + kThreads - 1) / kThreads;
  if (delta_blocks > kMaxGridX) return false;
  const float scale = 1.0f / sqrtf(static_cast<float>(HD));
  const unsigned tiles = static_cast<unsigned>((T + kTile - 1) / kTile);

  attention_delta_tiled_kernel<HD><<<static_cast<unsigned>(delta_blocks), kThreads, 0, s>>>(
      delta, dout, out, rows, T, static_cast<int>(H));
  AGPT_CUDA_LAUNCHED("attention_backward_tiled delta");
  attention_dkdv_tiled_kernel<HD>
      <<<dim3(tiles, static_cast<unsigned>(KV), static_cast<unsigned>(B)), kThreads, smem_kv, s>>>(
          dk, dv, delta, dout, q, k, v, lse, T, static_cast<int>(H), static_cast<int>(KV), scale);
  AGPT_CUDA_LAUNCHED("attention_backward_tiled dk dv");
  attention_dq_tiled_kernel<HD>
      <<<dim3(tiles, static_cast<unsigned>(H), static_cast<unsigned>(B)), kThreads, smem_q, s>>>(
          dq, delta, dout, q, k, v, lse, T, static_cast<int>(H), static_cast<int>(KV), scale);
  AGPT_CUDA_LAUNCHED("attention_backward_tiled dq");
  return true;
}

}  // namespace

bool attention_forward_tiled(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B,
                             int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd, cudaStream_t s) {
  if (!shape_ok(B, Tq, H, KV, hd) || Tk < Tq) return false;
  if (!aligned16(out) || !aligned16(q) || !aligned16(k) || !aligned16(v)) return false;
  if (B == 0 || Tq == 0) return true;  // nothing to compute
  return hd == 64 ? forward_impl<64>(out, lse, q, k, v, B, Tq, Tk, H, KV, s)
                  : forward_impl<128>(out, lse, q, k, v, B, Tq, Tk, H, KV, s);
}

bool attention_backward_tiled(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* q,
                              const float* k, const float* v, const float* out, const float* lse, int64_t B,
                              int64_t T, int64_t H, int64_t KV, int64_t hd, cudaStream_t s) {
  if (!shape_ok(B, T, H, KV, hd)) return false;
  if (!aligned16(dq) || !aligned16(dk) || !aligned16(dv) || !aligned16(dout) || !aligned16(q) || !aligned16(k) ||
      !aligned16(v) || !aligned16(out))
    return false;
  if (B == 0 || T == 0) return true;  // nothing to compute
  return hd == 64 ? backward_impl<64>(dq, dk, dv, delta, dout, q, k, v, out, lse, B, T, H, KV, s)
                  : backward_impl<128>(dq, dk, dv, delta, dout, q, k, v, out, lse, B, T, H, KV, s);
}

}  // namespace agpt::ops::cuda
