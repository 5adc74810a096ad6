// Document I/O throughput: writes a synthetic corpus of web-like documents as .jsonl, .jsonl.gz and
// .jsonl.zst with DocumentWriter, reads each back with DocumentReader, and prints MB/s of
// decompressed JSONL (plus the parts: line splitting alone, JSON parsing alone).
//
//   corpus_read [--mb 256] [--dir /tmp] [--big-line-mb 100] [--keep]
//
// Single thread throughout. Reads are timed twice and the faster run is kept (page cache warm).
#include <time.h>
#include <unistd.h>

#include <algorithm>
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
#include "corpus/reader.h"
#include "corpus/writer.h"

#include "machine.h"

using agpt::bench::cpu_model;
using agpt::bench::status_kb;
using agpt::bench::thread_cpu_seconds;

using namespace agpt;
using namespace agpt::corpus;
namespace fs = std::filesystem;

namespace {

// CPU time of this thread: the machine may be shared, and wall time then measures the neighbours.
double now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
double wall() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

long status_mb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key))) / 1024;
  return -1;
}
long rss_mb() { return status_mb("VmRSS:"); }
long peak_rss_mb() { return status_mb("VmHWM:"); }


// Web-like text: Zipf-distributed words, sentences, paragraphs, some punctuation that needs
// escaping in JSON (quotes, newlines) and about 2% non-ASCII characters.
class TextGen {
 public:
  explicit TextGen(uint64_t seed) : rng_(seed) {
    const char* syll[] = {"ka", "to", "re", "in", "an", "the", "ing", "er", "on", "al", "st", "en", "ar", "es", "or",
                          "de", "co", "pro", "ma", "li", "ve", "se", "ti", "ne", "ra", "mi", "lo", "pe", "sa", "un"};
    for (int i = 0; i < 5000; ++i) {
      std::string w;
      int n = 1 + static_cast<int>(rng_() % 4);
      for (int k = 0; k < n; ++k) w += syll[rng_() % 30];
      words_.push_back(w);
    }
    for (int i = 0; i < 5000; ++i) cdf_.push_back((i ? cdf_.back() : 0) + 1.0 / (i + 1));
  }
  const std::string& word() {
    double r = std::uniform_real_distribution<double>(0, cdf_.back())(rng_);
    return words_[std::lower_bound(cdf_.begin(), cdf_.end(), r) - cdf_.begin()];
  }
  std::string text(size_t target) {
    static const char* extra[] = {"\xC3\xA9", "\xE2\x80\x94", "\xE2\x80\x9C", "\xE2\x80\x9D", "\xE4\xB8\xAD\xE6\x96\x87"};
    std::string t;
    t.reserve(target + 64);
    while (t.size() < target) {
      int sentence = 5 + static_cast<int>(rng_() % 20);
      for (int i = 0; i < sentence; ++i) {
        std::string w = word();
        if (i == 0) w[0] = static_cast<char>(std::toupper(w[0]));
        t += w;
        unsigned r = rng_() % 100;
        if (r < 2) t += extra[rng_() % 5];
        if (r >= 2 && r < 3) t += " \"" + word() + "\"";
        if (r >= 3 && r < 8) t += ",";
        t += i + 1 < sentence ? " " : "";
      }
      t += rng_() % 8 == 0 ? ".\n\n" : ". ";
    }
    return t;
  }
  size_t doc_length() {  // log-normal, median about 2.4 kB
    double v = std::exp(std::normal_distribution<double>(7.8, 0.9)(rng_));
    return static_cast<size_t>(std::clamp(v, 100.0, 200000.0));
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  std::vector<std::string> words_;
  std::vector<double> cdf_;
};

struct ReadStats {
  double seconds, wall_seconds;
  uint64_t bytes, docs;
};

ReadStats read_once(const std::string& path) {
  double t0 = now(), w0 = wall();
  DocumentReader reader({path}, OnError::kFail);
  Document doc;
  uint64_t text_bytes = 0;
  while (reader.next(doc)) text_bytes += doc.text.size();
  double s = now() - t0, ws = wall() - w0;
  if (text_bytes == 0) fail("no text read");
  return {s, ws, reader.report().bytes, reader.report().documents};
}

ReadStats best_read(const std::string& path) {
  ReadStats a = read_once(path), b = read_once(path);
  return a.seconds < b.seconds ? a : b;
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 256;
  double big_line_mb = 100;
  std::string base = fs::temp_directory_path().string();
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mb" && i + 1 < argc) mb = std::stod(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) base = argv[++i];
    else if (a == "--big-line-mb" && i + 1 < argc) big_line_mb = std::stod(argv[++i]);
    else if (a == "--keep") keep = true;
    else {
      std::fprintf(stderr, "usage: corpus_read [--mb 256] [--dir /tmp] [--big-line-mb 100] [--keep]\n");
      return 2;
    }
  }
  try {
    fs::path dir = fs::path(base) / ("agpt_bench_corpus_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::printf("CPU: %s (%ld logical cores), single thread\n", cpu_model().c_str(), sysconf(_SC_NPROCESSORS_ONLN));

    // Generate documents in memory first so that generation is not timed.
    TextGen gen(42);
    std::vector<Document> docs;
    uint64_t approx = 0;
    while (approx < mb * 1e6) {
      Document d;
      d.id = "doc-" + std::to_string(docs.size());
      d.text = gen.text(gen.doc_length());
      d.source = "common-crawl";
      d.added = "2024-05-01T12:00:00.000Z";
      d.created = "2023-11-" + std::to_string(10 + docs.size() % 19) + "T08:15:00Z";
      d.metadata_json = "{\"url\":\"https://www.example.com/articles/" + std::to_string(gen.rng()() % 1000000) +
                        "\",\"language\":\"en\",\"language_score\":0.9" + std::to_string(gen.rng()() % 100) +
                        ",\"token_count\":" + std::to_string(d.text.size() / 4) + "}";
      approx += d.text.size() + d.metadata_json.size() + 120;
      docs.push_back(std::move(d));
    }
    std::printf("synthetic corpus: %zu documents, about %.0f MB of JSONL (mean %.0f bytes/doc)\n\n", docs.size(),
                approx / 1e6, static_cast<double>(approx) / docs.size());

    std::printf("MB/s are decompressed JSONL bytes per second of CPU time (wall-clock MB/s in brackets)\n");
    std::printf("%-12s %8s %7s %18s %18s %12s\n", "format", "file MB", "ratio", "write MB/s", "read MB/s",
                "read docs/s");
    uint64_t plain_size = 0;
    for (std::string ext : {"", ".gz", ".zst"}) {
      std::string path = (dir / ("corpus.jsonl" + ext)).string();
      double t0 = now(), w0 = wall();
      {
        DocumentWriter w(path);
        for (const auto& d : docs) w.write(d);
        w.close();
      }
      double write_s = now() - t0, write_wall = wall() - w0;
      uint64_t size = fs::file_size(path);
      if (ext.empty()) plain_size = size;
      ReadStats r = best_read(path);
      char wr[64], rd[64];
      std::snprintf(wr, sizeof wr, "%.0f (%.0f)", plain_size / 1e6 / write_s, plain_size / 1e6 / write_wall);
      std::snprintf(rd, sizeof rd, "%.0f (%.0f)", r.bytes / 1e6 / r.seconds, r.bytes / 1e6 / r.wall_seconds);
      std::printf("%-12s %8.1f %7.2f %18s %18s %12.0f\n", ("jsonl" + ext).c_str(), size / 1e6,
                  static_cast<double>(plain_size) / size, wr, rd, r.docs / r.seconds);
    }

    // The parts, on the plain file: line splitting only, then JSON parsing only (lines in memory).
    {
      std::string path = (dir / "corpus.jsonl").string();
      double best = 1e9;
      uint64_t bytes = 0;
      for (int rep = 0; rep < 2; ++rep) {
        double t0 = now();
        LineReader lr(path);
        std::string_view line;
        uint64_t n = 0;
        while (lr.next(line)) n += line.size();
        best = std::min(best, now() - t0);
        bytes = lr.bytes_consumed();
        if (n == 0) fail("empty");
      }
      std::printf("\nparts (plain file): LineReader alone %.0f MB/s", bytes / 1e6 / best);
      std::fflush(stdout);
      std::vector<std::string> lines;
      {
        LineReader lr(path);
        std::string_view line;
        while (lr.next(line) && lines.size() < 20000) lines.emplace_back(line);
      }
      DocumentParser parser;
      Document doc;
      std::string reason, detail;
      best = 1e9;
      uint64_t parsed = 0;
      for (int rep = 0; rep < 3; ++rep) {
        double t0 = now();
        parsed = 0;
        for (const auto& l : lines) {
          if (!parser.parse(l, doc, reason, detail)) fail("parse: ", detail);
          parsed += l.size() + 1;
        }
        best = std::min(best, now() - t0);
      }
      std::printf(", DocumentParser alone %.0f MB/s", parsed / 1e6 / best);
      // The floor for compressed files: decompression alone.
      for (std::string ext : {".gz", ".zst"}) {
        std::string cpath = (dir / ("corpus.jsonl" + ext)).string();
        std::vector<char> buf(1 << 20);
        double best_dec = 1e9;
        uint64_t total = 0;
        for (int rep = 0; rep < 2; ++rep) {
          double t0 = now();
          InputStream in(cpath);
          total = 0;
          while (size_t k = in.read(buf.data(), buf.size())) total += k;
          best_dec = std::min(best_dec, now() - t0);
        }
        std::printf(", %s decompression alone %.0f MB/s", ext.c_str() + 1, total / 1e6 / best_dec);
      }
      std::printf("\n");
    }

    if (big_line_mb > 0) {
      std::string path = (dir / "big.jsonl.zst").string();
      {
        Document big;
        big.id = "big";
        while (big.text.size() < big_line_mb * 1e6) big.text += gen.text(1 << 20);
        DocumentWriter w(path);
        w.write(docs[0]);
        w.write(big);
        w.write(docs[1]);
        w.close();
      }
      docs.clear();
      docs.shrink_to_fit();
      long before = rss_mb();
      { std::ofstream("/proc/self/clear_refs") << "5"; }  // restart the peak-memory count
      double t0 = now();
      uint64_t n = 0, longest = 0;
      {
        DocumentReader reader({path}, OnError::kFail);
        Document doc;
        while (reader.next(doc)) ++n, longest = std::max<uint64_t>(longest, doc.text.size());
      }
      std::printf("one %.0f MB line (zst): read in %.2f s CPU, %llu documents; peak memory while reading: "
                  "%ld MB above the %ld MB before\n",
                  longest / 1e6, now() - t0, static_cast<unsigned long long>(n), peak_rss_mb() - before, before);
    }
    if (!keep) fs::remove_all(dir);
    else std::printf("files kept in %s\n", dir.c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "corpus_read: %s\n", e.what());
    return 1;
  }
  return 0;
}
