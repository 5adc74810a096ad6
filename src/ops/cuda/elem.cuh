// fp32/bf16 activation access shared by the templated kernels: load to fp32, store rounded to
// nearest even, and the host-side switch from the run-time Elem to the C++ element type.
#pragma once
#include <cuda_bf16.h>

#include "base/error.h"
#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// 8 consecutive values as fp32 with 16-byte accesses (one for bf16, two for fp32); p must be
// 16-byte aligned. For the memory-bound kernels, whose one-element paths leave most bandwidth unused.
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

// Calls fn.template operator()<T>() with T the C++ type of `e`.
template <typename Fn>
void dispatch(Elem e, Fn&& fn) {
  switch (e) {
    case Elem::kF32:
      fn.template operator()<float>();
      return;
    case Elem::kBF16:
      fn.template operator()<__nv_bfloat16>();
      return;
  }
  ::agpt::fail("CUDA backend: unknown element type ", static_cast<int>(e));
}

}  // namespace agpt::ops::cuda
