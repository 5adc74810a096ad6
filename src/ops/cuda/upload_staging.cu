#include "ops/cuda/upload_staging.cuh"

#include <cstring>

#include "ops/cuda/cuda_common.cuh"

namespace agpt::ops::cuda {

UploadStaging::~UploadStaging() {
  for (Slot& s : slots_) {
    if (s.done) {
      cudaEventSynchronize(s.done);
      cudaEventDestroy(s.done);
    }
    if (s.pinned) cudaFreeHost(s.pinned);
  }
}

bool UploadStaging::stage(void* dst, const void* host, size_t bytes, cudaStream_t stream) {
  if (bytes > kSlotBytes) return false;
  Slot& s = slots_[next_];
  next_ = (next_ + 1) % kSlots;
  if (!s.pinned) {
    AGPT_CUDA_CHECK(cudaHostAlloc(&s.pinned, kSlotBytes, cudaHostAllocDefault));
    AGPT_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
  } else {
    AGPT_CUDA_CHECK(cudaEventSynchronize(s.done));  // this slot's previous copy has been made
  }
  std::memcpy(s.pinned, host, bytes);
  AGPT_CUDA_CHECK(cudaMemcpyAsync(dst, s.pinned, bytes, cudaMemcpyHostToDevice, stream));
  AGPT_CUDA_CHECK(cudaEventRecord(s.done, stream));
  return true;
}

}  // namespace agpt::ops::cuda
