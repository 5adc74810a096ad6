// Training throughput of agpt on one GPU for the shapes of the CUDA issue's table (the PyTorch
// baseline, ../shared/peers/torch_llama_baseline.py, runs the same shapes; bench/gpu_vs_torch.sh
// runs both in one call). Random tokens, one micro-batch per step: forward, backward, global-norm
// clipping and AdamW, timed after warm-up with the device synchronized.
//
//   train_gpu_bench [--shape 124M|1B|7B|all] [--batch B] [--seq T] [--steps 10] [--precision fp32|tf32|bf16] [--json] [--gemm]
//                   [--recompute] [--grad-accum K] [--offload] [--no-clip] [--update-in-backward]
//                   [--nondeterministic] [--no-prepare]
//
// --grad-accum K: K micro-batches (forward + backward) per optimizer step. --offload: the AdamW
// moments in host memory (train.optimizer_cpu_offload), no bf16 weight copies kept from forward to
// backward; the time of the update (moments streamed over PCIe) is reported apart.
// --offload-fraction F: offload only the first share F of the parameters (the rest stay on the GPU).
// --no-clip: no gradient norm and no clipping, the same work as the PyTorch script (which does not
// clip); by default the step clips to norm 1 as `agpt train` does.
// --update-in-backward (with --no-clip, one micro-batch): the optimizer step inside the backward
// (model::AdamW::arrange_update_in_backward, `train.update_in_backward`): on Hopper the MLP weights'
// AdamW runs in the epilogue of the products that compute their gradients.
// --nondeterministic: the backend as `train.deterministic = false` makes it (cuDNN's attention
// backward sums dQ with atomics, as PyTorch's SDPA does); by default bit-reproducible kernels only.
// --no-prepare: the update's host work after the gradient norm's wait (as before AdamW::prepare_step),
// to measure what preparing it ahead saves.
//
// MFU = tokens/s × (6·N + 12·L·d·T) / 989e12, N = the matrix-product parameters (non-embedding
// parameters plus lm_head), the formula of the issue and of PyTorch's baseline script.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "base/error.h"
#include "model/adamw.h"
#include "model/llama.h"
#include "llama_shapes.h"
#include "ops/backend_factory.h"

