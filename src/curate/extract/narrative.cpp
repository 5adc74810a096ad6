#include "curate/extract/narrative.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "base/error.h"

namespace agpt::curate::extract {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Column names read as words: "melting_point" -> "melting point".
std::string spoken(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (c == '_') c = ' ';
  return trim(s);
}

bool parse_number(const std::string& v, double& out) {
  std::string t = trim(v);
  if (t.empty()) return false;
  const char* b = t.data();
  if (*b == '+') ++b;
  auto [p, ec] = std::from_chars(b, t.data() + t.size(), out);
  return ec == std::errc() && p == t.data() + t.size() && std::isfinite(out);
}

bool has_letter(const std::string& s) {
  for (unsigned char c : s)
    if (std::isalpha(c) || c >= 0x80) return true;
  return false;
}

std::string article(const std::string& word) {
  if (word.empty()) return "a ";
  char c = static_cast<char>(std::tolower(static_cast<unsigned char>(word[0])));
  return (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') ? "an " : "a ";
}

NumberFormat parse_format(const std::string& f, const std::string& where) {
  NumberFormat nf;
  std::string s = trim(f);
  if (s == "%d") {
    nf.conversion = 'd';
    return nf;
  }
  if (s.size() >= 4 && s[0] == '%' && s[1] == '.' && (s.back() == 'f' || s.back() == 'e' || s.back() == 'g')) {
    std::string digits = s.substr(2, s.size() - 3);
    int p = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
    if (ec == std::errc() && ptr == digits.data() + digits.size() && p >= 0 && p <= 17) {
      nf.conversion = s.back();
      nf.precision = p;
      return nf;
    }
  }
  fail(where, ": number format '", s, "' is not one of %.Nf, %.Ne, %.Ng (N = 0..17) or %d");
}

}  // namespace

ColumnName split_unit(std::string_view header) {
  std::string h = trim(header);
  if (h.size() >= 3 && (h.back() == ')' || h.back() == ']')) {
    char open = h.back() == ')' ? '(' : '[';
    size_t p = h.rfind(open);
    if (p != std::string::npos && p > 0) {
      std::string name = trim(std::string_view(h).substr(0, p));
      std::string unit = trim(std::string_view(h).substr(p + 1, h.size() - p - 2));
      if (!name.empty() && !unit.empty()) return {name, unit};
    }
  }
  return {h, ""};
}

NarrativeTemplate parse_template(std::string_view text, const std::string& origin) {
  NarrativeTemplate t;
  size_t i = 0;
  int line = 0;
  bool in_body = false;
  std::string body;
  while (i <= text.size()) {
    size_t nl = text.find('\n', i);
    if (nl == std::string_view::npos) nl = text.size();
    std::string l(text.substr(i, nl - i));
    if (!l.empty() && l.back() == '\r') l.pop_back();
    i = nl + 1;
    ++line;
    if (in_body) {
      body += l + "\n";
      continue;
    }
    std::string tl = trim(l);
    if (tl.empty() || tl[0] == '#') continue;
    if (tl == "---") {
      in_body = true;
      continue;
    }
    std::string where = cat(origin, ":", line);
    size_t colon = tl.find(':');
    if (colon == std::string::npos)
      fail(where, ": expected 'directive: value' or '---' before the template text (see docs/extract.md)");
    std::string head = trim(std::string_view(tl).substr(0, colon));
    std::string value = trim(std::string_view(tl).substr(colon + 1));
    size_t sp = head.find(' ');
    std::string directive = sp == std::string::npos ? head : head.substr(0, sp);
    std::string column = sp == std::string::npos ? "" : trim(std::string_view(head).substr(sp + 1));
    bool needs_column = directive == "unit" || directive == "format" || directive == "name";
    if (needs_column && column.empty()) fail(where, ": '", directive, "' needs a column: '", directive, " COLUMN: value'");
    if (directive == "key") {
      t.key = value;
    } else if (directive == "unit") {
      t.units[column] = value;
    } else if (directive == "name") {
      t.names[column] = value;
    } else if (directive == "format") {
      t.formats[column] = parse_format(value, where);
    } else if (directive == "skip") {
      size_t b = 0;
      while (b <= value.size()) {
        size_t c = value.find(',', b);
        if (c == std::string::npos) c = value.size();
        std::string col = trim(std::string_view(value).substr(b, c - b));
        if (!col.empty()) t.skip.push_back(col);
        b = c + 1;
      }
    } else if (directive == "template") {
      body += value + "\n";  // a one-line template without '---'
    } else {
      fail(where, ": unknown directive '", directive, "' (known: key, unit, name, format, skip, template, ---)");
    }
  }
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
  t.body = body;
  return t;
}

Narrator::Narrator(const NarrativeTemplate& tmpl, const std::vector<std::string>& columns) : tmpl_(tmpl) {
  for (const auto& c : columns) cols_.push_back(split_unit(c));
  const std::vector<ColumnName> original = cols_;  // placeholders name columns as the data does
  // Looks a column up by its name (without unit), its header, either in any case.
  auto find = [&](const std::string& want) -> int {
    for (int pass = 0; pass < 2; ++pass)
      for (size_t k = 0; k < original.size(); ++k) {
        std::string a = pass ? lower(original[k].name) : original[k].name;
        std::string b = pass ? lower(columns[k]) : columns[k];
        std::string w = pass ? lower(want) : want;
        if (a == w || trim(b) == w) return static_cast<int>(k);
      }
    return -1;
  };
  auto known = [&] {
    std::string s;
    for (const auto& c : original) s += (s.empty() ? "" : ", ") + c.name;
    return s;
  };
  auto require = [&](const std::string& want, const char* what) {
    int k = find(want);
    if (k < 0) fail("template ", what, " names column '", want, "', which the data does not have (columns: ", known(), ")");
    return static_cast<size_t>(k);
  };
  formats_.assign(cols_.size(), NumberFormat{});
  skipped_.assign(cols_.size(), false);
  for (const auto& [c, u] : tmpl.units) cols_[require(c, "unit")].unit = u;
  for (const auto& [c, f] : tmpl.formats) formats_[require(c, "format")] = f;
  for (const auto& c : tmpl.skip) skipped_[require(c, "skip")] = true;
  if (!tmpl.key.empty()) key_ = require(tmpl.key, "key");
  for (const auto& [c, n] : tmpl.names) cols_[require(c, "name")].name = n;

  // The body: lines of literals and placeholders.
  size_t i = 0;
  const std::string& b = tmpl.body;
  while (i < b.size()) {
    size_t nl = b.find('\n', i);
    if (nl == std::string::npos) nl = b.size();
    std::string_view l = std::string_view(b).substr(i, nl - i);
    i = nl + 1;
    std::vector<Piece> pieces;
    size_t p = 0;
    while (p < l.size()) {
      size_t open = l.find("{{", p);
      if (open == std::string_view::npos) {
        pieces.push_back({std::string(l.substr(p)), -1});
        break;
      }
      size_t close = l.find("}}", open + 2);
      if (close == std::string_view::npos) fail("template line '", l, "': '{{' without '}}'");
      Piece piece{std::string(l.substr(p, open - p)), -1};
      std::string ph = trim(l.substr(open + 2, close - open - 2));
      size_t colon = ph.rfind(':');
      std::string col = ph, part;
      if (colon != std::string::npos) {
        part = trim(std::string_view(ph).substr(colon + 1));
        col = trim(std::string_view(ph).substr(0, colon));
        if (part == "value") piece.what = Piece::kValue;
        else if (part == "unit") piece.what = Piece::kUnit;
        else if (part == "name") piece.what = Piece::kName;
        else col = ph, part.clear();  // a ':' that is part of the column name
      }
      piece.column = static_cast<int>(require(col, "placeholder"));
      pieces.push_back(std::move(piece));
      p = close + 2;
    }
    lines_.push_back(std::move(pieces));
  }
}

std::string Narrator::value_text(size_t k, const std::string& v, bool with_unit) const {
  std::string s = trim(v);
  const NumberFormat& f = formats_[k];
  double x;
  if (f.conversion && parse_number(s, x)) {
    char buf[64];
    if (f.conversion == 'd') std::snprintf(buf, sizeof buf, "%.0f", std::round(x));
    else if (f.conversion == 'f') std::snprintf(buf, sizeof buf, "%.*f", f.precision, x);
    else if (f.conversion == 'e') std::snprintf(buf, sizeof buf, "%.*e", f.precision, x);
    else std::snprintf(buf, sizeof buf, "%.*g", f.precision, x);
    s = buf;
  }
  if (with_unit && !cols_[k].unit.empty()) {
    // "%" and a plain "°" (angle) sit next to the number; other units, °C included, after a space
    // (SI writing rules).
    const std::string& u = cols_[k].unit;
    s += (u == "%" || u == "°" || u == "‰") ? u : " " + u;
  }
  return s;
}

std::string Narrator::render(const std::vector<std::string>& values) const {
  auto get = [&](size_t k) -> const std::string& {
    static const std::string empty;
    return k < values.size() ? values[k] : empty;
  };
  std::string out;
  if (lines_.empty()) {
    // The default sentence: "<key> has a <col> of <value unit>, ... and a <col> of <value unit>."
    std::string subject = trim(get(key_));
    if (!has_letter(subject)) subject = spoken(cols_[key_].name) + (subject.empty() ? "" : " " + subject);
    if (!subject.empty()) subject[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(subject[0])));
    std::vector<std::string> facts;
    for (size_t k = 0; k < cols_.size(); ++k) {
      if (k == key_ || skipped_[k] || trim(get(k)).empty()) continue;
      std::string name = spoken(cols_[k].name);
      facts.push_back(article(name) + name + " of " + value_text(k, get(k), true));
    }
    if (facts.empty()) return subject.empty() ? "" : subject + ".";
    out = subject + " has ";
    for (size_t f = 0; f < facts.size(); ++f) {
      if (f > 0) out += f + 1 == facts.size() ? " and " : ", ";
      out += facts[f];
    }
    return out + ".";
  }
  bool paragraph = false;
  for (const auto& pieces : lines_) {
    if (pieces.empty() || (pieces.size() == 1 && pieces[0].column < 0 && trim(pieces[0].literal).empty())) {
      paragraph = !out.empty();
      continue;
    }
    std::string line;
    bool missing = false;
    for (const auto& p : pieces) {
      line += p.literal;
      if (p.column < 0) continue;
      size_t k = static_cast<size_t>(p.column);
      if (p.what == Piece::kName) {
        line += cols_[k].name;
        continue;
      }
      if (p.what == Piece::kUnit) {
        line += cols_[k].unit;
        continue;
      }
      if (trim(get(k)).empty()) {
        missing = true;
        break;
      }
      line += value_text(k, get(k), p.what == Piece::kValueWithUnit);
    }
    line = trim(line);
    if (missing || line.empty()) continue;
    if (!out.empty()) out += paragraph ? "\n\n" : " ";
    paragraph = false;
    out += line;
  }
  return out;
}

}  // namespace agpt::curate::extract
