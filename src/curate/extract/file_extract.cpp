#include "curate/extract/file_extract.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "corpus/document.h"
#include "corpus/json.h"
#include "corpus/stream.h"
#include "corpus/writer.h"
#include "curate/extract/html.h"
#include "curate/extract/latex.h"
#include "curate/extract/pdf_text.h"
#include "curate/extract/table.h"

namespace agpt::curate::extract {
namespace {

using Json = nlohmann::ordered_json;

// Adds one document to the outcome.
void add_document(FileOutcome& out, const InputEntry& in, const FileOptions& opt, const std::string& id_suffix,
                  std::string text, Json metadata) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return;  // nothing to train on
  corpus::Document d;
  d.id = in.name + id_suffix;
  d.source = opt.source.empty() ? out.format : opt.source;
  d.added = opt.added;
  d.text = std::move(text);
  metadata["path"] = in.name;
  metadata["format"] = out.format;
  // Key order fixed (path, format, then the rest as inserted): byte-identical output.
  Json ordered;
  ordered["path"] = in.name;
  ordered["format"] = out.format;
  for (auto it = metadata.begin(); it != metadata.end(); ++it)
    if (it.key() != "path" && it.key() != "format") ordered[it.key()] = it.value();
  d.metadata_json = ordered.dump(-1, ' ', false, Json::error_handler_t::replace);
  corpus::append_document_json(out.jsonl, d);
  out.jsonl += '\n';
  ++out.documents;
  out.text_bytes += d.text.size();
}

Json warnings_json(const std::vector<std::string>& w) { return Json(w); }

void fail_with(FileOutcome& out, std::string reason, std::string detail) {
  out.status = "failed";
  out.reason = std::move(reason);
  out.detail = std::move(detail);
  out.jsonl.clear();
  out.documents = 0;
  out.text_bytes = 0;
}

// Reads a text-like input (maybe .gz/.zst) that must be UTF-8.
bool read_utf8(const InputEntry& in, FileOutcome& out, std::string& data) {
  data = corpus::read_decompressed(in.path);
  size_t bad = corpus::first_invalid_utf8(data);
  if (bad < data.size()) {
    fail_with(out, "invalid UTF-8", cat("byte ", bad, " is not UTF-8; convert the file first (e.g. iconv -t UTF-8)"));
    return false;
  }
  return true;
}

void extract_pdf(const InputEntry& in, const FileOptions& opt, FileOutcome& out) {
  std::string data = read_file(in.path);
  PdfText pdf = opt.pdf_in_process ? read_pdf(data, opt.pdf_layout)
                                    : read_pdf_isolated(data, opt.pdf_layout, opt.pdf_isolation);
  out.pages = pdf.pages.size();
  out.warnings = pdf.warnings;
  if (!pdf.failure.empty()) return fail_with(out, pdf.failure, pdf.detail);
  PageAssembly a = assemble_pages(pdf.pages);
  Json md;
  md["method"] = "poppler";
  md["pages"] = pdf.pages.size();
  if (!pdf.title.empty()) md["title"] = pdf.title;
  if (!pdf.author.empty()) md["author"] = pdf.author;
  if (!pdf.warnings.empty()) md["warnings"] = warnings_json(pdf.warnings);
  add_document(out, in, opt, "", std::move(a.text), std::move(md));
}

void extract_latex(const InputEntry& in, const FileOptions& opt, FileOutcome& out) {
  std::string data;
  if (!read_utf8(in, out, data)) return;
  LatexOptions lo;
  lo.sweave = is_sweave_path(in.path);
  lo.keep_code_chunks = opt.keep_code_chunks;
  LatexText t = latex_to_text(data, lo, directory_resolver(std::filesystem::path(in.path).parent_path().string()));
  out.warnings = t.warnings;
  Json md;
  md["method"] = lo.sweave ? "latex (sweave)" : "latex";
  if (!t.title.empty()) md["title"] = t.title;
  if (!t.author.empty()) md["author"] = t.author;
  if (!t.included.empty()) md["included"] = t.included;
  if (!t.warnings.empty()) md["warnings"] = warnings_json(t.warnings);
  add_document(out, in, opt, "", std::move(t.text), std::move(md));
}

void extract_html(const InputEntry& in, const FileOptions& opt, FileOutcome& out) {
  // HTML may declare another encoding: the parser converts, so the bytes are not checked here.
  std::string data = corpus::read_decompressed(in.path);
  HtmlText h = html_to_text(data);
  out.warnings = h.warnings;
  if (!h.failure.empty()) return fail_with(out, "damaged", h.failure);
  Json md;
  md["method"] = "libxml2";
  if (!h.title.empty()) md["title"] = h.title;
  add_document(out, in, opt, "", std::move(h.text), std::move(md));
}

void extract_text(const InputEntry& in, const FileOptions& opt, FileOutcome& out) {
  std::string data;
  if (!read_utf8(in, out, data)) return;
  if (data.starts_with("\xEF\xBB\xBF")) data.erase(0, 3);
  Json md;
  md["method"] = "text";
  add_document(out, in, opt, "", std::move(data), std::move(md));
}

void extract_records(const InputEntry& in, const FileOptions& opt, FileOutcome& out) {
  std::string data = corpus::read_decompressed(in.path);
  if (data.starts_with("\xEF\xBB\xBF")) data.erase(0, 3);
  Table t;
  if (*in.format == Format::kJson) {
    t = parse_json_records(data, is_json_lines_path(in.path));
  } else {
    t = parse_delimited(data, *in.format == Format::kTsv ? '\t' : ',');
  }
  out.bad_records = t.bad_rows;
  // "line 3: what" becomes "name:3: what", the form editors and grep understand.
  for (const auto& e : t.errors)
    out.warnings.push_back(e.starts_with("line ") ? in.name + ":" + e.substr(5) : in.name + ": " + e);
  if (t.bad_rows > t.errors.size())
    out.warnings.push_back(cat("... and ", t.bad_rows - t.errors.size(), " more bad records"));
  if (!t.failure.empty()) return fail_with(out, "bad table", in.name + ": " + t.failure);
  static const NarrativeTemplate kDefault;
  const NarrativeTemplate& tmpl = opt.narrative ? *opt.narrative : kDefault;
  Narrator narrator(tmpl, t.columns);  // throws Error for a template that names missing columns
  out.records = t.rows.size();
  size_t per = opt.records_per_doc == 0 ? t.rows.size() : opt.records_per_doc;
  for (size_t b = 0; b < t.rows.size(); b += per) {
    size_t e = std::min(t.rows.size(), b + per);
    std::string text;
    for (size_t r = b; r < e; ++r) {
      std::string s = narrator.render(t.rows[r].values);
      if (s.empty()) continue;
      if (!text.empty()) text += "\n\n";
      text += s;
    }
    if (text.empty()) continue;
    Json md;
    md["method"] = tmpl.body.empty() ? "default template" : "template";
    md["records"] = e - b;
    md["first_line"] = t.rows[b].line;
    if (b == 0 && !out.warnings.empty()) md["warnings"] = warnings_json(out.warnings);
    add_document(out, in, opt, opt.records_per_doc == 0 ? "" : cat("#", b + 1), std::move(text), std::move(md));
  }
}

}  // namespace

