// Records of structured data: CSV/TSV with a header line (RFC 4180 quoting) and JSON/JSONL
// objects, as rows of (column, value) text, with every bad row counted with its file:line.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate::extract {

struct Table {
  std::vector<std::string> columns;  // header names as written (trimmed); duplicates get "_2", "_3"
  struct Row {
    uint64_t line = 0;  // 1-based line (or record) where the row starts
    std::vector<std::string> values;  // one per column ("" = missing)
  };
  std::vector<Row> rows;
  uint64_t bad_rows = 0;
  std::vector<std::string> errors;  // the first few "line N: what" messages
  std::string failure;              // the whole file is unusable (no header, not JSON, ...)

  void add_error(uint64_t line, const std::string& what);
};

// Parses delimited text (delimiter ',' or '\t'). The first non-blank line is the header. Fields
// may be quoted with '"' ("" inside is a quote; quoted fields may span lines); spaces around
// unquoted fields are trimmed. A row with another number of fields than the header, an unclosed
// quote or invalid UTF-8 is counted as bad and skipped. Blank lines are ignored.
Table parse_delimited(std::string_view data, char delimiter);

// Parses JSON records: with lines=true one object per line (JSONL), else one JSON value that is an
// array of objects or one object. Nested objects become dotted columns ("a.b"), arrays of scalars
// one value joined by ", ", other arrays their JSON text; null is missing; true/false stay words.
// Columns are ordered by first appearance. A line that is not a JSON object counts as bad.
Table parse_json_records(std::string_view data, bool lines);

}  // namespace agpt::curate::extract
