// run_decontaminate: the passes over the corpus of `agpt data decontaminate`, its outputs and
// attributes files, resumable per input file.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/json.h"
#include "corpus/writer.h"
#include "curate/attribute_files.h"
#include "curate/decontam.h"
#include "curate/hash.h"
#include "curate/input_sequence.h"
#include "curate/resumable_run.h"

namespace agpt::curate {
namespace {

using Json = nlohmann::ordered_json;

struct Doc {
  corpus::Document doc;
  size_t file = 0;
  std::vector<uint32_t> slots;  // distinct slots hit (pass 1); items hit (pass 2)
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // merged byte ranges of counted hits
  std::vector<std::pair<uint64_t, uint64_t>> pieces;
  std::string attr_line;
};

// Reads the inputs in batches and calls work(i) in parallel, then done(i) in order, then
// batch_done() once per batch.
template <typename Work, typename Done, typename BatchDone>
uint64_t for_each_batch(const DecontamOptions& opt, InputSequence& reader, const char* label, std::vector<Doc>& batch,
                        Work work, Done done, BatchDone batch_done) {
  Progress progress(label, reader.bytes_total(), "B");
  uint64_t count = 0, seen = 0;
  bool more = true;
  while (more) {
    size_t n = 0;
    while (n < batch.size() && (more = reader.next(batch[n].doc, batch[n].file))) ++n;
    if (n == 0) break;
    parallel_for(n, opt.threads, [&](size_t i) { work(batch[i]); });
    for (size_t i = 0; i < n; ++i) done(batch[i]);
    batch_done();
    count += n;
    const uint64_t now = reader.bytes_read();
    progress.add(now - std::min(now, seen));
    seen = std::max(seen, now);
  }
  progress.finish();
  return count;
}

// Everything that changes the bytes of the outputs: a resumed run must have the same.
Fingerprint fingerprint(const DecontamOptions& o) {
  Fingerprint fp;
  std::string benchmarks;
  for (const auto& b : o.benchmarks)
    benchmarks += cat(benchmarks.empty() ? "" : ", ", b, " (xxh64 ", file_exists(b) ? xxh64(read_file(b)) : 0, ")");
  fp.emplace_back("benchmarks", benchmarks);
  std::string fields;
  for (const auto& f : o.fields) fields += (fields.empty() ? "" : ",") + f;
  fp.emplace_back("fields", fields);
  fp.emplace_back("id_field", o.id_field);
  fp.emplace_back("ngram", std::to_string(o.ngram));
  fp.emplace_back("min_words", std::to_string(o.min_words));
  fp.emplace_back("mode", o.mode == DecontamOptions::Mode::kDrop ? "drop" : "cut");
  fp.emplace_back("margin", std::to_string(o.margin));
  fp.emplace_back("min_fragment", std::to_string(o.min_fragment));
  fp.emplace_back("max_pieces", std::to_string(o.max_pieces));
  fp.emplace_back("max_ngram_docs", std::to_string(o.max_ngram_docs));
  fp.emplace_back("attributes", o.attributes_dir.empty() ? "(none)" : o.attributes_dir);
  fp.emplace_back("removed", o.removed_output.empty() ? "(none)" : o.removed_output);
  return fp;
}

// The counts of one input file, as JSON: what a progress entry keeps, and the one way counts
// reach the report, resumed or not. item_docs: documents per benchmark item (sparse).
struct FileCounts {
  DecontamReport r;
  std::map<uint32_t, uint64_t> item_docs;
};

Json counts_json(const FileCounts& c) {
  Json j;
  j["documents_in"] = c.r.documents_in;
  j["bytes_in"] = c.r.bytes_in;
  j["documents_clean"] = c.r.documents_clean;
  j["documents_contaminated"] = c.r.documents_contaminated;
  j["documents_cut"] = c.r.documents_cut;
  j["fragments_written"] = c.r.fragments_written;
  j["fragments_dropped_short"] = c.r.fragments_dropped_short;
  j["documents_out"] = c.r.documents_out;
  j["bytes_out"] = c.r.bytes_out;
  j["removed_by_reason"] = c.r.removed_by_reason;
  j["benchmark_documents"] = c.r.benchmark_documents;
  Json items = Json::array();
  for (const auto& [item, n] : c.item_docs) items.push_back({item, n});
  j["items"] = std::move(items);
  return j;
}

void add_counts(DecontamReport& r, std::vector<uint64_t>& item_docs, const Json& j) {
  r.documents_in += j.at("documents_in").get<uint64_t>();
  r.bytes_in += j.at("bytes_in").get<uint64_t>();
  r.documents_clean += j.at("documents_clean").get<uint64_t>();
  r.documents_contaminated += j.at("documents_contaminated").get<uint64_t>();
  r.documents_cut += j.at("documents_cut").get<uint64_t>();
  r.fragments_written += j.at("fragments_written").get<uint64_t>();
  r.fragments_dropped_short += j.at("fragments_dropped_short").get<uint64_t>();
  r.documents_out += j.at("documents_out").get<uint64_t>();
  r.bytes_out += j.at("bytes_out").get<uint64_t>();
  for (const auto& [k, v] : j.at("removed_by_reason").get<std::map<std::string, uint64_t>>()) r.removed_by_reason[k] += v;
  auto bench = j.at("benchmark_documents").get<std::vector<uint64_t>>();
  if (bench.size() != r.benchmark_documents.size()) fail("decontaminate: progress entry of another benchmark count");
  for (size_t b = 0; b < bench.size(); ++b) r.benchmark_documents[b] += bench[b];
  for (const auto& p : j.at("items")) {
    uint32_t item = p.at(0).get<uint32_t>();
    if (item >= item_docs.size()) fail("decontaminate: progress entry names an item out of range");
    item_docs[item] += p.at(1).get<uint64_t>();
  }
  add_read_report_json(r.read, j.at("read"));
}

void removed_line(std::string& line, const corpus::Document& d, const char* reason,
                  const std::vector<std::string>& items) {
  line = "{\"id\":";
  corpus::append_json_string(line, d.id);
  line += ",\"reason\":";
  corpus::append_json_string(line, reason);
  line += ",\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) line += ',';
    corpus::append_json_string(line, items[i]);
  }
  line += "],\"origin\":";
  corpus::append_json_string(line, d.origin);
  line += ",\"text\":";
  corpus::append_json_string(line, d.text);
  line += "}";
}

}  // namespace

