// Encode throughput of agpt's tokenizers on a text file, split on blank lines into documents the
// way ../shared/peers/tiktoken_baseline.py does (so the numbers compare with tiktoken's).
//
//   tokenizer_encode TEXT_FILE [--tokenizers DIR] [--threads N] [--reps R] [--only a,b]
//
// DIR holds r50k_base/cl100k_base/o200k_base.tiktoken, encoder.json + vocab.bpe, gpt2-tokenizer.json
// (default: $AGPT_TOKENIZERS, else ../shared/testdata/tokenizers). Prints one JSON line per
// tokenizer and thread count: MB/s, tokens/s, load time, and the machine (CPU model, cores).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/parallel.h"
#include "text/tokenizer.h"

#include "machine.h"

using agpt::bench::cpu_model;
using agpt::bench::status_kb;
using agpt::bench::thread_cpu_seconds;

namespace {

double thread_cpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string_view> split_docs(std::string_view text) {
  std::vector<std::string_view> docs;  // Python's text.split("\n\n")
  size_t pos = 0;
  for (;;) {
    size_t p = text.find("\n\n", pos);
    if (p == std::string_view::npos) {
      docs.push_back(text.substr(pos));
      break;
    }
    docs.push_back(text.substr(pos, p - pos));
    pos = p + 2;
  }
  return docs;
}

int usage() {
  std::fprintf(stderr,
               "usage: tokenizer_encode TEXT_FILE [--tokenizers DIR] [--threads N] [--reps R] [--only name,...]\n"
               "names: r50k_base cl100k_base o200k_base gpt2_dir hf_gpt2_json\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string text_path = argv[1];
  const char* env = std::getenv("AGPT_TOKENIZERS");
  std::string dir = env ? env : "../shared/testdata/tokenizers";
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int reps = 3;
  std::string only;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--tokenizers") dir = argv[++i];
    else if (a == "--threads") threads = std::atoi(argv[++i]);
    else if (a == "--reps") reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--only") only = argv[++i];
    else return usage();
  }
  try {
    std::string text = agpt::read_file(text_path);
    auto docs = split_docs(text);
    double mb = text.size() / 1e6;
    std::string cpu = cpu_model();
    unsigned cores = std::thread::hardware_concurrency();
    struct Entry {
      const char* name;
      std::string path;
    };
    std::vector<Entry> entries = {{"r50k_base", dir + "/r50k_base.tiktoken"},
                                  {"cl100k_base", dir + "/cl100k_base.tiktoken"},
                                  {"o200k_base", dir + "/o200k_base.tiktoken"},
                                  {"gpt2_dir", dir},
                                  {"hf_gpt2_json", dir + "/gpt2-tokenizer.json"}};
    for (auto& e : entries) {
      if (!only.empty() && ("," + only + ",").find(std::string(",") + e.name + ",") == std::string::npos) continue;
      double t0 = now();
      auto tok = agpt::text::load_tokenizer(e.path);
      double load_s = now() - t0;
      std::vector<uint32_t> ids;
      tok->encode_ordinary(std::string_view(text).substr(0, std::min<size_t>(text.size(), 100000)), ids);  // warm-up
      std::vector<int> thread_counts = {1};
      if (threads > 1) thread_counts.push_back(threads);
      for (int nt : thread_counts) {
        double best = 1e30, best_cpu = 1e30;
        uint64_t tokens = 0;
        for (int r = 0; r < reps; ++r) {
          std::atomic<uint64_t> count{0};
          double s = now(), cs = thread_cpu();
          if (nt == 1) {
            uint64_t n = 0;
            for (auto d : docs) {
              ids.clear();
              tok->encode_ordinary(d, ids);
              n += ids.size();
            }
            count = n;
          } else {
            // Documents in chunks so that the per-document overhead of parallel_for stays small.
            const size_t chunk = 64;
            size_t nchunks = (docs.size() + chunk - 1) / chunk;
            agpt::parallel_for(nchunks, nt, [&](size_t c) {
              thread_local std::vector<uint32_t> local;
              uint64_t n = 0;
              for (size_t i = c * chunk; i < std::min(docs.size(), (c + 1) * chunk); ++i) {
                local.clear();
                tok->encode_ordinary(docs[i], local);
                n += local.size();
              }
              count += n;
            });
          }
          best = std::min(best, now() - s);
          if (nt == 1) best_cpu = std::min(best_cpu, thread_cpu() - cs);
          tokens = count.load();
        }
        nlohmann::json j = {{"bench", "tokenizer_encode"}, {"tokenizer", e.name},     {"threads", nt},
                            {"MB_per_s", mb / best},        {"tokens_per_s", tokens / best},
                            {"tokens", tokens},             {"seconds", best},         {"bytes", text.size()},
                            {"docs", docs.size()},          {"load_seconds", load_s},  {"cpu", cpu},
                            {"cores", cores},               {"file", text_path}};
        // On a busy machine wall time includes waiting for a core; CPU time shows the code's speed.
        if (nt == 1) j["MB_per_s_cpu_time"] = mb / best_cpu;
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
      }
    }
  } catch (const agpt::Error& e) {
    std::fprintf(stderr, "tokenizer_encode: %s\n", e.what());
    return 1;
  }
  return 0;
}
