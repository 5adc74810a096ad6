// Causal grouped-query attention in fp32: the readable GPU version that the fused bf16 path is
// checked against. One warp per query row (forward, dq) or per key row (dk, dv); each lane holds
// hd/32 elements of a head vector. Online softmax as in flash attention, so the T×T score matrix
// is never stored; backward recomputes p from the saved log-sum-exp. dk/dv are summed over the
// group's query heads inside one warp, in order: no atomics, deterministic.
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

template <int NPL>  // head-vector elements per lane: hd <= 32 * NPL
__device__ __forceinline__ void load_row(float (&r)[NPL], const float* p, int lane, int hd) {
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    int d = lane + 32 * i;
    r[i] = d < hd ? p[d] : 0.0f;
  }
}

template <int NPL>
__device__ __forceinline__ float row_dot(const float (&a)[NPL], const float* p, int lane, int hd) {
  float s = 0;
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    int d = lane + 32 * i;
    if (d < hd) s += a[i] * p[d];
  }
  return warp_sum(s);
}

template <int NPL>
__global__ void attention_forward_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                                         int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int hd,
                                         float scale) {
  const int lane = threadIdx.x & 31;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + (threadIdx.x >> 5);  // (b*H + h)*Tq + t
  if (row >= B * H * Tq) return;
  const int64_t t = row % Tq, bh = row / Tq, h = bh % H, b = bh / H, g = h / (H / KV);
  const int64_t pos = Tk - Tq + t;
  const int64_t qrow = ((b * Tq + t) * H + h) * hd;
  float qv[NPL], acc[NPL];
  load_row(qv, q + qrow, lane, hd);
#pragma unroll
  for (int i = 0; i < NPL; ++i) acc[i] = 0;
  float m = -INFINITY, l = 0;
  for (int64_t s = 0; s <= pos; ++s) {
    const int64_t kvrow = ((b * Tk + s) * KV + g) * hd;
    float sc = row_dot(qv, k + kvrow, lane, hd) * scale;
    float mn = fmaxf(m, sc);
    float corr = expf(m - mn), p = expf(sc - mn);
    l = l * corr + p;
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      int d = lane + 32 * i;
      acc[i] = acc[i] * corr + (d < hd ? p * v[kvrow + d] : 0.0f);
    }
    m = mn;
  }
  const float inv = 1.0f / l;
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    int d = lane + 32 * i;
    if (d < hd) out[qrow + d] = acc[i] * inv;
  }
  if (lane == 0) lse[row] = m + logf(l);
}

// delta[(b*H + h)*T + t] = dout · out for that row.
__global__ void attention_delta_kernel(float* delta, const float* dout, const float* out, int64_t B, int64_t T,
                                       int64_t H, int hd) {
  const int lane = threadIdx.x & 31;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + (threadIdx.x >> 5);
  if (row >= B * H * T) return;
  const int64_t t = row % T, bh = row / T, h = bh % H, b = bh / H;
  const int64_t off = ((b * T + t) * H + h) * hd;
  float s = 0;
  for (int d = lane; d < hd; d += 32) s += dout[off + d] * out[off + d];
  s = warp_sum(s);
  if (lane == 0) delta[row] = s;
}

template <int NPL>
__global__ void attention_dq_kernel(float* dq, const float* delta, const float* dout, const float* q, const float* k,
                                    const float* v, const float* lse, int64_t B, int64_t T, int64_t H, int64_t KV,
                                    int hd, float scale) {
  const int lane = threadIdx.x & 31;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + (threadIdx.x >> 5);
  if (row >= B * H * T) return;
  const int64_t t = row % T, bh = row / T, h = bh % H, b = bh / H, g = h / (H / KV);
  const int64_t qrow = ((b * T + t) * H + h) * hd;
  float qv[NPL], gv[NPL], acc[NPL];
  load_row(qv, q + qrow, lane, hd);
  load_row(gv, dout + qrow, lane, hd);
#pragma unroll
  for (int i = 0; i < NPL; ++i) acc[i] = 0;
  const float l = lse[row], D = delta[row];
  for (int64_t s = 0; s <= t; ++s) {
    const int64_t kvrow = ((b * T + s) * KV + g) * hd;
    float p = expf(row_dot(qv, k + kvrow, lane, hd) * scale - l);
    float dp = row_dot(gv, v + kvrow, lane, hd);
    float ds = p * (dp - D) * scale;
#pragma unroll
    for (int i = 0; i < NPL; ++i) {
      int d = lane + 32 * i;
      if (d < hd) acc[i] += ds * k[kvrow + d];
    }
  }
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    int d = lane + 32 * i;
    if (d < hd) dq[qrow + d] += acc[i];
  }
}

