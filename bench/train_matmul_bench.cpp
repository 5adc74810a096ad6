// The bf16 matrix products of one training step of the Llama models (bench/llama_shapes.h), timed
// two ways, to see whether the CUDA backend's choice of GEMM kernel leaves speed on the table:
//   (a) what the backend does now (CudaBackend::gemm in src/ops/cuda/cuda_backend.cu):
//       cublasGemmEx(CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), bf16 A/B, fp32 accumulation, a 64 MiB
//       workspace set with cublasSetWorkspace;
//   (b) cublasLtMatmul with the same layouts and types, every algorithm (up to 16) that
//       cublasLtMatmulAlgoGetHeuristic returns for a 64 MiB workspace: its first choice and the
//       fastest. If the fastest beats (a) by much, autotuning (or caching the best algorithm per
//       shape) would pay.
//
//   train_matmul_bench [--shape 124M|1B|7B|all] [--reps 20]
//
// Each Linear (weight w [O, I] row-major, x [N, I], y [N, O], N = batch*seq) has three products,
// written as the backend writes them for column-major cuBLAS (m n k below are cuBLAS's):
//   fwd  y = x·wᵀ      yᵀ (O×N)  = op_T(w')·xᵀ,  beta 0, bf16 out
//   dx  dx += dy·w     dxᵀ (I×N) += w'·dyᵀ,      beta 1, bf16 out
//   dw  dw += dyᵀ·x    dw' (I×O) += xᵀ·op_T(dy), beta 1, fp32 out (the fp32 weight gradient)
// (w' is w read column-major, I×O.) Per layer: q, k, v, o, gate, up, down, plus the lm_head once;
// and the fused products a model could use instead: qkv as one product, gate+up as one product.
//
// Timing: CUDA events around each call on one stream, 3 warm-up calls, median of --reps calls;
// the candidates of one product ((a) and every Lt algorithm) take turns call by call, so that clock
// and temperature drift touch them alike. "Lt best" is the least of several noisy medians, so it
// is biased low: gaps of a percent or two are within the noise.
// Inputs are small random bf16 values (not zeros: power draw and clocks depend on the data), the
// same operands for every call, so small operands stay in L2 between calls as they may not in a
// real step. Before timing, every Lt algorithm's result is compared (on a sample of elements)
// with cublasGemmEx's from the same inputs: an algorithm that disagrees is reported and not
// counted as the best (a layout mistake here would show as a large difference).
#if AGPT_HAVE_CUDA
#include <cublasLt.h>
#include <cublas_v2.h>
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

#include "base/error.h"
#include "llama_shapes.h"
#include "cuda_check.h"

