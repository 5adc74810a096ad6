// CPU training throughput of the reference backend, against this machine's own sgemm peak.
//
//   train_cpu_bench [--config tiny|20m|all] [--batch 4] [--seq 256] [--steps N] [--threads N] [--json]
//
// First the floor: OpenBLAS cblas_sgemm on square 1024³/2048³ products and on every matrix product
// one training step of each model does (forward x·wᵀ, backward dy·w and dyᵀ·x, at N = batch·seq
// rows), best of 5; the best rate of all of them is "the sgemm peak" we compare with. "gemm-bound"
// is the tokens/s a model would reach if its matrix products ran at their measured rates and
// everything else were free. Then each model (random init, vocabulary 8192) runs forward + backward + AdamW steps on
// random tokens: 2 warm-up steps, then --steps timed steps (default: at least 3, until 10 s or 10
// steps). Reported: tokens/s, achieved GFLOP/s (model::train_flops_per_token), the fraction of the
// sgemm peak, the forward/backward/optimizer split, and process CPU seconds per wall second (below
// the thread count when other processes share the cores, so tokens per CPU second are given too).
// The load average is printed beside it.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/parallel.h"
#include "model/adamw.h"
#include "model/llama.h"
#include "ops/cpu/cpu_backend.h"
#include "train/config.h"

#include "machine.h"

using agpt::fail;
using agpt::bench::cpu_model;
using agpt::bench::process_cpu_seconds;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  if (!(in >> a >> b >> c)) return "unknown";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", a, b, c);
  return buf;
}

// One row-major sgemm C[M,N] = op(A)·op(B) (+ C when beta = 1), as the CPU backend calls it.
struct Gemm {
  const char* kind;  // "NT" forward, "NN" input gradient, "TN" weight gradient
  bool trans_a, trans_b;
  int M, N, K;
  float beta;
  double flops() const { return 2.0 * M * N * K; }
};

// Best GFLOP/s over reps timed calls after one untimed call.
double sgemm_gflops(const Gemm& g, int reps) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> a(static_cast<size_t>(g.M) * g.K), b(static_cast<size_t>(g.K) * g.N), c(static_cast<size_t>(g.M) * g.N);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  const int lda = g.trans_a ? g.M : g.K, ldb = g.trans_b ? g.K : g.N;
  double best = 1e30;
  for (int r = 0; r <= reps; ++r) {
    const double t0 = now();
    cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans, g.M, g.N,
                g.K, 1.0f, a.data(), lda, b.data(), ldb, g.beta, c.data(), g.N);
    if (r > 0) best = std::min(best, now() - t0);
  }
  return g.flops() / best / 1e9;
}

// The three products of one Linear (in -> out features) over n token rows: y = x·wᵀ, dx += dy·w, dw += dyᵀ·x.
std::vector<Gemm> linear_gemms(int n, int in, int out) {
  return {{"NT", false, true, n, out, in, 0.0f}, {"NN", false, false, n, in, out, 1.0f}, {"TN", true, false, out, in, n, 1.0f}};
}

struct ModelCase {
  std::string name;
  agpt::model::LlamaConfig config;
};

ModelCase make_case(const std::string& name, int64_t seq) {
  agpt::train::TrainConfig c;
  c.model.vocab_size = 8192;
  if (name == "tiny") {
    c.model.preset = "tiny";
  } else {  // ~20M: the shape the brief for this bench names; embeddings tied like every small preset
    c.model.preset = "none";
    c.model.hidden_size = 384, c.model.num_hidden_layers = 6, c.model.num_attention_heads = 6;
    c.model.intermediate_size = 1024;
  }
  return {name, c.llama_config(seq)};
}

struct GemmRow {
  int in, out, per_step;  // features, and how many such Linears one forward has
  double nt, nn, tn;      // GFLOP/s
};

// Every distinct Linear shape of the model with its multiplicity, measured at n token rows.
std::vector<GemmRow> model_gemms(const agpt::model::LlamaConfig& c, int n, int reps) {
  std::map<std::pair<int, int>, int> shapes;
  const int D = static_cast<int>(c.hidden_size), F = static_cast<int>(c.intermediate_size);
  const int Q = static_cast<int>(c.q_size()), KV = static_cast<int>(c.kv_size());
  const int L = static_cast<int>(c.num_hidden_layers);
  const std::initializer_list<std::pair<int, int>> layer = {{D, Q}, {D, KV}, {D, KV}, {Q, D}, {D, F}, {D, F}, {F, D}};
  for (auto shape : layer) shapes[shape] += L;  // q, k, v, o, gate, up, down
  shapes[{D, static_cast<int>(c.vocab_size)}] += 1;  // lm_head
  std::vector<GemmRow> rows;
  for (auto [shape, count] : shapes) {
    auto g = linear_gemms(n, shape.first, shape.second);
    rows.push_back({shape.first, shape.second, count, sgemm_gflops(g[0], reps), sgemm_gflops(g[1], reps),
                    sgemm_gflops(g[2], reps)});
  }
  return rows;
}

