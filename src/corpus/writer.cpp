#include "corpus/writer.h"

#include "base/error.h"
#include "corpus/json.h"

namespace agpt::corpus {

namespace {

std::string doc_name(const Document& doc) {
  if (!doc.id.empty() && is_valid_utf8(doc.id)) return cat("document id=", doc.id.substr(0, 200));
  if (!doc.origin.empty()) return cat("document from ", doc.origin);
  return "document without id";
}

void append_field(std::string& out, const char* key, std::string_view value, const Document& doc) {
  if (!is_valid_utf8(value))
    fail(doc_name(doc), ": field \"", key, "\" is not valid UTF-8 (bad byte sequence at byte ",
         first_invalid_utf8(value), "); fix the producer or decode it before writing");
  out.push_back('"');
  out.append(key);
  out.append("\":");
  append_json_string(out, value);
}

}  // namespace

void append_document_json(std::string& out, const Document& doc) {
  out.push_back('{');
  size_t start = out.size();
  auto comma = [&] {
    if (out.size() > start) out.push_back(',');
  };
  if (!doc.id.empty()) append_field(out, "id", doc.id, doc);
  comma();
  append_field(out, "text", doc.text, doc);
  if (!doc.source.empty()) comma(), append_field(out, "source", doc.source, doc);
  if (!doc.added.empty()) comma(), append_field(out, "added", doc.added, doc);
  if (!doc.created.empty()) comma(), append_field(out, "created", doc.created, doc);
  if (!doc.metadata_json.empty()) {
    std::string_view m = doc.metadata_json;
    while (!m.empty() && (m.front() == ' ' || m.front() == '\t' || m.front() == '\r' || m.front() == '\n'))
      m.remove_prefix(1);
    if (m.empty() || m.front() != '{')
      fail(doc_name(doc), ": metadata_json must be a JSON object {...}, got: ", doc.metadata_json.substr(0, 80));
    std::string err = json_syntax_error(m);
    if (!err.empty()) fail(doc_name(doc), ": metadata_json is not valid JSON: ", err);
    if (!is_valid_utf8(m))
      fail(doc_name(doc), ": metadata_json is not valid UTF-8 (bad byte sequence at byte ", first_invalid_utf8(m), ")");
    out.append(",\"metadata\":");
    size_t at = out.size();
    out.append(m);
    // Raw line breaks can only be whitespace between tokens here (the check above refuses them in
    // strings); they would split the JSONL record, so they become spaces.
    for (size_t i = at; i < out.size(); ++i)
      if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
    while (out.back() == ' ' || out.back() == '\t') out.pop_back();
  }
  out.push_back('}');
}

DocumentWriter::DocumentWriter(const std::string& path, int zstd_level) : lines_(path, zstd_level) {}

void DocumentWriter::write(const Document& doc) {
  scratch_.clear();
  append_document_json(scratch_, doc);
  lines_.write_line(scratch_);
}

void DocumentWriter::write_line(std::string_view json_line) {
  // A raw CR would end the line for readers with universal newlines (Python's text mode).
  if (size_t cr = json_line.find('\r'); cr != std::string_view::npos)
    fail(path(), ": line ", lines_.lines_written() + 1, " contains a carriage return at byte ", cr,
         "; a JSONL record must be one line (escape it as \\r)");
  lines_.write_line(json_line);
}

void DocumentWriter::close() { lines_.close(); }

}  // namespace agpt::corpus