namespace {

constexpr size_t kWorkspaceBytes = 64ull << 20;  // as CudaBackend::kWorkspaceBytes
constexpr int kMaxAlgos = 16;
constexpr int kWarmup = 3;
// Largest relative L2 difference (over the sampled elements) between an Lt algorithm and
// cublasGemmEx that still counts as the same product: bf16 outputs may differ by an ulp (2^-8)
// where the accumulation order differs; a wrong layout differs by O(1).
constexpr double kTolerance = 2e-2;

void usage() {
  std::printf(
      "train_matmul_bench [--shape 124M|1B|7B|all] [--reps 20]\n"
      "  Times every bf16 matrix product of one training step of the Llama shapes (forward, dx and\n"
      "  dw of q, k, v, o, gate, up, down and the lm_head; and fused qkv and gate+up) with\n"
      "  (a) cublasGemmEx + CUBLAS_GEMM_DEFAULT, as the CUDA backend calls it, and\n"
      "  (b) cublasLtMatmul with each algorithm its heuristic returns (up to %d, 64 MiB workspace).\n"
      "  Prints per product: cuBLAS m n k, ms and TFLOP/s of (a), of Lt's first choice and of the\n"
      "  fastest Lt algorithm (its index in the heuristic's list); then per model the matmul ms of\n"
      "  one training step, unfused and fused, as a percentage of (a).\n"
      "  --shape  model shape (default all)\n"
      "  --reps   timed calls per measurement, median reported (default 20; 3 warm-up calls first)\n",
      kMaxAlgos);
}

uint16_t to_bf16(float f) {  // round to nearest even (the values are finite)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Host pools of random values, repeated over device buffers: filling GBs with fresh random
// numbers would dominate the run. An odd length, so the pattern does not line up with rows.
struct Pools {
  static constexpr size_t kLen = (1u << 20) - 3;
  std::vector<uint16_t> bf16;
  std::vector<float> f32;
  Pools() : bf16(kLen), f32(kLen) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    for (size_t i = 0; i < kLen; ++i) {
      f32[i] = d(rng);
      bf16[i] = to_bf16(d(rng));
    }
  }
};

// Copies the pool to the start of dst, then doubles the filled prefix by device copies.
void fill(void* dst, size_t bytes, const void* pool, size_t pool_bytes, cudaStream_t s) {
  auto* d = static_cast<char*>(dst);
  size_t filled = std::min(bytes, pool_bytes);
  CHECK_CUDA(cudaMemcpyAsync(d, pool, filled, cudaMemcpyHostToDevice, s));
  while (filled < bytes) {
    size_t n = std::min(filled, bytes - filled);
    CHECK_CUDA(cudaMemcpyAsync(d + filled, d, n, cudaMemcpyDeviceToDevice, s));
    filled += n;
  }
  CHECK_CUDA(cudaStreamSynchronize(s));  // the pool is pageable host memory
}

struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) {
    if (n) CHECK_CUDA(cudaMalloc(&p, n));
  }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// One cuBLAS call: column-major C (m×n) = op(A)·op(B) + beta·C, A and B bf16, C bf16 or fp32.
struct Gemm {
  cublasOperation_t opa, opb;
  int m, n, k, lda, ldb, ldc;
  float beta;
  cudaDataType_t ctype;
  size_t a_elems() const { return static_cast<size_t>(lda) * (opa == CUBLAS_OP_N ? k : m); }
  size_t b_elems() const { return static_cast<size_t>(ldb) * (opb == CUBLAS_OP_N ? n : k); }
  size_t c_elems() const { return static_cast<size_t>(ldc) * n; }
  size_t c_size() const { return ctype == CUDA_R_16BF ? 2 : 4; }
  double flops() const { return 2.0 * m * n * k; }
};

enum class Dir { kFwd, kDx, kDw };
const char* dir_name(Dir d) { return d == Dir::kFwd ? "fwd" : d == Dir::kDx ? "dx" : "dw"; }

// The calls of CudaBackend::do_matmul_forward / do_matmul_backward for x [N, I], w [O, I].
Gemm linear_gemm(Dir d, int N, int I, int O) {
  switch (d) {
    case Dir::kFwd: return {CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, I, I, O, 0.0f, CUDA_R_16BF};  // yᵀ = w'ᵀ·xᵀ
    case Dir::kDx: return {CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, I, O, I, 1.0f, CUDA_R_16BF};   // dxᵀ += w'·dyᵀ
    case Dir::kDw: return {CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, I, O, I, 1.0f, CUDA_R_32F};    // dw' += xᵀ·dy
  }
  return {};
}

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* ws_blas = nullptr;
  void* ws_lt = nullptr;
  std::vector<cudaEvent_t> events;
  int reps = 20;
  Pools pools;
};

double median(std::vector<float> v) {
  const size_t h = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h), v.end());
  double m = v[h];
  if (v.size() % 2 == 0) m = (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h))) / 2;
  return m;
}

