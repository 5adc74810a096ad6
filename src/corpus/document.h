// A document of the corpus (the Dolma fields) and the account of a read: what was read, what was
// skipped and why. See reader.h for reading and writer.h for writing.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::corpus {

// One document, as in Dolma JSONL: {"id", "text", "source", "added", "created", "metadata"}.
struct Document {
  std::string id;       // a string; numeric ids in the input are kept as their JSON text ("123")
  std::string text;     // UTF-8
  std::string source;
  std::string added;    // timestamps are kept as written (usually ISO 8601)
  std::string created;
  std::string metadata_json;  // raw JSON text of the "metadata" object, or empty
  std::string origin;         // "path:line" (or "path" for a text file) where it was read; not written out
};

// What a reader does with a line it cannot turn into a document.
enum class OnError {
  kSkip,  // count it (ReadReport) and go on
  kFail,  // throw agpt::Error "path:line: reason (detail)"
};

// The counts for the final report of a read. Every line read is exactly one of: a document, a
// skip (with a reason) or a blank line, so  lines == documents + skipped + blank_lines.
// A plain-text input file (.txt/.md/.rst) counts as one line. A damaged compressed file counts
// its lost tail as one skipped line.
struct ReadReport {
  uint64_t files = 0;        // input files opened so far
  uint64_t lines = 0;
  uint64_t documents = 0;
  uint64_t bytes = 0;        // decompressed bytes read
  uint64_t skipped = 0;
  uint64_t blank_lines = 0;  // empty or whitespace-only lines: ignored, not skips
  std::map<std::string, uint64_t> skipped_by_reason;
  std::vector<std::string> examples;  // the first few "path:line: reason (detail)" messages

  static constexpr size_t kMaxExamples = 10;

  // Records one skipped line.
  void add_skip(const std::string& reason, std::string message);

  // A multi-line human-readable report, e.g.
  //   read 2 files: 1,204 lines, 1,200 documents, 5.2 MB
  //   skipped 3 lines:
  //     2  invalid JSON
  //     1  missing text
  //   first problems:
  //     data/a.jsonl:17: invalid JSON (...)
  std::string summary() const;
};

// The reasons a line is skipped (keys of ReadReport::skipped_by_reason).
namespace reason {
inline constexpr const char* kInvalidJson = "invalid JSON";
inline constexpr const char* kInvalidUtf8 = "invalid UTF-8";
inline constexpr const char* kNotObject = "not a JSON object";
inline constexpr const char* kMissingText = "missing text";
inline constexpr const char* kTextNotString = "text not a string";
inline constexpr const char* kBadId = "id not a string or number";
inline constexpr const char* kFieldNotString = "source/added/created not a string";
inline constexpr const char* kMetadataNotObject = "metadata not an object";
inline constexpr const char* kDuplicateField = "duplicate field";
inline constexpr const char* kLineTooLong = "line too long";
inline constexpr const char* kTruncated = "truncated compressed stream";
inline constexpr const char* kCorrupt = "corrupt compressed stream";
}  // namespace reason

}  // namespace agpt::corpus
