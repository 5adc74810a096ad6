// The source formats `agpt data extract` reads, and how an input file's format is chosen.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace agpt::curate::extract {

enum class Format {
  kPdf,    // .pdf (poppler)
  kLatex,  // .tex .ltx; .Rnw .Snw (Sweave: LaTeX with R code chunks)
  kHtml,   // .html .htm .xhtml
  kText,   // .txt .text .md .markdown .rst
  kCsv,    // .csv: records with a header line
  kTsv,    // .tsv .tab
  kJson,   // .json (an array of records, or one record) and .jsonl/.ndjson (one record per line)
};

inline constexpr Format kAllFormats[] = {Format::kPdf,  Format::kLatex, Format::kHtml, Format::kText,
                                         Format::kCsv,  Format::kTsv,   Format::kJson};

// "pdf", "latex", "html", "text", "csv", "tsv", "json".
const char* format_name(Format f);
// The inverse of format_name (for --format); nullopt for other names.
std::optional<Format> parse_format(std::string_view name);
// The format of a file by its name (case-insensitive, after an optional .gz/.zst/.zstd suffix),
// nullopt when the name says nothing agpt reads.
std::optional<Format> format_of_path(std::string_view path);
// True for names whose data is line records (JSONL) rather than one JSON value.
bool is_json_lines_path(std::string_view path);
// True for Sweave files (.Rnw/.Snw): LaTeX whose <<>>= ... @ chunks are R code.
bool is_sweave_path(std::string_view path);
// The list of known extensions, for error messages.
std::string known_extensions();

}  // namespace agpt::curate::extract
