#include "ops/cuda/pinned_host.cuh"

#include <cuda_runtime.h>
#include <sys/mman.h>

#include <cstring>

namespace agpt::ops::cuda {

std::shared_ptr<void> allocate_pinned_host(size_t bytes, int device, const char** error) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t mapped = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    *error = "mmap failed (out of memory?)";
    return nullptr;
  }
  madvise(p, mapped, MADV_HUGEPAGE);  // a hint: fewer pages to fault in and to pin
  std::memset(p, 0, mapped);          // faults every page in now, without the driver's lock
  // The calling thread may not be the one that made `device` current (a background reservation).
  cudaError_t err = cudaSetDevice(device);
  if (err == cudaSuccess) err = cudaHostRegister(p, mapped, cudaHostRegisterDefault);
  if (err != cudaSuccess) {
    cudaGetLastError();
    munmap(p, mapped);
    *error = cudaGetErrorString(err);
    return nullptr;
  }
  return std::shared_ptr<void>(p, [mapped](void* q) {
    cudaHostUnregister(q);
    munmap(q, mapped);
  });
}

}  // namespace agpt::ops::cuda
