#include "ops/cuda/host_moments.cuh"

#include <algorithm>

#include "ops/cuda/cuda_common.cuh"

namespace agpt::ops::cuda {

HostMomentsPipeline::HostMomentsPipeline(cudaStream_t compute) : compute_(compute) {
  AGPT_CUDA_CHECK(cudaStreamCreateWithFlags(&up_, cudaStreamNonBlocking));
  AGPT_CUDA_CHECK(cudaStreamCreateWithFlags(&down_, cudaStreamNonBlocking));
  AGPT_CUDA_CHECK(cudaMalloc(&stage_, sizeof(float) * 2 * kChunk * kStages));
  for (int b = 0; b < kStages; ++b) {
    AGPT_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded_[b], cudaEventDisableTiming));
    AGPT_CUDA_CHECK(cudaEventCreateWithFlags(&updated_[b], cudaEventDisableTiming));
    AGPT_CUDA_CHECK(cudaEventCreateWithFlags(&freed_[b], cudaEventDisableTiming));
  }
  AGPT_CUDA_CHECK(cudaEventCreateWithFlags(&start_, cudaEventDisableTiming));
  AGPT_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
}

HostMomentsPipeline::~HostMomentsPipeline() {
  cudaStreamSynchronize(up_);
  cudaStreamSynchronize(down_);
  for (int b = 0; b < kStages; ++b) {
    cudaEventDestroy(uploaded_[b]);
    cudaEventDestroy(updated_[b]);
    cudaEventDestroy(freed_[b]);
  }
  cudaEventDestroy(start_);
  cudaEventDestroy(done_);
  cudaFree(stage_);
  cudaStreamDestroy(up_);
  cudaStreamDestroy(down_);
}

void HostMomentsPipeline::run(std::span<const HostMomentsJob> jobs) {
  // Uploads start once everything before this call on the compute stream is done: the previous
  // update's downloads (the compute stream waited for them) and the gradients.
  AGPT_CUDA_CHECK(cudaEventRecord(start_, compute_));
  AGPT_CUDA_CHECK(cudaStreamWaitEvent(up_, start_));
  int64_t chunk = 0;
  for (const HostMomentsJob& job : jobs) {
    for (int64_t off = 0; off < job.n; off += kChunk, ++chunk) {
      const int b = static_cast<int>(chunk % kStages);
      const int64_t len = std::min(kChunk, job.n - off);
      const size_t bytes = sizeof(float) * static_cast<size_t>(len);
      float* m = stage_ + static_cast<int64_t>(b) * 2 * kChunk;
      float* v = m + kChunk;
      // The stage is free once the chunk kStages back has been downloaded from it.
      AGPT_CUDA_CHECK(cudaStreamWaitEvent(up_, freed_[b]));
      AGPT_CUDA_CHECK(cudaMemcpyAsync(m, job.m + off, bytes, cudaMemcpyHostToDevice, up_));
      AGPT_CUDA_CHECK(cudaMemcpyAsync(v, job.v + off, bytes, cudaMemcpyHostToDevice, up_));
      AGPT_CUDA_CHECK(cudaEventRecord(uploaded_[b], up_));
      AGPT_CUDA_CHECK(cudaStreamWaitEvent(compute_, uploaded_[b]));
      adamw(job.p + off, job.g + off, m, v, nullptr, len, job.c, compute_);
      AGPT_CUDA_CHECK(cudaEventRecord(updated_[b], compute_));
      AGPT_CUDA_CHECK(cudaStreamWaitEvent(down_, updated_[b]));
      AGPT_CUDA_CHECK(cudaMemcpyAsync(job.m + off, m, bytes, cudaMemcpyDeviceToHost, down_));
      AGPT_CUDA_CHECK(cudaMemcpyAsync(job.v + off, v, bytes, cudaMemcpyDeviceToHost, down_));
      AGPT_CUDA_CHECK(cudaEventRecord(freed_[b], down_));
    }
  }
  AGPT_CUDA_CHECK(cudaEventRecord(done_, down_));
  AGPT_CUDA_CHECK(cudaStreamWaitEvent(compute_, done_));
}

}  // namespace agpt::ops::cuda
