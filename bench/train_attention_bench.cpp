// Causal grouped-query attention, bf16: agpt's tensor-core kernels (attention_mma.cu) against
// cuDNN's fused flash attention (attention_cudnn.cu, backend graph API), forward and backward, for
// the training shapes of the issue.
//
//   train_attention_bench [--shape all|124M|gqa64|mha64|gqa128] [--iters 20] [--warmup 3]
//
// Times with CUDA events around each call on one stream, median of --iters after --warmup calls.
// FLOPs: forward 4·B·H·T²·hd / 2 (causal: half of the T×T scores), backward 2.5× that.
// cuDNN's backward is timed in both forms: deterministic (agpt's default: no dQ atomics) and
// atomic dQ (attention_cudnn_allow_nondeterministic(true)). agpt's backward adds into fp32
// gradients, cuDNN's writes bf16 ones. AGPT_CUDNN_ATTENTION_SKIP=k compares cuDNN's other engine
// configurations (the first k that build are passed over; AGPT_CUDNN_VERBOSE=1 names the one used).
#if AGPT_HAVE_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/cuda/attention_cudnn.cuh"
#include "ops/cuda/attention_mma.cuh"
#include "ops/tensor.h"
#include "cuda_check.h"

namespace {

namespace cu = agpt::ops::cuda;

struct Shape {
  const char* name;
  int64_t B, T, H, KV, hd;
};

const Shape kShapes[] = {
    {"124M", 16, 1024, 12, 12, 64},
    {"gqa64", 4, 2048, 32, 8, 64},
    {"mha64", 4, 2048, 32, 32, 64},  // the 1B shape with K/V repeated per head: is GQA's backward slower?
    {"gqa128", 1, 4096, 32, 8, 128},
};

void* dev_alloc(size_t bytes) {
  void* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, bytes));
  CHECK_CUDA(cudaMemset(p, 0, bytes));
  return p;
}

void* dev_random_bf16(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<uint16_t> h(n);
  for (auto& x : h) x = agpt::ops::f32_to_bf16(d(rng));
  void* p = dev_alloc(n * 2);
  CHECK_CUDA(cudaMemcpy(p, h.data(), n * 2, cudaMemcpyHostToDevice));
  return p;
}

// Median milliseconds of fn() over `iters` calls after `warmup` calls; -1 if fn() returns false.
double time_ms(cudaStream_t s, int warmup, int iters, const std::function<bool()>& fn) {
  for (int i = 0; i < warmup; ++i)
    if (!fn()) return -1;
  CHECK_CUDA(cudaStreamSynchronize(s));
  std::vector<cudaEvent_t> ev(2 * static_cast<size_t>(iters));
  for (auto& e : ev) CHECK_CUDA(cudaEventCreate(&e));
  for (int i = 0; i < iters; ++i) {
    CHECK_CUDA(cudaEventRecord(ev[2 * i], s));
    fn();
    CHECK_CUDA(cudaEventRecord(ev[2 * i + 1], s));
  }
  CHECK_CUDA(cudaStreamSynchronize(s));
  std::vector<float> ms(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) CHECK_CUDA(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]));
  for (auto& e : ev) cudaEventDestroy(e);
  std::sort(ms.begin(), ms.end());
  return iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]);
}

void print_row(const char* what, double ms, double flops) {
  if (ms < 0)
    std::printf("    %-30s %10s\n", what, "refused");
  else
    std::printf("    %-30s %10.3f ms %8.1f TFLOP/s\n", what, ms, flops / (ms * 1e-3) / 1e12);
}

