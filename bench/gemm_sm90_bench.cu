// agpt's Hopper products (src/ops/cuda/sm90) against cuBLAS on the 1B shape's MLP, in one run:
// each product's error against cuBLAS (‖ours − cuBLAS‖/‖cuBLAS‖) and time, and the fused SwiGLU
// products against cuBLAS plus the separate SwiGLU kernels they replace.
//   gemm_sm90_bench [--tokens 8192] [--d 2048] [--ffn 8192] [--kv 512] [--vocab 128256] [--reps 20]
//                   [--energy SECONDS]
// also times every product of a Llama step's forward (x·Wᵀ) and input gradients (dY·W) at these
// sizes, including the sums a fused kernel could take in one product (gate+up, q+k+v: K summed).
// With --energy each product instead runs back to back for that many seconds, as in a training
// step at the card's power limit, and the table gives its time and energy per call there (NVML's
// energy counter), so kernels can be compared by the energy a power-limited step spends on them.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "nvml_energy.h"
#include "ops/cuda/sm90/gemm.cuh"
#include "ops/cuda/kernels.cuh"
#include "ops/cuda/rope_math.cuh"
#include "ops/cuda/swiglu_math.cuh"

using bf16 = __nv_bfloat16;
namespace sm90 = agpt::ops::cuda::sm90;

__global__ void fill_kernel(bf16* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13, h *= 3266489917u, h ^= h >> 16;
    p[i] = __float2bfloat16((float(h) / 4294967296.0f * 2.0f - 1.0f) * scale);
  }
}

__global__ void swiglu_fwd_kernel(bf16* h, const bf16* g, const bf16* u, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    h[i] = __float2bfloat16(agpt::ops::cuda::swiglu_value(__bfloat162float(g[i]), __bfloat162float(u[i])));
}
__global__ void swiglu_bwd_kernel(bf16* dg, bf16* du, const bf16* d, const bf16* g, const bf16* u, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    float a, b;
    agpt::ops::cuda::swiglu_grad(__bfloat162float(g[i]), __bfloat162float(u[i]), __bfloat162float(d[i]), a, b);
    dg[i] = __float2bfloat16(a), du[i] = __float2bfloat16(b);
  }
}

// RoPE in place on rows of `width` columns (heads of hd), position pos = row % seq.
__global__ void rope_kernel(bf16* x, const float* cs, const float* sn, size_t rows, int width, int hd, int seq) {
  const int half = hd / 2, pairs = width / 2;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < rows * pairs; i += size_t(gridDim.x) * blockDim.x) {
    const size_t row = i / pairs;
    const int p = int(i % pairs), head = p / half, j = p % half;
    bf16* v = x + row * width + head * hd;
    float a = __bfloat162float(v[j]), b = __bfloat162float(v[j + half]);
    const size_t t = size_t(row % seq) * half + j;
    agpt::ops::cuda::rope_pair(a, b, cs[t], sn[t], false);
    v[j] = __float2bfloat16(a), v[j + half] = __float2bfloat16(b);
  }
}

struct Buf {
  bf16* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count, uint32_t seed = 0, float scale = 0) : n(count) {
    CHECK_CUDA(cudaMalloc(&p, n * sizeof(bf16)));
    if (scale > 0) fill_kernel<<<1024, 256>>>(p, n, seed, scale);
    else CHECK_CUDA(cudaMemset(p, 0, n * sizeof(bf16)));
  }
  Buf(Buf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { cudaFree(p); }
};

