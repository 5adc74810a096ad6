// Mixture benchmark (issue: trillion-token mixtures).
//
//   mixture_bench synth DIR --tokens 2e12 [--seed 1]   writes the AuroraGPT-shaped synthetic mixture:
//       2,419 Megatron .idx files in 14 corpora (cc 1107, falcon 500, megawika 262, c4 171, arxiv 100,
//       reddit 78, tulu 66, starcoder 49, stackexchange 26, pes2o 26, algebraic-stack 16,
//       open-web-math 13, books 3, wiki 2), lognormal document lengths per corpus, sparse .bin files
//       of the right size, and DIR/list.txt (weight prefix corpus).
//   mixture_bench run DIR --seq-len 4096 [--samples N]  plans the mixture over DIR/list.txt and reports:
//       time to the first sample (cold start: reading every .idx header), peak RSS, plan size on disk,
//       sequential descriptors per second, random-access latency; one JSON line.
//
// Run both on the target machine; drop the page cache between them for a truly cold start.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "dataset/indexed_dataset.h"
#include "dataset/mixture.h"

#include "machine.h"

using agpt::bench::cpu_model;
using agpt::bench::status_kb;
using agpt::bench::thread_cpu_seconds;

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::dataset;
using Clock = std::chrono::steady_clock;

