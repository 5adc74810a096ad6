// AdamW with the moments in page-locked host memory (optimizer CPU offload): the moments travel
// through a few device staging buffers in chunks, each chunk's upload (copy engine), update
// (compute stream) and download (the other copy engine) overlapping the neighbouring chunks'.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <span>

#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {

struct HostMomentsJob {
  float* p;
  const float* g;
  float* m;  // host
  float* v;  // host
  int64_t n;
  AdamWConstants c;
};

class HostMomentsPipeline {
 public:
  explicit HostMomentsPipeline(cudaStream_t compute);
  ~HostMomentsPipeline();
  HostMomentsPipeline(const HostMomentsPipeline&) = delete;
  HostMomentsPipeline& operator=(const HostMomentsPipeline&) = delete;

  // Enqueues every job. The compute stream waits for the last download at the end, so anything
  // ordered after this on it (a synchronize, the next update's uploads) sees the new moments.
  void run(std::span<const HostMomentsJob> jobs);

 private:
  // 16 Mi floats (64 MiB) per moment per stage: large enough for full-speed copies, small enough
  // that 3 stages cost 384 MiB of device memory.
  static constexpr int64_t kChunk = int64_t{1} << 24;
  static constexpr int kStages = 3;
  cudaStream_t compute_, up_ = nullptr, down_ = nullptr;
  float* stage_ = nullptr;  // kStages × {m, v} × kChunk floats
  cudaEvent_t uploaded_[kStages]{}, updated_[kStages]{}, freed_[kStages]{}, start_{}, done_{};
};

}  // namespace agpt::ops::cuda
