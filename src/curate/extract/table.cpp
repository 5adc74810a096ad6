#include "curate/extract/table.h"

#include <nlohmann/json.hpp>

#include <unordered_map>

#include "base/error.h"
#include "corpus/json.h"

namespace agpt::curate::extract {
namespace {

constexpr size_t kMaxErrors = 10;

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

// Unique column names: a repeated header gets "_2", "_3", ...
void dedupe_columns(std::vector<std::string>& cols) {
  std::unordered_map<std::string, int> seen;
  for (auto& c : cols) {
    if (c.empty()) c = "column";
    int n = ++seen[c];
    if (n > 1) c += "_" + std::to_string(n);
  }
}

// One record of delimited text starting at data[i]; i moves past its line end.
// Returns false on an unclosed quote (i at the end).
bool read_record(std::string_view data, size_t& i, char delim, std::vector<std::string>& fields, uint64_t& line) {
  fields.clear();
  std::string field;
  while (true) {
    // Start of a field.
    size_t j = i;
    while (j < data.size() && (data[j] == ' ' || (data[j] == '\t' && delim != '\t'))) ++j;
    if (j < data.size() && data[j] == '"') {
      field.clear();
      size_t k = j + 1;
      while (true) {
        if (k >= data.size()) {
          i = data.size();
          return false;
        }
        if (data[k] == '"') {
          if (k + 1 < data.size() && data[k + 1] == '"') {
            field += '"';
            k += 2;
            continue;
          }
          ++k;
          break;
        }
        if (data[k] == '\n') ++line;
        field += data[k++];
      }
      // Anything between the closing quote and the delimiter is kept (lenient, like most readers).
      while (k < data.size() && data[k] != delim && data[k] != '\n') {
        if (data[k] != '\r' && data[k] != ' ') field += data[k];
        ++k;
      }
      i = k;
    } else {
      size_t k = i;
      while (k < data.size() && data[k] != delim && data[k] != '\n') ++k;
      field = trim(data.substr(i, k - i));
      i = k;
    }
    fields.push_back(std::move(field));
    field.clear();
    if (i >= data.size()) return true;
    if (data[i] == delim) {
      ++i;
      continue;
    }
    ++i;  // '\n'
    return true;
  }
}

bool blank(std::string_view data, size_t i) {
  while (i < data.size() && data[i] != '\n') {
    if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r') return false;
    ++i;
  }
  return true;
}

// Flattens a JSON value into columns of row (see parse_json_records).
void flatten(const nlohmann::ordered_json& v, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out,
             int depth) {
  if (v.is_null()) return;
  if (v.is_object() && depth < 16) {
    for (auto it = v.begin(); it != v.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out, depth + 1);
    return;
  }
  std::string s;
  if (v.is_string()) {
    s = v.get<std::string>();
  } else if (v.is_array()) {
    bool scalars = true;
    for (const auto& e : v) scalars = scalars && !e.is_structured();
    if (scalars) {
      for (const auto& e : v) {
        if (e.is_null()) continue;
        if (!s.empty()) s += ", ";
        s += e.is_string() ? e.get<std::string>() : e.dump();
      }
    } else {
      s = v.dump();
    }
  } else {
    s = v.dump();  // numbers as written by the reader, true/false
  }
  out.emplace_back(prefix.empty() ? "value" : prefix, std::move(s));
}

void add_json_record(Table& t, std::unordered_map<std::string, size_t>& index, const nlohmann::ordered_json& obj,
                     uint64_t line) {
  std::vector<std::pair<std::string, std::string>> kv;
  flatten(obj, "", kv, 0);
  Table::Row row;
  row.line = line;
  row.values.assign(t.columns.size(), "");
  for (auto& [k, v] : kv) {
    auto it = index.find(k);
    size_t c;
    if (it == index.end()) {
      c = t.columns.size();
      index.emplace(k, c);
      t.columns.push_back(k);
      for (auto& r : t.rows) r.values.emplace_back();
      row.values.emplace_back();
    } else {
      c = it->second;
    }
    row.values[c] = std::move(v);
  }
  t.rows.push_back(std::move(row));
}

}  // namespace

void Table::add_error(uint64_t line, const std::string& what) {
  ++bad_rows;
  if (errors.size() < kMaxErrors) errors.push_back(cat("line ", line, ": ", what));
}

Table parse_delimited(std::string_view data, char delim) {
  Table t;
  size_t i = 0;
  uint64_t line = 1;
  std::vector<std::string> fields;
  // Header: the first non-blank line.
  while (i < data.size() && blank(data, i)) {
    size_t nl = data.find('\n', i);
    i = nl == std::string_view::npos ? data.size() : nl + 1;
    ++line;
  }
  if (i >= data.size()) {
    t.failure = "no header line (empty file)";
    return t;
  }
  uint64_t header_line = line;
  if (!read_record(data, i, delim, fields, line)) {
    t.failure = cat("line ", header_line, ": the header has an unclosed quote");
    return t;
  }
  ++line;
  if (!corpus::is_valid_utf8(data.substr(0, i))) {
    t.failure = cat("line ", header_line, ": the header is not valid UTF-8 (convert the file, e.g. iconv -t UTF-8)");
    return t;
  }
  t.columns = fields;
  dedupe_columns(t.columns);
  while (i < data.size()) {
    if (blank(data, i)) {
      size_t nl = data.find('\n', i);
      i = nl == std::string_view::npos ? data.size() : nl + 1;
      ++line;
      continue;
    }
    uint64_t start_line = line;
    size_t start = i;
    bool closed = read_record(data, i, delim, fields, line);
    ++line;
    if (!closed) {
      t.add_error(start_line, "unclosed quote; the rest of the file is skipped");
      break;
    }
    if (!corpus::is_valid_utf8(data.substr(start, i - start))) {
      t.add_error(start_line, "not valid UTF-8");
      continue;
    }
    if (fields.size() != t.columns.size()) {
      t.add_error(start_line, cat("expected ", t.columns.size(), " fields (as the header), found ", fields.size()));
      continue;
    }
    t.rows.push_back({start_line, fields});
  }
  return t;
}

Table parse_json_records(std::string_view data, bool lines) {
  Table t;
  std::unordered_map<std::string, size_t> index;
  if (!lines) {
    nlohmann::ordered_json v = nlohmann::ordered_json::parse(data, nullptr, false);
    if (v.is_discarded()) {
      t.failure = "not valid JSON (for one record per line, name the file .jsonl)";
      return t;
    }
    if (v.is_object()) {
      add_json_record(t, index, v, 1);
    } else if (v.is_array()) {
      uint64_t n = 0;
      for (const auto& e : v) {
        ++n;
        if (!e.is_object()) {
          t.add_error(n, "record is not a JSON object");
          continue;
        }
        add_json_record(t, index, e, n);
      }
    } else {
      t.failure = "the JSON value is neither an object nor an array of objects";
    }
    for (size_t k = 0; k < t.errors.size(); ++k) t.errors[k].replace(0, 4, "record");
    return t;
  }
  size_t i = 0;
  uint64_t line = 0;
  while (i < data.size()) {
    size_t nl = data.find('\n', i);
    if (nl == std::string_view::npos) nl = data.size();
    std::string_view l = data.substr(i, nl - i);
    i = nl + 1;
    ++line;
    if (trim(l).empty()) continue;
    if (!corpus::is_valid_utf8(l)) {
      t.add_error(line, "not valid UTF-8");
      continue;
    }
    nlohmann::ordered_json v = nlohmann::ordered_json::parse(l, nullptr, false);
    if (v.is_discarded()) {
      t.add_error(line, "invalid JSON");
      continue;
    }
    if (!v.is_object()) {
      t.add_error(line, "not a JSON object");
      continue;
    }
    add_json_record(t, index, v, line);
  }
  return t;
}

}  // namespace agpt::curate::extract