double rel_error(const Buf& got, const Buf& ref) {
  std::vector<uint16_t> a(got.n), b(ref.n);
  CHECK_CUDA(cudaMemcpy(a.data(), got.p, a.size() * 2, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(b.data(), ref.p, b.size() * 2, cudaMemcpyDeviceToHost));
  auto f = [](uint16_t v) {
    uint32_t w = uint32_t(v) << 16;
    float x;
    std::memcpy(&x, &w, 4);
    return double(x);
  };
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = f(a[i]) - f(b[i]);
    num += d * d, den += f(b[i]) * f(b[i]);
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

// Median time of reps runs, ms.
double time_ms(const std::function<void()>& fn, int reps) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> t;
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  for (int i = 0; i < reps; ++i) {
    CHECK_CUDA(cudaEventRecord(a));
    fn();
    CHECK_CUDA(cudaEventRecord(b));
    CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  CHECK_CUDA(cudaGetLastError());
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// A product's cost: time per call, and with --energy the energy per call at the steady state of a
// long run (average power over whole updates of the counter), the power and the SM clock there.
struct Cost {
  double ms = 0, joules = 0, watts = 0;
  unsigned mhz = 0;
};

Cost sustained(const std::function<void()>& fn, double seconds, const GpuEnergyMeter& meter) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  const int per_batch = std::max(1, int(2.0 / time_ms(fn, 5)));  // about 2 ms of work between polls
  cudaEvent_t in_flight[2], start, stop;
  for (cudaEvent_t* e : {&in_flight[0], &in_flight[1], &start, &stop}) CHECK_CUDA(cudaEventCreate(e));
  long batches = 0;
  auto feed = [&] {  // one more batch, with at most two in flight: the GPU never waits for the host
    CHECK_CUDA(cudaEventSynchronize(in_flight[batches % 2]));
    for (int i = 0; i < per_batch; ++i) fn();
    CHECK_CUDA(cudaEventRecord(in_flight[batches % 2]));
    ++batches;
  };
  auto until_counter_moves = [&](unsigned long long& mj) {
    const unsigned long long before = meter.millijoules();
    do feed(), mj = meter.millijoules();
    while (meter.ok() && mj == before);
    return Clock::now();
  };
  for (const Clock::time_point t = Clock::now(); since(t) < 0.5;) feed();  // the clock settles
  unsigned long long e0 = 0, e1 = 0;
  const Clock::time_point t0 = until_counter_moves(e0);
  CHECK_CUDA(cudaEventRecord(start));
  const long first = batches;
  while (since(t0) < seconds) feed();
  const Clock::time_point t1 = until_counter_moves(e1);
  CHECK_CUDA(cudaEventRecord(stop));
  Cost c;
  c.mhz = meter.sm_mhz();
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  c.ms = ms / double((batches - first) * per_batch);
  const double wall = std::chrono::duration<double>(t1 - t0).count();
  if (meter.ok() && wall > 0) c.watts = double(e1 - e0) * 1e-3 / wall, c.joules = c.watts * c.ms * 1e-3;
  for (cudaEvent_t e : {in_flight[0], in_flight[1], start, stop}) CHECK_CUDA(cudaEventDestroy(e));
  return c;
}

int main(int argc, char** argv) {
  int T = 8192, D = 2048, F = 8192, KV = 512, V = 128256, reps = 20;
  double energy_seconds = 0;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help" || i + 1 >= argc) {
      std::printf("usage: gemm_sm90_bench [--tokens N] [--d N] [--ffn N] [--kv N] [--vocab N] [--reps N] [--energy S]\n"
                  "  times agpt's Hopper products (src/ops/cuda/sm90) against cuBLAS at a Llama shape\n"
                  "  (default: the 1B preset, 8,192 tokens), e.g.  gemm_sm90_bench --d 4096 --ffn 14336 --kv 1024\n"
                  "  --energy S: each product runs back to back for S seconds (the power-limited steady state);\n"
                  "  reports time and energy per call there, e.g.  gemm_sm90_bench --energy 2\n");
      return k == "-h" || k == "--help" ? 0 : 2;
    }
    const int v = std::atoi(argv[i + 1]);
    if (k == "--tokens") T = v;
    else if (k == "--d") D = v;
    else if (k == "--ffn") F = v;
    else if (k == "--reps") reps = v;
    else if (k == "--kv") KV = v;
    else if (k == "--vocab") V = v;
    else if (k == "--energy") energy_seconds = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: gemm_sm90_bench [--tokens N] [--d N] [--ffn N] [--kv N] [--vocab N] [--reps N] [--energy S]\n");
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  setvbuf(stdout, nullptr, _IONBF, 0);  // a hang still shows what finished
  GpuEnergyMeter meter(0);
  if (energy_seconds > 0)
    std::printf("device: %s, %d SMs; tokens %d, d %d, ffn %d; each product back to back for %.1f s%s\n", prop.name,
                prop.multiProcessorCount, T, D, F, energy_seconds, meter.ok() ? "" : " (no NVML energy counter)");
  else
    std::printf("device: %s, %d SMs; tokens %d, d %d, ffn %d; median of %d runs\n", prop.name,
                prop.multiProcessorCount, T, D, F, reps);
  if (!sm90::device_supported()) {
    std::printf("not a Hopper GPU: nothing to measure\n");
    return 0;
  }
  cublasHandle_t blas;
  CHECK_CUBLAS(cublasCreate(&blas));
  const float one = 1.0f, zero = 0.0f;
  // Row-major C[M,N] = A[M,K]·B[N,K]ᵀ and C[M,N] = A[M,K]·B[K,N] through column-major cuBLAS.
  auto blas_nt = [&](bf16* C, const bf16* A, const bf16* B, int M, int N, int K) {
    CHECK_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, B, CUDA_R_16BF, K, A, CUDA_R_16BF, K,
                            &zero, C, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  };
  auto blas_nn = [&](bf16* C, const bf16* A, const bf16* B, int M, int N, int K) {
    CHECK_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, B, CUDA_R_16BF, N, A, CUDA_R_16BF, K,
                            &zero, C, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  };
  auto measure = [&](const std::function<void()>& fn) {
    if (energy_seconds > 0) return sustained(fn, energy_seconds, meter);
    Cost c;
    c.ms = time_ms(fn, reps);
    return c;
  };
  auto report = [&](const char* what, double flops, const Cost& ours, const Cost& theirs, double err) {
    std::printf("%-44s ours %7.3f ms %6.1f TFLOP/s | cuBLAS %7.3f ms %6.1f TFLOP/s | ours/cuBLAS time %.3f | rel err %.2e\n",
                what, ours.ms, flops / ours.ms / 1e9, theirs.ms, flops / theirs.ms / 1e9, ours.ms / theirs.ms, err);
    if (energy_seconds > 0 && meter.ok())
      std::printf("%-44s ours %7.1f mJ %5.2f TFLOP/J %4.0f W %4u MHz | cuBLAS %7.1f mJ %5.2f TFLOP/J %4.0f W %4u MHz | "
                  "ours/cuBLAS energy %.3f\n",
                  "", ours.joules * 1e3, flops / ours.joules / 1e12, ours.watts, ours.mhz, theirs.joules * 1e3,
                  flops / theirs.joules / 1e12, theirs.watts, theirs.mhz, ours.joules / theirs.joules);
  };

  const float ws = 1.0f / std::sqrt(float(D));
  Buf x(size_t(T) * D, 1, 1.0f), wg(size_t(F) * D, 2, ws), wu(size_t(F) * D, 3, ws), wd(size_t(D) * F, 4, ws);
  Buf dy(size_t(T) * D, 5, 1.0f);
  Buf g(size_t(T) * F), u(size_t(T) * F), h(size_t(T) * F, 6, 1.0f), g2(size_t(T) * F), u2(size_t(T) * F), h2(size_t(T) * F);
  const size_t TF = size_t(T) * F;

  // Plain products: ours and cuBLAS's on the same inputs, compared, then timed.
  auto plain = [&](const char* what, bool nn, const bf16* A, const bf16* B, int M, int N, int K) {
    Buf ours(size_t(M) * N), theirs(size_t(M) * N);
    auto run_ours = [&] { (nn ? sm90::gemm_nn : sm90::gemm_nt)(ours.p, A, B, M, N, K, 0); };
    auto run_theirs = [&] {
      if (nn) blas_nn(theirs.p, A, B, M, N, K);
      else blas_nt(theirs.p, A, B, M, N, K);
    };
    run_ours();
    run_theirs();
    const double err = rel_error(ours, theirs);
    report(what, 2.0 * M * N * K, measure(run_ours), measure(run_theirs), err);
  };
  // N-major weights (forward): gate [T,F] = x·Wgᵀ; down [T,D] = h·Wdᵀ. K-major weights (input
  // gradients): dh [T,F] = dY·Wd; dx [T,D] = dg·Wg.
  plain("x·Wgᵀ (T x F x D)", false, x.p, wg.p, T, F, D);
  plain("h·Wdᵀ (T x D x F)", false, h.p, wd.p, T, D, F);
  plain("dY·Wd (T x F x D)", true, dy.p, wd.p, T, F, D);
  plain("dg·Wg (T x D x F)", true, h.p, wg.p, T, D, F);
  // Every product of a step (forward and input gradient), on random inputs of its own.
  std::printf("-- the step's products (forward x·Wᵀ: nt; input gradient dY·W: nn)\n");
  auto product = [&](const char* what, bool nn, int M, int N, int K) {
    if (!sm90::shape_ok(M, N, K)) {
      std::printf("%-44s not whole tiles: cuBLAS only\n", what);
      return;
    }
    Buf A(size_t(M) * K, 7, 1.0f), B(size_t(N) * K, 8, 1.0f / std::sqrt(float(K)));
    plain(what, nn, A.p, B.p, M, N, K);
  };
  product("q, o fwd (nt T x D x D)", false, T, D, D);
  product("k, v fwd (nt T x KV x D)", false, T, KV, D);
  product("q, k, v fwd as one (nt T x (D+2KV) x D)", false, T, D + 2 * KV, D);
  product("lm_head fwd (nt T x V x D)", false, T, V, D);
  product("q, o dx (nn T x D x D)", true, T, D, D);
  product("k, v dx (nn T x D x KV)", true, T, D, KV);
  product("q+k+v dx as one (nn T x D x (D+2KV))", true, T, D, D + 2 * KV);
  product("gate, up dx (nn T x D x F)", true, T, D, F);
  product("gate+up dx as one (nn T x D x 2F)", true, T, D, 2 * F);
  product("lm_head dx (nn T x D x V)", true, T, D, V);

  // Input gradients of layers that share their input (q, k, v; gate, up): one product over the
  // summed k against cuBLAS per layer, the first writing and the others adding (beta 1).
  auto shared = [&](const char* what, std::vector<int> ks, int M, int N) {
    std::vector<Buf> as, bs;
    std::vector<sm90::NnTerm> terms;
    long K = 0;
    for (size_t i = 0; i < ks.size(); ++i) {
      as.emplace_back(size_t(M) * ks[i], 20 + uint32_t(i), 1.0f);
      bs.emplace_back(size_t(ks[i]) * N, 30 + uint32_t(i), 1.0f / std::sqrt(float(ks[i])));
      K += ks[i];
    }
    for (size_t i = 0; i < ks.size(); ++i) terms.push_back({as[i].p, bs[i].p, ks[i]});
    Buf ours(size_t(M) * N), theirs(size_t(M) * N);
    auto run_ours = [&] { sm90::gemm_nn_sum(ours.p, terms.data(), int(terms.size()), M, N, 0); };
    auto run_theirs = [&] {
      for (size_t i = 0; i < ks.size(); ++i) {
        const float beta = i == 0 ? 0.0f : 1.0f;
        CHECK_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, N, M, ks[i], &one, bs[i].p, CUDA_R_16BF, N, as[i].p,
                                  CUDA_R_16BF, ks[i], &beta, theirs.p, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
      }
    };
    run_ours();
    run_theirs();
    const double err = rel_error(ours, theirs);  // one rounding against one per layer
    report(what, 2.0 * M * N * K, measure(run_ours), measure(run_theirs), err);
  };
  shared("q+k+v dx, one product vs 3 (write + add)", {D, KV, KV}, T, D);
  shared("gate+up dx, one product vs 2 (write + add)", {F, F}, T, D);

  // q, k, v as one product with RoPE against three cuBLAS products and a RoPE kernel on q and k
  // (head size 64, sequences of 2,048).
  {
    const int hd = 64, seq = 2048;
    std::vector<float> table(size_t(seq) * hd / 2);
    float *cs = nullptr, *sn = nullptr;
    CHECK_CUDA(cudaMalloc(&cs, table.size() * 4));
    CHECK_CUDA(cudaMalloc(&sn, table.size() * 4));
    for (size_t i = 0; i < table.size(); ++i) table[i] = std::cos(0.001f * float(i));
    CHECK_CUDA(cudaMemcpy(cs, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    for (size_t i = 0; i < table.size(); ++i) table[i] = std::sin(0.001f * float(i));
    CHECK_CUDA(cudaMemcpy(sn, table.data(), table.size() * 4, cudaMemcpyHostToDevice));
    Buf wq(size_t(D) * D, 40, ws), wk(size_t(KV) * D, 41, ws), wv(size_t(KV) * D, 42, ws);
    Buf q(size_t(T) * D), k(size_t(T) * KV), v(size_t(T) * KV), q2(size_t(T) * D), k2(size_t(T) * KV), v2(size_t(T) * KV);
    auto ours = [&] { sm90::qkv_rope_forward(q.p, k.p, v.p, x.p, wq.p, wk.p, wv.p, T, D, KV, D, cs, sn, hd, seq, 0, 0); };
    auto theirs = [&] {
      blas_nt(q2.p, x.p, wq.p, T, D, D);
      blas_nt(k2.p, x.p, wk.p, T, KV, D);
      blas_nt(v2.p, x.p, wv.p, T, KV, D);
      rope_kernel<<<4 * prop.multiProcessorCount, 512>>>(q2.p, cs, sn, T, D, hd, seq);
      rope_kernel<<<4 * prop.multiProcessorCount, 512>>>(k2.p, cs, sn, T, KV, hd, seq);
    };
    ours();
    theirs();
    CHECK_CUDA(cudaDeviceSynchronize());
    std::printf("  q, k, v with RoPE errors: q %.2e k %.2e v %.2e\n", rel_error(q, q2), rel_error(k, k2), rel_error(v, v2));
    report("q, k, v with RoPE (3 products + 2 RoPE)", 2.0 * T * (D + 2.0 * KV) * D, measure(ours), measure(theirs), rel_error(q, q2));
    cudaFree(cs);
    cudaFree(sn);
  }

  // Fused SwiGLU forward against two cuBLAS products and the separate SwiGLU kernel.
  {
    auto ours = [&] { sm90::swiglu_forward(h.p, g.p, u.p, x.p, wg.p, wu.p, T, F, D, 0); };
    auto theirs = [&] {
      blas_nt(g2.p, x.p, wg.p, T, F, D);
      blas_nt(u2.p, x.p, wu.p, T, F, D);
      swiglu_fwd_kernel<<<4 * prop.multiProcessorCount, 512>>>(h2.p, g2.p, u2.p, TF);
    };
    ours();
    theirs();
    CHECK_CUDA(cudaDeviceSynchronize());
    const double eg = rel_error(g, g2), eu = rel_error(u, u2), eh = rel_error(h, h2);
    std::printf("  swiglu forward errors: g %.2e u %.2e h %.2e\n", eg, eu, eh);
    report("SwiGLU forward (2 products + kernel)", 4.0 * T * F * D, measure(ours), measure(theirs), eh);
    const double kernel = time_ms([&] { swiglu_fwd_kernel<<<4 * prop.multiProcessorCount, 512>>>(h2.p, g2.p, u2.p, TF); }, reps);
    std::printf("  of which the separate SwiGLU kernel: %.3f ms\n", kernel);
  }
  // Fused SwiGLU backward against cuBLAS's dY·Wd and the separate backward kernel.
  {
    Buf dg(TF), du(TF), dg2(TF), du2(TF), dh(TF);
    auto ours = [&] { sm90::swiglu_backward(dg.p, du.p, dy.p, wd.p, g.p, u.p, T, F, D, 0); };
    auto theirs = [&] {
      blas_nn(dh.p, dy.p, wd.p, T, F, D);
      swiglu_bwd_kernel<<<4 * prop.multiProcessorCount, 512>>>(dg2.p, du2.p, dh.p, g.p, u.p, TF);
    };
    ours();
    theirs();
    CHECK_CUDA(cudaDeviceSynchronize());
    const double eg = rel_error(dg, dg2), eu = rel_error(du, du2);
    std::printf("  swiglu backward errors: dg %.2e du %.2e\n", eg, eu);
    report("SwiGLU backward (product + kernel)", 2.0 * T * F * D, measure(ours), measure(theirs),
           std::max(eg, eu));
  }
  // Weight gradients dw [O, I] = dyᵀ·x (fp32) against cuBLAS, and with the AdamW update in the
  // product's epilogue against cuBLAS's product followed by the multi-purpose AdamW kernel.
  std::printf("-- weight gradients (dyᵀ·x over the tokens, fp32), alone and with AdamW fused\n");
  auto weight = [&](const char* what, int O, int I) {
    if (!sm90::weight_grad_shape_ok(T, O, I)) {
      std::printf("%-44s not whole tiles: cuBLAS only\n", what);
      return;
    }
    Buf dyw(size_t(T) * O, 50, 1.0f), xw(size_t(T) * I, 51, 1.0f);
    const size_t n = size_t(O) * I;
    float *ours = nullptr, *theirs = nullptr, *p = nullptr, *m = nullptr, *v = nullptr;
    for (float** b : {&ours, &theirs, &p, &m, &v}) {
      CHECK_CUDA(cudaMalloc(b, n * 4));
      CHECK_CUDA(cudaMemset(*b, 0, n * 4));
    }
    Buf copy(n);
    auto run_ours = [&] { sm90::weight_grad(ours, dyw.p, xw.p, T, O, I, false, 0); };
    auto run_theirs = [&] {  // column-major dw' [I, O] = xᵀ·dy
      CHECK_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_T, I, O, T, &one, xw.p, CUDA_R_16BF, I, dyw.p, CUDA_R_16BF,
                                O, &zero, theirs, CUDA_R_32F, I, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    run_ours();
    run_theirs();
    std::vector<float> a(n), b(n);
    CHECK_CUDA(cudaMemcpy(a.data(), ours, n * 4, cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(b.data(), theirs, n * 4, cudaMemcpyDeviceToHost));
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) num += double(a[i] - b[i]) * (a[i] - b[i]), den += double(b[i]) * b[i];
    report(what, 2.0 * T * O * I, measure(run_ours), measure(run_theirs), std::sqrt(num / den));
    const agpt::ops::cuda::AdamWConstants k{0.99997f, 0.1f, 0.95f, 0.05f, -1e-4f, 1.0f, 1e-8f, 1.0f};
    const sm90::FusedAdamW update{p, m, v, copy.p, k};
    const double fused = time_ms([&] { sm90::weight_grad_adamw(ours, dyw.p, xw.p, T, O, I, false, update, 0); }, reps);
    const double adam = time_ms([&] { agpt::ops::cuda::adamw(p, theirs, m, v, copy.p, int64_t(n), k, 0); }, reps);
    const double both = time_ms([&] { run_theirs(), agpt::ops::cuda::adamw(p, theirs, m, v, copy.p, int64_t(n), k, 0); }, reps);
    std::printf("  with AdamW: ours fused %.3f ms | cuBLAS + AdamW kernel %.3f ms (kernel alone %.3f, %.0f GB/s) | "
                "fused/separate %.3f\n", fused, both, adam, 30.0 * n / adam / 1e6, fused / both);
    for (float* b : {ours, theirs, p, m, v}) cudaFree(b);
  };
  weight("q, o dW (D x D over T)", D, D);
  weight("k, v dW (KV x D over T)", KV, D);
  weight("gate, up dW (F x D over T)", F, D);
  weight("down dW (D x F over T)", D, F);
  cublasDestroy(blas);
  return 0;
}