namespace {

using agpt::fail;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

using agpt::bench::Shape;
using agpt::bench::make_shape;

struct RunOptions {
  bool json = false, recompute = false, offload = false, clip = true, in_backward = false, deterministic = true,
       prepare = true;
  double offload_fraction = 1.0;
  int accum = 1;
};

void run(const Shape& s, int B, int T, int steps, const std::string& device, const std::string& precision,
         const RunOptions& o) {
  const bool json = o.json;
  auto backend = agpt::ops::make_backend(device, 0, precision, o.deterministic);
  agpt::model::LlamaConfig c = s.config;
  c.max_position_embeddings = T;
  agpt::model::Llama model(c, *backend);
  model.init_weights(1234);
  model.set_recompute(o.recompute);
  model.set_weight_copy_reuse(!o.offload);
  agpt::model::AdamW opt(*backend, model.parameters(), agpt::model::AdamWConfig{.lr = 1e-4},
                         o.offload ? o.offload_fraction : 0.0);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.vocab_size - 1));
  std::vector<int32_t> ids(static_cast<size_t>(B) * T);
  for (auto& t : ids) t = tok(rng);
  std::vector<int32_t> targets = agpt::model::shift_targets(ids, B, T);
  float loss = 0;
  double update_s = 0;  // --offload: time of the updates (the norm synchronizes before each)
  auto step = [&] {
    for (int a = 0; a < o.accum; ++a) {
      loss = model.forward(ids, targets, B, T, /*for_backward=*/true);
      if (o.in_backward) opt.arrange_update_in_backward(model.parameters());
      model.backward(a == 0 ? agpt::ops::Grad::kWrite : agpt::ops::Grad::kAdd);  // as the trainer
    }
    if (o.prepare) opt.prepare_step(model.parameters());  // as the trainer: the update's host work before the norm's wait
    const double norm = o.clip ? agpt::model::global_grad_norm(*backend, model.parameters()) : 0.0;
    const double t0 = now();
    opt.step(model.parameters(), -1.0, o.clip ? agpt::model::clip_coefficient(norm, 1.0) : 1.0f);
    if (o.offload) {
      backend->synchronize();
      update_s += now() - t0;
    }
  };
  for (int i = 0; i < 2; ++i) step();
  backend->synchronize();
  backend->reset_profile();  // AGPT_CUDA_PROFILE=1: report the timed steps only
  update_s = 0;
  const double t0 = now();
  for (int i = 0; i < steps; ++i) step();
  backend->synchronize();
  const double dt = (now() - t0) / steps;
  const double tps = static_cast<double>(B) * T * o.accum / dt;
  const double update_ms = update_s / steps * 1e3;
  const double flops = model.train_flops_per_token(T);
  const double mfu = tps * flops / 989e12;
  const double mem_gib = static_cast<double>(backend->peak_memory_bytes()) / (1ull << 30);
  if (json)
    std::printf("{\"engine\":\"agpt\",\"model\":\"%s\",\"params\":%lld,\"B\":%d,\"T\":%d,\"grad_accum\":%d,"
                "\"offload\":%s,\"clip\":%s,\"update_in_backward\":%s,\"deterministic\":%s,\"precision\":\"%s\",\"ms_per_step\":%.2f,\"update_ms\":%.2f,"
                "\"tokens_per_s\":%.0f,\"mfu_989\":%.4f,\"max_mem_gib\":%.2f,\"loss\":%.4f,\"device\":\"%s\"}\n",
                s.name.c_str(), static_cast<long long>(model.num_parameters()), B, T, o.accum,
                o.offload ? "true" : "false", o.clip ? "true" : "false", o.in_backward ? "true" : "false", o.deterministic ? "true" : "false",
                precision.c_str(), dt * 1e3, update_ms, tps, mfu, mem_gib, loss,
                backend->name().c_str());
  else
    std::printf("%-5s %5.0fM params  B=%d T=%d x%d %s%s%s%s%s: %8.1f ms/step%s  %9.0f tok/s  MFU %5.1f%%  peak %.1f GiB  "
                "loss %.3f  [%s]\n",
                s.name.c_str(), model.num_parameters() / 1e6, B, T, o.accum, precision.c_str(),
                o.offload ? (" offload " + std::to_string(o.offload_fraction).substr(0, 4)).c_str() : "",
                o.clip ? "" : " no-clip", o.in_backward ? " update-in-backward" : "",
                o.deterministic ? "" : " nondeterministic", dt * 1e3,
                o.offload ? (" (update " + std::to_string(static_cast<int>(update_ms)) + " ms)").c_str() : "", tps,
                100 * mfu, mem_gib, loss, backend->name().c_str());
  std::fflush(stdout);
}