// Median ms per call of each of n candidates (call(j) launches candidate j once): 3 warm-up calls
// each, then `reps` rounds that call every candidate once. Interleaved, because clocks drift with
// temperature and power over a run: timed one after another, the first candidate would run on a
// cooler GPU than the last.
std::vector<double> time_interleaved(Context& ctx, size_t n, const std::function<void(size_t)>& call) {
  for (size_t j = 0; j < n; ++j)
    for (int i = 0; i < kWarmup; ++i) call(j);
  const size_t total = n * static_cast<size_t>(ctx.reps);
  while (ctx.events.size() < total + 1) {
    cudaEvent_t e;
    CHECK_CUDA(cudaEventCreate(&e));
    ctx.events.push_back(e);
  }
  // One event between consecutive calls: the calls queue back to back, each timed on the GPU.
  CHECK_CUDA(cudaEventRecord(ctx.events[0], ctx.stream));
  for (size_t i = 0; i < total; ++i) {
    call(i % n);
    CHECK_CUDA(cudaEventRecord(ctx.events[i + 1], ctx.stream));
  }
  CHECK_CUDA(cudaEventSynchronize(ctx.events[total]));
  std::vector<std::vector<float>> ms(n);
  for (size_t i = 0; i < total; ++i) {
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, ctx.events[i], ctx.events[i + 1]));
    ms[i % n].push_back(t);
  }
  std::vector<double> med(n);
  for (size_t j = 0; j < n; ++j) med[j] = median(ms[j]);
  return med;
}

// A strided sample of C, as doubles (an odd stride, so the samples fall on many rows and columns).
std::vector<double> sample(Context& ctx, const DeviceBuffer& c, const Gemm& g) {
  const size_t elems = g.c_elems(), es = g.c_size();
  const size_t count = std::min<size_t>(elems, 1u << 16);
  size_t stride = std::max<size_t>(1, elems / count);
  if (stride > 1 && stride % 2 == 0) --stride;
  std::vector<char> raw(count * es);
  CHECK_CUDA(cudaMemcpy2DAsync(raw.data(), es, c.p, stride * es, es, count, cudaMemcpyDeviceToHost, ctx.stream));
  CHECK_CUDA(cudaStreamSynchronize(ctx.stream));
  std::vector<double> v(count);
  for (size_t i = 0; i < count; ++i) {
    if (es == 2) {
      uint32_t u = static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(raw.data())[i]) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      v[i] = f;
    } else {
      v[i] = reinterpret_cast<const float*>(raw.data())[i];
    }
  }
  return v;
}

