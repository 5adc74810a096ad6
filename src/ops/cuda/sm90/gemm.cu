// agpt's Hopper matrix products (see gemm.cuh). One persistent thread block per SM walks the
// output tiles of 128×256 (grouped 16 tiles down M so the B tiles stay in L2), with three roles:
//   - warp 0 of warpgroup 0 loads: one thread issues TMA copies of A and B k-slices (64 wide,
//     128-byte swizzled) into a ring of 3 shared-memory stages, each with a "full" barrier (bytes
//     landed) and an "empty" barrier (both multiplying warpgroups done with it);
//   - warpgroups 1 and 2 multiply: 64 rows of the tile each, wgmma m64n256k16 into 128 fp32
//     registers per thread, one k-slice's products kept in flight; at the tile's end they round
//     the accumulators to bf16 into a staging tile in shared memory and go on to the next tile;
//   - warps 1-3 of warpgroup 0 run the epilogue from the staging tile (SwiGLU and its backward
//     included) with 16-byte global loads and stores, while the tensor cores work on the next tile.
// 128×256 tiles keep the L2 traffic per product low enough for the tensor cores' rate; the staged
// epilogue keeps its memory traffic off their critical path.
#include "ops/cuda/sm90/gemm.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/sm90/hopper.cuh"
#include "ops/cuda/sm90/wgmma_m64n256k16.cuh"
#include "ops/cuda/adamw_math.cuh"
#include "ops/cuda/rope_math.cuh"
#include "ops/cuda/swiglu_math.cuh"

namespace agpt::ops::cuda::sm90 {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 64, kStages = 3;
// 384 threads at 168 registers each fill the register file; the multiplying warps need about that
// many (128 accumulators). ptxas allocates for the launch bound, not for setmaxnreg, so a fourth
// warpgroup (128 registers a thread) cannot hold wgmma m64n256's accumulators.
constexpr int kThreads = 384;
constexpr int kATile = kBM * kBK * 2, kBTile = kBN * kBK * 2;  // bytes per stage
// Staging tile rows are padded by 16 bytes: the multiplying warps' 4-byte writes then fall in
// distinct banks, and the epilogue's 16-byte reads stay aligned.
constexpr int kStagePitch = kBN + 8;  // bf16 elements
constexpr int kStagingBytes = kBM * kStagePitch * 2;
constexpr int kBarriers = 2 * kStages + 2;
constexpr int kSmemBytes = kStages * (kATile + kBTile) + kStagingBytes + kBarriers * 8 + 1024;
constexpr int kGroupM = 16;
constexpr int kEpilogueThreads = 96;  // warps 1-3 of warpgroup 0
// Rows of global inputs (g and u) each epilogue thread loads before using any (their latencies
// overlap): fused SwiGLU backward, H200, 1B shape, 0.459 ms with 4, 0.437-0.440 with 6,
// 8 and 12.
constexpr int kRowBatch = 8;

enum class Epi { kStore, kSwiglu, kSwigluGrad, kQkvRope, kWeightGrad, kWeightGradAdamW };
// The weight gradient's products read both operands M- or N-major (dyᵀ·x over the tokens) and store
// fp32 from the multiplying warps' registers (a staging tile of fp32 would not fit beside the ring).
__host__ __device__ constexpr bool is_weight_grad(Epi e) { return e == Epi::kWeightGrad || e == Epi::kWeightGradAdamW; }
// Float4 groups of the gradient each epilogue thread loads (with their parameters and moments)
// before updating any, so the loads' latencies overlap.
constexpr int kAdamBatch = 4;

struct Args {
  int K;
  int tiles_m, tiles_n;
  int ld;                      // row stride of every output and epilogue input, elements
  __nv_bfloat16* out0;         // store: C; swiglu: h; grad: dg
  __nv_bfloat16* out1;         // swiglu: g; grad: du
  __nv_bfloat16* out2;         // swiglu: u
  const __nv_bfloat16* in0;    // grad: g
  const __nv_bfloat16* in1;    // grad: u
  // kQkvRope: the column tiles are q's, then k's, then v's (out0, out1, out2); RoPE on q and k.
  int tiles_q, tiles_k;
  int ld_kv;                   // k and v's row stride (ld: q's)
  const float* rope_cos;       // [P, hd/2]
  const float* rope_sin;
  int hd, seq, pos0;           // token n has position pos0 + n % seq
  // kStore with N-major B: a sum of up to three products over consecutive k ranges, A and B from
  // their own tensor maps (map_a/a1/a2, map_b0/b1/b2); k-slices of each (0: unused).
  int k_parts[3];
  // kWeightGrad(AdamW): the fp32 gradient [M, N] (row stride ld), added to when accumulate; AdamW
  // then updates param, m, v (same layout) from it and writes the bf16 copy (may be null).
  float* grad;
  int accumulate;
  float* param;
  float* m;
  float* v;
  __nv_bfloat16* copy;
  AdamWConstants adam;
};

// kQkvRope: which of q, k, v column tile tn belongs to, and that part's first tile.
__device__ __forceinline__ int qkv_part(int tn, const Args& a, int& first) {
  if (tn < a.tiles_q) return first = 0, 0;
  if (tn < a.tiles_q + a.tiles_k) return first = a.tiles_q, 1;
  return first = a.tiles_q + a.tiles_k, 2;
}

// Tile t's (row, column) tile indices on a grid of tiles_m x tiles_n: group_m row tiles at a
// time, column by column.
__device__ __forceinline__ void tile_coords(int t, int tiles_m, int tiles_n, int group_m, int& tm, int& tn) {
  const int per_group = group_m * tiles_n;
  const int first_m = (t / per_group) * group_m;
  const int rows = min(tiles_m - first_m, group_m);
  const int r = t % per_group;
  tm = first_m + r % rows;
  tn = r / rows;
}
// The tile of work unit u for the block of cluster rank `rank`: with clusters of two, a unit is a
// pair of row tiles sharing their column tile (the pair's B tile is loaded once, half by each).
template <int kCluster>
__device__ __forceinline__ void unit_coords(int u, const Args& a, int rank, int& tm, int& tn) {
  tile_coords(u, a.tiles_m / kCluster, a.tiles_n, kGroupM / kCluster, tm, tn);
  tm = tm * kCluster + rank;
}

// Descriptor of an N-major B stage: 64-column chunks of 64 k-rows (128-byte swizzled), 8,192
// bytes apart; 8-row k groups 1,024 bytes apart.
__device__ __forceinline__ uint64_t smem_desc_mn_sw128(const void* p) {
  const uint64_t addr = smem_addr(p);
  uint64_t desc = (addr & 0x3FFFF) >> 4;
  desc |= uint64_t(8192 >> 4) << 16;  // leading byte offset: next 64 columns
  desc |= uint64_t(1024 >> 4) << 32;  // stride byte offset: next 8 k-rows
  desc |= uint64_t(1) << 62;
  return desc;
}

// 16 bytes of the staging tile (an explicit shared-memory load: one instruction, no bank conflicts
// for a warp reading a row).
__device__ __forceinline__ uint4 lds128(const __nv_bfloat16* p) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(smem_addr(p)));
  return v;
}

