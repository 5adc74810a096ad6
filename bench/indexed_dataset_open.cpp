// Indexed dataset write / open / read speed on a synthetic dataset of many small documents.
//   indexed_dataset_open [documents=10000000] [mean_tokens=8] [dir=/tmp]
// Prints the time to write it, to open it (which validates and copies the whole .idx), and to read
// every document back.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "dataset/indexed_dataset.h"

using namespace agpt::dataset;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  try {
    size_t docs = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10000000;
    size_t mean = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 8;
    std::string dir = argc > 3 ? argv[3] : std::filesystem::temp_directory_path().string();
    std::string prefix = dir + "/agpt_bench_indexed_" + std::to_string(::getpid());
    std::mt19937 rng(1);
    std::vector<uint32_t> tokens(2 * mean + 1);
    for (auto& t : tokens) t = rng() % 50000;

    auto t0 = Clock::now();
    uint64_t total = 0;
    {
      IndexedDatasetWriter w(prefix, TokenDType::kUInt16);
      for (size_t i = 0; i < docs; ++i) {
        size_t n = rng() % (2 * mean + 1);
        w.add_document(std::span<const uint32_t>(tokens.data(), n));
      }
      w.finish();
      total = w.tokens();
    }
    double t_write = since(t0);
    double idx_mb = std::filesystem::file_size(prefix + ".idx") / 1e6;
    double bin_mb = std::filesystem::file_size(prefix + ".bin") / 1e6;

    double best_open = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      auto t1 = Clock::now();
      IndexedDataset ds(prefix);
      best_open = std::min(best_open, since(t1));
    }
    IndexedDataset ds(prefix);
    auto t2 = Clock::now();
    std::vector<uint32_t> buf;
    uint64_t check = 0;
    for (size_t i = 0; i < ds.num_documents(); ++i) {
      ds.read(i, 0, static_cast<size_t>(ds.sizes()[i]), buf);
      check += buf.size();
    }
    double t_read = since(t2);
    std::printf("documents %zu, tokens %llu, .idx %.1f MB, .bin %.1f MB\n", docs,
                static_cast<unsigned long long>(total), idx_mb, bin_mb);
    std::printf("write  %.3f s (%.1f M docs/s)\n", t_write, docs / t_write / 1e6);
    std::printf("open   %.3f s best of 3, page cache warm (%.0f MB/s of .idx)\n", best_open, idx_mb / best_open);
    std::printf("read   %.3f s all documents (%.1f M docs/s, %.0f M tokens/s)%s\n", t_read,
                docs / t_read / 1e6, check / t_read / 1e6, check == total ? "" : "  MISMATCH");
    std::filesystem::remove(prefix + ".bin");
    std::filesystem::remove(prefix + ".idx");
    return check == total ? 0 : 1;
  } catch (const agpt::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