double rel_diff(const std::vector<double>& ref, const std::vector<double>& x) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (x[i] - ref[i]) * (x[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::isfinite(num) ? std::sqrt(num / std::max(den, 1e-30)) : INFINITY;
}

struct Result {
  double gemmex = -1, lt_first = -1, lt_best = -1;  // ms; -1: not available
  int best_index = -1, algos = 0;
  double worst_diff = 0;  // largest relative difference of a checked Lt algorithm from cublasGemmEx
};

Result measure(Context& ctx, const Gemm& g, const std::string& label) {
  const float one = 1.0f;
  DeviceBuffer a(g.a_elems() * 2), b(g.b_elems() * 2), c(g.c_elems() * g.c_size());
  // With beta 1 the result depends on C: the checks restart from the same C.
  DeviceBuffer c0(g.beta != 0 ? c.bytes : 0);
  const size_t pool16 = Pools::kLen * 2, pool32 = Pools::kLen * 4;
  fill(a.p, a.bytes, ctx.pools.bf16.data(), pool16, ctx.stream);
  fill(b.p, b.bytes, ctx.pools.bf16.data(), pool16, ctx.stream);
  if (g.ctype == CUDA_R_16BF) fill(c.p, c.bytes, ctx.pools.bf16.data(), pool16, ctx.stream);
  else fill(c.p, c.bytes, ctx.pools.f32.data(), pool32, ctx.stream);
  auto restore_c = [&] {
    if (c0.p) CHECK_CUDA(cudaMemcpyAsync(c.p, c0.p, c.bytes, cudaMemcpyDeviceToDevice, ctx.stream));
  };
  if (c0.p) CHECK_CUDA(cudaMemcpyAsync(c0.p, c.p, c.bytes, cudaMemcpyDeviceToDevice, ctx.stream));

  Result r;
  // (a): the backend's call. Its result, from the initial C, is the reference for the checks.
  auto gemmex = [&] {
    CHECK_CUBLAS(cublasGemmEx(ctx.blas, g.opa, g.opb, g.m, g.n, g.k, &one, a.p, CUDA_R_16BF, g.lda, b.p,
                              CUDA_R_16BF, g.ldb, &g.beta, c.p, g.ctype, g.ldc, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
  };
  gemmex();
  const std::vector<double> ref = sample(ctx, c, g);

  // (b): cublasLt, the same product described by layouts (rows × cols of each stored matrix).
  cublasLtMatmulDesc_t desc;
  CHECK_CUBLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &g.opa, sizeof g.opa));
  CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &g.opb, sizeof g.opb));
  cublasLtMatrixLayout_t la, lb, lc;
  CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, g.opa == CUBLAS_OP_N ? g.m : g.k,
                                          g.opa == CUBLAS_OP_N ? g.k : g.m, g.lda));
  CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, g.opb == CUBLAS_OP_N ? g.k : g.n,
                                          g.opb == CUBLAS_OP_N ? g.n : g.k, g.ldb));
  CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&lc, g.ctype, g.m, g.n, g.ldc));  // C and D: the same matrix
  cublasLtMatmulPreference_t pref;
  CHECK_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspaceBytes;
  CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  cublasLtMatmulHeuristicResult_t heur[kMaxAlgos] = {};
  int returned = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(ctx.lt, desc, la, lb, lc, lc, pref, kMaxAlgos, heur, &returned);
  if (hs != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s: cublasLtMatmulAlgoGetHeuristic failed: %s\n", label.c_str(), cublasGetStatusString(hs));
    returned = 0;
  }
  r.algos = returned;
  auto lt_call = [&](int i) {
    return cublasLtMatmul(ctx.lt, desc, &one, a.p, la, b.p, lb, &g.beta, c.p, lc, c.p, lc, &heur[i].algo, ctx.ws_lt,
                          kWorkspaceBytes, ctx.stream);
  };
  // Each algorithm once from the initial C, compared with the reference; those that cannot run
  // are reported and left out.
  std::vector<int> algos;
  std::vector<double> diffs;
  for (int i = 0; i < returned; ++i) {
    if (heur[i].state != CUBLAS_STATUS_SUCCESS) continue;
    restore_c();
    if (cublasStatus_t st = lt_call(i); st != CUBLAS_STATUS_SUCCESS) {
      std::fprintf(stderr, "%s: cublasLtMatmul with algorithm %d failed: %s (left out)\n", label.c_str(), i,
                   cublasGetStatusString(st));
      continue;
    }
    const double diff = rel_diff(ref, sample(ctx, c, g));
    if (!(diff <= kTolerance))
      std::fprintf(stderr, "%s: Lt algorithm %d differs from cublasGemmEx (relative L2 %.3g): not counted as best\n",
                   label.c_str(), i, diff);
    algos.push_back(i);
    diffs.push_back(diff);
  }

  // Candidate 0 is (a), candidate 1 + j is Lt algorithm algos[j].
  const std::vector<double> ms = time_interleaved(ctx, 1 + algos.size(), [&](size_t j) {
    if (j == 0) gemmex();
    else CHECK_CUBLAS(lt_call(algos[j - 1]));
  });
  r.gemmex = ms[0];
  for (size_t j = 0; j < algos.size(); ++j) {
    if (algos[j] == 0) r.lt_first = ms[1 + j];
    if (!(diffs[j] <= kTolerance)) continue;
    r.worst_diff = std::max(r.worst_diff, diffs[j]);
    if (r.lt_best < 0 || ms[1 + j] < r.lt_best) r.lt_best = ms[1 + j], r.best_index = algos[j];
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatmulDescDestroy(desc);
  CHECK_CUDA(cudaStreamSynchronize(ctx.stream));  // before the buffers are freed
  return r;
}

// A Linear of the model: weight [O, I], `count` times per training step.
struct Linear {
  std::string name;
  int I, O, count;
  bool unfused, fused;  // part of the unfused model / of the model with fused qkv and gate+up
};

