// The progress file of `agpt data extract` (OUTPUT.progress, JSON lines), which makes a run
// resumable per input file: a header with a fingerprint of the options, then one line per input
// file done, in input order, with its outcome (for the report) and where its chunk of the output
// ends, with the chunk's XXH64 (to check the partial output before trusting it).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "curate/extract/file_extract.h"

namespace agpt::curate::extract {

struct ProgressEntry {
  FileOutcome outcome;  // without jsonl
  uint64_t end = 0;     // output offset just after this file's chunk
  uint64_t hash = 0;    // XXH64 of the chunk's bytes as written
};

// What an interrupted run left that can be kept.
struct ResumeState {
  std::vector<ProgressEntry> done;  // a prefix of the inputs
  uint64_t output_size = 0;         // the partial output is cut to this
  std::vector<std::string> notes;   // what was dropped and why (shown to the user)
};

// Reads and checks the progress of an interrupted run. Entries must name the first inputs in
// order (else Error: the inputs changed); a torn last line is ignored; chunks whose hash does not
// match the partial output are dropped with the ones after them. Throws Error when the options'
// fingerprint differs. A missing progress file gives an empty state.
ResumeState load_progress(const std::string& progress_path, const std::string& partial_path,
                          const std::string& fingerprint, const std::vector<InputEntry>& inputs);

// Appends progress lines; created with the header (or rewritten with the entries kept on resume).
class ProgressLog {
 public:
  ProgressLog(const std::string& path, const std::string& fingerprint, const std::vector<ProgressEntry>& kept);
  ~ProgressLog();
  ProgressLog(const ProgressLog&) = delete;
  ProgressLog& operator=(const ProgressLog&) = delete;

  void append(const ProgressEntry& e);
  void sync();  // fsync (called once per batch)
  void close_and_remove();

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace agpt::curate::extract
