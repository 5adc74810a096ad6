// Megatron compatibility order benchmark (issue: trillion-token mixtures, `--order megatron`).
//
//   megatron_order_bench LIST [--seq-len 4096] [--samples N | --tokens T] [--seed 1234]
//                        [--split 100,0,0] [--threads 0] [--naive 200000] [--weights list|tokens]
//
// --weights tokens replaces the list's weights by each file's token count (distinct weights, as in
// real ALCF lists, where the blend has real work to do; the synthetic list has weight 1 everywhere).
//
// Builds Megatron-LM's exact order (GPTDataset document/sample/shuffle indices for every file and
// the BlendedDataset's greedy blend) for the files of LIST and prints one JSON line: wall seconds of
// the build and CPU seconds of the process, peak RSS (VmHWM) after the build and at the end (files
// opened for reading), bytes of the indices held, blend-only CPU seconds (MegatronBlender) and, for
// comparison, Megatron's O(N*S) loop timed on the first --naive samples and extrapolated, plus
// random-access and sequential-cursor costs. Without --samples/--tokens, the
// samples are all tokens of the list / seq_len (one pass), as in the measurements.
// The synthetic AuroraGPT-shaped list comes from `mixture_bench synth DIR --tokens 2e10`; its .bin
// files are sparse (tokens read as zeros), which does not matter here: no tokens are read.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "dataset/data_list.h"
#include "dataset/index_header.h"
#include "dataset/megatron_blend.h"
#include "dataset/megatron_order.h"
#include "dataset/numpy_math.h"

#include "machine.h"

using agpt::bench::cpu_model;
using agpt::bench::status_kb;
using agpt::bench::thread_cpu_seconds;

using namespace agpt;
using namespace agpt::dataset;
using Clock = std::chrono::steady_clock;