__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(p[i]);
    f[2 * i] = t.x, f[2 * i + 1] = t.y;
  }
}
// Eight floats rounded to bf16 (round to nearest even, as __floats2bfloat162_rn), two per register.
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t v;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(v) : "f"(hi), "f"(lo));
  return v;
}
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
  return make_uint4(pack2(f[0], f[1]), pack2(f[2], f[3]), pack2(f[4], f[5]), pack2(f[6], f[7]));
}

// One 16-byte global store (ptxas otherwise may split a uint4 store into four when the packed
// registers are not consecutive, four times the store instructions and L1 requests).
__device__ __forceinline__ void stg128(__nv_bfloat16* p, const uint4& v) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}

// The epilogue of one staged tile, by the epilogue warps (thread e of kEpilogueThreads): rows of
// 8-element chunks, consecutive threads on consecutive chunks of a row.
// q, k or v from the staging tile: each tile lies in one of them (their widths are whole tiles)
// and holds whole heads (256 % hd == 0), so RoPE's partner column (i ± hd/2) is in the staging
// tile too. The tile's 128 rows are consecutive positions (seq % 128 == 0). Chunks go in batches
// of four, the cos/sin loads of all four first (their latencies overlap).
template <int kHd>
__device__ __forceinline__ void qkv_rope_epilogue(const __nv_bfloat16* staging, const Args& a, int tm, int tn, int e) {
  constexpr int kHalf = kHd / 2, kChunks = kBN / 8, kTotal = kBM * kChunks, kBatch = 4;
  int first;
  const int part = qkv_part(tn, a, first);
  __nv_bfloat16* out = part == 0 ? a.out0 : part == 1 ? a.out1 : a.out2;
  const size_t out_ld = part == 0 ? size_t(a.ld) : size_t(a.ld_kv);
  const int pos_base = a.pos0 + (tm * kBM) % a.seq;  // row r's position: pos_base + r
  for (int q0 = e; q0 < kTotal; q0 += kBatch * kEpilogueThreads) {
    float4 cs[kBatch][2], sn[kBatch][2];
    if (part < 2) {
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int q = q0 + b * kEpilogueThreads;
        if (q >= kTotal) continue;
        const int r = q / kChunks, i = ((q % kChunks) * 8) % kHalf;
        const size_t t = size_t(pos_base + r) * kHalf + i;
        const float4* cp = reinterpret_cast<const float4*>(a.rope_cos + t);
        const float4* sp = reinterpret_cast<const float4*>(a.rope_sin + t);
        cs[b][0] = __ldg(cp), cs[b][1] = __ldg(cp + 1), sn[b][0] = __ldg(sp), sn[b][1] = __ldg(sp + 1);
      }
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int q = q0 + b * kEpilogueThreads;
      if (q >= kTotal) continue;
      const int r = q / kChunks, c = (q % kChunks) * 8;
      float x[8];
      unpack8(lds128(staging + r * kStagePitch + c), x);
      if (part < 2) {
        const bool low = c % kHd < kHalf;  // x[i] (rotated with x[i + hd/2]) or x[i + hd/2]
        float p[8];
        unpack8(lds128(staging + r * kStagePitch + (low ? c + kHalf : c - kHalf)), p);
        const float* cv = reinterpret_cast<const float*>(cs[b]);
        const float* sv = reinterpret_cast<const float*>(sn[b]);
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          float x1 = low ? x[k] : p[k], x2 = low ? p[k] : x[k];
          rope_pair(x1, x2, cv[k], sv[k], false);
          x[k] = low ? x1 : x2;
        }
      }
      stg128(out + size_t(tm * kBM + r) * out_ld + (tn - first) * kBN + c, pack8(x));
    }
  }
}