template <int NPL>
__global__ void attention_dkdv_kernel(float* dk, float* dv, const float* delta, const float* dout, const float* q,
                                      const float* k, const float* v, const float* lse, int64_t B, int64_t T,
                                      int64_t H, int64_t KV, int hd, float scale) {
  const int lane = threadIdx.x & 31;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + (threadIdx.x >> 5);  // (b*T + s)*KV + g
  if (row >= B * T * KV) return;
  const int64_t g = row % KV, bs = row / KV, s = bs % T, b = bs / T;
  const int64_t group = H / KV;
  const int64_t kvrow = row * hd;
  float kv[NPL], vv[NPL], dka[NPL], dva[NPL];
  load_row(kv, k + kvrow, lane, hd);
  load_row(vv, v + kvrow, lane, hd);
#pragma unroll
  for (int i = 0; i < NPL; ++i) dka[i] = dva[i] = 0;
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    for (int64_t t = s; t < T; ++t) {
      const int64_t qrow = ((b * T + t) * H + h) * hd;
      const int64_t srow = (b * H + h) * T + t;
      float p = expf(row_dot(kv, q + qrow, lane, hd) * scale - lse[srow]);
      float dp = row_dot(vv, dout + qrow, lane, hd);
      float ds = p * (dp - delta[srow]) * scale;
#pragma unroll
      for (int i = 0; i < NPL; ++i) {
        int d = lane + 32 * i;
        if (d < hd) {
          dva[i] += p * dout[qrow + d];
          dka[i] += ds * q[qrow + d];
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < NPL; ++i) {
    int d = lane + 32 * i;
    if (d < hd) {
      dk[kvrow + d] += dka[i];
      dv[kvrow + d] += dva[i];
    }
  }
}

unsigned warp_blocks(int64_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

// Calls fn.template operator()<NPL>() with the smallest lane width that holds hd.
template <typename Fn>
void with_lanes(int64_t hd, Fn&& fn) {
  if (hd <= 32) fn.template operator()<1>();
  else if (hd <= 64) fn.template operator()<2>();
  else if (hd <= 128) fn.template operator()<4>();
  else if (hd <= 256) fn.template operator()<8>();
  else fail("attention: head dimension ", hd, " is above the CUDA backend's limit of 256");
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B,
                       int64_t Tq, int64_t Tk, int64_t H, int64_t KV, int64_t hd, cudaStream_t s) {
  const int64_t rows = B * H * Tq;
  if (rows == 0) return;
  const float scale = 1.0f / sqrtf(static_cast<float>(hd));
  with_lanes(hd, [&]<int NPL>() {
    attention_forward_kernel<NPL><<<warp_blocks(rows), 32 * kWarpsPerBlock, 0, s>>>(
        out, lse, q, k, v, B, Tq, Tk, H, KV, static_cast<int>(hd), scale);
  });
  AGPT_CUDA_LAUNCHED("attention_forward");
}

void attention_backward(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse, int64_t B, int64_t T,
                        int64_t H, int64_t KV, int64_t hd, cudaStream_t s) {
  const int64_t rows = B * H * T;
  if (rows == 0) return;
  const float scale = 1.0f / sqrtf(static_cast<float>(hd));
  const int threads = 32 * kWarpsPerBlock;
  attention_delta_kernel<<<warp_blocks(rows), threads, 0, s>>>(delta, dout, out, B, T, H, static_cast<int>(hd));
  AGPT_CUDA_LAUNCHED("attention_backward delta");
  with_lanes(hd, [&]<int NPL>() {
    attention_dq_kernel<NPL><<<warp_blocks(rows), threads, 0, s>>>(dq, delta, dout, q, k, v, lse, B, T, H, KV,
                                                                   static_cast<int>(hd), scale);
    AGPT_CUDA_LAUNCHED("attention_backward dq");
    attention_dkdv_kernel<NPL><<<warp_blocks(B * T * KV), threads, 0, s>>>(dk, dv, delta, dout, q, k, v, lse, B, T,
                                                                          H, KV, static_cast<int>(hd), scale);
    AGPT_CUDA_LAUNCHED("attention_backward dk dv");
  });
}

}  // namespace agpt::ops::cuda
