// run_decontaminate: the passes over the corpus of `agpt data decontaminate`.
#include <algorithm>
#include <chrono>

#include "base/error.h"
#include "base/log.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/reader.h"
#include "curate/attribute_files.h"
#include "curate/decontam.h"

namespace agpt::curate {
namespace {

struct Doc {
  corpus::Document doc;
  size_t file = 0;
  std::vector<uint32_t> slots;  // distinct slots hit (pass 1); items hit (pass 2)
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // merged byte ranges of counted hits
  std::vector<std::pair<uint64_t, uint64_t>> pieces;
  std::string attr_line;
};

// Reads the inputs in batches and calls work(i) in parallel, then done(i) in order.
template <typename Work, typename Done>
uint64_t for_each_batch(const DecontamOptions& opt, corpus::OnError on_error, const char* label,
                        std::vector<Doc>& batch, corpus::ReadReport* read, Work work, Done done) {
  corpus::DocumentReader reader(opt.inputs, on_error);
  Progress progress(label, reader.bytes_total_compressed(), "B");
  uint64_t count = 0, seen = 0;
  bool more = true;
  while (more) {
    size_t n = 0;
    while (n < batch.size() && (more = reader.next(batch[n].doc))) {
      batch[n].file = reader.report().files - 1;
      ++n;
    }
    if (n == 0) break;
    parallel_for(n, opt.threads, [&](size_t i) { work(batch[i]); });
    for (size_t i = 0; i < n; ++i) done(batch[i]);
    count += n;
    const uint64_t now = reader.bytes_read_compressed();
    progress.add(now - std::min(now, seen));
    seen = std::max(seen, now);
  }
  progress.finish();
  if (read) *read = reader.report();
  return count;
}

}  // namespace

DecontamReport run_decontaminate(const DecontamOptions& opt, const DecontamSink& sink) {
  const auto t0 = std::chrono::steady_clock::now();
  if (opt.benchmarks.empty()) fail("decontaminate: no benchmark file given (--benchmarks FILE.jsonl)");
  if (opt.batch_documents == 0) fail("decontaminate: batch size must be at least 1");
  BenchmarkIndex index(opt);
  for (const auto& b : opt.benchmarks) index.add_file(b);
  if (index.slots() == 0)
    fail("decontaminate: no benchmark item has ", opt.min_words,
         " or more words in the fields given: check --fields, or lower --min-words");
  DecontamReport report;
  report.mode = opt.mode == DecontamOptions::Mode::kDrop ? "drop" : "cut";
  report.ngram = opt.ngram;
  report.benchmark_files = index.files();
  report.benchmark_counts = index.file_counts();
  report.ngrams_indexed = index.slots();
  std::vector<uint8_t> ignored(index.slots(), 0);
  std::vector<Doc> batch(opt.batch_documents);
  uint64_t pass1_docs = 0;
  if (opt.max_ngram_docs > 0) {
    // Pass 1: in how many documents does each n-gram occur?
    std::vector<uint32_t> slot_docs(index.slots(), 0);
    pass1_docs = for_each_batch(
        opt, opt.on_error, "decontaminate pass 1", batch, nullptr,
        [&](Doc& d) {
          thread_local std::vector<NormWord> words;
          thread_local std::vector<BenchmarkIndex::Hit> hits;
          normalized_words(d.doc.text, words);
          index.find(words, hits);
          d.slots.clear();
          for (const auto& h : hits) d.slots.push_back(h.slot);
          std::sort(d.slots.begin(), d.slots.end());
          d.slots.erase(std::unique(d.slots.begin(), d.slots.end()), d.slots.end());
        },
        [&](Doc& d) {
          for (uint32_t s : d.slots)
            if (slot_docs[s] != UINT32_MAX) ++slot_docs[s];
        });
    for (size_t s = 0; s < slot_docs.size(); ++s)
      if (slot_docs[s] > opt.max_ngram_docs) {
        ignored[s] = 1;
        ++report.ngrams_ignored_frequent;
      }
  }

  std::unique_ptr<AttributeFiles> attr_files;
  if (!opt.attributes_dir.empty())
    attr_files = std::make_unique<AttributeFiles>(opt.attributes_dir, corpus::expand_input_files(opt.inputs), false);
  std::vector<uint64_t> item_docs(index.items().size(), 0);
  report.benchmark_items_contaminating.assign(index.files().size(), 0);
  report.benchmark_documents.assign(index.files().size(), 0);
  std::vector<uint32_t> bench_seen(index.files().size(), 0);
  std::vector<std::string> item_names;
  corpus::Document piece;
  const uint64_t pass2_docs = for_each_batch(
      opt, opt.max_ngram_docs > 0 ? corpus::OnError::kSkip : opt.on_error, "decontaminate", batch, &report.read,
      [&](Doc& d) {
        thread_local std::vector<NormWord> words;
        thread_local std::vector<BenchmarkIndex::Hit> hits;
        normalized_words(d.doc.text, words);
        index.find(words, hits);
        d.slots.clear();
        d.ranges.clear();
        d.pieces.clear();
        for (const auto& h : hits) {
          if (ignored[h.slot]) continue;
          auto [b, e] = index.items_of(h.slot);
          d.slots.insert(d.slots.end(), b, e);
          d.ranges.emplace_back(words[h.first].begin, words[h.first + h.count - 1].end);
        }
        std::sort(d.slots.begin(), d.slots.end());
        d.slots.erase(std::unique(d.slots.begin(), d.slots.end()), d.slots.end());
        d.ranges = merge_ranges(std::move(d.ranges));
        if (!d.ranges.empty() && opt.mode == DecontamOptions::Mode::kCut)
          d.pieces = pieces_after_cut(d.doc.text, d.ranges, opt.margin);
        if (attr_files) {
          DocAttributes a;
          Attribute ov{"agpt_decontam__overlap", {}};
          for (auto [b, e] : d.ranges) ov.spans.push_back({b, e, 1.0});
          a.items.push_back(std::move(ov));
          d.attr_line.clear();
          append_attributes_json(d.attr_line, d.doc.id, a);
        }
      },
      [&](Doc& d) {
        if (attr_files) attr_files->writer(d.file).write_line(d.attr_line);
        ++report.documents_in;
        report.bytes_in += d.doc.text.size();
        if (d.ranges.empty()) {
          ++report.documents_clean;
          ++report.documents_out;
          report.bytes_out += d.doc.text.size();
          if (sink.kept) sink.kept(d.doc);
          return;
        }
        ++report.documents_contaminated;
        item_names.clear();
        std::fill(bench_seen.begin(), bench_seen.end(), 0);
        for (uint32_t it : d.slots) {
          const auto& item = index.items()[it];
          if (item_docs[it]++ == 0) ++report.benchmark_items_contaminating[item.benchmark];
          if (!bench_seen[item.benchmark]) {
            bench_seen[item.benchmark] = 1;
            ++report.benchmark_documents[item.benchmark];
          }
          item_names.push_back(index.files()[item.benchmark] + ":" + item.id);
        }
        const char* reason = nullptr;
        if (opt.mode == DecontamOptions::Mode::kDrop) reason = kReasonContaminated;
        else if (d.pieces.size() > opt.max_pieces) reason = kReasonTooManyPieces;
        else {
          uint64_t kept = 0;
          for (auto [b, e] : d.pieces) kept += e - b >= opt.min_fragment;
          if (kept == 0) reason = kReasonNoFragment;
        }
        if (reason) {
          ++report.removed_by_reason[reason];
          if (sink.removed) sink.removed(d.doc, reason, item_names);
          return;
        }
        ++report.documents_cut;
        size_t k = 0;
        for (auto [b, e] : d.pieces) {
          if (e - b < opt.min_fragment) {
            ++report.fragments_dropped_short;
            continue;
          }
          piece = d.doc;
          piece.id = d.doc.id + "#" + std::to_string(k++);
          piece.text = d.doc.text.substr(b, e - b);
          ++report.fragments_written;
          ++report.documents_out;
          report.bytes_out += piece.text.size();
          if (sink.kept) sink.kept(piece);
        }
      });
  if (opt.max_ngram_docs > 0 && pass1_docs != pass2_docs)
    fail("decontaminate: the inputs changed between the two passes (", pass1_docs, " then ", pass2_docs, " documents)");
  if (attr_files) attr_files->finish();
  for (size_t i = 0; i < item_docs.size(); ++i)
    if (item_docs[i] > 0) {
      const auto& item = index.items()[i];
      report.items.push_back({index.files()[item.benchmark], item.id, item_docs[i]});
    }
  std::stable_sort(report.items.begin(), report.items.end(),
                   [](const auto& a, const auto& b) { return a.documents > b.documents; });
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace agpt::curate
