// Reading documents: JSONL (Dolma fields; plain, .gz or .zst) and plain-text files, streaming with
// constant memory, with an account of every line (ReadReport).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "corpus/document.h"
#include "corpus/inputs.h"
#include "corpus/lines.h"

namespace agpt::corpus {

// Turns one JSONL line into a Document. Strict JSON (RFC 8259) and valid UTF-8, checked over the
// whole line: simdjson's UTF-8 validator, then one pass that checks the grammar and decodes the
// fields (JsonCursor). No limit on line length and no memory beyond the document.
//  - "text" must be present and a string;
//  - "id" may be a string or a number (kept as its JSON text); "source", "added", "created" are
//    strings (numbers and booleans are kept as their JSON text); null or missing means empty;
//  - "metadata" must be an object (kept as its raw JSON text) or null;
//  - any other top-level field is not dropped: it is added to metadata_json, keeping its raw JSON
//    value (a key already in "metadata" gets the suffix "_toplevel"). So FineWeb's "url" or the
//    Pile's "meta" survive a round trip through Dolma;
//  - a field given twice, or a string with an escaped lone surrogate (no UTF-8 form) in a decoded
//    field, is refused.
// One parser per thread; it keeps buffers between calls.
class DocumentParser {
 public:
  DocumentParser();
  ~DocumentParser();
  DocumentParser(const DocumentParser&) = delete;
  DocumentParser& operator=(const DocumentParser&) = delete;

  // Parses line into doc (every field but origin is overwritten). On failure returns false and
  // sets reason (one of corpus::reason) and detail (what exactly, with the byte offset).
  bool parse(std::string_view line, Document& doc, std::string& reason, std::string& detail);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads the documents of many inputs in order (see expand_input_files for what inputs may be),
// streaming: memory is about 2.5 times the longest line (or text file), whatever the input size.
// JSONL lines are parsed by DocumentParser; blank lines are ignored (and counted); a text file
// (.txt/.md/.rst, also compressed) is one document: id = its name (path relative to the directory
// given, else the path), source = "file", text = the whole file, which must be valid UTF-8.
// Problems are skipped and counted, or thrown, by OnError; I/O failures always throw.
class DocumentReader {
 public:
  // Expands inputs at once (so a bad spec fails before any work); throws Error when there are none.
  DocumentReader(std::vector<std::string> inputs, OnError on_error);
  ~DocumentReader();
  DocumentReader(const DocumentReader&) = delete;
  DocumentReader& operator=(const DocumentReader&) = delete;

  // The next document; false at the end of all inputs. In kFail mode a bad line throws
  // agpt::Error "path:line: reason (detail)" (and is counted as skipped first).
  bool next(Document& doc);

  const ReadReport& report() const { return report_; }
  // The expanded input files, in reading order.
  const std::vector<std::string>& files() const { return paths_; }
  // Compressed bytes read so far over all files, and the sum of the file sizes (for progress).
  uint64_t bytes_read_compressed() const;
  uint64_t bytes_total_compressed() const { return total_compressed_; }

 private:
  bool next_text_file(const InputFile& file, Document& doc);
  void skip(const char* why, const std::string& where, const std::string& detail);
  void finish_file();

  std::vector<InputFile> inputs_;
  std::vector<std::string> paths_;
  OnError on_error_;
  size_t next_file_ = 0;
  std::unique_ptr<LineReader> lines_;
  DocumentParser parser_;
  ReadReport report_;
  uint64_t total_compressed_ = 0;
  uint64_t done_compressed_ = 0;  // of finished files
  uint64_t done_bytes_ = 0;       // decompressed, of finished files
  std::string reason_, detail_;   // scratch
};

}  // namespace agpt::corpus
