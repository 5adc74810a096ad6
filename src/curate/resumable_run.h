// The outputs and progress file of a run that is resumable per input file: `agpt data extract`,
// `filter` and `decontaminate`. Outputs are written as OUTPUT.partial in chunks, one per input file
// (curate/chunked_output.h); after each input, its chunks and the command's account of it are
// recorded in OUTPUT.progress (curate/progress_log.h) of the first output. A run with `resume`
// keeps what an interrupted run finished, cuts the partial outputs after it and goes on from the
// next input, so that the outputs are byte for byte those of an uninterrupted run. At the end the
// partial files are renamed to their names and the progress file is removed.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "curate/chunked_output.h"
#include "curate/progress_log.h"

namespace agpt::curate {

class ResumableRun {
 public:
  // outputs: the final names (the first one holds the progress file); their suffixes choose the
  // compression. With resume, loads and checks the progress (see load_progress; notes are logged),
  // else notes a progress file left by an interrupted run. Opens nothing yet.
  ResumableRun(std::string command, std::vector<std::string> outputs, Fingerprint fingerprint, bool resume,
               const std::vector<ProgressInput>& inputs, size_t stop_after_files = 0);
  ~ResumableRun();

  // What the interrupted run finished (empty without resume).
  const std::vector<ProgressEntry>& done() const { return state_.done; }
  // The data an interrupted run kept with its header ("" none), e.g. decontaminate's first pass.
  const std::string& header_data() const { return state_.header_data; }

  // Opens the outputs, cut after the inputs done, and writes the progress file (with header_data).
  void start(const std::string& header_data = "");
  ChunkedOutput& output(size_t i) { return *outs_.at(i); }

  // The current input is done: ends a chunk in every output, sets e.chunks and appends e to the
  // progress file. With stop_after_files, throws Error once that many inputs were committed (tests).
  void commit(ProgressEntry& e);
  // Makes the progress so far durable (fsync; call once per batch).
  void sync();
  // Closes and renames the outputs; removes the progress file.
  void finish();

 private:
  std::string command_;
  std::vector<std::string> outputs_;
  Fingerprint fingerprint_;
  size_t stop_after_ = 0, committed_ = 0;
  ResumeState state_;
  std::vector<std::unique_ptr<ChunkedOutput>> outs_;
  std::unique_ptr<ProgressLog> log_;
};

}  // namespace agpt::curate