// SwiGLU backward: dg, du from the staged dh and g, u read from global memory (row stride a.ld).
// Lane l takes 8-column chunk l of a row (a warp covers the tile's 256 columns), epilogue warp w
// rows w, w + 3, ...; the g/u loads of kRowBatch rows are issued before any is used, so their
// latencies overlap.
__device__ __forceinline__ void swiglu_grad_epilogue(const __nv_bfloat16* staging, const Args& a, int tm, int tn,
                                                     int e) {
  constexpr int kWarps = kEpilogueThreads / 32;
  const size_t ld = a.ld;
  const int c = (e % 32) * 8;
  const size_t base = size_t(tm) * kBM * ld + size_t(tn) * kBN + c;
  for (int r0 = e / 32; r0 < kBM; r0 += kWarps * kRowBatch) {
    uint4 gv[kRowBatch], uv[kRowBatch];
#pragma unroll
    for (int b = 0; b < kRowBatch; ++b) {
      const int r = r0 + b * kWarps;
      if (r < kBM) {
        gv[b] = __ldg(reinterpret_cast<const uint4*>(a.in0 + base + r * ld));
        uv[b] = __ldg(reinterpret_cast<const uint4*>(a.in1 + base + r * ld));
      }
    }
#pragma unroll
    for (int b = 0; b < kRowBatch; ++b) {
      const int r = r0 + b * kWarps;
      if (r >= kBM) break;
      const size_t o = base + r * ld;
      float d[8], g[8], u[8], dg[8], du[8];
      unpack8(lds128(staging + r * kStagePitch + c), d), unpack8(gv[b], g), unpack8(uv[b], u);
#pragma unroll
      for (int i = 0; i < 8; ++i) swiglu_grad(g[i], u[i], d[i], dg[i], du[i]);
      stg128(a.out0 + o, pack8(dg));
      stg128(a.out1 + o, pack8(du));
    }
  }
}

// AdamW on one tile of the weight from its gradient (just stored by the multiplying warps, read
// from L2): consecutive threads on consecutive 4-float groups of a row.
__device__ __forceinline__ void adamw_epilogue(const Args& a, int tm, int tn, int e) {
  constexpr int kGroups = kBN / 4, kTotal = kBM * kGroups;
  const size_t ld = a.ld, base = size_t(tm) * kBM * ld + size_t(tn) * kBN;
  for (int q0 = e; q0 < kTotal; q0 += kAdamBatch * kEpilogueThreads) {
    float4 g[kAdamBatch], p[kAdamBatch], m[kAdamBatch], v[kAdamBatch];
#pragma unroll
    for (int b = 0; b < kAdamBatch; ++b) {
      const int q = q0 + b * kEpilogueThreads;
      if (q >= kTotal) continue;
      const size_t o = base + size_t(q / kGroups) * ld + (q % kGroups) * 4;
      g[b] = __ldcg(reinterpret_cast<const float4*>(a.grad + o));
      p[b] = __ldcg(reinterpret_cast<const float4*>(a.param + o));
      m[b] = __ldcg(reinterpret_cast<const float4*>(a.m + o));
      v[b] = __ldcg(reinterpret_cast<const float4*>(a.v + o));
    }
#pragma unroll
    for (int b = 0; b < kAdamBatch; ++b) {
      const int q = q0 + b * kEpilogueThreads;
      if (q >= kTotal) break;
      const size_t o = base + size_t(q / kGroups) * ld + (q % kGroups) * 4;
      adamw_one(p[b].x, g[b].x, m[b].x, v[b].x, a.adam);
      adamw_one(p[b].y, g[b].y, m[b].y, v[b].y, a.adam);
      adamw_one(p[b].z, g[b].z, m[b].z, v[b].z, a.adam);
      adamw_one(p[b].w, g[b].w, m[b].w, v[b].w, a.adam);
      *reinterpret_cast<float4*>(a.param + o) = p[b];
      *reinterpret_cast<float4*>(a.m + o) = m[b];
      *reinterpret_cast<float4*>(a.v + o) = v[b];
      if (a.copy) *reinterpret_cast<uint2*>(a.copy + o) = make_uint2(pack2(p[b].x, p[b].y), pack2(p[b].z, p[b].w));
    }
  }
}

