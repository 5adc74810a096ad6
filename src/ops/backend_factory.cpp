#include "ops/backend_factory.h"

#include <charconv>
#include <string>

#include "base/error.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cuda/cuda_backend.h"

namespace agpt::ops {

#ifndef AGPT_HAVE_CUDA
// Built without nvcc: the CUDA entry points exist and say so.
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
std::unique_ptr<Backend> make_cuda_backend(int, const CudaOptions&) {
  fail("this agpt was built without the CUDA backend (nvcc was not found when CMake configured it). "
       "Rebuild on a machine with the CUDA toolkit (scripts/build.sh), or use --device cpu");
}
#endif

std::unique_ptr<Backend> make_backend(std::string_view device, int threads, std::string_view precision,
                                      bool deterministic) {
  if (precision != "fp32" && precision != "tf32" && precision != "bf16")
    fail("precision '", std::string(precision), "': expected fp32, tf32 or bf16");
  if (device == "cpu") {
    if (precision != "fp32") fail("precision ", std::string(precision), " needs a CUDA device; the CPU backend is fp32");
    return make_cpu_backend(threads);
  }
  // bf16: mixed precision as Megatron runs it: bf16 activations and matrix products, fp32 master
  // weights, gradients and optimizer state.
  CudaOptions options{.matmul = std::string(precision), .activations = precision == "bf16" ? "bf16" : "fp32",
                      .attention = deterministic ? "auto" : "cudnn-atomic"};
  if (device == "cuda") return make_cuda_backend(0, options);
  if (device.starts_with("cuda:")) {
    std::string_view rest = device.substr(5);
    int index = -1;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
    if (ec == std::errc() && end == rest.data() + rest.size() && index >= 0) return make_cuda_backend(index, options);
  }
  fail("unknown device '", std::string(device), "': expected cpu, cuda or cuda:N");
}

}  // namespace agpt::ops
