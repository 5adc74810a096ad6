// Extracting one input file of any format into Dolma documents: the unit of work of
// `agpt data extract` (run on many threads), which never throws for bad input.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "curate/extract/format.h"
#include "curate/extract/narrative.h"
#include "curate/extract/pdf.h"
#include "curate/extract/pdf_isolated.h"

namespace agpt::curate::extract {

// What to extract and how (the parts of ExtractOptions that shape documents).
struct FileOptions {
  std::string source;            // Dolma "source"; empty: the format's name
  std::string added;             // Dolma "added"; empty: left out (deterministic output)
  PdfLayout pdf_layout = PdfLayout::kRaw;
  PdfIsolation pdf_isolation;    // poppler runs in a child process per PDF, with a time limit
  bool pdf_in_process = false;   // read PDFs in this process instead (for comparisons; unsafe)
  size_t records_per_doc = 0;    // structured data: 0 = one document per file
  bool keep_code_chunks = false; // Sweave chunks kept as verbatim text
  const NarrativeTemplate* narrative = nullptr;  // null: the default sentence
};

// One input file to extract.
struct InputEntry {
  std::string path;  // to open
  std::string name;  // for ids and metadata: relative to the directory given, else the path
  std::optional<Format> format;  // nullopt: not a format agpt reads (counted as skipped)
};

// The result of one file; every file ends as exactly one status.
struct FileOutcome {
  std::string name;
  std::string format;  // format_name, or "unknown"
  std::string status;  // "ok", "failed", "empty" (extracted, but no text), "skipped" (unknown format)
  std::string reason;  // failed/skipped: a short key ("encrypted", "damaged", "needs OCR", ...)
  std::string detail;  // what exactly, and what to do
  uint64_t bytes_in = 0;     // size of the input file (as stored)
  uint64_t documents = 0;
  uint64_t text_bytes = 0;   // UTF-8 bytes of the documents' text
  uint64_t pages = 0;        // PDFs
  uint64_t records = 0, bad_records = 0;  // structured data
  std::vector<std::string> warnings;
  std::string jsonl;  // the documents as Dolma JSONL lines (not kept in the progress file)
};

// Extracts one file. Never throws: I/O errors and bad data become status "failed" with a reason.
FileOutcome extract_file(const InputEntry& in, const FileOptions& options);

}  // namespace agpt::curate::extract