std::string ms_tf(double ms, double flops) {
  char buf[48];
  if (ms < 0) std::snprintf(buf, sizeof buf, "%9s %6s", "n/a", "");
  else std::snprintf(buf, sizeof buf, "%9.4f %6.1f", ms, flops / (ms * 1e-3) / 1e12);
  return buf;
}

void run_shape(Context& ctx, const std::string& name) {
  const agpt::bench::Shape s = agpt::bench::make_shape(name);
  const auto& c = s.config;
  const int N = s.batch * s.seq, D = static_cast<int>(c.hidden_size), F = static_cast<int>(c.intermediate_size);
  const int H = static_cast<int>(c.num_attention_heads);
  const int KV = static_cast<int>(c.num_key_value_heads ? c.num_key_value_heads : c.num_attention_heads);
  const int hd = static_cast<int>(c.head_dim ? c.head_dim : c.hidden_size / c.num_attention_heads);
  const int L = static_cast<int>(c.num_hidden_layers), V = static_cast<int>(c.vocab_size);
  std::printf("\n%s: N %d (batch %d x seq %d), D %d, F %d, heads %d, kv heads %d, head dim %d, vocab %d, %d layers\n",
              name.c_str(), N, s.batch, s.seq, D, F, H, KV, hd, V, L);
  // diff: the largest relative difference of a counted Lt algorithm's result from cublasGemmEx's.
  std::printf("%-13s %-3s %6s %6s %6s | %-16s | %-16s | %-16s %4s %5s %8s\n", "product", "dir", "m", "n", "k",
              "GemmEx ms  TF/s", "Lt #1 ms   TF/s", "Lt best ms TF/s", "idx", "algos", "diff");
  const std::vector<Linear> linears{
      {"q", D, H * hd, L, true, false},
      {"k", D, KV * hd, L, true, false},
      {"v", D, KV * hd, L, true, false},
      {"qkv fused", D, (H + 2 * KV) * hd, L, false, true},
      {"o", H * hd, D, L, true, true},
      {"gate", D, F, L, true, false},
      {"up", D, F, L, true, false},
      {"gate+up fused", D, 2 * F, L, false, true},
      {"down", F, D, L, true, true},
      {"lm_head", D, V, 1, true, true},  // tied or not, the same three products
  };
  // Step totals (ms): [unfused, fused] x [GemmEx, Lt #1, Lt best].
  double total[2][3] = {};
  bool lt_missing = false;
  for (const Linear& lin : linears) {
    for (Dir d : {Dir::kFwd, Dir::kDx, Dir::kDw}) {
      const Gemm g = linear_gemm(d, N, lin.I, lin.O);
      const std::string label = name + " " + lin.name + " " + dir_name(d);
      const Result r = measure(ctx, g, label);
      std::printf("%-13s %-3s %6d %6d %6d | %s | %s | %s %4d %5d %8.1e\n", lin.name.c_str(), dir_name(d), g.m, g.n,
                  g.k, ms_tf(r.gemmex, g.flops()).c_str(), ms_tf(r.lt_first, g.flops()).c_str(),
                  ms_tf(r.lt_best, g.flops()).c_str(), r.best_index, r.algos, r.worst_diff);
      std::fflush(stdout);
      // Where Lt has no (checked) algorithm, count the GemmEx time so the totals stay comparable.
      const double first = r.lt_first >= 0 ? r.lt_first : r.gemmex, best = r.lt_best >= 0 ? r.lt_best : r.gemmex;
      lt_missing |= r.lt_first < 0 || r.lt_best < 0;
      for (int f = 0; f < 2; ++f) {
        if (!(f == 0 ? lin.unfused : lin.fused)) continue;
        total[f][0] += r.gemmex * lin.count;
        total[f][1] += first * lin.count;
        total[f][2] += best * lin.count;
      }
    }
  }
  const double base = total[0][0];
  auto pct = [&](double ms) { return 100.0 * ms / base; };
  std::printf("%s matmul ms per training step (%% of unfused GemmEx):\n", name.c_str());
  const char* what[2] = {"unfused (q,k,v,gate,up separate)", "fused (qkv, gate+up)"};
  for (int f = 0; f < 2; ++f)
    std::printf("  %-33s GemmEx %9.3f ms (%5.1f%%)  Lt #1 %9.3f ms (%5.1f%%)  Lt best %9.3f ms (%5.1f%%)\n", what[f],
                total[f][0], pct(total[f][0]), total[f][1], pct(total[f][1]), total[f][2], pct(total[f][2]));
  if (lt_missing) std::printf("  (where Lt had no usable algorithm, its totals count the GemmEx time)\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "all";
  int reps = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if ((a == "--shape" || a == "--reps") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--shape") {
        shape = v;
      } else {
        char* end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        if (*end != '\0' || n < 1 || n > 100000) {
          std::fprintf(stderr, "--reps must be a positive integer, not '%s'\n", v.c_str());
          return 2;
        }
        reps = static_cast<int>(n);
      }
      continue;
    }
    std::fprintf(stderr, "unknown or incomplete argument '%s'\n\n", a.c_str());
    usage();
    return 2;
  }
  std::vector<std::string> shapes;
  for (const char* sh : {"124M", "1B", "7B"})
    if (shape == "all" || shape == sh) shapes.emplace_back(sh);
  if (shapes.empty()) {
    std::fprintf(stderr, "--shape must be 124M, 1B, 7B or all, not '%s'\n", shape.c_str());
    return 2;
  }

  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "no CUDA device visible\n");
    return 1;
  }
  Context ctx;
  ctx.reps = reps;
  CHECK_CUDA(cudaSetDevice(0));
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  CHECK_CUDA(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking));
  // The handle as CudaBackend sets it up: its stream, a 64 MiB workspace, default math.
  CHECK_CUBLAS(cublasCreate(&ctx.blas));
  CHECK_CUBLAS(cublasSetStream(ctx.blas, ctx.stream));
  CHECK_CUDA(cudaMalloc(&ctx.ws_blas, kWorkspaceBytes));
  CHECK_CUBLAS(cublasSetWorkspace(ctx.blas, ctx.ws_blas, kWorkspaceBytes));
  CHECK_CUBLAS(cublasSetMathMode(ctx.blas, CUBLAS_DEFAULT_MATH));
  CHECK_CUBLAS(cublasLtCreate(&ctx.lt));
  CHECK_CUDA(cudaMalloc(&ctx.ws_lt, kWorkspaceBytes));
  int blas_version = 0, runtime = 0;
  CHECK_CUBLAS(cublasGetVersion(ctx.blas, &blas_version));
  CHECK_CUDA(cudaRuntimeGetVersion(&runtime));
  std::printf("GPU: %s (sm_%d%d, %d SMs, %.0f GiB)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              static_cast<double>(prop.totalGlobalMem) / (1ull << 30));
  std::printf("cuBLAS %d.%d.%d (cublasLt %zu), CUDA runtime %d.%d; median of %d calls after %d warm-up calls\n",
              blas_version / 10000, blas_version / 100 % 100, blas_version % 100, cublasLtGetVersion(),
              runtime / 1000, runtime % 1000 / 10, reps, kWarmup);
  std::printf("m n k: cuBLAS's column-major C (m x n) = op(A) (m x k) . op(B) (k x n); TF/s = 2mnk / time\n");
  try {
    for (const std::string& sh : shapes) run_shape(ctx, sh);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  for (cudaEvent_t e : ctx.events) cudaEventDestroy(e);
  cublasLtDestroy(ctx.lt);
  cublasDestroy(ctx.blas);
  cudaFree(ctx.ws_lt);
  cudaFree(ctx.ws_blas);
  cudaStreamDestroy(ctx.stream);
  return 0;
}
#else
#include <cstdio>
int main() {
  std::fprintf(stderr, "train_matmul_bench needs a CUDA build (configure with -DAGPT_CUDA=ON)\n");
  return 1;
}
#endif  // AGPT_HAVE_CUDA
