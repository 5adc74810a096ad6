// Page-locked host memory that can be reserved beside training. cudaHostAlloc faults in and pins
// every page while it holds the CUDA driver's lock, so reserving a 7B checkpoint's copy (24 GB a
// buffer) on another thread stalled the training thread's CUDA calls for about 20 s each time.
// Here the pages are faulted in first, outside the driver (transparent huge pages where the kernel
// gives them), and only then registered with cudaHostRegister, which has little left to do.
#pragma once

#include <cstddef>
#include <memory>

namespace agpt::ops::cuda {

// `bytes` of zeroed, page-locked host memory, usable by copies on `device`; nullptr with `error`
// set when the memory cannot be mapped or pinned. Freed (unregistered, unmapped) with the last
// reference.
std::shared_ptr<void> allocate_pinned_host(size_t bytes, int device, const char** error);

}  // namespace agpt::ops::cuda
