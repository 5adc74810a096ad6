// Can the optimizer's update (memory-bound) run beside the matrix products (compute-bound) instead
// of after them? On Hopper, cuBLAS's products fill every SM with one thread block each (a block
// takes the whole register file), so an update kernel launched on a second stream only runs in the
// gaps between products (+0.7% at the 1B shape, docs/cuda.md). This benchmark measures the other
// way: the products leave k SMs free (cublasSetSmCountTarget(132 - k)) and the update runs on those
// k SMs alone (adamw_chunks_own_sms: k blocks of 1024 threads, each holding an SM).
//
//   train_overlap_bench [--rounds 48] [--free "0 4 8 12 16 24"]
//
// Workload, 1B shape (d 2,048, ffn 8,192, 32/8 heads, 4 x 2,048 tokens): the products are one
// layer's forward products (qkv, o, gate+up, down: bf16, fp32 accumulation) repeated `rounds`
// times (48 = 3 x 16 layers: about the FLOPs of a training step's layer products); the update is
// AdamW over the 16 layers' parameters (60.8M each: fp32 weights, gradients, moments, plus the
// bf16 copy: 30 bytes a parameter).
// Printed: products alone at each SM target, the update alone on k SMs (and on the whole GPU),
// then both at once on two streams, against the two run one after the other.
#if AGPT_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ops/cuda/kernels.cuh"
#include "cuda_check.h"