// --gemm: the model's matrix products alone (forward, dx, dw of every Linear shape and lm_head)
// through the backend, with the rate each reaches: how far the products are from the card's peak.
void gemm_table(const Shape& s, int B, int T, const std::string& device, const std::string& precision) {
  auto backend = agpt::ops::make_backend(device, 0, precision);
  const auto& c = s.config;
  const int64_t N = static_cast<int64_t>(B) * T, D = c.hidden_size, F = c.intermediate_size;
  const int64_t Q = c.num_attention_heads * (D / c.num_attention_heads), KV = c.num_key_value_heads * (D / c.num_attention_heads);
  const agpt::ops::DType act = backend->activation_dtype();
  std::printf("%s matrix products, N = %lld rows, %s [%s]\n", s.name.c_str(), static_cast<long long>(N),
              precision.c_str(), backend->name().c_str());
  for (auto [name, in, out] : std::initializer_list<std::tuple<const char*, int64_t, int64_t>>{
           {"q_proj", D, Q}, {"k_proj", D, KV}, {"o_proj", Q, D}, {"gate_proj", D, F}, {"down_proj", F, D},
           {"lm_head", D, c.vocab_size}}) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    auto rnd = [&](int64_t n) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = u(rng);
      return v;
    };
    auto x = backend->from_host({N, in}, rnd(N * in), act), w = backend->from_host({out, in}, rnd(out * in));
    auto y = backend->from_host({N, out}, rnd(N * out), act), dx = backend->from_host({N, in}, rnd(N * in), act);
    auto dw = backend->from_host({out, in}, rnd(out * in));
    agpt::ops::Tensor none;
    double t[3];
    for (int kind = 0; kind < 3; ++kind) {
      auto once = [&] {
        if (kind == 0) backend->matmul_forward(y, x, w);
        else if (kind == 1) backend->matmul_backward(dx, none, y, x, w);
        else backend->matmul_backward(none, dw, y, x, w);
      };
      for (int i = 0; i < 3; ++i) once();
      backend->synchronize();
      const double t0 = now();
      for (int i = 0; i < 20; ++i) once();
      backend->synchronize();
      t[kind] = (now() - t0) / 20;
    }
    const double f = 2.0 * N * in * out;
    std::printf("  %-9s %5lld x %-6lld  fwd %7.3f ms %6.0f TFLOP/s | dx %7.3f ms %6.0f | dw %7.3f ms %6.0f\n", name,
                static_cast<long long>(in), static_cast<long long>(out), t[0] * 1e3, f / t[0] / 1e12, t[1] * 1e3,
                f / t[1] / 1e12, t[2] * 1e3, f / t[2] / 1e12);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  std::string which = "all", device = "cuda", precision = "tf32";
  int B = 0, T = 0, steps = 10;
  bool gemm = false;
  RunOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a, " needs a value");
      return argv[++i];
    };
    if (a == "--shape") which = value();
    else if (a == "--batch") B = std::stoi(value());
    else if (a == "--seq") T = std::stoi(value());
    else if (a == "--steps") steps = std::stoi(value());
    else if (a == "--precision") precision = value();
    else if (a == "--device") device = value();
    else if (a == "--json") o.json = true;
    else if (a == "--gemm") gemm = true;
    else if (a == "--recompute") o.recompute = true;
    else if (a == "--offload") o.offload = true;
    else if (a == "--offload-fraction") o.offload = true, o.offload_fraction = std::stod(value());
    else if (a == "--grad-accum") o.accum = std::stoi(value());
    else if (a == "--no-clip") o.clip = false;
    else if (a == "--update-in-backward") o.in_backward = true;
    else if (a == "--nondeterministic") o.deterministic = false;
    else if (a == "--no-prepare") o.prepare = false;
    else if (a == "-h" || a == "--help") {
      std::printf("usage: train_gpu_bench [--shape 124M|1B|7B|all] [--batch B] [--seq T] [--steps 10] "
                  "[--precision fp32|tf32|bf16] [--device cuda:N] [--json] [--gemm] [--recompute] [--grad-accum K] "
                  "[--offload] [--offload-fraction F] [--no-clip] [--update-in-backward] [--nondeterministic] [--no-prepare]\n");
      return 0;
    } else fail("unknown argument ", a, " (see --help)");
  }
  if (steps < 1) fail("--steps must be at least 1");
  if (o.accum < 1) fail("--grad-accum must be at least 1");
  if (o.in_backward && (o.clip || o.accum != 1 || o.offload))
    fail("--update-in-backward needs --no-clip and one micro-batch without offloading (the update runs before the "
         "gradients are complete)");
  std::vector<std::string> names = which == "all" ? std::vector<std::string>{"124M", "1B"} : std::vector<std::string>{which};
  for (const std::string& n : names) {
    Shape s = make_shape(n);
    if (gemm) gemm_table(s, B > 0 ? B : s.batch, T > 0 ? T : s.seq, device, precision);
    else run(s, B > 0 ? B : s.batch, T > 0 ? T : s.seq, steps, device, precision, o);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_gpu_bench: %s\n", e.what());
  return 1;
}