DecontamReport run_decontaminate(const DecontamOptions& opt, const DecontamSink& sink) {
  const auto t0 = std::chrono::steady_clock::now();
  if (opt.benchmarks.empty()) fail("decontaminate: no benchmark file given (--benchmarks FILE.jsonl)");
  if (opt.batch_documents == 0) fail("decontaminate: batch size must be at least 1");
  if (opt.output.empty() && (opt.resume || !opt.removed_output.empty()))
    fail("decontaminate: --resume and --removed need the output file (-o)");
  BenchmarkIndex index(opt);
  for (const auto& b : opt.benchmarks) index.add_file(b);
  if (index.slots() == 0)
    fail("decontaminate: no benchmark item has ", opt.min_words,
         " or more words in the fields given: check --fields, or lower --min-words");
  if (opt.inputs.empty()) fail("no input files given");
  const std::vector<corpus::InputFile> files = corpus::expand_input_files(opt.inputs);
  std::unique_ptr<ResumableRun> run;
  if (!opt.output.empty()) {
    std::vector<std::string> outputs{opt.output};
    if (!opt.removed_output.empty()) outputs.push_back(opt.removed_output);
    run = std::make_unique<ResumableRun>("decontaminate", outputs, fingerprint(opt), opt.resume,
                                         progress_inputs(files), opt.stop_after_files);
  }
  DecontamReport report;
  report.mode = opt.mode == DecontamOptions::Mode::kDrop ? "drop" : "cut";
  report.ngram = opt.ngram;
  report.benchmark_files = index.files();
  report.benchmark_counts = index.file_counts();
  report.ngrams_indexed = index.slots();
  std::vector<uint8_t> ignored(index.slots(), 0);
  std::vector<Doc> batch(opt.batch_documents);
  uint64_t pass1_docs = 0;
  Json pass1;  // the first pass's result, kept in the progress file's header
  if (opt.max_ngram_docs > 0 && run && !run->header_data().empty()) {
    // The interrupted run finished its first pass: take its result.
    pass1 = Json::parse(run->header_data());
    try {
      pass1_docs = pass1.at("documents").get<uint64_t>();
      for (const auto& s : pass1.at("ignored")) ignored.at(s.get<uint32_t>()) = 1;
    } catch (const std::exception&) {
      fail(progress_path(opt.output), ": the first pass's result is damaged; rerun without --resume to start again");
    }
    log_info("resuming: the first pass (n-gram document counts) was done by the interrupted run");
  } else if (opt.max_ngram_docs > 0) {
    // Pass 1: in how many documents does each n-gram occur?
    std::vector<uint32_t> slot_docs(index.slots(), 0);
    InputSequence reader(files, 0, opt.on_error);
    pass1_docs = for_each_batch(
        opt, reader, "decontaminate pass 1", batch,
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
        },
        [] {});
    pass1["documents"] = pass1_docs;
    pass1["ignored"] = Json::array();
    for (size_t s = 0; s < slot_docs.size(); ++s)
      if (slot_docs[s] > opt.max_ngram_docs) {
        ignored[s] = 1;
        pass1["ignored"].push_back(s);
      }
  }
  for (uint8_t i : ignored) report.ngrams_ignored_frequent += i;

  std::vector<uint64_t> item_docs(index.items().size(), 0);
  report.benchmark_documents.assign(index.files().size(), 0);
  const size_t first = run ? run->done().size() : 0;
  if (run) {
    for (const auto& e : run->done()) add_counts(report, item_docs, Json::parse(e.data));
    report.files_resumed = first;
    run->start(pass1.is_null() ? std::string() : pass1.dump());
  }
  InputSequence reader(files, first, opt.max_ngram_docs > 0 ? corpus::OnError::kSkip : opt.on_error);
  std::unique_ptr<AttributeFiles> attr_files;
  if (!opt.attributes_dir.empty()) attr_files = std::make_unique<AttributeFiles>(opt.attributes_dir, files, false, first);

  FileCounts cur;  // of the input file being finished
  cur.r.benchmark_documents.assign(index.files().size(), 0);
  size_t next_commit = first;
  auto commit = [&](size_t f) {
    Json counts = counts_json(cur);
    counts["read"] = read_report_json(reader.file_report(f));
    reader.release(f);
    add_counts(report, item_docs, counts);
    cur = FileCounts{};
    cur.r.benchmark_documents.assign(index.files().size(), 0);
    ProgressEntry e;
    if (attr_files) e.files.push_back(attr_files->close_file(f));
    if (run) {
      e.name = files[f].name;
      std::error_code ec;
      e.input_size = std::filesystem::file_size(files[f].path, ec);
      e.data = counts.dump();
      run->commit(e);
    }
  };

  std::vector<uint32_t> bench_seen(index.files().size(), 0);
  std::vector<std::string> item_names;
  std::string line;
  corpus::Document piece;
  auto keep = [&](const corpus::Document& d) {
    if (run) {
      line.clear();
      corpus::append_document_json(line, d);
      run->output(0).write_line(line);
    }
    if (sink.kept) sink.kept(d);
  };
  for_each_batch(
      opt, reader, "decontaminate", batch,
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
        while (next_commit < d.file) commit(next_commit++);
        if (attr_files) attr_files->writer(d.file).write_line(d.attr_line);
        DecontamReport& c = cur.r;
        ++c.documents_in;
        c.bytes_in += d.doc.text.size();
        if (d.ranges.empty()) {
          ++c.documents_clean;
          ++c.documents_out;
          c.bytes_out += d.doc.text.size();
          keep(d.doc);
          return;
        }
        ++c.documents_contaminated;
        item_names.clear();
        std::fill(bench_seen.begin(), bench_seen.end(), 0);
        for (uint32_t it : d.slots) {
          const auto& item = index.items()[it];
          ++cur.item_docs[it];
          if (!bench_seen[item.benchmark]) {
            bench_seen[item.benchmark] = 1;
            ++c.benchmark_documents[item.benchmark];
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
          ++c.removed_by_reason[reason];
          if (run && !opt.removed_output.empty()) {
            removed_line(line, d.doc, reason, item_names);
            run->output(1).write_line(line);
          }
          if (sink.removed) sink.removed(d.doc, reason, item_names);
          return;
        }
        ++c.documents_cut;
        size_t k = 0;
        for (auto [b, e] : d.pieces) {
          if (e - b < opt.min_fragment) {
            ++c.fragments_dropped_short;
            continue;
          }
          piece = d.doc;
          piece.id = d.doc.id + "#" + std::to_string(k++);
          piece.text = d.doc.text.substr(b, e - b);
          ++c.fragments_written;
          ++c.documents_out;
          c.bytes_out += piece.text.size();
          keep(piece);
        }
      },
      [&] {
        if (run) run->sync();
      });
  while (next_commit < files.size()) commit(next_commit++);
  if (opt.max_ngram_docs > 0 && pass1_docs != report.documents_in)
    fail("decontaminate: the inputs changed between the two passes (", pass1_docs, " then ", report.documents_in,
         " documents)");
  if (run) run->finish();
  report.benchmark_items_contaminating.assign(index.files().size(), 0);
  for (size_t i = 0; i < item_docs.size(); ++i)
    if (item_docs[i] > 0) {
      const auto& item = index.items()[i];
      ++report.benchmark_items_contaminating[item.benchmark];
      report.items.push_back({index.files()[item.benchmark], item.id, item_docs[i]});
    }
  std::stable_sort(report.items.begin(), report.items.end(),
                   [](const auto& a, const auto& b) { return a.documents > b.documents; });
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace agpt::curate
