// Host-side checks shared by the attention kernels' launchers (attention_tiled.cu, attention_mma.cu):
// alignment, grid limits, and raising a kernel's dynamic shared-memory limit once per device.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "ops/cuda/cuda_common.cuh"

namespace agpt::ops::cuda {

constexpr int64_t kMaxGridX = 2147483647, kMaxGridYZ = 65535;  // CUDA's grid limits

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Shapes a flash-style launcher with `tile`-row tiles handles: hd 64 or 128, grouped heads, and a
// grid of (ceil(T/tile), H, B) blocks within CUDA's limits.
inline bool attention_shape_ok(int64_t B, int64_t T, int64_t H, int64_t KV, int64_t hd, int64_t tile) {
  if (hd != 64 && hd != 128) return false;
  if (B < 0 || T < 0 || H <= 0 || KV <= 0 || H % KV != 0) return false;
  if (B > kMaxGridYZ || H > kMaxGridYZ) return false;
  return (T + tile - 1) / tile <= kMaxGridX;
}

// Lets Kernel use `bytes` of dynamic shared memory on the current device, raising the limit once
// per device (0..63; one flag word per kernel); false if the device cannot give a block that much.
template <auto Kernel>
bool allow_smem(size_t bytes) {
  static std::atomic<uint64_t> raised{0};
  int dev = 0;
  AGPT_CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = dev >= 0 && dev < 64 ? (uint64_t{1} << dev) : 0;
  if (bit != 0 && (raised.load(std::memory_order_acquire) & bit) != 0) return true;
  int optin = 0;
  AGPT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  if (bytes > static_cast<size_t>(optin)) return false;
  AGPT_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  raised.fetch_or(bit, std::memory_order_acq_rel);
  return true;
}

}  // namespace agpt::ops::cuda