template <Epi kEpi>
__device__ __forceinline__ void run_epilogue(const __nv_bfloat16* staging, const Args& a, int tm, int tn, int e) {
  const size_t ld = a.ld;
  if constexpr (kEpi == Epi::kQkvRope) {
    if (a.hd == 64) qkv_rope_epilogue<64>(staging, a, tm, tn, e);
    else qkv_rope_epilogue<128>(staging, a, tm, tn, e);
  } else if constexpr (kEpi == Epi::kStore || kEpi == Epi::kSwiglu) {
    constexpr int kChunks = kEpi == Epi::kStore ? kBN / 8 : kBN / 16;  // per row
    const int col_base = tn * (kEpi == Epi::kStore ? kBN : kBN / 2);
    for (int q = e; q < kBM * kChunks; q += kEpilogueThreads) {
      const int r = q / kChunks, c = (q % kChunks) * 8;
      const __nv_bfloat16* src = staging + r * kStagePitch + c;
      const size_t o = size_t(tm * kBM + r) * ld + col_base + c;
      const uint4 first = lds128(src);
      if constexpr (kEpi == Epi::kStore) {
        stg128(a.out0 + o, first);
      } else {  // staged columns 0-127: the gate's, 128-255: the up product's, same features
        const uint4 second = lds128(src + kBN / 2);
        float g[8], u[8], h[8];
        unpack8(first, g), unpack8(second, u);
#pragma unroll
        for (int i = 0; i < 8; ++i) h[i] = swiglu_value(g[i], u[i]);
        stg128(a.out1 + o, first);
        stg128(a.out2 + o, second);
        stg128(a.out0 + o, pack8(h));
      }
    }
  } else if constexpr (kEpi == Epi::kWeightGradAdamW) {
    adamw_epilogue(a, tm, tn, e);
  } else {
    swiglu_grad_epilogue(staging, a, tm, tn, e);
  }
}

// The weight gradient's tile from the accumulators (rows of the warp's 16, column pairs), fp32,
// written or added.
__device__ __forceinline__ void store_weight_grad(const float (&acc)[128], const Args& a, int tm, int tn, int consumer,
                                                  int cw, int lane) {
  float* dst = a.grad + size_t(tm * kBM + consumer * 64 + cw * 16 + lane / 4) * a.ld + tn * kBN + 2 * (lane % 4);
  const size_t below = size_t(8) * a.ld;  // the fragment's second row
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    float2 top = make_float2(acc[4 * i], acc[4 * i + 1]), bottom = make_float2(acc[4 * i + 2], acc[4 * i + 3]);
    float2* t = reinterpret_cast<float2*>(dst + 8 * i);
    float2* b = reinterpret_cast<float2*>(dst + below + 8 * i);
    if (a.accumulate) {
      const float2 ot = *t, ob = *b;
      top.x = ot.x + top.x, top.y = ot.y + top.y, bottom.x = ob.x + bottom.x, bottom.y = ob.y + bottom.y;
    }
    *t = top, *b = bottom;
  }
}