namespace {

using agpt::ops::cuda::AdamWChunk;
using agpt::ops::cuda::AdamWConstants;

constexpr int kTokens = 4 * 2048, kD = 2048, kFfn = 8192, kKv = 512;
constexpr int64_t kLayerParams = int64_t{kD} * (kD + 2 * kKv) + int64_t{kD} * kD + 3 * int64_t{kD} * kFfn + 2 * kD;
constexpr int kLayers = 16;

struct Product {
  int m, n, k;
};
// Column-major cuBLAS view of y = x·wᵀ for each Linear of a layer: yᵀ (O×N) = wᵀ'·xᵀ.
const Product kLayerProducts[] = {{kD + 2 * kKv, kTokens, kD}, {kD, kTokens, kD}, {2 * kFfn, kTokens, kD}, {kD, kTokens, kFfn}};

void* device_random_bf16(size_t n, uint32_t seed) {
  std::vector<__nv_bfloat16> h(n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  for (auto& x : h) x = __float2bfloat16(u(rng));
  void* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, n * 2));
  CHECK_CUDA(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
  return d;
}

struct Products {
  cublasHandle_t h;
  void *w, *x, *y;
  int rounds;
  void run(cudaStream_t s, int sm_target) {
    CHECK_CUBLAS(cublasSetStream(h, s));
    CHECK_CUBLAS(cublasSetSmCountTarget(h, sm_target));
    const float one = 1, zero = 0;
    for (int r = 0; r < rounds; ++r)
      for (const Product& p : kLayerProducts)
        CHECK_CUBLAS(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, p.m, p.n, p.k, &one, w, CUDA_R_16BF, p.k, x, CUDA_R_16BF,
                                p.k, &zero, y, CUDA_R_16BF, p.m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
  double flops() const {
    double f = 0;
    for (const Product& p : kLayerProducts) f += 2.0 * p.m * p.n * p.k;
    return f * rounds;
  }
};

struct Update {
  AdamWChunk* chunks;  // device
  int64_t count;
  int64_t params;
  AdamWConstants c{1.0f, 0.1f, 0.95f, 0.05f, -1e-4f, 1.0f, 1e-8f, 1.0f};
  double lr = 1e-4;
  void run(cudaStream_t s, int sms) {
    if (sms <= 0)
      agpt::ops::cuda::adamw_chunks(chunks, count, c, lr, s);
    else
      agpt::ops::cuda::adamw_chunks_own_sms(chunks, count, c, lr, sms, s);
  }
  double bytes() const { return 30.0 * params; }
};

Update make_update(int64_t params) {
  float *p, *g, *m, *v;
  void* copy;
  CHECK_CUDA(cudaMalloc(&p, params * 4));
  CHECK_CUDA(cudaMalloc(&g, params * 4));
  CHECK_CUDA(cudaMalloc(&m, params * 4));
  CHECK_CUDA(cudaMalloc(&v, params * 4));
  CHECK_CUDA(cudaMalloc(&copy, params * 2));
  CHECK_CUDA(cudaMemset(p, 0x3c, params * 4));  // about 0.01
  CHECK_CUDA(cudaMemset(g, 0x3a, params * 4));
  CHECK_CUDA(cudaMemset(m, 0, params * 4));
  CHECK_CUDA(cudaMemset(v, 0, params * 4));
  constexpr int64_t kChunk = 64 * 1024;
  std::vector<AdamWChunk> h;
  for (int64_t o = 0; o < params; o += kChunk)
    h.push_back({p + o, g + o, m + o, v + o, static_cast<__nv_bfloat16*>(copy) + o, std::min(kChunk, params - o), 0.1, 1});
  Update u;
  CHECK_CUDA(cudaMalloc(&u.chunks, h.size() * sizeof(AdamWChunk)));
  CHECK_CUDA(cudaMemcpy(u.chunks, h.data(), h.size() * sizeof(AdamWChunk), cudaMemcpyHostToDevice));
  u.count = static_cast<int64_t>(h.size());
  u.params = params;
  return u;
}

// Milliseconds from `start` (recorded on s0) to the event recorded on s at its end.
float elapsed(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 48;
  std::string free_list = "0 4 8 12 16 24";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--free") && i + 1 < argc) free_list = argv[++i];
    else {
      std::printf("usage: train_overlap_bench [--rounds N] [--free \"0 8 16\"]\n"
                  "  Times the 1B shape's products with k SMs left free beside AdamW on those k SMs.\n");
      return std::strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("train_overlap_bench: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("device: %s, %d SMs\n", prop.name, sms);

  Products prod{};
  CHECK_CUBLAS(cublasCreate(&prod.h));
  void* ws = nullptr;
  CHECK_CUDA(cudaMalloc(&ws, 64 << 20));
  CHECK_CUBLAS(cublasSetWorkspace(prod.h, ws, 64 << 20));
  prod.w = device_random_bf16(size_t{2 * kFfn} * kD, 1);  // the largest weight, gate+up
  prod.x = device_random_bf16(size_t{kTokens} * kFfn, 2);
  prod.y = device_random_bf16(size_t{kTokens} * 2 * kFfn, 3);
  prod.rounds = rounds;
  Update upd = make_update(kLayerParams * kLayers);

  cudaStream_t s0, s1;
  CHECK_CUDA(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking));
  CHECK_CUDA(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
  cudaEvent_t t0, t1, t2, forked;
  CHECK_CUDA(cudaEventCreate(&t0));
  CHECK_CUDA(cudaEventCreate(&t1));
  CHECK_CUDA(cudaEventCreate(&t2));
  CHECK_CUDA(cudaEventCreate(&forked));

  auto time_products = [&](int target) {
    prod.run(s0, target);  // warm (plans, clocks)
    CHECK_CUDA(cudaEventRecord(t0, s0));
    prod.run(s0, target);
    CHECK_CUDA(cudaEventRecord(t1, s0));
    CHECK_CUDA(cudaStreamSynchronize(s0));
    return elapsed(t0, t1);
  };
  auto time_update = [&](int k) {
    upd.run(s0, k);
    CHECK_CUDA(cudaEventRecord(t0, s0));
    upd.run(s0, k);
    CHECK_CUDA(cudaEventRecord(t1, s0));
    CHECK_CUDA(cudaStreamSynchronize(s0));
    return elapsed(t0, t1);
  };
  // Both at once: products on s0 (target sms - k), the update on s1 (k SMs). Returns the time until
  // both are done, and each stream's own finishing time.
  auto time_both = [&](int k, float& prod_ms, float& upd_ms) {
    CHECK_CUDA(cudaDeviceSynchronize());
    CHECK_CUDA(cudaEventRecord(t0, s0));
    CHECK_CUDA(cudaStreamWaitEvent(s1, t0));
    upd.run(s1, k);
    CHECK_CUDA(cudaEventRecord(t2, s1));
    prod.run(s0, k == 0 ? 0 : sms - k);
    CHECK_CUDA(cudaEventRecord(t1, s0));
    CHECK_CUDA(cudaDeviceSynchronize());
    prod_ms = elapsed(t0, t1), upd_ms = elapsed(t0, t2);
    return std::max(prod_ms, upd_ms);
  };

  const float prod_full = time_products(0);
  const float upd_full = time_update(0);
  std::printf("products: %d rounds of one layer's 4 forward products, %.1f TFLOP\n", prod.rounds, prod.flops() / 1e12);
  std::printf("update: AdamW over %.1fM parameters, %.1f GB\n", upd.params / 1e6, upd.bytes() / 1e9);
  std::printf("alone, whole GPU: products %.2f ms (%.0f TFLOP/s), update %.2f ms (%.2f TB/s), one after the other %.2f ms\n",
              prod_full, prod.flops() / prod_full / 1e9, upd_full, upd.bytes() / upd_full / 1e9, prod_full + upd_full);
  std::printf("%8s %14s %14s %16s %16s %16s %10s\n", "free SMs", "products ms", "update ms", "both: products", "both: update",
              "both: total", "saved");
  std::istringstream in(free_list);
  for (int k; in >> k;) {
    if (k < 0 || k >= sms) continue;
    const float p = k == 0 ? prod_full : time_products(sms - k);
    const float u = k == 0 ? upd_full : time_update(k);
    float bp = 0, bu = 0;
    time_both(k, bp, bu);  // warm
    const float both = time_both(k, bp, bu);
    std::printf("%8d %8.2f (%3.0f%%) %8.2f %5.2fTB/s %16.2f %16.2f %16.2f %9.1f%%\n", k, p, 100.0 * p / prod_full, u,
                upd.bytes() / u / 1e9, bp, bu, both, 100.0 * (1.0 - both / (prod_full + upd_full)));
  }
  return 0;
}
#else
#include <cstdio>
int main() {
  std::printf("train_overlap_bench: built without CUDA\n");
  return 0;
}
#endif
