// run_filter: the reading, the parallel decisions and the attributes files of `agpt data filter`.
#include <chrono>
#include <memory>
#include <set>

#include "base/error.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/lines.h"
#include "corpus/reader.h"
#include "curate/attribute_files.h"
#include "curate/filter.h"

namespace agpt::curate {
namespace {

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
  FilterReport report;
  report.from_attributes = opt.from_attributes;
  report.config_json = opt.config.to_json();
  corpus::DocumentReader reader(opt.inputs, opt.on_error);
  std::unique_ptr<AttributeFiles> attr_files;
  if (!opt.attributes_dir.empty()) {
    attr_files = std::make_unique<AttributeFiles>(opt.attributes_dir, corpus::expand_input_files(opt.inputs),
                                                  opt.from_attributes);
    report.attribute_files = attr_files->paths();
  }
  Progress progress("filter", reader.bytes_total_compressed(), "B");
  std::vector<Item> batch(opt.batch_documents);
  uint64_t done = 0;
  bool more = true;
  while (more) {
    size_t n = 0;
    while (n < batch.size() && (more = reader.next(batch[n].doc))) {
      Item& it = batch[n];
      it.file = reader.report().files - 1;
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
    // In input order: attributes, counts, documents.
    const auto& rules = filter_rules();
    for (size_t i = 0; i < n; ++i) {
      Item& it = batch[i];
      if (attr_files && !opt.from_attributes) attr_files->writer(it.file).write_line(it.attr_line);
      ++report.documents_in;
      report.bytes_in += it.doc.text.size();
      for (size_t r : it.decision.failing_rules) ++report.failing_by_rule[rules[r].key];
      if (it.decision.language_failed) ++report.failing_by_rule[kReasonLanguage];
      const Attribute* best = nullptr;
      for (const auto& a : it.attrs.items)
        if (a.name.starts_with("agpt_langid__") && !a.spans.empty() && (!best || a.spans[0].value > best->spans[0].value))
          best = &a;
      if (best) ++report.top_language[best->name.substr(13)];
      if (!it.decision.keep) {
        ++report.removed_by_reason[it.decision.reason];
        if (sink.removed) sink.removed(it.doc, it.decision.reason);
        continue;
      }
      if (it.cut) {
        ++report.documents_cut;
        report.bytes_cut += it.doc.text.size() - it.kept_text.size();
        for (const auto& [rule, count] : it.decision.lines_by_rule) report.lines_removed_by_rule[rule] += count;
        it.doc.text.swap(it.kept_text);
      }
      ++report.documents_kept;
      report.bytes_kept += it.doc.text.size();
      if (sink.kept) sink.kept(it.doc);
    }
    const uint64_t now = reader.bytes_read_compressed();
    progress.add(now - std::min(now, done));
    done = std::max(done, now);
  }
  progress.finish();
  if (attr_files) attr_files->finish();
  report.read = reader.report();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace agpt::curate
