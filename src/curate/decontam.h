// `agpt data decontaminate`: finds word n-grams of benchmark items (GPT-3's method: 13-grams of
// normalised words) in a corpus, and drops the documents that hold them or cuts the overlapping
// spans out with a margin. Every document read is written (whole or as fragments) or counted with
// its reason; the report says which benchmark items contaminated how many documents.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "corpus/document.h"

namespace agpt::curate {

// A word of a text in the normal form of dedup (normalize_text): maximal runs of bytes that are
// not ASCII whitespace, with ASCII punctuation deleted and ASCII letters lowercased; runs left
// empty are no word. Scripts written without spaces get one word per character: every Han
// ideograph, kana and Hangul character (and the iteration marks 々〆〇) is a word of its own;
// the ideographic space and CJK / half-width punctuation (、。「」・｡ ...) end a word and are
// deleted; full-width ASCII forms (U+FF01..FF5E) count as their ASCII character (so "ＡＢＣ１"
// is the word "abc1"). hash is XXH64 (seed 0) of the normalised word (a CJK word: its UTF-8
// bytes); begin/end its bytes in text. For text without these characters the words, joined by
// spaces, are exactly normalize_text(text).
struct NormWord {
  uint32_t begin = 0, end = 0;
  uint64_t hash = 0;
};
void normalized_words(std::string_view text, std::vector<NormWord>& out);

// The hash of the word n-gram words[0..n).
uint64_t ngram_hash(const NormWord* words, size_t n);

struct DecontamOptions {
  std::vector<std::string> inputs;
  std::vector<std::string> benchmarks;  // JSONL files (.gz/.zst too), one item per line
  std::vector<std::string> fields = {"question", "choices", "answer"};  // text of an item, joined
  std::string id_field = "id";          // the item's id; missing: "file:line"
  int ngram = 13;                       // n-gram size in words
  int min_words = 8;                    // shorter items are not indexed (too common to mean anything)
  enum class Mode { kDrop, kCut } mode = Mode::kCut;
  uint32_t margin = 200;         // cut: bytes removed on each side of a hit
  uint32_t min_fragment = 200;   // cut: fragments shorter than this (bytes) are dropped
  uint32_t max_pieces = 10;      // cut: documents cut into more pieces are dropped
  uint32_t max_ngram_docs = 10;  // n-grams found in more documents are ignored (0: no limit, one pass)
  std::string attributes_dir;    // "" none; else agpt_decontam__overlap spans per document
  int threads = 0;
  corpus::OnError on_error = corpus::OnError::kSkip;
  size_t batch_documents = 1024;
  // Outputs written by run_decontaminate ("" none; the sink gets the documents either way): clean
  // documents and fragments as Dolma JSONL, removed ones as {"id","reason","items","origin","text"}
  // lines; written as OUTPUT.partial (one chunk per input file) and renamed at the end.
  std::string output, removed_output;
  // Continue an interrupted run from OUTPUT.progress (the first pass's result is kept there once it
  // is done); outputs, attributes files and report are byte for byte those of an uninterrupted run.
  bool resume = false;
  size_t stop_after_files = 0;  // tests: stop with an Error after this many input files are written
};

// A benchmark item.
struct BenchmarkItem {
  uint32_t benchmark = 0;  // index into the benchmark files
  std::string id;
  uint32_t words = 0;
};

// The n-gram index of the benchmark items.
class BenchmarkIndex {
 public:
  explicit BenchmarkIndex(const DecontamOptions& opt);

  // Adds the items of a JSONL file; throws agpt::Error "file:line: ..." on a line that is not a
  // JSON object, and when no line has any of the fields.
  void add_file(const std::string& path);
  // Adds one item from its text (tests).
  void add_item(uint32_t benchmark, std::string id, std::string_view text);