template <Epi kEpi, int kTransB, int kCluster>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_a1,
                const __grid_constant__ CUtensorMap map_a2, const __grid_constant__ CUtensorMap map_b0,
                const __grid_constant__ CUtensorMap map_b1, const __grid_constant__ CUtensorMap map_b2,
                const Args args) {
#ifdef AGPT_SM90A
  extern __shared__ uint8_t smem_raw[];
  // 128-byte swizzling repeats every 1,024 bytes: stages must start on such a boundary. Offsetting
  // smem_raw itself (not a cast integer) keeps the pointer known as shared, so the staging tile's
  // reads and writes compile to shared-memory instructions rather than generic ones.
  uint8_t* smem = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  uint8_t* tiles_a = smem;
  uint8_t* tiles_b = smem + kStages * kATile;
  __nv_bfloat16* staging = reinterpret_cast<__nv_bfloat16*>(tiles_b + kStages * kBTile);
  uint64_t* full = reinterpret_cast<uint64_t*>(reinterpret_cast<uint8_t*>(staging) + kStagingBytes);
  uint64_t* empty = full + kStages;
  uint64_t* staged = empty + kStages;  // the staging tile holds a tile's products
  uint64_t* drained = staged + 1;      // the epilogue is done reading the staging tile
  const int wg = threadIdx.x / 128, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 8 * kCluster);  // one arrival per multiplying warp of every block of the cluster
    }
    mbar_init(staged, 8);
    mbar_init(drained, kEpilogueThreads / 32);  // one arrival per epilogue warp
    mbar_init_fence();
  }
  __syncthreads();
  if constexpr (kCluster > 1) cluster_sync();  // the partner's barriers exist before any load or arrival
  const ClusterPlace place = kCluster > 1 ? cluster_place() : ClusterPlace{0, blockIdx.x, gridDim.x};
  const int rank = static_cast<int>(place.rank);
  const int first_unit = static_cast<int>(place.id), unit_step = static_cast<int>(place.count);
  const int units = args.tiles_m * args.tiles_n / kCluster;
  const int k_blocks = args.K / kBK;
  // A stage is free once the multiplying warps of every block of the cluster are done with it
  // (with clusters, the partner writes half of this block's B tile).
  auto release = [&](int s) {
    mbar_arrive(&empty[s]);
    if constexpr (kCluster > 1) mbar_arrive_cluster(&empty[s], static_cast<uint32_t>(rank ^ 1));
  };

  if (wg == 0) {
    if (warp == 0) {
      if (lane != 0) return;
      prefetch_tensor_map(&map_a);
      prefetch_tensor_map(&map_b0);
      if (kEpi == Epi::kSwiglu || kEpi == Epi::kQkvRope) prefetch_tensor_map(&map_b1);
      if (kEpi == Epi::kQkvRope) prefetch_tensor_map(&map_b2);
      int stage = 0, phase = 0;
      for (int t = first_unit; t < units; t += unit_step) {
        int tm, tn;
        unit_coords<kCluster>(t, args, rank, tm, tn);
        for (int kb = 0; kb < k_blocks; ++kb) {
          mbar_wait(&empty[stage], phase ^ 1);
          mbar_arrive_expect_tx(&full[stage], kATile + kBTile);
          uint8_t* sa = tiles_a + stage * kATile;
          uint8_t* sb = tiles_b + stage * kBTile;
          int part = 0, kin = kb;  // which product of a sum, and the k-slice within it
          if constexpr (kEpi == Epi::kStore && kTransB)
            while (part < 2 && kin >= args.k_parts[part]) kin -= args.k_parts[part++];
          if constexpr (is_weight_grad(kEpi)) {  // A M-major: 64-column chunks of 64 k-rows, as B's N-major
            tma_load_2d(sa, &map_a, &full[stage], tm * kBM, kb * kBK);
            tma_load_2d(sa + 8192, &map_a, &full[stage], tm * kBM + 64, kb * kBK);
          } else {
            tma_load_2d(sa, part == 0 ? &map_a : part == 1 ? &map_a1 : &map_a2, &full[stage], kin * kBK, tm * kBM);
          }
          // The B tile in two halves of 16 KB (K-major: 128 rows each; N-major: two 64-column
          // chunks each): both loaded here, or with clusters this block's half into both blocks.
          for (int h = kCluster > 1 ? rank : 0; h < (kCluster > 1 ? rank + 1 : 2); ++h) {
            auto load = [&](uint8_t* dst, const CUtensorMap* map, int c0, int c1) {
              if constexpr (kCluster > 1) tma_load_2d_multicast(dst, map, &full[stage], c0, c1, 0x3);
              else tma_load_2d(dst, map, &full[stage], c0, c1);
            };
            uint8_t* dst = sb + h * (kBTile / 2);
            if constexpr (kEpi == Epi::kSwiglu) {
              load(dst, h == 0 ? &map_b0 : &map_b1, kb * kBK, tn * (kBN / 2));
            } else if constexpr (kEpi == Epi::kQkvRope) {
              int first;
              const int which = qkv_part(tn, args, first);
              load(dst, which == 0 ? &map_b0 : which == 1 ? &map_b1 : &map_b2, kb * kBK, (tn - first) * kBN + h * 128);
            } else if constexpr (kTransB) {  // N-major (weight gradients, input gradients and their sums)
              const CUtensorMap* mb = part == 0 ? &map_b0 : part == 1 ? &map_b1 : &map_b2;
              load(dst, mb, tn * kBN + 128 * h, kin * kBK);
              load(dst + 8192, mb, tn * kBN + 128 * h + 64, kin * kBK);
            } else {
              load(dst, &map_b0, kb * kBK, tn * kBN + h * 128);
            }
          }
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
      // With clusters the partner still writes into this block and arrives on its barriers until
      // both are done with the last stages: leave only then.
      if constexpr (kCluster > 1)
        for (int i = 0; i < kStages; ++i) {
          mbar_wait(&empty[stage], phase ^ 1);
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
    } else {
      if constexpr (kEpi == Epi::kWeightGrad) return;  // the multiplying warps store the tiles
      int round = 0;
      for (int t = first_unit; t < units; t += unit_step, ++round) {
        int tm, tn;
        unit_coords<kCluster>(t, args, rank, tm, tn);
        mbar_wait(staged, round & 1);
        run_epilogue<kEpi>(staging, args, tm, tn, threadIdx.x - 32);
        __syncwarp();
        if (lane == 0) mbar_arrive(drained);
      }
    }
  } else {
    const int consumer = wg - 1;  // rows consumer*64 .. +63 of the tile
    const int cw = warp % 4;
    float acc[128];
    int stage = 0, phase = 0, round = 0;
    for (int t = first_unit; t < units; t += unit_step, ++round) {
      int prev = 0;
      for (int kb = 0; kb < k_blocks; ++kb) {
        mbar_wait(&full[stage], phase);
        const uint8_t* sa = tiles_a + stage * kATile + consumer * 64 * 128;
        const uint8_t* sb = tiles_b + stage * kBTile;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 16; ++kk) {
          const uint64_t da = is_weight_grad(kEpi) ? smem_desc_mn_sw128(sa + kk * 2048) : smem_desc_sw128(sa + kk * 32);
          const uint64_t db = kTransB ? smem_desc_mn_sw128(sb + kk * 2048) : smem_desc_sw128(sb + kk * 32);
          wgmma_m64n256k16<kTransB, is_weight_grad(kEpi) ? 1 : 0>(acc, da, db, (kb > 0 || kk > 0) ? 1 : 0);
        }
        wgmma_commit();
        if (kb > 0) {
          wgmma_wait<1>();  // the previous k-slice's products are done: its stage may be refilled
          if (lane == 0) release(prev);
        }
        prev = stage;
        if (++stage == kStages) stage = 0, phase ^= 1;
      }
      wgmma_wait<0>();
      if (lane == 0) release(prev);
      if constexpr (is_weight_grad(kEpi)) {
        int tm, tn;
        unit_coords<kCluster>(t, args, rank, tm, tn);
        store_weight_grad(acc, args, tm, tn, consumer, cw, lane);
        if constexpr (kEpi == Epi::kWeightGradAdamW) {  // the epilogue warps update from the stored tile
          __threadfence_block();
          mbar_wait(drained, (round & 1) ^ 1);
          __syncwarp();
          if (lane == 0) mbar_arrive(staged);
        }
        continue;
      }
      // Hand the tile to the epilogue: wait until it has drained the previous one.
      mbar_wait(drained, (round & 1) ^ 1);
      __nv_bfloat16* dst = staging + (consumer * 64 + cw * 16 + lane / 4) * kStagePitch + 2 * (lane % 4);
#pragma unroll
      for (int i = 0; i < 32; ++i) {
        *reinterpret_cast<__nv_bfloat162*>(dst + 8 * i) = __floats2bfloat162_rn(acc[4 * i], acc[4 * i + 1]);
        *reinterpret_cast<__nv_bfloat162*>(dst + 8 * kStagePitch + 8 * i) =
            __floats2bfloat162_rn(acc[4 * i + 2], acc[4 * i + 3]);
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(staged);
    }
  }
#endif
}

// ---- host side ----------------------------------------------------------------------------------

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    AGPT_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
    if (q != cudaDriverEntryPointSuccess || p == nullptr)
      fail("the CUDA driver has no cuTensorMapEncodeTiled (needs a driver for CUDA 12 or later)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

// A row-major bf16 matrix (rows × cols) read in boxes of box_rows × box_cols (box_cols·2 ≤ 128).
CUtensorMap tensor_map(const void* base, uint64_t rows, uint64_t cols, uint32_t box_rows, uint32_t box_cols) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {cols * 2};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = encode_tiled()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides,
                                    box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) fail("cuTensorMapEncodeTiled failed (", int(r), ") for a ", rows, "x", cols, " matrix");
  return map;
}

// Clusters of two blocks (AGPT_SM90_CLUSTER=0 turns them off): each block loads its own A tile and
// half of the B tile the pair shares, into both blocks, a third less load traffic per SM.
bool clusters_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("AGPT_SM90_CLUSTER");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

template <Epi kEpi, int kTransB, int kCluster>
void launch_blocks(const CUtensorMap& a, const CUtensorMap& b0, const CUtensorMap& b1, const CUtensorMap& b2,
                   const Args& args, cudaStream_t s, const CUtensorMap& a1, const CUtensorMap& a2) {
  auto kernel = gemm_kernel<kEpi, kTransB, kCluster>;
  // Per device: the attribute, and how many clusters fit at once (all SMs but those a GPC's odd
  // count leaves unpaired).
  static thread_local int configured_device = -1, resident = 0;
  int device = 0;
  AGPT_CUDA_CHECK(cudaGetDevice(&device));
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = kCluster, attribute.val.clusterDim.y = 1, attribute.val.clusterDim.z = 1;
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kSmemBytes;
  config.stream = s;
  config.attrs = &attribute;
  config.numAttrs = 1;
  if (configured_device != device) {
    AGPT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    int sms = 0;
    AGPT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    resident = sms / kCluster;
    if (kCluster > 1) {
      config.gridDim = dim3(static_cast<unsigned>(resident * kCluster));
      AGPT_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&resident, kernel, &config));
      if (resident < 1) fail("sm90 gemm: no cluster of ", kCluster, " blocks fits this GPU");
    }
    configured_device = device;
  }
  const int units = args.tiles_m * args.tiles_n / kCluster;
  config.gridDim = dim3(static_cast<unsigned>((units < resident ? units : resident) * kCluster));
  AGPT_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, a, a1, a2, b0, b1, b2, args));
  AGPT_CUDA_LAUNCHED("sm90 gemm");
}

