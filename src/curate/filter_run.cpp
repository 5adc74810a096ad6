// run_filter: the reading, the parallel decisions, the outputs and attributes files of
// `agpt data filter`, resumable per input file.
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "base/error.h"
#include "base/file.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/json.h"
#include "corpus/writer.h"
#include "curate/attribute_files.h"
#include "curate/filter.h"
#include "curate/hash.h"
#include "curate/input_sequence.h"
#include "curate/resumable_run.h"

namespace agpt::curate {
namespace {

using Json = nlohmann::ordered_json;

// One document of a batch and what became of it.
struct Item {
  corpus::Document doc;
  size_t file = 0;           // index into the expanded inputs
  std::string attr_line;     // from-attributes mode: the line read; compute mode: the line to write
  std::string attr_where;    // file:line of attr_line (from-attributes mode)
  DocAttributes attrs;
  FilterDecision decision;
  std::string kept_text;     // when C4 cut lines
  bool cut = false;
};

// Everything that changes the bytes of the outputs: a resumed run must have the same.
Fingerprint fingerprint(const FilterOptions& o) {
  Fingerprint fp;
  fp.emplace_back("mode", o.from_attributes ? "from-attributes" : "compute");
  const std::string config = o.config.to_json();
  fp.emplace_back("config", cat("xxh64 ", xxh64(config)));
  if (!o.from_attributes && !o.config.langid_model.empty() && file_exists(o.config.langid_model))
    fp.emplace_back("langid_model", cat("xxh64 ", xxh64(read_file(o.config.langid_model))));
  fp.emplace_back("attributes", o.attributes_dir.empty() ? "(none)" : o.attributes_dir);
  fp.emplace_back("removed", o.removed_output.empty() ? "(none)" : o.removed_output);
  return fp;
}

// The counts of one input file (the fields of FilterReport that add up), as JSON: what a progress
// entry keeps, and the one way counts reach the report, resumed or not.
Json counts_json(const FilterReport& c) {
  Json j;
  j["documents_in"] = c.documents_in;
  j["bytes_in"] = c.bytes_in;
  j["documents_kept"] = c.documents_kept;
  j["bytes_kept"] = c.bytes_kept;
  j["removed_by_reason"] = c.removed_by_reason;
  j["failing_by_rule"] = c.failing_by_rule;
  j["lines_removed_by_rule"] = c.lines_removed_by_rule;
  j["documents_cut"] = c.documents_cut;
  j["bytes_cut"] = c.bytes_cut;
  j["top_language"] = c.top_language;
  return j;
}

void add_counts(FilterReport& r, const Json& j) {
  using Map = std::map<std::string, uint64_t>;
  r.documents_in += j.at("documents_in").get<uint64_t>();
  r.bytes_in += j.at("bytes_in").get<uint64_t>();
  r.documents_kept += j.at("documents_kept").get<uint64_t>();
  r.bytes_kept += j.at("bytes_kept").get<uint64_t>();
  for (const auto& [k, v] : j.at("removed_by_reason").get<Map>()) r.removed_by_reason[k] += v;
  for (const auto& [k, v] : j.at("failing_by_rule").get<Map>()) r.failing_by_rule[k] += v;
  for (const auto& [k, v] : j.at("lines_removed_by_rule").get<Map>()) r.lines_removed_by_rule[k] += v;
  r.documents_cut += j.at("documents_cut").get<uint64_t>();
  r.bytes_cut += j.at("bytes_cut").get<uint64_t>();
  for (const auto& [k, v] : j.at("top_language").get<Map>()) r.top_language[k] += v;
  add_read_report_json(r.read, j.at("read"));
}

// A line of the removed output: {"id", "reason", "origin", "text"}.
void removed_line(std::string& line, const corpus::Document& d, const std::string& reason) {
  line = "{\"id\":";
  corpus::append_json_string(line, d.id);
  line += ",\"reason\":";
  corpus::append_json_string(line, reason);
  line += ",\"origin\":";
  corpus::append_json_string(line, d.origin);
  line += ",\"text\":";
  corpus::append_json_string(line, d.text);
  line += "}";
}

}  // namespace

FilterReport run_filter(const FilterOptions& opt, const FilterSink& sink) {
  const auto t0 = std::chrono::steady_clock::now();
  if (opt.from_attributes && opt.attributes_dir.empty()) fail("filter: re-deciding needs the attributes directory");
  if (opt.batch_documents == 0) fail("filter: batch size must be at least 1");
  if (!opt.from_attributes && !opt.config.languages.empty() && !opt.langid)
    fail("filter: the language rule (", opt.config.languages.size(),
         " languages) needs a model: --langid-model MODEL (make one with `agpt data langid train`)");
  if (opt.langid)
    for (const auto& l : opt.config.languages)
      if (opt.langid->language_index(l) < 0) {
        std::string known;
        for (const auto& k : opt.langid->languages()) known += (known.empty() ? "" : ", ") + k;
        fail("filter: language '", l, "' is not in the model (it knows ", known, ")");
      }
  if (opt.output.empty() && (opt.resume || !opt.removed_output.empty()))
    fail("filter: --resume and --removed need the output file (-o)");
  if (opt.inputs.empty()) fail("no input files given");
  const std::vector<corpus::InputFile> files = corpus::expand_input_files(opt.inputs);

  std::unique_ptr<ResumableRun> run;
  if (!opt.output.empty()) {
    std::vector<std::string> outputs{opt.output};
    if (!opt.removed_output.empty()) outputs.push_back(opt.removed_output);
    run = std::make_unique<ResumableRun>("filter", outputs, fingerprint(opt), opt.resume, progress_inputs(files),
                                         opt.stop_after_files);
  }
  FilterReport report;
  report.from_attributes = opt.from_attributes;
  report.config_json = opt.config.to_json();
  const size_t first = run ? run->done().size() : 0;
  if (run) {
    for (const auto& e : run->done()) add_counts(report, Json::parse(e.data));
    report.files_resumed = first;
    run->start();
  }
  InputSequence reader(files, first, opt.on_error);
  std::unique_ptr<AttributeFiles> attr_files;
  if (!opt.attributes_dir.empty()) {
    attr_files = std::make_unique<AttributeFiles>(opt.attributes_dir, files, opt.from_attributes, first);
    report.attribute_files = attr_files->paths();
  }

  // The counts of the input file being finished; added to the report when it is committed.
  FilterReport cur;
  size_t next_commit = first;
  auto commit = [&](size_t f) {
    Json counts = counts_json(cur);
    counts["read"] = read_report_json(reader.file_report(f));
    reader.release(f);
    add_counts(report, counts);
    cur = FilterReport{};
    ProgressEntry e;
    if (attr_files) {
      FileMark m = attr_files->close_file(f);
      if (!m.path.empty()) e.files.push_back(std::move(m));
    }
    if (run) {
      e.name = files[f].name;
      std::error_code ec;
      e.input_size = std::filesystem::file_size(files[f].path, ec);
      e.data = counts.dump();
      run->commit(e);
    }
  };

  Progress progress("filter", reader.bytes_total(), "B");
  std::vector<Item> batch(opt.batch_documents);
  std::string line;
  uint64_t done = 0;
  bool more = true;
  while (more) {
    size_t n = 0;
    while (n < batch.size() && (more = reader.next(batch[n].doc, batch[n].file))) {
      Item& it = batch[n];
      if (opt.from_attributes) attr_files->next_line(it.file, it.attr_line, it.attr_where);
      ++n;
    }
    if (n == 0) break;
    parallel_for(n, opt.threads, [&](size_t i) {
      Item& it = batch[i];
      it.attrs.items.clear();
      it.cut = false;
      if (opt.from_attributes) {
        std::string id;
        parse_attributes_json(it.attr_line, id, it.attrs, it.attr_where);
        if (id != it.doc.id)
          fail(it.attr_where, ": the attributes are of document '", id, "' but the input has '", it.doc.id, "' (",
               it.doc.origin, ") here: these attributes were computed from other inputs");
      } else {
        compute_text_attributes(it.doc.text, it.attrs);
        if (opt.langid) compute_langid_attributes(*opt.langid, it.doc.text, it.attrs);
        if (attr_files) {
          it.attr_line.clear();
          append_attributes_json(it.attr_line, it.doc.id, it.attrs);
        }
      }
      it.decision = decide(opt.config, it.attrs);
      if (it.decision.keep && !it.decision.cut_lines.empty()) {
        it.kept_text = remove_lines(it.doc.text, it.decision.cut_lines);
        it.cut = true;
        if (it.kept_text.empty()) {
          it.decision.keep = false;
          it.decision.reason = kReasonNoLines;
        }
      }
    });
    // In input order: the files finished before, then attributes, counts, documents.
    const auto& rules = filter_rules();
    for (size_t i = 0; i < n; ++i) {
      Item& it = batch[i];
      while (next_commit < it.file) commit(next_commit++);
      if (attr_files && !opt.from_attributes) attr_files->writer(it.file).write_line(it.attr_line);
      ++cur.documents_in;
      cur.bytes_in += it.doc.text.size();
      for (size_t r : it.decision.failing_rules) ++cur.failing_by_rule[rules[r].key];
      if (it.decision.language_failed) ++cur.failing_by_rule[kReasonLanguage];
      const Attribute* best = nullptr;
      for (const auto& a : it.attrs.items)
        if (a.name.starts_with("agpt_langid__") && !a.spans.empty() && (!best || a.spans[0].value > best->spans[0].value))
          best = &a;
      if (best) ++cur.top_language[best->name.substr(13)];
      if (!it.decision.keep) {
        ++cur.removed_by_reason[it.decision.reason];
        if (run && !opt.removed_output.empty()) {
          removed_line(line, it.doc, it.decision.reason);
          run->output(1).write_line(line);
        }
        if (sink.removed) sink.removed(it.doc, it.decision.reason);
        continue;
      }
      if (it.cut) {
        ++cur.documents_cut;
        cur.bytes_cut += it.doc.text.size() - it.kept_text.size();
        for (const auto& [rule, count] : it.decision.lines_by_rule) cur.lines_removed_by_rule[rule] += count;
        it.doc.text.swap(it.kept_text);
      }
      ++cur.documents_kept;
      cur.bytes_kept += it.doc.text.size();
      if (run) {
        line.clear();
        corpus::append_document_json(line, it.doc);
        run->output(0).write_line(line);
      }
      if (sink.kept) sink.kept(it.doc);
    }
    if (run) run->sync();
    const uint64_t now = reader.bytes_read();
    progress.add(now - std::min(now, done));
    done = std::max(done, now);
  }
  while (next_commit < files.size()) commit(next_commit++);
  progress.finish();
  if (run) run->finish();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace agpt::curate
