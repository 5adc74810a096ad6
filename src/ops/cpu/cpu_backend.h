// The CPU reference backend: fp32, written to be read and checked against PyTorch. Threads through
// agpt::parallel_for over fixed-size chunks and OpenBLAS for matrix products, so results are the
// same for any thread count.
#pragma once
#include <memory>

#include "ops/backend.h"

namespace agpt::ops {

// threads <= 0: all cores. Also sets OpenBLAS's thread count (a process-wide setting).
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace agpt::ops