template <Epi kEpi, int kTransB>
void launch(const CUtensorMap& a, const CUtensorMap& b0, const CUtensorMap& b1, const CUtensorMap& b2, const Args& args,
            cudaStream_t s, const CUtensorMap* a1 = nullptr, const CUtensorMap* a2 = nullptr) {
  if (clusters_enabled() && args.tiles_m % 2 == 0)
    launch_blocks<kEpi, kTransB, 2>(a, b0, b1, b2, args, s, a1 ? *a1 : a, a2 ? *a2 : a);
  else
    launch_blocks<kEpi, kTransB, 1>(a, b0, b1, b2, args, s, a1 ? *a1 : a, a2 ? *a2 : a);
}

Args make_args(int M, int N, int K, int ld) {
  Args a{};
  a.K = K;
  a.tiles_m = M / kBM;
  a.tiles_n = N / kBN;
  a.ld = ld;
  return a;
}

void check_shape(long M, long N, long K, const char* what) {
  if (!shape_ok(M, N, K))
    fail("sm90 ", what, ": shape ", M, "x", N, "x", K, " is not a multiple of the tiles (", kBM, ", ", kBN, ", ", kBK, ")");
}

__nv_bfloat16* bf(void* p) { return static_cast<__nv_bfloat16*>(p); }
const __nv_bfloat16* bf(const void* p) { return static_cast<const __nv_bfloat16*>(p); }

}  // namespace