  struct Hit {
    uint32_t slot;   // the n-gram's slot
    uint32_t first;  // first word
    uint32_t count;  // words
  };
  // The hits of the index's n-grams in words, in order of (length, start).
  void find(const std::vector<NormWord>& words, std::vector<Hit>& out) const;

  // Items of a slot.
  std::pair<const uint32_t*, const uint32_t*> items_of(uint32_t slot) const;
  size_t slots() const { return slot_items_.size(); }
  const std::vector<BenchmarkItem>& items() const { return items_; }
  const std::vector<std::string>& files() const { return files_; }

  struct FileCounts {
    uint64_t lines = 0, items = 0, indexed = 0, too_short = 0, without_fields = 0;
  };
  const std::vector<FileCounts>& file_counts() const { return counts_; }

 private:
  DecontamOptions opt_;
  std::vector<std::string> files_;
  std::vector<FileCounts> counts_;
  std::vector<BenchmarkItem> items_;
  std::unordered_map<uint64_t, uint32_t> slot_of_;     // n-gram hash -> slot
  std::vector<std::vector<uint32_t>> slot_items_;      // slot -> items holding it
  std::vector<uint32_t> short_lengths_;                // lengths (< n) of whole-item n-grams
};

// Merges sorted-by-begin ranges that overlap or touch.
std::vector<std::pair<uint64_t, uint64_t>> merge_ranges(std::vector<std::pair<uint64_t, uint64_t>> r);

// GPT-3's cut: every hit range grows by margin bytes on each side (moved out to UTF-8 character
// boundaries), the rest of the text falls into pieces; returns the pieces (byte ranges, in order).
std::vector<std::pair<uint64_t, uint64_t>> pieces_after_cut(std::string_view text,
                                                            const std::vector<std::pair<uint64_t, uint64_t>>& hits,
                                                            uint32_t margin);

struct DecontamReport {
  corpus::ReadReport read;
  uint64_t documents_in = 0, bytes_in = 0;
  uint64_t documents_clean = 0;         // no hit: written unchanged
  uint64_t documents_contaminated = 0;  // at least one hit
  uint64_t documents_cut = 0;           // contaminated, written as fragments
  uint64_t fragments_written = 0, fragments_dropped_short = 0;
  uint64_t documents_out = 0, bytes_out = 0;  // lines written (fragments count one each)
  std::map<std::string, uint64_t> removed_by_reason;
  uint64_t ngrams_indexed = 0, ngrams_ignored_frequent = 0;
  std::vector<std::string> benchmark_files;
  std::vector<BenchmarkIndex::FileCounts> benchmark_counts;
  std::vector<uint64_t> benchmark_items_contaminating, benchmark_documents;
  struct ItemCount {
    std::string benchmark, id;
    uint64_t documents;
  };
  std::vector<ItemCount> items;  // items that contaminated at least one document, most first
  std::string mode;
  int ngram = 0;
  uint64_t files_resumed = 0;  // done by an interrupted run (in the table, not in the JSON)
  double seconds = 0;

  std::string to_json() const;
  std::string table() const;
};

inline constexpr const char* kReasonContaminated = "contaminated";
inline constexpr const char* kReasonTooManyPieces = "contaminated, cut into too many pieces";
inline constexpr const char* kReasonNoFragment = "contaminated, no fragment long enough";

struct DecontamSink {
  // Whole clean documents, and fragments of cut ones (id "<id>#<k>").
  std::function<void(const corpus::Document&)> kept;
  // item_ids: the benchmark items found in it ("benchmark-file:item-id").
  std::function<void(const corpus::Document&, const char* reason, const std::vector<std::string>& item_ids)> removed;
};

// Loads the benchmarks, reads the inputs (twice when max_ngram_docs > 0: the first pass counts
// the documents holding each n-gram) and sends every document to sink in input order. With
// opt.output, resumable per input file (opt.resume): the progress is OUTPUT.progress.
DecontamReport run_decontaminate(const DecontamOptions& opt, const DecontamSink& sink);

}  // namespace agpt::curate
