#include "corpus/json.h"

#include <simdjson.h>

#include <cstdint>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/error.h"

namespace agpt::corpus {

namespace {

// For each byte: 0 = copy as is, otherwise the letter after the backslash ('u' = \u00XX form).
struct EscapeTable {
  char code[256];
  constexpr EscapeTable() : code() {
    for (int c = 0; c < 0x20; ++c) code[c] = 'u';
    code['\n'] = 'n';
    code['\t'] = 't';
    code['\r'] = 'r';
    code['\b'] = 'b';
    code['\f'] = 'f';
    code['"'] = '"';
    code['\\'] = '\\';
  }
};
constexpr EscapeTable kEscape;

// The first byte at or after p that is '"', '\\' or a control character (< 0x20), or end.
// Strings are most of a document's bytes, so this runs 16 bytes at a time where it can.
inline const char* skip_plain(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), low = _mm_set1_epi8(0x1F);
  while (end - p >= 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                    _mm_cmpeq_epi8(_mm_max_epu8(x, low), low));  // x <= 0x1F
    int mask = _mm_movemask_epi8(special);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  for (; p < end; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\' || c < 0x20) return p;
  }
  return p;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The 4 hex digits at s[i..i+4) as a number, or -1.
int32_t hex4(std::string_view s, size_t i) {
  if (i + 4 > s.size()) return -1;
  int32_t v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    int h = hex_value(s[k]);
    if (h < 0) return -1;
    v = (v << 4) | h;
  }
  return v;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the escape at s[i] (just after the backslash). Appends to out (when given) and returns
// the index after the escape, or 0 when malformed; *lone is set for a lone surrogate.
size_t decode_escape(std::string_view s, size_t i, std::string* out, bool* lone) {
  if (i >= s.size()) return 0;
  char e = s[i];
  char c;
  switch (e) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
      int32_t cp = hex4(s, i + 1);
      if (cp < 0) return 0;
      size_t next = i + 5;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        int32_t lo = next + 1 < s.size() && s[next] == '\\' && s[next + 1] == 'u' ? hex4(s, next + 2) : -1;
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          next += 6;
        } else {
          *lone = true;
          cp = 0xFFFD;
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        *lone = true;
        cp = 0xFFFD;
      }
      if (out) append_utf8(*out, static_cast<uint32_t>(cp));
      return next;
    }
    default: return 0;
  }
  if (out) out->push_back(c);
  return i + 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writing

void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  const char* data = s.data();
  const char* end = data + s.size();
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    i = static_cast<size_t>(skip_plain(data + i, end) - data);
    if (i == s.size()) break;
    char code = kEscape.code[static_cast<unsigned char>(data[i])];
    out.append(data + run, i - run);
    run = i + 1;
    out.push_back('\\');
    out.push_back(code);
    if (code == 'u') {
      unsigned char c = static_cast<unsigned char>(data[i]);
      out.append("00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  out.append(data + run, s.size() - run);
  out.push_back('"');
}

// ---------------------------------------------------------------------------------------------
// UTF-8

bool is_valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

size_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// JsonCursor

void JsonCursor::skip_ws() {
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    ++pos_;
  }
}

bool JsonCursor::consume(char c) {
  if (pos_ < text_.size() && text_[pos_] == c) {
    ++pos_;
    return true;
  }
  return false;
}

bool JsonCursor::fail(const char* what) {
  error_ = cat(what, " at byte ", pos_);
  return false;
}

bool JsonCursor::skip_value() { return value(0); }

bool JsonCursor::read_string(std::string& out) {
  out.clear();
  return string(&out);
}

bool JsonCursor::literal(std::string_view word) {
  if (text_.substr(pos_, word.size()) != word) return fail("invalid literal");
  pos_ += word.size();
  return true;
}