namespace {

struct Corpus {
  const char* name;
  int files;
  double mean_doc_tokens;  // lognormal mean document length
};
// File counts of AuroraGPT's Dolma mixture; document lengths typical of each kind of text.
const Corpus kCorpora[] = {{"cc", 1107, 1200},        {"falcon", 500, 900},      {"megawika", 262, 1500},
                           {"c4", 171, 500},          {"arxiv", 100, 12000},     {"reddit", 78, 400},
                           {"tulu", 66, 700},         {"starcoder", 49, 2500},   {"stackexchange", 26, 900},
                           {"pes2o", 26, 6000},       {"algebraic-stack", 16, 3000}, {"open-web-math", 13, 2500},
                           {"books", 3, 120000},      {"wiki", 2, 800}};

double elapsed(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

long peak_rss_kb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

void synth(const std::string& dir, double total_tokens, uint64_t seed) {
  fs::create_directories(dir);
  int files = 0;
  for (auto& c : kCorpora) files += c.files;
  const double per_file = total_tokens / files;
  std::ofstream list(fs::path(dir) / "list.txt");
  std::mt19937_64 rng(seed);
  auto t0 = Clock::now();
  uint64_t docs_total = 0, idx_bytes = 0;
  for (auto& c : kCorpora) {
    fs::create_directories(fs::path(dir) / c.name);
    const double sigma = 1.0, mu = std::log(c.mean_doc_tokens) - sigma * sigma / 2;
    std::lognormal_distribution<double> len(mu, sigma);
    for (int f = 0; f < c.files; ++f) {
      // Vary file sizes +-50% around the mean, as real shards do.
      double target = per_file * (0.5 + std::uniform_real_distribution<double>(0, 1)(rng));
      std::vector<int32_t> sizes;
      double sum = 0;
      while (sum < target) {
        int32_t n = static_cast<int32_t>(std::min(2e9, std::max(1.0, len(rng))));
        sizes.push_back(n);
        sum += n;
      }
      std::string prefix = (fs::path(dir) / c.name / (std::string(c.name) + "_" + std::to_string(f))).string();
      std::string idx = build_index_bytes(TokenDType::kInt32, sizes);
      {
        std::ofstream out(prefix + ".idx", std::ios::binary);
        out.write(idx.data(), static_cast<std::streamsize>(idx.size()));
      }
      {
        std::ofstream(prefix + ".bin", std::ios::binary);  // create, then make it sparse at full size
        fs::resize_file(prefix + ".bin", static_cast<uint64_t>(sum) * 4);
      }
      list << 1.0 << " " << prefix << " " << c.name << "\n";
      docs_total += sizes.size();
      idx_bytes += idx.size();
    }
    std::fprintf(stderr, "synth: %s done (%.0f s)\n", c.name, elapsed(t0));
  }
  std::printf("{\"synth\": {\"files\": %d, \"documents\": %llu, \"idx_bytes\": %llu, \"seconds\": %.1f}}\n", files,
              (unsigned long long)docs_total, (unsigned long long)idx_bytes, elapsed(t0));
}

void run(const std::string& dir, uint64_t seq_len, uint64_t samples) {
  MixtureOptions opt;
  opt.list_path = (fs::path(dir) / "list.txt").string();
  opt.seq_len = seq_len;
  opt.seed = 1234;
  auto t0 = Clock::now();
  // samples == 0: all tokens once (tokens / seq_len), decided after reading the headers.
  if (samples == 0) {
    opt.samples[0] = 1;
    Mixture probe = Mixture::plan(opt);
    uint64_t tokens = 0;
    for (auto& s : probe.sources()) tokens += s.tokens;
    samples = tokens / seq_len;
  }
  opt.samples[0] = samples;
  auto t_plan = Clock::now();
  Mixture m = Mixture::plan(opt);
  std::vector<uint32_t> first(seq_len + 1);
  SampleRef r0 = m.sample(Split::kTrain, 0);
  (void)r0;  // the .bin files are sparse: reading tokens would only measure zero pages
  double first_sample_s = elapsed(t0), plan_s = elapsed(t_plan);
  std::string plan_dir = (fs::path(dir) / "plan").string();
  m.save(plan_dir);
  uint64_t plan_bytes = fs::file_size(fs::path(plan_dir) / "mixture.json");

  // Sequential descriptors.
  const uint64_t seq_n = std::min<uint64_t>(samples, 50'000'000);
  double c1 = thread_cpu_seconds();
  Mixture::Cursor cursor(m, Split::kTrain, 0);
  uint64_t check = 0;
  for (uint64_t i = 0; i < seq_n; ++i) check += cursor.next().start_token;
  double seq_rate = seq_n / (thread_cpu_seconds() - c1);

  // Random access.
  std::mt19937_64 rng(5);
  const int rand_n = 200000;
  double c2 = thread_cpu_seconds();
  for (int i = 0; i < rand_n; ++i) check += m.sample(Split::kTrain, rng() % samples).start_token;
  double rand_us = (thread_cpu_seconds() - c2) / rand_n * 1e6;
  // Random access through a fresh cursor (what a resume at an arbitrary index costs).
  auto t3 = Clock::now();
  for (int i = 0; i < 100; ++i) {
    Mixture::Cursor c(m, Split::kTrain, rng() % samples);
    check += c.next().start_token;
  }
  double cursor_ms = elapsed(t3) / 100 * 1e3;
  uint64_t tokens = 0;
  for (auto& s : m.sources()) tokens += s.tokens;
  std::printf(
      "{\"cpu\": \"%s\", \"cores\": %ld, \"files\": %zu, \"tokens\": %.4g, \"seq_len\": %llu, \"samples\": %llu, "
      "\"first_sample_s\": %.3f, \"plan_s\": %.3f, \"peak_rss_mib\": %.1f, \"rss_anon_mib\": %.1f, \"rss_file_mib\": %.1f, \"plan_bytes\": %llu, "
      "\"sequential_descriptors_per_cpu_s\": %.4g, \"random_access_cpu_us\": %.2f, \"cursor_seek_ms\": %.3f, \"check\": %llu}\n",
      cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN), m.sources().size(), double(tokens),
      (unsigned long long)seq_len, (unsigned long long)samples, first_sample_s, plan_s, peak_rss_kb() / 1024.0, status_kb("RssAnon") / 1024.0, status_kb("RssFile") / 1024.0,
      (unsigned long long)plan_bytes, seq_rate, rand_us, cursor_ms, (unsigned long long)(check % 1000));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 3) {
      std::fprintf(stderr, "usage: %s synth DIR [--tokens 2e12] [--seed 1]\n       %s run DIR [--seq-len 4096] [--samples N]\n",
                   argv[0], argv[0]);
      return 2;
    }
    std::string mode = argv[1], dir = argv[2];
    double tokens = 2e12;
    uint64_t seed = 1, seq_len = 4096, samples = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
      std::string k = argv[i], v = argv[i + 1];
      if (k == "--tokens") tokens = std::stod(v);
      else if (k == "--seed") seed = std::stoull(v);
      else if (k == "--seq-len") seq_len = std::stoull(v);
      else if (k == "--samples") samples = static_cast<uint64_t>(std::stod(v));
      else fail("unknown option ", k);
    }
    if (mode == "synth") synth(dir, tokens, seed);
    else if (mode == "run") run(dir, seq_len, samples);
    else fail("unknown mode ", mode);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