// Seconds the model's matrix products of one step take at the measured rates.
double gemm_seconds(const std::vector<GemmRow>& rows, int n) {
  double s = 0;
  for (const GemmRow& r : rows) {
    const double f = 2.0 * n * r.in * r.out;  // the same for all three products
    s += r.per_step * (f / (r.nt * 1e9) + f / (r.nn * 1e9) + f / (r.tn * 1e9));
  }
  return s;
}

struct Result {
  int steps = 0;
  double wall = 0, forward = 0, backward = 0, optimizer = 0, cpu = 0;
  float loss = 0;
};

Result train(const ModelCase& mc, int B, int T, int threads, int steps) {
  auto backend = agpt::ops::make_cpu_backend(threads);
  agpt::model::Llama model(mc.config, *backend);
  model.init_weights(1234);
  agpt::model::AdamW opt(*backend, model.parameters(), agpt::model::AdamWConfig{.lr = 3e-4});
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(mc.config.vocab_size - 1));
  std::vector<int32_t> ids(static_cast<size_t>(B) * T), targets(ids.size());
  Result r;
  auto one_step = [&](Result* into) {
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = tok(rng), targets[i] = tok(rng);
    const double t0 = now();
    const float loss = model.forward(ids, targets, B, T);
    const double t1 = now();
    model.zero_grad();  // counted with the backward
    model.backward();
    const double t2 = now();
    const double norm = agpt::model::global_grad_norm(*backend, model.parameters());
    opt.step(model.parameters(), -1.0, agpt::model::clip_coefficient(norm, 1.0));
    const double t3 = now();
    if (into) into->forward += t1 - t0, into->backward += t2 - t1, into->optimizer += t3 - t2, into->loss = loss;
  };
  for (int w = 0; w < 2; ++w) one_step(nullptr);
  const double start = now(), cpu0 = process_cpu_seconds();
  // Fixed --steps, else at least 3 and until 10 s or 10 steps.
  while (steps > 0 ? r.steps < steps : (r.steps < 3 || (now() - start < 10 && r.steps < 10))) {
    one_step(&r);
    ++r.steps;
  }
  r.wall = now() - start;
  r.cpu = process_cpu_seconds() - cpu0;
  return r;
}

int usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: train_cpu_bench [--config tiny|20m|all] [--batch 4] [--seq 256] [--steps N] [--threads N] [--json]\n"
               "  --steps 0 (default): at least 3 timed steps, until 10 s or 10 steps; --threads 0: all cores\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string which = "all";
  int B = 4, T = 256, steps = 0, threads = 0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a, " needs a value");
      return argv[++i];
    };
    if (a == "--config") which = value();
    else if (a == "--batch") B = std::stoi(value());
    else if (a == "--seq") T = std::stoi(value());
    else if (a == "--steps") steps = std::stoi(value());
    else if (a == "--threads") threads = std::stoi(value());
    else if (a == "--json") json = true;
    else if (a == "-h" || a == "--help") return usage(0);
    else return usage(2);
  }
  if (which != "tiny" && which != "20m" && which != "all") fail("--config must be tiny, 20m or all, not '", which, "'");
  if (B < 1 || T < 2 || steps < 0 || threads < 0) fail("--batch, --seq, --steps and --threads must be positive");
  if (threads > 0) openblas_set_num_threads(threads);  // else OpenBLAS's own default
  const int blas_threads = openblas_get_num_threads();
  const int n = B * T;

  std::printf("machine: %s, %d cores; OpenBLAS %s (core %s), %d threads; agpt threads %d\n", cpu_model().c_str(),
              openblas_get_num_procs(), openblas_get_config(), openblas_get_corename(), blas_threads,
              threads > 0 ? threads : agpt::default_threads());
  std::printf("load average at start: %s\n\nsgemm, best of 5 (row-major, fp32):\n", load_average().c_str());
  // The peak is the best rate any product reached (square or model-shaped): under load, a single
  // square measurement can land in a busy moment.
  double peak = 0;
  for (int s : {1024, 2048}) {
    double g = sgemm_gflops({"NN", false, false, s, s, s, 0.0f}, 5);
    peak = std::max(peak, g);
    std::printf("  %4d x %4d x %4d   %7.1f GFLOP/s\n", s, s, s, g);
  }
  std::vector<ModelCase> cases;
  for (const char* name : {"tiny", "20m"})
    if (which == "all" || which == name) cases.push_back(make_case(name, T));
  std::vector<std::vector<GemmRow>> gemms;
  for (const ModelCase& mc : cases) {
    const auto& c = mc.config;
    std::printf("\n%s: hidden %lld, MLP %lld, %lld layers, %lld heads, vocab %lld, %s; %lld params, %.1f MFLOP/token\n",
                mc.name.c_str(), (long long)c.hidden_size, (long long)c.intermediate_size, (long long)c.num_hidden_layers,
                (long long)c.num_attention_heads, (long long)c.vocab_size, c.tie_word_embeddings ? "tied" : "untied",
                (long long)agpt::model::parameter_count(c), agpt::model::train_flops_per_token(c, T) / 1e6);
    gemms.push_back(model_gemms(c, n, 5));
    std::printf("  its sgemms at %d token rows: Linear in -> out (count)   NT fwd   NN dx   TN dw  GFLOP/s\n", n);
    for (const GemmRow& r : gemms.back()) {
      std::printf("  %5d -> %5d (x%2d)%33.1f %7.1f %7.1f\n", r.in, r.out, r.per_step, r.nt, r.nn, r.tn);
      peak = std::max({peak, r.nt, r.nn, r.tn});
    }
  }
  std::printf("\nsgemm peak (best rate above): %.1f GFLOP/s\n", peak);

  std::vector<nlohmann::ordered_json> lines;
  for (size_t k = 0; k < cases.size(); ++k) {
    const ModelCase& mc = cases[k];
    const double flops_tok = agpt::model::train_flops_per_token(mc.config, T);
    const double gemm_s = gemm_seconds(gemms[k], n);
    Result r = train(mc, B, T, threads, steps);
    const double tps = static_cast<double>(n) * r.steps / r.wall;
    const double gflops = flops_tok * tps / 1e9;
    const double step_s = r.forward + r.backward + r.optimizer;
    std::printf("\n%s, batch %d x seq %d: %d steps in %.1f s, last loss %.3f (random tokens: about ln V = %.3f)\n",
                mc.name.c_str(), B, T, r.steps, r.wall, r.loss, std::log(static_cast<double>(mc.config.vocab_size)));
    std::printf("  %.0f tokens/s, %.1f GFLOP/s = %.0f%% of the sgemm peak; gemm-bound %.0f tokens/s\n", tps, gflops,
                100 * gflops / peak, n / gemm_s);
    std::printf("  time: forward %.0f%%, backward %.0f%%, optimizer %.0f%%; %.2f CPU s per wall s (%.0f tokens per CPU s)\n",
                100 * r.forward / step_s, 100 * r.backward / step_s, 100 * r.optimizer / step_s, r.cpu / r.wall,
                n * r.steps / r.cpu);
    nlohmann::ordered_json j;
    j["bench"] = "train_cpu";
    j["config"] = mc.name;
    j["params"] = agpt::model::parameter_count(mc.config);
    j["batch"] = B, j["seq"] = T, j["steps"] = r.steps;
    j["tokens_per_s"] = tps;
    j["tokens_per_cpu_s"] = n * r.steps / r.cpu;
    j["flops_per_token"] = flops_tok;
    j["gflops"] = gflops;
    j["sgemm_peak_gflops"] = peak;
    j["fraction_of_peak"] = gflops / peak;
    j["gemm_bound_tokens_per_s"] = n / gemm_s;
    j["forward_s"] = r.forward, j["backward_s"] = r.backward, j["optimizer_s"] = r.optimizer;
    j["cpu_per_wall"] = r.cpu / r.wall;
    j["loss"] = r.loss;
    j["cpu"] = cpu_model();
    j["blas_threads"] = blas_threads;
    j["load_average"] = load_average();
    lines.push_back(j);
  }
  std::printf("\n| config | params | tokens/s | GFLOP/s | of sgemm peak | gemm-bound tokens/s | fwd / bwd / opt | CPU s per s | tokens per CPU s |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const auto& j : lines) {
    const double f = j["forward_s"], b = j["backward_s"], o = j["optimizer_s"], all = f + b + o;
    std::printf("| %s | %.2fM | %.0f | %.1f | %.0f%% | %.0f | %.0f / %.0f / %.0f %% | %.2f | %.0f |\n",
                j["config"].get<std::string>().c_str(), j["params"].get<double>() / 1e6, j["tokens_per_s"].get<double>(),
                j["gflops"].get<double>(), 100 * j["fraction_of_peak"].get<double>(),
                j["gemm_bound_tokens_per_s"].get<double>(), 100 * f / all, 100 * b / all, 100 * o / all,
                j["cpu_per_wall"].get<double>(), j["tokens_per_cpu_s"].get<double>());
  }
  std::printf("\nload average at end: %s\n", load_average().c_str());
  if (json)
    for (const auto& j : lines) std::printf("%s\n", j.dump().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_cpu_bench: %s\n", e.what());
  return 1;
}