bool JsonCursor::number() {
  size_t n = text_.size();
  if (pos_ < n && text_[pos_] == '-') ++pos_;
  if (pos_ == n || !is_digit(text_[pos_])) return fail("invalid number");
  if (text_[pos_] == '0') {
    ++pos_;
  } else {
    while (pos_ < n && is_digit(text_[pos_])) ++pos_;
  }
  if (pos_ < n && text_[pos_] == '.') {
    ++pos_;
    if (pos_ == n || !is_digit(text_[pos_])) return fail("invalid number (no digit after '.')");
    while (pos_ < n && is_digit(text_[pos_])) ++pos_;
  }
  if (pos_ < n && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < n && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    if (pos_ == n || !is_digit(text_[pos_])) return fail("invalid number (no digit in exponent)");
    while (pos_ < n && is_digit(text_[pos_])) ++pos_;
  }
  return true;
}

// At the opening quote; leaves pos_ after the closing one. Appends the decoded content to out
// when given (then lone surrogates are an error; when only checking, they are valid JSON).
bool JsonCursor::string(std::string* out) {
  const char* base = text_.data();
  const char* end = base + text_.size();
  size_t run = ++pos_;  // first byte not yet copied to out
  while (true) {
    pos_ = static_cast<size_t>(skip_plain(base + pos_, end) - base);
    if (pos_ == text_.size()) return fail("unterminated string");
    char c = text_[pos_];
    if (c == '"') break;
    if (c != '\\') return fail("unescaped control character in string");
    if (out) out->append(base + run, pos_ - run);
    bool lone = false;
    size_t next = decode_escape(text_, pos_ + 1, out, &lone);
    if (next == 0) return fail("invalid escape in string");
    if (lone && out) return fail("lone surrogate escape in string (\\ud800-\\udfff without its pair)");
    pos_ = run = next;
  }
  if (out) out->append(base + run, pos_ - run);
  ++pos_;
  return true;
}

bool JsonCursor::value(int depth) {
  if (pos_ >= text_.size()) return fail("missing value");
  switch (text_[pos_]) {
    case '{': {
      if (depth >= max_depth_) return fail("nested too deeply");
      ++pos_;
      skip_ws();
      if (consume('}')) return true;
      while (true) {
        if (peek() != '"') return fail("expected a string key");
        size_t key_start = pos_ + 1;
        if (!string(nullptr)) return false;
        if (depth == 0 && keys_) keys_->push_back(text_.substr(key_start, pos_ - 1 - key_start));
        skip_ws();
        if (!consume(':')) return fail("expected ':'");
        skip_ws();
        if (!value(depth + 1)) return false;
        skip_ws();
        if (consume(',')) {
          skip_ws();
          continue;
        }
        if (consume('}')) return true;
        return fail("expected ',' or '}'");
      }
    }
    case '[': {
      if (depth >= max_depth_) return fail("nested too deeply");
      ++pos_;
      skip_ws();
      if (consume(']')) return true;
      while (true) {
        if (!value(depth + 1)) return false;
        skip_ws();
        if (consume(',')) {
          skip_ws();
          continue;
        }
        if (consume(']')) return true;
        return fail("expected ',' or ']'");
      }
    }
    case '"': return string(nullptr);
    case 't': return literal("true");
    case 'f': return literal("false");
    case 'n': return literal("null");
    default: return number();
  }
}

std::string json_syntax_error(std::string_view text, std::vector<std::string_view>* top_level_keys, int max_depth) {
  JsonCursor c(text, max_depth);
  c.keys_ = top_level_keys;
  c.skip_ws();
  if (!c.skip_value()) return c.error();
  c.skip_ws();
  if (!c.at_end()) {
    c.fail("unexpected content after the JSON value");
    return c.error();
  }
  return "";
}

bool unescape_json_string(std::string_view raw, std::string& out) {
  out.clear();
  out.reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    size_t bs = raw.find('\\', i);
    if (bs == std::string_view::npos) bs = raw.size();
    out.append(raw.data() + i, bs - i);
    if (bs == raw.size()) break;
    bool lone = false;
    i = decode_escape(raw, bs + 1, &out, &lone);
    if (i == 0) return false;
  }
  return true;
}

}  // namespace agpt::corpus
