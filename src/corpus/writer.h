// Writing documents as Dolma JSONL (plain, .gz or .zst by the file name), atomically.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "corpus/document.h"
#include "corpus/lines.h"

namespace agpt::corpus {

// Appends doc to out as one JSON object (no newline): fields id, text, source, added, created,
// metadata in that order; empty ones are left out except text. Strings are escaped (quotes,
// backslash, control characters); UTF-8 is passed through. metadata_json is written as it is
// after checking that it is one JSON object; line breaks between its tokens become spaces.
// Throws Error (naming the document) when a field is not valid UTF-8 or metadata_json is not an
// object: such a line would be unreadable, or lost, downstream.
void append_document_json(std::string& out, const Document& doc);

// Writes documents, one JSON object per line, to path + ".tmp", renamed to path by close()
// (see LineWriter). Destroying it without close() removes the temporary file.
class DocumentWriter {
 public:
  explicit DocumentWriter(const std::string& path, int zstd_level = 3);

  void write(const Document& doc);
  // A line of JSON as it is, for other JSONL outputs. Must not contain "\n" or "\r" (Error).
  void write_line(std::string_view json_line);
  void close();

  const std::string& path() const { return lines_.path(); }
  uint64_t lines_written() const { return lines_.lines_written(); }

 private:
  LineWriter lines_;
  std::string scratch_;
};

}  // namespace agpt::corpus