void run(const Shape& sh, int warmup, int iters) {
  const int64_t B = sh.B, T = sh.T, H = sh.H, KV = sh.KV, hd = sh.hd;
  const size_t nq = static_cast<size_t>(B * T * H * hd), nk = static_cast<size_t>(B * T * KV * hd);
  const size_t nl = static_cast<size_t>(B * H * T);
  std::mt19937 rng(1234);
  void* q = dev_random_bf16(nq, rng, -2, 2);
  void* k = dev_random_bf16(nk, rng, -2, 2);
  void* v = dev_random_bf16(nk, rng, -1, 1);
  void* dout = dev_random_bf16(nq, rng, -1, 1);
  void* out = dev_alloc(nq * 2);
  auto* lse = static_cast<float*>(dev_alloc(nl * 4));
  auto* dq32 = static_cast<float*>(dev_alloc(nq * 4));
  auto* dk32 = static_cast<float*>(dev_alloc(nk * 4));
  auto* dv32 = static_cast<float*>(dev_alloc(nk * 4));
  auto* delta = static_cast<float*>(dev_alloc(nl * 4));
  void* dq = dev_alloc(nq * 2);
  void* dk = dev_alloc(nk * 2);
  void* dv = dev_alloc(nk * 2);
  cudaStream_t s = nullptr;
  CHECK_CUDA(cudaStreamCreate(&s));

  const double fwd_flops = 4.0 * B * H * static_cast<double>(T) * T * hd / 2;
  const double bwd_flops = 2.5 * fwd_flops;
  std::printf("  %s: B=%lld T=%lld H=%lld KV=%lld hd=%lld\n", sh.name, static_cast<long long>(B),
              static_cast<long long>(T), static_cast<long long>(H), static_cast<long long>(KV),
              static_cast<long long>(hd));

  print_row("forward agpt-mma", time_ms(s, warmup, iters, [&] {
              return cu::attention_forward_mma(out, lse, q, k, v, B, T, T, H, KV, hd, s);
            }), fwd_flops);
  print_row("forward cuDNN", time_ms(s, warmup, iters, [&] {
              return cu::attention_forward_cudnn(out, lse, q, k, v, B, T, H, KV, hd, s);
            }), fwd_flops);
  // Backward from a forward's out/lse (cuDNN's, just computed; same definition as agpt's).
  print_row("backward agpt-mma", time_ms(s, warmup, iters, [&] {
              return cu::attention_backward_mma(dq32, dk32, dv32, delta, dout, q, k, v, out, lse, B, T, H, KV, hd, s);
            }), bwd_flops);
  cu::attention_cudnn_allow_nondeterministic(false);
  bool det = false;
  print_row("backward cuDNN deterministic", time_ms(s, warmup, iters, [&] {
              bool ok = cu::attention_backward_cudnn(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KV, hd, s);
              det = cu::attention_backward_cudnn_deterministic();
              return ok;
            }), bwd_flops);
  if (!det) std::printf("    (cuDNN refused the deterministic form: the row above is the atomic-dQ form)\n");
  cu::attention_cudnn_allow_nondeterministic(true);
  print_row("backward cuDNN atomic dQ", time_ms(s, warmup, iters, [&] {
              return cu::attention_backward_cudnn(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KV, hd, s);
            }), bwd_flops);
  cu::attention_cudnn_allow_nondeterministic(false);
  const std::string why = cu::attention_cudnn_last_refusal();
  if (!why.empty()) std::printf("    last cuDNN refusal: %s\n", why.c_str());

  CHECK_CUDA(cudaStreamSynchronize(s));
  CHECK_CUDA(cudaStreamDestroy(s));
  for (void* p : {q, k, v, dout, out, static_cast<void*>(lse), static_cast<void*>(dq32), static_cast<void*>(dk32),
                  static_cast<void*>(dv32), static_cast<void*>(delta), dq, dk, dv})
    cudaFree(p);
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "all";
  int iters = 20, warmup = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: train_attention_bench [--shape all|124M|gqa64|mha64|gqa128] [--iters 20] [--warmup 3]\n"
          "Causal GQA attention, bf16: agpt-mma vs cuDNN fused flash attention, forward and backward\n"
          "(median of --iters CUDA-event timings after --warmup calls; TFLOP/s with causal FLOPs\n"
          "4*B*H*T^2*hd/2 forward, 2.5x that backward).\n"
          "shapes: 124M B16 T1024 H12 KV12 hd64; gqa64 B4 T2048 H32 KV8 hd64; mha64 B4 T2048 H32 KV32 hd64; gqa128 B1 T4096 H32 KV8 hd128\n");
      return 0;
    } else if (a == "--shape" && i + 1 < argc) {
      shape = argv[++i];
    } else if (a == "--iters" && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--warmup" && i + 1 < argc) {
      warmup = std::max(0, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "unknown argument %s (see --help)\n", a.c_str());
      return 2;
    }
  }
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  // Keep freed stream-ordered memory in the pool (as the CUDA backend does): cuDNN's workspace is
  // allocated and freed per call.
  cudaMemPool_t pool;
  CHECK_CUDA(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t threshold = UINT64_MAX;
  CHECK_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  std::printf("GPU: %s (sm_%d%d); cuDNN %lld\n", prop.name, prop.major, prop.minor,
              static_cast<long long>(cu::attention_cudnn_version()));
  bool any = false;
  for (const Shape& sh : kShapes)
    if (shape == "all" || shape == sh.name) {
      run(sh, warmup, iters);
      any = true;
    }
  if (!any) {
    std::fprintf(stderr, "unknown shape %s (see --help)\n", shape.c_str());
    return 2;
  }
  return 0;
}
#else
#include <cstdio>
int main() {
  std::fprintf(stderr, "train_attention_bench: built without CUDA\n");
  return 1;
}
#endif  // AGPT_HAVE_CUDA