bool device_supported() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return major == 9 && minor == 0;
}

bool shape_ok(long M, long N, long K) {
  return M > 0 && N > 0 && K > 0 && M % kBM == 0 && N % kBN == 0 && K % kBK == 0 && M <= (1L << 30) &&
         N <= (1L << 30) && K <= (1L << 30);
}

void gemm_nt(void* C, const void* A, const void* B, int M, int N, int K, cudaStream_t stream) {
  check_shape(M, N, K, "gemm_nt");
  Args args = make_args(M, N, K, N);
  args.out0 = bf(C);
  const CUtensorMap ma = tensor_map(A, M, K, kBM, kBK), mb = tensor_map(B, N, K, kBN / 2, kBK);
  launch<Epi::kStore, 0>(ma, mb, mb, mb, args, stream);
}

void gemm_nn(void* C, const void* A, const void* B, int M, int N, int K, cudaStream_t stream) {
  const NnTerm term{A, B, K};
  gemm_nn_sum(C, &term, 1, M, N, stream);
}

void gemm_nn_sum(void* C, const NnTerm* terms, int count, int M, int N, cudaStream_t stream) {
  if (count < 1 || count > 3) fail("sm90 gemm_nn_sum: ", count, " products (1 to 3)");
  long K = 0;
  for (int i = 0; i < count; ++i) {
    if (terms[i].k <= 0 || terms[i].k % kBK != 0) fail("sm90 gemm_nn_sum: product ", i, "'s k = ", terms[i].k, " is not a multiple of ", kBK);
    K += terms[i].k;
  }
  check_shape(M, N, K, "gemm_nn_sum");
  Args args = make_args(M, N, static_cast<int>(K), N);
  args.out0 = bf(C);
  CUtensorMap ma[3], mb[3];
  for (int i = 0; i < 3; ++i) {
    const NnTerm& t = terms[i < count ? i : 0];
    args.k_parts[i] = i < count ? t.k / kBK : 0;
    ma[i] = tensor_map(t.a, M, t.k, kBM, kBK);
    mb[i] = tensor_map(t.b, t.k, N, kBK, 64);
  }
  launch<Epi::kStore, 1>(ma[0], mb[0], mb[1], mb[2], args, stream, &ma[1], &ma[2]);
}

