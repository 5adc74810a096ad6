#include "corpus/reader.h"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "base/error.h"
#include "corpus/json.h"

namespace agpt::corpus {

namespace {

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

// What a JSON value is, from its first byte (the cursor checks the rest).
const char* type_name(char first) {
  switch (first) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// DocumentParser
//
// Why not simdjson's parsers here (it is still the UTF-8 validator): On Demand does not check the
// values and structure it skips, so a line like {"text":"a","x":"k":[1]} was accepted (found by
// the mutation test); its DOM parser checks everything but refuses integers beyond 64 bits, which
// appear in real metadata, and cannot give back the raw text of "metadata". Both stop at 4 GiB
// and need about 5 bytes of index per byte of line. The grammar pass below scans strings 16 bytes
// at a time and measured faster than On Demand on typical documents (bench/corpus_read.cpp);
// the mutation test checks that it accepts exactly what simdjson's DOM parser accepts.

struct DocumentParser::Impl {
  struct Extra {
    std::string key;
    std::string_view raw;
  };
  std::string key;
  std::vector<Extra> extras;
  std::vector<std::string_view> meta_keys;
  std::vector<std::string> names;
  std::string scratch;
};

DocumentParser::DocumentParser() : impl_(std::make_unique<Impl>()) {}
DocumentParser::~DocumentParser() = default;

bool DocumentParser::parse(std::string_view line, Document& doc, std::string& reason, std::string& detail) {
  Impl& m = *impl_;
  doc.id.clear();
  doc.text.clear();
  doc.source.clear();
  doc.added.clear();
  doc.created.clear();
  doc.metadata_json.clear();
  m.extras.clear();

  auto bad = [&](const char* why, std::string what) {
    reason = why;
    detail = std::move(what);
    return false;
  };
  if (!is_valid_utf8(line))
    return bad(reason::kInvalidUtf8,
               cat("the line is not valid UTF-8: bad byte sequence at byte ", first_invalid_utf8(line)));

  JsonCursor c(line);
  auto invalid = [&] { return bad(reason::kInvalidJson, c.error()); };
  c.skip_ws();
  if (c.peek() != '{') {
    if (c.at_end()) return bad(reason::kInvalidJson, "no JSON value");
    std::string err = json_syntax_error(line);
    if (!err.empty()) return bad(reason::kInvalidJson, err);
    return bad(reason::kNotObject, cat("the line is ", type_name(c.peek()), "; each line must be a JSON object {...}"));
  }
  c.consume('{');
  c.skip_ws();

  bool seen_text = false, seen_id = false, seen_source = false, seen_added = false, seen_created = false,
       seen_meta = false;
  std::string_view meta_raw;
  auto duplicate = [&](bool& seen, const char* field) {
    if (!seen) {
      seen = true;
      return false;
    }
    bad(reason::kDuplicateField, cat("\"", field, "\" appears twice"));
    return true;
  };
  // The raw text of the value at the cursor, checked.
  auto raw_value = [&](std::string_view& raw) {
    size_t start = c.pos();
    if (!c.skip_value()) return false;
    raw = line.substr(start, c.pos() - start);
    return true;
  };
  // source/added/created: a string, null (empty), or a number/boolean kept as its JSON text.
  auto string_field = [&](std::string& out, const char* field) {
    char first = c.peek();
    if (first == '"') return c.read_string(out) || invalid();
    if (first == '{' || first == '[')
      return bad(reason::kFieldNotString, cat("\"", field, "\" is ", type_name(first), ", expected a string"));
    std::string_view raw;
    if (!raw_value(raw)) return invalid();
    if (first != 'n') out.assign(raw);
    return true;
  };

  if (!c.consume('}')) {
    while (true) {
      if (c.peek() != '"') {
        c.fail("expected a string key");
        return invalid();
      }
      if (!c.read_string(m.key)) return invalid();
      c.skip_ws();
      if (!c.consume(':')) {
        c.fail("expected ':'");
        return invalid();
      }
      c.skip_ws();
      const std::string& key = m.key;
      char first = c.peek();
      if (key == "text") {
        if (duplicate(seen_text, "text")) return false;
        if (first != '"') {
          if (!c.skip_value()) return invalid();  // a broken line is "invalid JSON" first
          return bad(reason::kTextNotString, cat("\"text\" is ", type_name(first), ", expected a string"));
        }
        doc.text.reserve(line.size());  // one allocation, even for a 100 MB text
        if (!c.read_string(doc.text)) return invalid();
      } else if (key == "id") {
        if (duplicate(seen_id, "id")) return false;
        if (first == '"') {
          if (!c.read_string(doc.id)) return invalid();
        } else {
          std::string_view raw;
          if (!raw_value(raw)) return invalid();
          if (first == '{' || first == '[' || first == 't' || first == 'f')
            return bad(reason::kBadId, cat("\"id\" is ", type_name(first), ", expected a string or a number"));
          if (first != 'n') doc.id.assign(raw);
        }
      } else if (key == "source") {
        if (duplicate(seen_source, "source") || !string_field(doc.source, "source")) return false;
      } else if (key == "added") {
        if (duplicate(seen_added, "added") || !string_field(doc.added, "added")) return false;
      } else if (key == "created") {
        if (duplicate(seen_created, "created") || !string_field(doc.created, "created")) return false;
      } else if (key == "metadata") {
        if (duplicate(seen_meta, "metadata")) return false;
        std::string_view raw;
        if (!raw_value(raw)) return invalid();
        if (first == '{') meta_raw = raw;
        else if (first != 'n')
          return bad(reason::kMetadataNotObject, cat("\"metadata\" is ", type_name(first), ", expected an object"));
      } else {
        std::string_view raw;
        if (!raw_value(raw)) return invalid();
        m.extras.push_back({key, raw});
      }
      c.skip_ws();
      if (c.consume(',')) {
        c.skip_ws();
        continue;
      }
      if (c.consume('}')) break;
      c.fail("expected ',' or '}'");
      return invalid();
    }
  }
  c.skip_ws();
  if (!c.at_end()) {
    c.fail("unexpected content after the object");
    return invalid();
  }
  if (!seen_text) return bad(reason::kMissingText, "no \"text\" field");

  if (m.extras.empty()) {
    doc.metadata_json.assign(meta_raw);
    return true;
  }
  // Fold the other top-level fields into metadata, after its own keys.
  m.meta_keys.clear();
  if (!meta_raw.empty()) json_syntax_error(meta_raw, &m.meta_keys);  // checked above: only the keys
  m.names.clear();
  for (std::string_view k : m.meta_keys) {
    if (k.find('\\') == std::string_view::npos) {
      m.names.emplace_back(k);
    } else {
      unescape_json_string(k, m.scratch);
      m.names.push_back(m.scratch);
    }
  }
  std::string& out = doc.metadata_json;
  bool need_comma = false;
  if (meta_raw.empty()) {
    out = "{";
  } else {
    std::string_view body = meta_raw.substr(0, meta_raw.size() - 1);  // without '}'
    while (body.back() == ' ' || body.back() == '\t' || body.back() == '\r' || body.back() == '\n') body.remove_suffix(1);
    out.assign(body);
    need_comma = body.back() != '{';
  }
  for (const auto& x : m.extras) {
    std::string name = x.key;
    while (std::find(m.names.begin(), m.names.end(), name) != m.names.end()) name += "_toplevel";
    if (need_comma) out.push_back(',');
    append_json_string(out, name);
    out.push_back(':');
    out.append(x.raw);
    need_comma = true;
    m.names.push_back(std::move(name));
  }
  out.push_back('}');
  return true;
}

// ---------------------------------------------------------------------------------------------
// DocumentReader

DocumentReader::DocumentReader(std::vector<std::string> inputs, OnError on_error) : on_error_(on_error) {
  if (inputs.empty()) fail("no input files given");
  inputs_ = expand_input_files(inputs);
  for (const auto& f : inputs_) {
    paths_.push_back(f.path);
    std::error_code ec;
    auto size = std::filesystem::file_size(f.path, ec);
    if (!ec) total_compressed_ += size;
  }
}

DocumentReader::~DocumentReader() = default;

uint64_t DocumentReader::bytes_read_compressed() const {
  return done_compressed_ + (lines_ ? lines_->bytes_read_compressed() : 0);
}

void DocumentReader::skip(const char* why, const std::string& where, const std::string& detail) {
  std::string message = cat(where, ": ", why, " (", detail, ")");
  report_.add_skip(why, message);
  if (on_error_ == OnError::kFail) throw Error(message);
}

void DocumentReader::finish_file() {
  // The whole file counts as done, also when damage stopped the reading early.
  done_compressed_ += std::max(lines_->file_size(), lines_->bytes_read_compressed());
  done_bytes_ += lines_->bytes_consumed();
  report_.bytes = done_bytes_;
  lines_.reset();
}

bool DocumentReader::next_text_file(const InputFile& file, Document& doc) {
  ++report_.lines;
  std::string data;
  try {
    data = read_decompressed(file.path);
  } catch (const StreamError& e) {
    std::error_code ec;
    auto size = std::filesystem::file_size(file.path, ec);
    done_compressed_ += ec ? 0 : size;
    skip(e.kind() == StreamError::Kind::kTruncated ? reason::kTruncated : reason::kCorrupt, file.path,
         cat(e.problem(), ": ", e.detail()));
    return false;
  }
  std::error_code ec;
  auto size = std::filesystem::file_size(file.path, ec);
  done_compressed_ += ec ? 0 : size;
  done_bytes_ += data.size();
  report_.bytes = done_bytes_;
  if (data.size() >= 3 && data.compare(0, 3, "\xEF\xBB\xBF") == 0) data.erase(0, 3);
  if (!is_valid_utf8(data)) {
    size_t at = first_invalid_utf8(data);
    skip(reason::kInvalidUtf8, file.path,
         cat("bad byte sequence at byte ", at, "; convert the file to UTF-8, e.g. with iconv"));
    return false;
  }
  doc.id = file.name;
  doc.text = std::move(data);
  doc.source = "file";
  doc.added.clear();
  doc.created.clear();
  doc.metadata_json.clear();
  doc.origin = file.path;
  ++report_.documents;
  return true;
}

bool DocumentReader::next(Document& doc) {
  while (true) {
    if (!lines_) {
      if (next_file_ >= inputs_.size()) return false;
      const InputFile& file = inputs_[next_file_++];
      ++report_.files;
      if (file.kind == InputKind::kText) {
        if (next_text_file(file, doc)) return true;
        continue;
      }
      lines_ = std::make_unique<LineReader>(file.path);
    }
    std::string_view line;
    bool got;
    try {
      got = lines_->next(line);
    } catch (const StreamError& e) {
      // The lost tail of the file counts as one skipped line.
      ++report_.lines;
      finish_file();
      std::string message = e.what();
      report_.add_skip(e.kind() == StreamError::Kind::kTruncated ? reason::kTruncated : reason::kCorrupt, message);
      if (on_error_ == OnError::kFail) throw Error(message);
      continue;
    }
    if (!got) {
      finish_file();
      continue;
    }
    ++report_.lines;
    report_.bytes = done_bytes_ + lines_->bytes_consumed();
    if (is_blank(line)) {
      ++report_.blank_lines;
      continue;
    }
    if (parser_.parse(line, doc, reason_, detail_)) {
      const std::string& path = lines_->path();
      char num[24];
      auto [end, ec] = std::to_chars(num, num + sizeof num, lines_->line_number());
      doc.origin.assign(path);
      doc.origin.push_back(':');
      doc.origin.append(num, end);
      ++report_.documents;
      return true;
    }
    skip(reason_.c_str(), cat(lines_->path(), ":", lines_->line_number()), detail_);
  }
}

}  // namespace agpt::corpus
