// Filter, language-identification and decontamination throughput on real text, one thread: every
// file below a directory (default: Python's documentation sources) is one document; reports MB/s
// per core (thread CPU time) for
//   stats        compute_text_attributes: every Gopher and C4 statistic
//   attributes   stats + the attributes JSON line + the decision with the default thresholds
//   langid       LangIdModel::scores (needs --model; the first 2000 characters of each text)
//   decontam     normalised words + 13-gram lookups against 1000 benchmark items taken from the text
//
//   curate_filter_bench [DIR] [--model langid.bin] [--repeat 3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "curate/decontam.h"
#include "curate/filter.h"
#include "curate/langid.h"
#include "curate/text_stats.h"
#include "machine.h"

namespace fs = std::filesystem;
using agpt::bench::thread_cpu_seconds;
using namespace agpt::curate;

int main(int argc, char** argv) {
  std::string dir = "/usr/share/doc/python3.11-dev/html/_sources", model_path;
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
    else dir = argv[i];
  }
  if (!fs::is_directory(dir)) {
    std::fprintf(stderr, "no directory %s (give a directory of text files)\n", dir.c_str());
    return 1;
  }
  std::vector<std::string> docs;
  size_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    docs.push_back(s.str());
    bytes += docs.back().size();
  }
  std::sort(docs.begin(), docs.end());  // the same order on every machine
  std::printf("cpu: %s\ntext: %s, %zu files, %.1f MB\n", agpt::bench::cpu_model().c_str(), dir.c_str(), docs.size(),
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
  size_t sink = 0;
  DocAttributes attrs;
  double mb_stats = best([&] {
    for (const auto& d : docs) {
      attrs.items.clear();
      compute_text_attributes(d, attrs);
      sink += attrs.items.size();
    }
  });
  std::printf("%-12s %8.1f MB/s per core\n", "stats", mb_stats);
  FilterConfig config;
  std::string line;
  size_t kept = 0;
  double mb_attr = best([&] {
    kept = 0;
    for (const auto& d : docs) {
      attrs.items.clear();
      compute_text_attributes(d, attrs);
      line.clear();
      append_attributes_json(line, "id", attrs);
      kept += decide(config, attrs).keep;
      sink += line.size();
    }
  });
  std::printf("%-12s %8.1f MB/s per core  (%zu of %zu kept by the defaults)\n", "attributes", mb_attr, kept, docs.size());
  if (!model_path.empty()) {
    LangIdModel model = LangIdModel::load(model_path);
    std::vector<double> s;
    double mb_lang = best([&] {
      for (const auto& d : docs) {
        model.scores(d, s);
        sink += s.size();
      }
    });
    // The model looks at the first max_chars characters only: also the rate over those bytes.
    size_t looked = 0;
    for (const auto& d : docs) {
      size_t chars = 0, i = 0;
      for (; i < d.size(); ++i)
        if ((static_cast<unsigned char>(d[i]) & 0xC0) != 0x80 && chars++ == model.options().max_chars) break;
      looked += i;
    }
    std::printf("%-12s %8.1f MB/s per core  (%zu languages; %.1f MB/s of the %.1f MB looked at)\n", "langid", mb_lang,
                model.languages().size(), mb_lang * looked / bytes, looked / 1e6);
  }
  // 1000 items: 30-word windows of the documents themselves, so that the lookups also find hits.
  DecontamOptions dopt;
  BenchmarkIndex index(dopt);
  std::vector<NormWord> words;
  for (size_t i = 0; i < docs.size() && index.items().size() < 1000; i += std::max<size_t>(1, docs.size() / 1000)) {
    normalized_words(docs[i], words);
    if (words.size() < 40) continue;
    const auto& d = docs[i];
    index.add_item(0, std::to_string(i), std::string_view(d).substr(words[5].begin, words[35].end - words[5].begin));
  }
  std::vector<BenchmarkIndex::Hit> hits;
  size_t found = 0;
  double mb_dec = best([&] {
    found = 0;
    for (const auto& d : docs) {
      normalized_words(d, words);
      index.find(words, hits);
      found += !hits.empty();
    }
  });
  std::printf("%-12s %8.1f MB/s per core  (%zu items, %zu documents hit)\n", "decontam", mb_dec, index.items().size(),
              found);
  return sink == 42 ? 1 : 0;
}