FileOutcome extract_file(const InputEntry& in, const FileOptions& opt) {
  FileOutcome out;
  out.name = in.name;
  out.format = in.format ? format_name(*in.format) : "unknown";
  std::error_code ec;
  out.bytes_in = std::filesystem::file_size(in.path, ec);
  if (ec) out.bytes_in = 0;
  if (!in.format) {
    out.status = "skipped";
    out.reason = "unknown format";
    out.detail = "not a file name agpt data extract reads (--format forces one)";
    return out;
  }
  out.status = "ok";
  try {
    switch (*in.format) {
      case Format::kPdf: extract_pdf(in, opt, out); break;
      case Format::kLatex: extract_latex(in, opt, out); break;
      case Format::kHtml: extract_html(in, opt, out); break;
      case Format::kText: extract_text(in, opt, out); break;
      case Format::kCsv:
      case Format::kTsv:
      case Format::kJson: extract_records(in, opt, out); break;
    }
  } catch (const corpus::StreamError& e) {
    fail_with(out, "damaged", e.what());
  } catch (const Error& e) {
    fail_with(out, "error", e.what());
  } catch (const std::bad_alloc&) {
    fail_with(out, "out of memory", "the file is too large to extract in memory");
  } catch (const std::exception& e) {
    fail_with(out, "error", e.what());
  }
  if (out.status == "ok" && out.documents == 0) {
    out.status = "empty";
    out.reason = "no text";
    out.detail = "nothing was left after extraction";
  }
  return out;
}

}  // namespace agpt::curate::extract
