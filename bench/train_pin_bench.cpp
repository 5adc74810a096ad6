// Does reserving page-locked host memory on another thread stall training? Asynchronous
// checkpoints reserve their host copy (weights and both AdamW moments: 96 GB at 7B, split over
// three buffers) beside the first training steps. This benchmark runs a stand-in for the training
// thread (a device memset and a stream synchronize, over and over) while a second thread reserves
// `--gib` GiB, once with cudaHostAlloc (what CUDA programs usually call; the peer) and once with
// agpt's allocate_pinned_host (pages faulted in first, then cudaHostRegister). Printed for each:
// the reservation's time, the training thread's longest iteration and its total delay against its
// median iteration, and the rate of a 1 GiB device-to-host copy into the reserved memory.
//
//   train_pin_bench [--gib 16]
#if AGPT_HAVE_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "machine.h"
#include "ops/cuda/pinned_host.cuh"
#include "cuda_check.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Result {
  double reserve_s = 0, longest_ms = 0, delay_s = 0, copy_gbs = 0;
};

// Runs the stand-in training loop until `reserve` returns on its own thread.
template <class Reserve>
Result measure(Reserve reserve, void* device_buffer, size_t device_bytes, cudaStream_t stream) {
  std::atomic<bool> done{false};
  std::shared_ptr<void> host;
  Result r;
  std::thread worker([&] {
    const auto t0 = Clock::now();
    host = reserve();
    r.reserve_s = seconds_since(t0);
    done = true;
  });
  std::vector<double> ms;
  while (!done) {
    const auto t0 = Clock::now();
    CHECK_CUDA(cudaMemsetAsync(device_buffer, static_cast<int>(ms.size() & 0xff), device_bytes, stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));
    ms.push_back(1e3 * seconds_since(t0));
  }
  worker.join();
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  r.longest_ms = sorted.back();
  for (double m : ms) r.delay_s += std::max(0.0, m - median) / 1e3;
  const size_t copy = size_t{1} << 30;
  CHECK_CUDA(cudaMemcpyAsync(host.get(), device_buffer, std::min(copy, device_bytes), cudaMemcpyDeviceToHost, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  const auto t0 = Clock::now();
  for (int i = 0; i < 4; ++i)
    CHECK_CUDA(cudaMemcpyAsync(host.get(), device_buffer, std::min(copy, device_bytes), cudaMemcpyDeviceToHost, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));
  r.copy_gbs = 4.0 * static_cast<double>(std::min(copy, device_bytes)) / seconds_since(t0) / 1e9;
  std::printf("  iterations of the training stand-in: %zu, median %.3f ms\n", ms.size(), median);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double gib = 16;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--gib" && i + 1 < argc) gib = std::atof(argv[++i]);
    else if (a == "--help" || a == "-h") {
      std::printf("train_pin_bench [--gib 16]: reserve page-locked host memory beside a CUDA loop, "
                  "cudaHostAlloc against agpt's allocate_pinned_host\n");
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  const size_t bytes = static_cast<size_t>(gib * (1 << 30));
  const size_t device_bytes = size_t{1} << 30;
  void* device_buffer = nullptr;
  cudaStream_t stream;
  CHECK_CUDA(cudaSetDevice(0));
  CHECK_CUDA(cudaStreamCreate(&stream));
  CHECK_CUDA(cudaMalloc(&device_buffer, device_bytes));
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("GPU %s, CPU %s\n", prop.name, agpt::bench::cpu_model().c_str());
  std::printf("reserving %.1f GiB of page-locked host memory beside a loop of 1 GiB device memsets\n", gib);

  struct Method {
    const char* name;
    std::shared_ptr<void> (*reserve)(size_t);
  };
  const Method methods[] = {
      {"cudaHostAlloc + memset (peer)",
       [](size_t n) -> std::shared_ptr<void> {
         CHECK_CUDA(cudaSetDevice(0));
         void* p = nullptr;
         CHECK_CUDA(cudaHostAlloc(&p, n, cudaHostAllocDefault));
         std::memset(p, 0, n);
         return std::shared_ptr<void>(p, [](void* q) { cudaFreeHost(q); });
       }},
      {"agpt allocate_pinned_host",
       [](size_t n) -> std::shared_ptr<void> {
         const char* error = nullptr;
         auto p = agpt::ops::cuda::allocate_pinned_host(n, 0, &error);
         if (!p) {
           std::fprintf(stderr, "allocate_pinned_host: %s\n", error);
           std::exit(1);
         }
         return p;
       }},
  };
  std::printf("| method | reserve s | longest iteration ms | training delayed s | D2H GB/s |\n| --- | --- | --- | --- | --- |\n");
  for (const Method& m : methods) {
    std::fprintf(stderr, "%s ...\n", m.name);
    Result r = measure([&] { return m.reserve(bytes); }, device_buffer, device_bytes, stream);
    std::printf("| %s | %.2f | %.1f | %.2f | %.1f |\n", m.name, r.reserve_s, r.longest_ms, r.delay_s, r.copy_gbs);
    std::fflush(stdout);
  }
  CHECK_CUDA(cudaFree(device_buffer));
  return 0;
}
#else
#include <cstdio>
int main() {
  std::printf("train_pin_bench: built without CUDA\n");
  return 0;
}
#endif
