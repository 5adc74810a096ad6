// Shared helpers of the CUDA backend's .cu files: error checks that become agpt::Error, launch
// geometry, and warp/block reductions whose summation order is fixed (results do not depend on
// timing, so runs are reproducible).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "base/error.h"

namespace agpt::ops::cuda {

#define AGPT_CUDA_CHECK(call)                                                                       \
  do {                                                                                              \
    cudaError_t agpt_err_ = (call);                                                                 \
    if (agpt_err_ != cudaSuccess)                                                                   \
      ::agpt::fail("CUDA error in ", #call, " (", __FILE__, ":", __LINE__, "): ",                   \
                   cudaGetErrorString(agpt_err_));                                                  \
  } while (0)

// After every launch: a bad configuration shows here, not at the next unrelated call.
#define AGPT_CUDA_LAUNCHED(name)                                                                    \
  do {                                                                                              \
    cudaError_t agpt_err_ = cudaGetLastError();                                                     \
    if (agpt_err_ != cudaSuccess)                                                                   \
      ::agpt::fail("CUDA kernel ", name, " failed to launch: ", cudaGetErrorString(agpt_err_));     \
  } while (0)

inline unsigned blocks_for(int64_t n, int threads, int64_t cap = 65535LL * 16) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b < cap ? b : cap);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `shared` holds 32 values. Fixed tree order: deterministic.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T r = lane < warps ? shared[lane] : T(0);
  return warp_sum(r);
}

__device__ inline float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float r = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(r);
}

}  // namespace agpt::ops::cuda
