// The attributes files of a run (Dolma style: one JSONL file per input file, one line per document,
// in the input's order), opened one after the other as the reading reaches each input.
#pragma once
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "corpus/inputs.h"
#include "corpus/lines.h"
#include "curate/filter.h"

namespace agpt::curate {

class AttributeFiles {
 public:
  AttributeFiles(const std::string& dir, const std::vector<corpus::InputFile>& inputs, bool read)
      : read_(read) {
    std::set<std::string> seen;
    for (const auto& in : inputs) {
      paths_.push_back(attributes_path(dir, in));
      if (!seen.insert(paths_.back()).second)
        fail("two inputs map to the same attributes file ", paths_.back(), " (one is ", in.path,
             "): give the inputs as one directory, or filter them in separate runs");
    }
  }
  const std::vector<std::string>& paths() const { return paths_; }

  // Compute mode: the writer of file index f (earlier files without documents get empty files).
  corpus::LineWriter& writer(size_t f) {
    while (current_ < static_cast<long>(f)) open_next();
    return *writer_;
  }
  // Re-decide mode: the next attributes line of file f; throws when there is none.
  void next_line(size_t f, std::string& line, std::string& where) {
    while (current_ < static_cast<long>(f)) open_next();
    std::string_view v;
    while (reader_->next(v)) {
      if (v.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      line.assign(v);
      where = paths_[f] + ":" + std::to_string(reader_->line_number());
      return;
    }
    fail(paths_[f], ": fewer attribute lines than documents in the input: these attributes were computed from other "
         "inputs; compute them again with --attributes on the same inputs");
  }
  void finish() {
    while (current_ + 1 < static_cast<long>(paths_.size())) open_next();
    close_current();
  }

 private:
  void close_current() {
    if (writer_) writer_->close();
    writer_.reset();
    if (reader_) {
      std::string_view v;
      while (reader_->next(v))
        if (v.find_first_not_of(" \t\r") != std::string_view::npos)
          fail(paths_[current_], ":", reader_->line_number(), ": more attribute lines than documents in the input: "
               "these attributes were computed from other inputs");
    }
    reader_.reset();
  }
  void open_next() {
    close_current();
    ++current_;
    if (read_) {
      try {
        reader_ = std::make_unique<corpus::LineReader>(paths_[current_]);
      } catch (const Error& e) {
        fail("no attributes for an input (", e.what(), "): run `agpt data filter --attributes DIR` on the same inputs "
             "first, then --from-attributes DIR");
      }
    } else {
      writer_ = std::make_unique<corpus::LineWriter>(paths_[current_]);
    }
  }

  bool read_;
  std::vector<std::string> paths_;
  long current_ = -1;
  std::unique_ptr<corpus::LineWriter> writer_;
  std::unique_ptr<corpus::LineReader> reader_;
};

}  // namespace agpt::curate
