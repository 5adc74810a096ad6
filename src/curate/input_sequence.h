// Reading the documents of many input files in order, one file after the other, with an account
// of each file on its own: what the per-file resume of `agpt data filter` and `decontaminate`
// needs (start at any file; the report of the files done before comes from the progress file).
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "corpus/document.h"
#include "corpus/inputs.h"
#include "corpus/reader.h"
#include "curate/progress_log.h"

namespace agpt::curate {

// Documents of files[first..], in order, as one corpus::DocumentReader over all of them would give
// them (same ids, origins and skips); each file's ReadReport is kept apart.
class InputSequence {
 public:
  InputSequence(std::vector<corpus::InputFile> files, size_t first, corpus::OnError on_error);
  ~InputSequence();

  // The next document and the index of its file; false after the last file.
  bool next(corpus::Document& doc, size_t& file);
  // The account of file f, complete once next() has returned a document of a later file (or false).
  const corpus::ReadReport& file_report(size_t f) const { return reports_.at(f); }
  // Frees the account of file f (once it is committed).
  void release(size_t f) { reports_.at(f) = {}; }
  const std::vector<corpus::InputFile>& files() const { return files_; }
  uint64_t bytes_total() const { return total_; }
  uint64_t bytes_read() const;  // of the files from `first` on (compressed bytes, for progress bars)

 private:
  std::vector<corpus::InputFile> files_;
  std::vector<corpus::ReadReport> reports_;
  corpus::OnError on_error_;
  size_t next_ = 0;      // the file to open next
  std::unique_ptr<corpus::DocumentReader> reader_;
  uint64_t total_ = 0, done_ = 0;
};

// The inputs as the progress file names them.
std::vector<ProgressInput> progress_inputs(const std::vector<corpus::InputFile>& files);

// A ReadReport as JSON (for progress entries) and back; add_read_report adds one file's account to
// a total as one reader reading on would have counted it.
nlohmann::ordered_json read_report_json(const corpus::ReadReport& r);
void add_read_report(corpus::ReadReport& into, const corpus::ReadReport& r);
void add_read_report_json(corpus::ReadReport& into, const nlohmann::ordered_json& j);

}  // namespace agpt::curate