void swiglu_forward(void* h, void* g, void* u, const void* x, const void* Wg, const void* Wu, int M, int F, int K,
                    cudaStream_t stream) {
  check_shape(M, 2L * F, K, "swiglu_forward");
  if (F % (kBN / 2) != 0) fail("sm90 swiglu_forward: F = ", F, " is not a multiple of ", kBN / 2);
  Args args = make_args(M, 2 * F, K, F);
  args.out0 = bf(h), args.out1 = bf(g), args.out2 = bf(u);
  const CUtensorMap ma = tensor_map(x, M, K, kBM, kBK);
  const CUtensorMap mg = tensor_map(Wg, F, K, kBN / 2, kBK), mu = tensor_map(Wu, F, K, kBN / 2, kBK);
  launch<Epi::kSwiglu, 0>(ma, mg, mu, mu, args, stream);
}

void swiglu_backward(void* dg, void* du, const void* dY, const void* Wd, const void* g, const void* u, int M, int F,
                     int K, cudaStream_t stream) {
  check_shape(M, F, K, "swiglu_backward");
  Args args = make_args(M, F, K, F);
  args.out0 = bf(dg), args.out1 = bf(du), args.in0 = bf(g), args.in1 = bf(u);
  const CUtensorMap ma = tensor_map(dY, M, K, kBM, kBK), mb = tensor_map(Wd, K, F, kBK, 64);
  launch<Epi::kSwigluGrad, 1>(ma, mb, mb, mb, args, stream);
}

bool qkv_shape_ok(long M, long Nq, long Nkv, long K, long hd, long seq) {
  return shape_ok(M, Nq, K) && shape_ok(M, Nkv, K) && (hd == 64 || hd == 128) && seq > 0 && seq % kBM == 0 &&
         M % seq == 0;
}

void qkv_rope_forward(void* q, void* k, void* v, const void* x, const void* wq, const void* wk, const void* wv, int M,
                      int Nq, int Nkv, int K, const float* rope_cos, const float* rope_sin, int hd, int seq, int pos0,
                      cudaStream_t stream) {
  if (!qkv_shape_ok(M, Nq, Nkv, K, hd, seq))
    fail("sm90 qkv_rope_forward: shape ", M, " tokens (sequences of ", seq, "), q ", Nq, ", k/v ", Nkv, ", input ", K,
         ", head size ", hd, " is not whole tiles (128, 256, 64; sequences of 128s; head size 64 or 128)");
  Args args = make_args(M, Nq + 2 * Nkv, K, Nq);
  args.out0 = bf(q), args.out1 = bf(k), args.out2 = bf(v);
  args.tiles_q = Nq / kBN, args.tiles_k = Nkv / kBN, args.ld_kv = Nkv;
  args.rope_cos = rope_cos, args.rope_sin = rope_sin, args.hd = hd, args.seq = seq, args.pos0 = pos0;
  const CUtensorMap ma = tensor_map(x, M, K, kBM, kBK);
  const CUtensorMap mq = tensor_map(wq, Nq, K, kBN / 2, kBK), mk = tensor_map(wk, Nkv, K, kBN / 2, kBK),
                    mv = tensor_map(wv, Nkv, K, kBN / 2, kBK);
  launch<Epi::kQkvRope, 0>(ma, mq, mk, mv, args, stream);
}

bool weight_grad_shape_ok(long N, long O, long I) { return shape_ok(O, I, N); }

long output_tiles(long M, long N) { return (M / kBM) * (N / kBN); }

namespace {
// The weight gradient's product, with or without the update in its epilogue (update: null).
void launch_weight_grad(float* dw, const void* dy, const void* x, int N, int O, int I, bool accumulate,
                        const FusedAdamW* update, cudaStream_t stream) {
  if (!weight_grad_shape_ok(N, O, I))
    fail("sm90 weight gradient: ", N, " tokens, ", O, " outputs, ", I, " inputs are not whole tiles (64, 128, 256)");
  Args args = make_args(O, I, N, I);
  args.grad = dw, args.accumulate = accumulate ? 1 : 0;
  const CUtensorMap ma = tensor_map(dy, N, O, kBK, 64), mb = tensor_map(x, N, I, kBK, 64);
  if (!update) return launch<Epi::kWeightGrad, 1>(ma, mb, mb, mb, args, stream);
  args.param = update->param, args.m = update->m, args.v = update->v, args.copy = bf(update->copy);
  args.adam = update->constants;
  launch<Epi::kWeightGradAdamW, 1>(ma, mb, mb, mb, args, stream);
}
}  // namespace

void weight_grad(float* dw, const void* dy, const void* x, int N, int O, int I, bool accumulate, cudaStream_t stream) {
  launch_weight_grad(dw, dy, x, N, O, I, accumulate, nullptr, stream);
}

void weight_grad_adamw(float* dw, const void* dy, const void* x, int N, int O, int I, bool accumulate,
                       const FusedAdamW& update, cudaStream_t stream) {
  launch_weight_grad(dw, dy, x, N, O, I, accumulate, &update, stream);
}

}  // namespace agpt::ops::cuda::sm90
