// The progress file that makes a curation command resumable per input file (OUTPUT.progress,
// JSON lines): a header with the command, the settings that shape the output (a fingerprint) and
// optional data of the run, then one line per input file done, in input order, saying where that
// file's chunk of each chunked output ends (with the chunk's XXH64, to check the partial output
// before trusting it), which whole files were written for it (attributes) and the command's
// account of it. Used by `agpt data extract`, `filter` and `decontaminate`.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "curate/chunked_output.h"

namespace agpt::curate {

// The settings that change the bytes of the outputs, as (name, value) pairs. A resume with another
// value of any of them is refused, naming the settings that differ.
using Fingerprint = std::vector<std::pair<std::string, std::string>>;

// A whole file written for one input (e.g. its attributes file).
struct FileMark {
  std::string path;
  uint64_t size = 0;
  uint64_t hash = 0;  // XXH64 of its bytes
};

struct ProgressEntry {
  std::string name;               // the input's name (must be the same input, in the same place)
  uint64_t input_size = 0;        // its size in bytes when it was read
  std::vector<ChunkMark> chunks;  // one per chunked output, in the command's order
  std::vector<FileMark> files;
  std::string data;               // the command's account of the input: a JSON object ("{}" none)
};

// An input of the run, as the progress file knows it.
struct ProgressInput {
  std::string name;  // the name entries carry
  std::string path;  // to check the size
};

// What an interrupted run left that can be kept.
struct ResumeState {
  std::vector<ProgressEntry> done;    // a prefix of the inputs
  std::vector<uint64_t> output_sizes; // per chunked output: the partial file is cut to this
  std::string header_data;            // the run's data (ProgressLog), "" when there was none
  std::vector<std::string> notes;     // what was dropped and why (shown to the user)
};

// Where a run of `command` with output OUTPUT keeps its state.
std::string partial_path(const std::string& output);   // OUTPUT.partial
std::string progress_path(const std::string& output);  // OUTPUT.progress

// Reads and checks the progress of an interrupted run. Refused (Error saying where, what differs
// and what to do): a file of another command, a fingerprint with other values, entries that do not
// name the first inputs in order, or an input whose size changed. Dropped with a note (and the
// entries after them): a torn last line, a chunk whose bytes in its partial file do not match its
// hash, a whole file that is missing or changed. A missing progress file gives an empty state.
ResumeState load_progress(const std::string& command, const std::string& progress_path, const Fingerprint& fingerprint,
                          const std::vector<ProgressInput>& inputs, const std::vector<std::string>& partial_paths);

// Appends progress lines; created with the header (or rewritten with the entries kept on resume).
class ProgressLog {
 public:
  // header_data: a JSON value kept with the header ("" none), e.g. a first pass's result.
  ProgressLog(const std::string& path, const std::string& command, const Fingerprint& fingerprint,
              const std::string& header_data, const std::vector<ProgressEntry>& kept);
  ~ProgressLog();
  ProgressLog(const ProgressLog&) = delete;
  ProgressLog& operator=(const ProgressLog&) = delete;

  void append(const ProgressEntry& e);
  void sync();  // fsync (once per batch)
  void close_and_remove();

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

// XXH64 of bytes [begin, end) of a file, read in pieces; false when the file is shorter or unreadable.
bool hash_file_range(const std::string& path, uint64_t begin, uint64_t end, uint64_t& hash);

}  // namespace agpt::curate
