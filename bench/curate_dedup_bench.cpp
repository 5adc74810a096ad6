// MinHash signature throughput on real text: every file below a directory (default: Python's
// documentation sources) is one document, or every line's "text" of a JSONL file (e.g. what
// `agpt data extract` wrote: bench/curate_real_docs.sh); reports MB/s per core (thread CPU time) for
//   normalize      normalize_text alone
//   signature      normalize + word 5-gram shingles + 112 permutations (14 x 8), the LSH band keys
//   engine         Deduper::add + finish (exact + near, 1 thread): the whole of pass 1 minus reading
// Needs agpt_curate: target_link_libraries(curate_dedup_bench PRIVATE agpt_curate)
//
//   curate_dedup_bench [DIR | FILE.jsonl] [--repeat 3]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "curate/dedup.h"
#include "curate/minhash.h"
#include "machine.h"

namespace fs = std::filesystem;
using agpt::bench::thread_cpu_seconds;
using namespace agpt::curate;

int main(int argc, char** argv) {
  std::string dir = "/usr/share/doc/python3.11-dev/html/_sources";
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else dir = argv[i];
  }
  std::vector<std::string> docs;
  size_t bytes = 0;
  if (fs::is_regular_file(dir) && dir.ends_with(".jsonl")) {
    std::ifstream f(dir, std::ios::binary);
    std::string line;
    while (std::getline(f, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      if (!j.contains("text") || !j["text"].is_string()) continue;
      docs.push_back(j["text"].get<std::string>());
      bytes += docs.back().size();
    }
  } else if (!fs::is_directory(dir)) {
    std::fprintf(stderr, "no directory %s (give a directory of text files or a .jsonl file)\n", dir.c_str());
    return 1;
  }
  for (const auto& e : fs::is_directory(dir) ? fs::recursive_directory_iterator(dir) : fs::recursive_directory_iterator()) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    docs.push_back(s.str());
    bytes += docs.back().size();
  }
  std::printf("cpu: %s\ntext: %s, %zu documents, %.1f MB\n", agpt::bench::cpu_model().c_str(), dir.c_str(), docs.size(),
              bytes / 1e6);
  auto best = [&](auto&& fn) {
    double b = 1e9;
    for (int r = 0; r < repeat; ++r) {
      double t0 = thread_cpu_seconds();
      fn();
      b = std::min(b, thread_cpu_seconds() - t0);
    }
    return bytes / 1e6 / b;
  };
  std::string norm;
  size_t sink = 0;
  double mb_norm = best([&] {
    for (const auto& d : docs) {
      normalize_text(d, norm);
      sink += norm.size();
    }
  });
  for (bool chars : {false, true}) {
    MinHashOptions o;
    o.char_ngrams = chars;
    MinHasher h(o);
    std::vector<uint64_t> sig, scratch, keys(o.bands);
    double mb_sig = best([&] {
      for (const auto& d : docs) {
        normalize_text(d, norm);
        if (h.signature(norm, sig, scratch)) h.band_keys(sig, keys.data());
        sink += sig[0] & 1;
      }
    });
    std::printf("signature (%s 5-grams, 14x8): %.1f MB/s per core\n", chars ? "character" : "word", mb_sig);
  }
  std::printf("normalize: %.1f MB/s per core\n", mb_norm);
  double mb_engine = best([&] {
    DedupOptions opt;
    opt.threads = 1;
    Deduper d(opt);
    std::vector<std::string_view> v(docs.begin(), docs.end());
    d.add(v);
    d.finish();
    sink += d.report().documents_kept;
  });
  std::printf("engine (exact + near, 1 thread): %.1f MB/s per core\n", mb_engine);
  std::printf("(checksum %zu)\n", sink);
  return 0;
}
