// The attributes files of a run (Dolma style: one JSONL file per input file, one line per document,
// in the input's order), opened one after the other as the reading reaches each input and closed
// when the run is done with that input (so a resumed run keeps the files of the inputs done).
#pragma once
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "corpus/inputs.h"
#include "corpus/lines.h"
#include "curate/chunked_output.h"
#include "curate/filter.h"
#include "curate/progress_log.h"

namespace agpt::curate {

class AttributeFiles {
 public:
  // read: re-decide mode (read the files); else write them. first: the first input this run does.
  AttributeFiles(const std::string& dir, const std::vector<corpus::InputFile>& inputs, bool read, size_t first = 0)
      : read_(read), current_(static_cast<long>(first) - 1) {
    std::set<std::string> seen;
    for (const auto& in : inputs) {
      paths_.push_back(attributes_path(dir, in));
      if (!seen.insert(paths_.back()).second)
        fail("two inputs map to the same attributes file ", paths_.back(), " (one is ", in.path,
             "): give the inputs as one directory, or filter them in separate runs");
    }
  }
  ~AttributeFiles() {
    if (writer_) {
      writer_.reset();
      std::error_code ec;
      std::filesystem::remove(tmp_path(), ec);
    }
  }
  const std::vector<std::string>& paths() const { return paths_; }

  // Compute mode: the writer of file index f (files are written in order).
  ChunkedOutput& writer(size_t f) {
    if (current_ != static_cast<long>(f)) {
      if (writer_ || current_ > static_cast<long>(f)) fail("attributes: internal error: file ", f, " written out of order");
      current_ = static_cast<long>(f);
      writer_ = std::make_unique<ChunkedOutput>(tmp_path(), 0, paths_[f]);
    }
    return *writer_;
  }
  // Re-decide mode: the next attributes line of file f; throws when there is none. The files
  // before f are checked for lines left over (and must exist, also for inputs without documents).
  void next_line(size_t f, std::string& line, std::string& where) {
    read_up_to(f);
    std::string_view v;
    while (reader_ && reader_->next(v)) {
      if (v.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      line.assign(v);
      where = paths_[f] + ":" + std::to_string(reader_->line_number());
      return;
    }
    fail(paths_[f], ": fewer attribute lines than documents in the input: these attributes were computed from other "
         "inputs; compute them again with --attributes on the same inputs");
  }
  // Done with file f. Compute mode: the file is complete on disk (an input without documents gets
  // an empty one); returns what was written. Re-decide mode: checks that no line is left over.
  FileMark close_file(size_t f) {
    FileMark m;
    if (read_) {
      read_up_to(f);
      if (current_ == static_cast<long>(f)) close_reader();
      return m;
    }
    writer(f);
    const ChunkMark c = writer_->end_chunk();  // the file's one chunk
    writer_->close_and_rename(paths_[f]);
    writer_.reset();
    return {paths_[f], c.end, c.hash};
  }

 private:
  std::string tmp_path() const { return paths_[current_] + ".tmp"; }
  void close_reader() {
    if (!reader_) return;
    std::string_view v;
    while (reader_->next(v))
      if (v.find_first_not_of(" \t\r") != std::string_view::npos)
        fail(paths_[current_], ":", reader_->line_number(), ": more attribute lines than documents in the input: "
             "these attributes were computed from other inputs");
    reader_.reset();
  }
  void read_up_to(size_t f) {
    while (current_ < static_cast<long>(f)) {
      close_reader();
      ++current_;
      try {
        reader_ = std::make_unique<corpus::LineReader>(paths_[current_]);
      } catch (const Error& e) {
        fail("no attributes for an input (", e.what(), "): run `agpt data filter --attributes DIR` on the same inputs "
             "first, then --from-attributes DIR");
      }
    }
  }

  bool read_;
  std::vector<std::string> paths_;
  long current_ = -1;
  std::unique_ptr<ChunkedOutput> writer_;
  std::unique_ptr<corpus::LineReader> reader_;
};

}  // namespace agpt::curate
