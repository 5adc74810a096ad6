// The memory-bound row reductions of the CUDA backend (src/ops/cuda/reduce.cu) at the training
// shapes of the Llama models: RMSNorm forward/backward over [N, D] activations, cross-entropy
// forward/backward over [N, V] logits, and the squared norm over every fp32 weight gradient. Each
// op runs through the public Backend API, warmed up, then `--reps` times between two
// synchronizations; we print ms per call and the rate at which it moves the bytes it must move
// (every input read once, every output written once; the backward's dx is read and written).
//
//   train_reduce_bench [--shape 124M|1B|all] [--reps 20] [--activations bf16|fp32] [--op NAME]
//
// Cross-entropy is timed with vocab_begin = 0 (the whole vocabulary as one shard starting at 0:
// the same kernel, without the host-side target check that downloads the targets on every call).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "llama_shapes.h"
#include "ops/cuda/cuda_backend.h"

namespace {

using agpt::ops::Backend;
using agpt::ops::DType;
using agpt::ops::Tensor;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void usage() {
  std::printf(
      "train_reduce_bench [--shape 124M|1B|all] [--reps 20] [--activations bf16|fp32] [--op NAME]\n"
      "  Times rmsnorm_forward, rmsnorm_backward (dx and dw), cross_entropy_forward,\n"
      "  cross_entropy_backward (in place), cross_entropy_forward_backward (in place) and sum_squares\n"
      "  (all fp32 weight gradients of the model) on the CUDA backend at the model's training shape (N = batch*seq rows), printing ms per call\n"
      "  and GB/s of the bytes each op must move. --op runs only the named op.\n");
}

// Values in [lo, hi) uploaded as `dtype`: a pool of 2^20 - 3 random values repeated (the ops do
// not care what the values are; filling GBs with fresh random numbers would dominate the run).
Tensor random_tensor(Backend& b, const agpt::ops::Shape& shape, DType dtype, std::mt19937& rng, float lo, float hi) {
  constexpr size_t kPool = (1u << 20) - 3;
  std::vector<float> pool(kPool);
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& x : pool) x = d(rng);
  std::vector<float> v(static_cast<size_t>(agpt::ops::shape_numel(shape)));
  for (size_t i = 0; i < v.size(); i += kPool)
    std::copy_n(pool.begin(), std::min(kPool, v.size() - i), v.begin() + static_cast<std::ptrdiff_t>(i));
  return b.from_host(shape, v, dtype);
}

struct Timer {
  Backend& b;
  int reps;
  // ms per call of fn after 3 warm-up calls.
  double ms(const std::function<void()>& fn) {
    for (int i = 0; i < 3; ++i) fn();
    b.synchronize();
    const double t0 = now();
    for (int i = 0; i < reps; ++i) fn();
    b.synchronize();
    return (now() - t0) / reps * 1e3;
  }
};

void report(const char* shape, const char* op, double ms, double bytes, const char* note) {
  std::printf("%-5s %-24s %9.3f ms  %8.1f GB/s  %8.1f MB moved  %s\n", shape, op, ms, bytes / (ms * 1e-3) / 1e9,
              bytes / 1e6, note);
  std::fflush(stdout);
}

