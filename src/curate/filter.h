// `agpt data filter`: heuristic quality filtering (Gopher quality and repetition rules, C4 line
// cleanup) and language identification, auditable: every statistic is written as Dolma-style
// attributes, one JSONL file per input file, and any later run can re-decide from those
// attributes with other thresholds (run_filter with from_attributes) without computing them again.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "corpus/document.h"
#include "corpus/inputs.h"
#include "curate/filter_config.h"
#include "curate/langid.h"
#include "curate/text_stats.h"

namespace agpt::curate {

// The langid attribute of a language: "agpt_langid__en".
std::string langid_attribute(std::string_view lang);

// Adds agpt_langid__<lang> for every language whose score is at least 0.001 (the others read as 0).
void compute_langid_attributes(const LangIdModel& model, std::string_view text, DocAttributes& out);

// The decision about one document.
struct FilterDecision {
  bool keep = true;
  std::string reason;                                   // the first failing rule's key when removed
  std::vector<size_t> failing_rules;                    // indices into filter_rules() (all of them)
  bool language_failed = false;                         // the langid rule failed
  std::vector<std::pair<uint64_t, uint64_t>> cut_lines;  // C4: byte ranges of lines to remove, sorted
  std::map<std::string, uint64_t> lines_by_rule;        // C4: lines removed, by line rule
};
// The removal reasons that are not rules of filter_rules().
inline constexpr const char* kReasonLanguage = "langid.languages";
inline constexpr const char* kReasonNoLines = "c4.no_lines_left";

// Decides from attributes. Throws when the config needs langid scores and attrs has none.
FilterDecision decide(const FilterConfig& config, const DocAttributes& attrs);

// The text with the ranges of cut removed (each with its line break). Returns "" when nothing but
// whitespace would be left.
std::string remove_lines(std::string_view text, const std::vector<std::pair<uint64_t, uint64_t>>& cut);

// One attributes line: {"id": ..., "attributes": {"name": [[begin, end, value], ...], ...}}. Values
// are written in the shortest form that reads back as the same double, so that re-deciding from
// the file gives the same answers as deciding from memory.
void append_attributes_json(std::string& out, std::string_view id, const DocAttributes& attrs);
// Parses such a line; throws agpt::Error naming where.
void parse_attributes_json(std::string_view line, std::string& id, DocAttributes& attrs, const std::string& where);

// Where the attributes of an input file go below dir: dir/<the input's name without .gz/.zst,
// and with ".jsonl" added when it does not end so>.zst. Absolute names and names with ".." use
// the file name alone.
std::string attributes_path(const std::string& dir, const corpus::InputFile& input);

struct FilterOptions {
  std::vector<std::string> inputs;
  FilterConfig config;
  std::string attributes_dir;    // compute mode: write attributes here ("" none); re-decide: read them
  bool from_attributes = false;  // re-decide from attributes_dir instead of computing statistics
  const LangIdModel* langid = nullptr;  // compute mode: scores as agpt_langid__<lang>
  int threads = 0;
  corpus::OnError on_error = corpus::OnError::kSkip;
  size_t batch_documents = 1024;
  // Outputs written by run_filter ("" none; the sink gets the documents either way): the kept
  // documents as Dolma JSONL and the removed ones as {"id","reason","origin","text"} lines, each
  // .jsonl, .gz or .zst, written as OUTPUT.partial (one chunk per input file) and renamed at the end.
  std::string output, removed_output;
  // Continue an interrupted run from OUTPUT.progress: the input files it finished are not read
  // again; the outputs, attributes files and report are byte for byte those of an uninterrupted run.
  bool resume = false;
  size_t stop_after_files = 0;  // tests: stop with an Error after this many input files are done
};

struct FilterReport {
  corpus::ReadReport read;
  uint64_t documents_in = 0, bytes_in = 0, documents_kept = 0, bytes_kept = 0;
  std::map<std::string, uint64_t> removed_by_reason;  // documents, by the first failing rule
  std::map<std::string, uint64_t> failing_by_rule;    // documents failing each rule (overlapping)
  std::map<std::string, uint64_t> lines_removed_by_rule;  // C4 line cleanup
  uint64_t documents_cut = 0, bytes_cut = 0;              // kept documents that lost lines, bytes lost
  std::map<std::string, uint64_t> top_language;           // documents read, by most probable language
  std::vector<std::string> attribute_files;               // written or read
  bool from_attributes = false;
  std::string config_json;
  uint64_t files_resumed = 0;  // done by an interrupted run (in the table, not in the JSON)
  double seconds = 0;

  std::string to_json() const;
  std::string table() const;
};

struct FilterSink {
  std::function<void(const corpus::Document&)> kept;
  std::function<void(const corpus::Document&, const std::string& reason)> removed;
};

// Reads every input once, in order, deciding in parallel batches; the documents reach sink in
// input order and the outputs and attributes files are the same whatever opt.threads. With
// opt.output, resumable per input file (opt.resume): the progress is OUTPUT.progress.
FilterReport run_filter(const FilterOptions& opt, const FilterSink& sink);

}  // namespace agpt::curate
