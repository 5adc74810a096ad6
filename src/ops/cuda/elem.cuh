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
