// Page-locked staging for small host-to-device uploads (token ids, targets, index tables), so that
// Backend::upload returns without waiting for the GPU: the caller's bytes are copied into one of a
// few page-locked slots, from which the stream copies them asynchronously. A slot is reused only
// after its previous copy has finished. Without it every upload drains the GPU's queue (the host
// memory may be reused as soon as upload returns, so a plain asynchronous copy must be waited for).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace agpt::ops::cuda {

class UploadStaging {
 public:
  UploadStaging() = default;
  ~UploadStaging();
  UploadStaging(const UploadStaging&) = delete;
  UploadStaging& operator=(const UploadStaging&) = delete;

  // Copies `bytes` from host into a slot and queues the copy to dst on stream; the caller may
  // reuse host at once. false, having done nothing, when bytes is above a slot's size.
  bool stage(void* dst, const void* host, size_t bytes, cudaStream_t stream);

 private:
  static constexpr size_t kSlotBytes = size_t{4} << 20;
  static constexpr int kSlots = 8;
  struct Slot {
    void* pinned = nullptr;  // allocated on first use
    cudaEvent_t done = nullptr;
  };
  Slot slots_[kSlots];
  int next_ = 0;
};

}  // namespace agpt::ops::cuda
