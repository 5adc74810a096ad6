// The account of an extraction: per format, files extracted, failed (by reason), empty and
// skipped, documents, pages, records and bytes; written as JSON (--report) and as a table.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "curate/extract/file_extract.h"

namespace agpt::curate::extract {

struct FormatCounts {
  uint64_t files = 0, files_ok = 0, files_failed = 0, files_empty = 0, files_skipped = 0;
  uint64_t documents = 0, bytes_in = 0, text_bytes = 0, pages = 0, records = 0, bad_records = 0;
  uint64_t files_with_warnings = 0;
  std::map<std::string, uint64_t> failures_by_reason;  // failed, empty and skipped files by reason

  void add(const FileOutcome& f);
};

struct ExtractReport {
  std::map<std::string, FormatCounts> formats;  // by format name ("unknown" for skipped files)
  FormatCounts total;
  uint64_t files_resumed = 0;  // taken from the progress file of an interrupted run
  std::vector<std::string> problems;  // the first few "name: reason (detail)" and warnings
  std::string output;
  double seconds = 0;

  static constexpr size_t kMaxProblems = 20;

  void add(const FileOutcome& f);
  std::string to_json() const;
  // A readable table for stderr.
  std::string table() const;
};

}  // namespace agpt::curate::extract
