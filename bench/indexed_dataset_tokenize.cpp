// Throughput of the tokenize pipeline (documents -> indexed dataset) on a real corpus.
//   indexed_dataset_tokenize CORPUS [TOKENIZER] [THREADS...]
// CORPUS: JSONL (.gz/.zst), text files, a directory or a glob. TOKENIZER defaults to the shared GPT-2
// tokenizer.json. THREADS defaults to "1 N" (N = all cores). For each thread count it prints text
// MB/s and tokens/s in total and per encoding thread, and checks that the output bytes are the same
// for every thread count. A read-only pass first gives the reader's ceiling.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/parallel.h"
#include "corpus/reader.h"
#include "dataset/tokenize.h"
#include "text/tokenizer.h"

using namespace agpt;
using Clock = std::chrono::steady_clock;

// CPU seconds (user + system) of this process so far: on a shared machine, MB per CPU-second is the
// per-core rate even when other work takes turns on the cores.
static double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

// The shared test data beside the checkout (this file is bench/ of the checkout).
static std::string default_tokenizer() {
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "testdata" /
          "tokenizers" / "gpt2-tokenizer.json")
      .string();
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS [TOKENIZER] [THREADS...]\n", argv[0]);
    return 2;
  }
  try {
    std::string corpus = argv[1];
    std::string tok_path = argc > 2 && argv[2][0] ? argv[2] : default_tokenizer();
    std::vector<int> threads;
    for (int i = 3; i < argc; ++i) threads.push_back(std::atoi(argv[i]));
    if (threads.empty()) threads = {1, default_threads()};

    auto tok = text::load_tokenizer(tok_path);
    std::printf("tokenizer %s (%zu ids); corpus %s; %u hardware threads\n", tok->description().c_str(),
                tok->vocab_size(), corpus.c_str(), std::thread::hardware_concurrency());

    {  // the ceilings: reading alone, and encoding alone on one thread (texts in memory)
      auto t0 = Clock::now();
      double c0 = cpu_seconds();
      corpus::DocumentReader reader({corpus}, corpus::OnError::kSkip);
      corpus::Document doc;
      std::vector<std::string> texts;
      uint64_t text = 0;
      while (reader.next(doc)) {
        text += doc.text.size();
        if (text < (256u << 20)) texts.push_back(doc.text);  // keep at most 256 MB for the encode pass
      }
      double s = std::chrono::duration<double>(Clock::now() - t0).count();
      double c = cpu_seconds() - c0;
      std::printf("read only:   %zu documents, %.1f MB text in %.2f s = %.1f MB/s; %.2f CPU s = %.1f MB/CPU-s\n",
                  texts.size(), text / 1e6, s, text / 1e6 / s, c, text / 1e6 / c);
      auto t1 = Clock::now();
      c0 = cpu_seconds();
      std::vector<uint32_t> ids;
      uint64_t bytes = 0, tokens = 0;
      for (auto& t : texts) {
        ids.clear();
        tok->encode_ordinary(t, ids);
        bytes += t.size();
        tokens += ids.size();
      }
      s = std::chrono::duration<double>(Clock::now() - t1).count();
      c = cpu_seconds() - c0;
      std::printf("encode only: 1 thread, %.1f MB in %.2f s = %.2f MB/s, %.0f tokens/s; %.2f CPU s = %.2f MB/CPU-s, "
                  "%.0f tokens/CPU-s\n",
                  bytes / 1e6, s, bytes / 1e6 / s, tokens / s, c, bytes / 1e6 / c, tokens / c);
    }

    std::string dir = std::filesystem::temp_directory_path().string() + "/agpt_bench_tokenize_" + std::to_string(::getpid());
    std::string first_bin;
    for (int t : threads) {
      dataset::TokenizeOptions opt;
      opt.inputs = {corpus};
      opt.output_prefix = dir + "/out_" + std::to_string(t);
      opt.threads = t;
      opt.progress = false;
      double c0 = cpu_seconds();
      auto r = dataset::tokenize_to_indexed_dataset(opt, *tok);
      double c = cpu_seconds() - c0;
      std::printf("threads %3d: %llu docs, %llu tokens, %.1f MB text in %.2f s = %.2f MB/s, %.0f tokens/s; "
                  "per thread %.2f MB/s, %.0f tokens/s\n",
                  t, static_cast<unsigned long long>(r.documents), static_cast<unsigned long long>(r.tokens),
                  r.text_bytes / 1e6, r.seconds, r.mb_per_second(), r.tokens_per_second(), r.mb_per_second() / t,
                  r.tokens_per_second() / t);
      std::printf("             %.2f CPU s (all threads, reading included) = %.2f MB/CPU-s, %.0f tokens/CPU-s\n", c,
                  r.text_bytes / 1e6 / c, r.tokens / c);
      std::string bin = read_file(opt.output_prefix + ".bin");
      if (first_bin.empty()) first_bin = bin;
      else if (bin != first_bin) std::printf("  OUTPUT DIFFERS from the first thread count!\n");
    }
    std::filesystem::remove_all(dir);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