namespace {

double elapsed(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double process_cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr,
                   "usage: %s LIST [--seq-len 4096] [--samples N | --tokens T] [--seed 1234] [--split 100,0,0] "
                   "[--threads 0] [--naive 200000]\n",
                   argv[0]);
      return 2;
    }
    MegatronOrderOptions opt;
    opt.list_path = argv[1];
    opt.seq_len = 4096;
    opt.seed = 1234;
    opt.split = "100,0,0";
    double tokens_arg = 0;
    uint64_t samples = 0, naive_n = 200000;
    std::string weights_mode = "list";
    for (int i = 2; i + 1 < argc; i += 2) {
      std::string k = argv[i], v = argv[i + 1];
      if (k == "--seq-len") opt.seq_len = std::stoull(v);
      else if (k == "--samples") samples = static_cast<uint64_t>(std::stod(v));
      else if (k == "--tokens") tokens_arg = std::stod(v);
      else if (k == "--seed") opt.seed = std::stoull(v);
      else if (k == "--split") opt.split = v;
      else if (k == "--threads") opt.threads = std::stoi(v);
      else if (k == "--naive") naive_n = static_cast<uint64_t>(std::stod(v));
      else if (k == "--weights") weights_mode = v;
      else fail("unknown option ", k);
    }
    if (weights_mode != "list" && weights_mode != "tokens") fail("--weights must be list or tokens");
    auto t0 = Clock::now();
    uint64_t list_tokens = 0;
    if ((samples == 0 && tokens_arg == 0) || weights_mode == "tokens") {
      // Read the headers (cheap; IndexHeader reads a few pages).
      for (auto& e : parse_data_list(opt.list_path)) {
        const uint64_t t = IndexHeader(e.prefix).bin_tokens();
        list_tokens += t;
        if (weights_mode == "tokens") {
          opt.prefixes.push_back(e.prefix);
          opt.weights.push_back(static_cast<double>(t));
        }
      }
      if (weights_mode == "tokens") opt.list_path.clear();
      if (samples == 0 && tokens_arg == 0) tokens_arg = static_cast<double>(list_tokens);
    }
    if (samples == 0) samples = static_cast<uint64_t>(tokens_arg / static_cast<double>(opt.seq_len));
    opt.samples = {samples, 0, 0};
    const double probe_s = elapsed(t0);

    auto t1 = Clock::now();
    const double cpu0 = process_cpu_seconds();
    MegatronOrder order = MegatronOrder::build(opt);
    const double build_s = elapsed(t1), build_cpu_s = process_cpu_seconds() - cpu0;
    const long hwm_kb = status_kb("VmHWM");
    const uint64_t held = order.memory_bytes();
    const uint64_t size = order.size(Split::kTrain);
    uint64_t documents = 0, doc_positions = 0, gpt_samples = 0, max_epochs = 0, separate = 0;
    for (const auto& d : order.datasets(Split::kTrain)) {
      documents += d.doc_end - d.doc_begin;
      doc_positions += (d.doc_end - d.doc_begin) * d.num_epochs;
      gpt_samples += d.total_samples;
      max_epochs = std::max(max_epochs, d.num_epochs);
      separate += d.separate_final_epoch;
    }

    // The blend alone, single thread: MegatronBlender ...
    const std::vector<double>& w = order.blend_weights(Split::kTrain);
    double c0 = thread_cpu_seconds();
    MegatronBlender blender(w, size);
    uint64_t check = 0;
    for (uint64_t i = 0; i < size; ++i) check += blender.next();
    const double blend_s = thread_cpu_seconds() - c0;
    const double evals_per_sample = double(blender.evaluations()) / double(size);
    // ... and Megatron's loop on a prefix, extrapolated linearly (its cost per sample is constant).
    naive_n = std::min(naive_n, size);
    std::vector<uint16_t> naive(naive_n);
    double c1 = thread_cpu_seconds();
    megatron_blend_naive(w, naive_n, naive.data(), nullptr);
    const double naive_prefix_s = thread_cpu_seconds() - c1;
    for (uint64_t i = 0; i < naive_n; ++i)
      if (naive[i] != order.dataset_index(Split::kTrain, i)) fail("blend mismatch at sample ", i);
    const double naive_extrapolated_s = naive_n ? naive_prefix_s * double(size) / double(naive_n) : 0;

    // Random access (descriptor only: dataset index, recount from the checkpoint, GPT lookups).
    MegatronOrder::Sample sample;
    std::mt19937_64 rng(5);
    const int rand_n = 20000;
    for (uint32_t d = 0; d < order.prefixes().size(); ++d) order.index(d);  // open every file first (lazy)
    double c2 = thread_cpu_seconds();
    for (int i = 0; i < rand_n; ++i) {
      order.sample(Split::kTrain, rng() % size, sample);
      check += sample.shuffled;
    }
    const double random_us = (thread_cpu_seconds() - c2) / rand_n * 1e6;
    // Sequential descriptors through a cursor.
    const uint64_t seq_n = std::min<uint64_t>(size, 2'000'000);
    sample = MegatronOrder::Sample();
    double c3 = thread_cpu_seconds();
    MegatronOrder::Cursor cursor(order, Split::kTrain, 0);
    for (uint64_t i = 0; i < seq_n; ++i) {
      cursor.next(sample);
      check += sample.pieces.size();
    }
    const double seq_rate = double(seq_n) / (thread_cpu_seconds() - c3);

    std::printf(
        "{\"cpu\": \"%s\", \"cores\": %ld, \"files\": %zu, \"documents\": %llu, \"document_positions\": %llu, "
        "\"seq_len\": %llu, \"requested_samples\": %llu, \"blend_samples\": %llu, \"gpt_samples\": %llu, "
        "\"max_epochs\": %llu, \"separate_final_epochs\": %llu, \"weights\": \"%s\", \"blend_classes\": %u, "
        "\"header_probe_s\": %.3f, \"build_s\": %.3f, \"build_cpu_s\": %.3f, "
        "\"peak_rss_after_build_mib\": %.1f, \"peak_rss_end_mib\": %.1f, \"indices_mib\": %.1f, \"blend_only_cpu_s\": %.3f, \"blend_evaluations_per_sample\": %.2f, \"blend_misses\": %llu, "
        "\"naive_blend_prefix_samples\": %llu, \"naive_blend_prefix_cpu_s\": %.3f, \"naive_blend_extrapolated_s\": %.1f, "
        "\"random_access_cpu_us\": %.2f, \"sequential_descriptors_per_cpu_s\": %.4g, \"warnings\": %zu, \"check\": %llu}\n",
        cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN), order.prefixes().size(), (unsigned long long)documents,
        (unsigned long long)doc_positions, (unsigned long long)opt.seq_len, (unsigned long long)samples,
        (unsigned long long)size, (unsigned long long)gpt_samples, (unsigned long long)max_epochs,
        (unsigned long long)separate, weights_mode.c_str(), blender.classes(), probe_s, build_s, build_cpu_s,
        hwm_kb / 1024.0, status_kb("VmHWM") / 1024.0, held / 1048576.0, blend_s, evals_per_sample,
        (unsigned long long)blender.misses(),
        (unsigned long long)naive_n, naive_prefix_s, naive_extrapolated_s, random_us, seq_rate, order.warnings().size(),
        (unsigned long long)(check % 1000));
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
