#include "curate/extract/format.h"

#include <algorithm>
#include <cctype>

#include "corpus/stream.h"

namespace agpt::curate::extract {
namespace {

struct Ext {
  const char* ext;
  Format format;
};
constexpr Ext kExtensions[] = {
    {".pdf", Format::kPdf},      {".tex", Format::kLatex},     {".ltx", Format::kLatex},
    {".rnw", Format::kLatex},    {".snw", Format::kLatex},     {".html", Format::kHtml},
    {".htm", Format::kHtml},     {".xhtml", Format::kHtml},    {".txt", Format::kText},
    {".text", Format::kText},    {".md", Format::kText},       {".markdown", Format::kText},
    {".rst", Format::kText},     {".csv", Format::kCsv},       {".tsv", Format::kTsv},
    {".tab", Format::kTsv},      {".json", Format::kJson},     {".jsonl", Format::kJson},
    {".ndjson", Format::kJson},
};

std::string lower_name(std::string_view path) {
  std::string s(corpus::strip_compression_suffix(path));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

const char* format_name(Format f) {
  switch (f) {
    case Format::kPdf: return "pdf";
    case Format::kLatex: return "latex";
    case Format::kHtml: return "html";
    case Format::kText: return "text";
    case Format::kCsv: return "csv";
    case Format::kTsv: return "tsv";
    case Format::kJson: return "json";
  }
  return "?";
}

std::optional<Format> parse_format(std::string_view name) {
  for (Format f : kAllFormats)
    if (name == format_name(f)) return f;
  return std::nullopt;
}

std::optional<Format> format_of_path(std::string_view path) {
  std::string s = lower_name(path);
  for (const Ext& e : kExtensions)
    if (ends_with(s, e.ext)) return e.format;
  return std::nullopt;
}

bool is_json_lines_path(std::string_view path) {
  std::string s = lower_name(path);
  return ends_with(s, ".jsonl") || ends_with(s, ".ndjson");
}

bool is_sweave_path(std::string_view path) {
  std::string s = lower_name(path);
  return ends_with(s, ".rnw") || ends_with(s, ".snw");
}

std::string known_extensions() {
  std::string out;
  for (const Ext& e : kExtensions) {
    if (!out.empty()) out += " ";
    out += e.ext;
  }
  return out + " (also .gz/.zst compressed, except .pdf)";
}

}  // namespace agpt::curate::extract
