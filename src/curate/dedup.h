// Deduplication of a corpus: paragraph-level exact (optional), document-level exact (normalised
// text hash) and near-duplicate (MinHash LSH + union-find). Every document read is either kept or
// removed with a reason, and the counts say so: documents_in == kept + removed (by reason).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "corpus/document.h"
#include "curate/dedup_spill.h"
#include "curate/hash.h"
#include "curate/minhash.h"

namespace agpt::curate {

struct DedupOptions {
  std::vector<std::string> inputs;  // files, directories, globs (see corpus::expand_input_files)
  bool paragraphs = false;          // stage 1: drop paragraphs seen earlier (exact, normalised)
  bool exact = true;                // stage 2: drop documents whose normalised text was seen earlier
  bool near = true;                 // stage 3: MinHash LSH clusters, one document kept per cluster
  MinHashOptions minhash;
  // 0: every pair that shares an LSH bucket is a duplicate (datatrove's behaviour). > 0: a pair
  // sharing a bucket is joined only when the signatures' estimated Jaccard is >= threshold.
  double threshold = 0.0;
  // Memory for the near stage's band-key table (bytes, per process); beyond it sorted runs spill to
  // temporary files in tmp_dir ("": $TMPDIR) and are merged. 0: no limit.
  uint64_t memory_bytes = 0;
  std::string tmp_dir;
  // Under MPI (dedup_dist.h): the most band-key bytes one rank sends in one round of the exchange
  // (all destinations together); the keys travel in as many rounds as the largest rank needs. 0: with
  // memory_bytes, memory_bytes / ranks (so one round brings a rank at most about memory_bytes); without,
  // one round.
  uint64_t exchange_bytes = 0;
  int threads = 0;  // 0: all cores
  corpus::OnError on_error = corpus::OnError::kSkip;
  size_t batch_documents = 2048;
};

// What happens to a document.
enum class Fate : uint8_t {
  kKept,
  kAllParagraphs,  // "all paragraphs duplicated"
  kExact,          // "exact duplicate"
  kNear,           // "near duplicate"
};
const char* fate_reason(Fate f);

// Documents and bytes (of text, UTF-8) entering and leaving one stage.
struct StageCounts {
  uint64_t docs_in = 0, docs_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t docs_removed() const { return docs_in - docs_out; }
  uint64_t bytes_removed() const { return bytes_in - bytes_out; }
};

struct DedupReport {
  corpus::ReadReport read;  // input lines skipped while reading are counted here, with reasons
  bool paragraphs_on = false, exact_on = false, near_on = false;
  MinHashOptions minhash;
  double threshold = 0;
  uint64_t documents_in = 0, bytes_in = 0, documents_kept = 0, bytes_kept = 0;
  StageCounts paragraphs, exact, near;
  uint64_t paragraphs_seen = 0, paragraphs_removed = 0;
  uint64_t near_clusters = 0;         // clusters of 2 or more documents
  uint64_t near_candidate_pairs = 0;  // pairs sharing a bucket that were examined
  uint64_t no_shingles = 0;           // documents with no shingle (empty normal form): not in near-dedup
  std::unordered_map<std::string, uint64_t> removed_by_reason;  // documents, by fate_reason
  double seconds_pass1 = 0, seconds_pass2 = 0;

  std::string to_json() const;  // pretty JSON
  std::string table() const;    // a readable table, one row per stage
};

// Splits text into paragraphs: maximal runs of non-blank lines (a blank line is empty or only
// spaces, tabs and \r). Views into text, in order, without the line breaks around them.
std::vector<std::string_view> split_paragraphs(std::string_view text);
// The text less the paragraphs at indices `removed` (increasing), the others joined by one blank line.
std::string join_kept_paragraphs(std::string_view text, const std::vector<uint32_t>& removed);

// What the paragraph stage decided, for Deduper::set_results: the removed paragraphs of every
// document that lost some (indices in increasing order), its text bytes after the stage, and how
// many paragraphs there were in all.
struct ParagraphResults {
  std::unordered_map<uint32_t, std::vector<uint32_t>> removed;
  std::unordered_map<uint32_t, uint64_t> bytes_after;
  uint64_t seen = 0;
};

// The dedup engine over documents given in order (pass 1), then asked what became of each.
// Deterministic: the result depends only on the texts and their order, not on the thread count.
class Deduper {
 public:
  explicit Deduper(const DedupOptions& opt);

  // Pass 1: the next documents' texts, in input order.
  void add(const std::vector<std::string_view>& texts);
  // Clusters near duplicates and completes the report. Call once, after the last add().
  void finish();
  // Instead of add() and finish(): results decided elsewhere (across MPI ranks, dedup_dist.h) for
  // every document: its fate, its original (of[i] == i unless kExact/kNear), its text bytes as read
  // and, with the paragraph stage, that stage's results. Completes the report's counts as finish()
  // does (clusters: the distinct originals of kNear).
  void set_results(std::vector<Fate> fate, std::vector<uint32_t> of, std::vector<uint64_t> bytes,
                   ParagraphResults paragraphs = {});

  size_t size() const { return fate_.size(); }
  Fate fate(size_t i) const { return fate_[i]; }
  // For kExact and kNear: the index of the kept document it duplicates (always < i); else i.
  uint32_t duplicate_of(size_t i) const { return of_[i]; }
  // True when some removed document names i as its original.
  bool referenced(size_t i) const { return referenced_[i]; }
  // The text to write for a kept document: the original, less paragraphs removed in stage 1
  // (kept paragraphs are then joined by one blank line).
  std::string kept_text(size_t i, std::string_view original) const;

  const DedupReport& report() const { return report_; }
  DedupReport& report() { return report_; }

 private:
  uint32_t find(uint32_t x);
  void join(uint32_t x, uint32_t y);
  void complete_report();

  DedupOptions opt_;
  MinHasher hasher_;
  std::vector<Fate> fate_;
  std::vector<uint32_t> of_;
  std::vector<bool> referenced_;
  std::vector<uint64_t> bytes_after_paragraphs_;
  std::unordered_map<uint32_t, std::vector<uint32_t>> removed_paragraphs_;
  std::unordered_set<Hash128, Hash128Hasher> paragraph_seen_;
  std::unordered_map<Hash128, uint32_t, Hash128Hasher> exact_seen_;
  BandKeyTable buckets_;  // (band, key, doc) of every document that reaches the near stage
  std::vector<uint64_t> signatures_;                                 // only when threshold > 0
  std::vector<uint32_t> signature_slot_;                             // doc -> slot, or ~0
  std::vector<uint32_t> parent_;
  bool finished_ = false;
  DedupReport report_;
};

// Where run_dedup sends documents in pass 2, in input order.
struct DedupSink {
  std::function<void(const corpus::Document&)> kept;
  // reason: fate_reason; of_id: the id of the kept document it duplicates ("" for paragraphs).
  std::function<void(const corpus::Document&, const char* reason, const std::string& of_id)> removed;
};

// Two passes over opt.inputs: pass 1 computes hashes and signatures (parallel over batches),
// clusters; pass 2 reads the inputs again and sends every document to sink.kept or sink.removed.
DedupReport run_dedup(const DedupOptions& opt, const DedupSink& sink);

// Pass 2 alone: reads opt.inputs again and sends every document to sink by dd's decisions (dd
// finished or given its results). Returns the seconds it took.
double write_dedup_pass2(const DedupOptions& opt, const Deduper& dd, const DedupSink& sink);

}  // namespace agpt::curate
