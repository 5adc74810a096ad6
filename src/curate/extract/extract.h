// `agpt data extract` as a library call: many input files (PDF, LaTeX, HTML, text, CSV/TSV,
// JSON records) to one Dolma JSONL output, multi-threaded over files with the output in input
// order (identical for any thread count), resumable per input file, with a report.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "curate/extract/file_extract.h"
#include "curate/extract/format.h"
#include "curate/extract/report.h"
#include "curate/progress_log.h"  // partial_path, progress_path of the output

namespace agpt::curate::extract {

struct ExtractOptions {
  std::vector<std::string> inputs;  // files, directories, glob patterns
  std::string output;               // .jsonl, .jsonl.gz or .jsonl.zst
  std::optional<Format> format;     // force one format for every input (else by file name)
  std::string template_path;        // narrative template for structured data; empty: default sentence
  FileOptions file;                 // (file.narrative is set from template_path)
  int threads = 0;                  // 0: all cores
  bool resume = false;              // continue an interrupted run (OUTPUT.partial + OUTPUT.progress)
  size_t stop_after_files = 0;      // tests: stop with an Error after this many files are written
  bool progress_bar = true;
};

// Runs the extraction: writes OUTPUT.partial and OUTPUT.progress (curate/resumable_run.h) as files
// finish, renames the partial file to OUTPUT and removes the progress file at the end. Throws Error for bad options
// or I/O failures (the progress so far is kept for --resume); bad input files never throw.
ExtractReport run_extract(const ExtractOptions& options);

}  // namespace agpt::curate::extract