void run_shape(const std::string& name, int reps, const std::string& act, const std::string& only) {
  const agpt::bench::Shape s = agpt::bench::make_shape(name);
  const auto& c = s.config;
  const int64_t N = static_cast<int64_t>(s.batch) * s.seq, D = c.hidden_size, V = c.vocab_size;
  auto backend = agpt::ops::make_cuda_backend(0, {.matmul = "bf16", .activations = act});
  Backend& b = *backend;
  const DType at = b.activation_dtype();
  const double es = at == DType::kBF16 ? 2 : 4;
  std::printf("%s: N %lld, D %lld, V %lld, %s activations  [%s]\n", name.c_str(), static_cast<long long>(N),
              static_cast<long long>(D), static_cast<long long>(V), act.c_str(), b.name().c_str());
  std::mt19937 rng(11);
  Timer t{b, reps};
  auto want = [&](const char* op) { return only.empty() || only == op; };
  const double nd = static_cast<double>(N) * D;

  if (want("rmsnorm_forward") || want("rmsnorm_backward")) {
    Tensor x = random_tensor(b, {N, D}, at, rng, -3, 3), w = random_tensor(b, {D}, DType::kF32, rng, 0.5f, 1.5f);
    Tensor out = b.empty({N, D}, at), rstd = b.empty({N});
    b.rmsnorm_forward(out, rstd, x, w, 1e-5f);
    if (want("rmsnorm_forward")) {
      double ms = t.ms([&] { b.rmsnorm_forward(out, rstd, x, w, 1e-5f); });
      report(name.c_str(), "rmsnorm_forward", ms, 2 * nd * es + N * 4.0 + D * 4.0, "x read, out written");
    }
    if (want("rmsnorm_backward")) {
      Tensor dout = random_tensor(b, {N, D}, at, rng, -1, 1), dx = b.zeros({N, D}, at), dw = b.zeros({D});
      double ms = t.ms([&] { b.rmsnorm_backward(dx, dw, dout, x, w, rstd); });
      report(name.c_str(), "rmsnorm_backward", ms, 4 * nd * es + N * 4.0 + 3 * D * 4.0,
             "dout, x read; dx read+written; dw");
    }
  }
  if (want("cross_entropy_forward") || want("cross_entropy_backward") || want("cross_entropy_forward_backward")) {
    Tensor logits = random_tensor(b, {N, V}, at, rng, -8, 8);
    std::vector<int32_t> y(static_cast<size_t>(N));
    std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(V - 1));
    for (auto& v : y) v = tok(rng);
    y[1] = -100;
    Tensor targets = b.from_host({N}, y), losses = b.empty({N}), lse = b.empty({N});
    const double nv = static_cast<double>(N) * V;
    if (want("cross_entropy_forward")) {
      double ms = t.ms([&] { b.cross_entropy_forward(losses, lse, logits, targets, 0); });
      report(name.c_str(), "cross_entropy_forward", ms, nv * es + N * 12.0, "logits read once");
    }
    if (want("cross_entropy_backward")) {
      b.cross_entropy_forward(losses, lse, logits, targets, 0);
      // In place, as the model does it: repeated calls see the previous call's gradients, which
      // costs the same (the kernel does not look at the values beyond exp).
      double ms = t.ms([&] { b.cross_entropy_backward(logits, logits, lse, targets, 1.0f / N, 0); });
      report(name.c_str(), "cross_entropy_backward", ms, 2 * nv * es + N * 8.0, "in place: logits read+written");
    }
    if (want("cross_entropy_forward_backward")) {
      // The training step's one kernel: loss and gradient, in place.
      double ms = t.ms([&] { b.cross_entropy_forward_backward(losses, lse, logits, logits, targets, 1.0f / N); });
      report(name.c_str(), "cross_entropy_forward_backward", ms, 2 * nv * es + N * 12.0,
             "in place: logits read once (at best) + written");
    }
  }
  if (want("sum_squares")) {
    // Every fp32 weight gradient of the model (tied embedding counted once).
    const int64_t H = c.hidden_size, F = c.intermediate_size, hd = H / c.num_attention_heads;
    const int64_t kv = hd * c.num_key_value_heads;
    std::vector<agpt::ops::Shape> shapes{{V, H}};
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      for (const agpt::ops::Shape& sh : std::vector<agpt::ops::Shape>{
               {H}, {H, H}, {kv, H}, {kv, H}, {H, H}, {H}, {F, H}, {F, H}, {H, F}})
        shapes.push_back(sh);
    }
    shapes.push_back({H});
    if (!c.tie_word_embeddings) shapes.push_back({V, H});
    std::vector<Tensor> grads;
    double total = 0;
    for (const auto& sh : shapes) {
      grads.push_back(random_tensor(b, sh, DType::kF32, rng, -1e-3f, 1e-3f));
      total += static_cast<double>(agpt::ops::shape_numel(sh));
    }
    double r = 0;
    double ms = t.ms([&] { r = b.sum_squares(grads); });
    char note[96];
    std::snprintf(note, sizeof note, "%zu tensors, %.3g floats, result %.9g", grads.size(), total, r);
    report(name.c_str(), "sum_squares", ms, total * 4, note);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "all", act = "bf16", only;
  int reps = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) agpt::fail(a, " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (a == "--shape") {
      shape = next();
    } else if (a == "--reps") {
      reps = std::stoi(next());
    } else if (a == "--activations") {
      act = next();
    } else if (a == "--op") {
      only = next();
    } else {
      usage();
      return 2;
    }
  }
  try {
    if (!agpt::ops::cuda_compiled() || agpt::ops::cuda_device_count() == 0) agpt::fail("no CUDA device");
    for (const std::string& sh : {std::string("1B"), std::string("124M")})
      if (shape == "all" || shape == sh) run_shape(sh, reps, act, only);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
