// Small, strict JSON tools for the JSONL formats: writing string literals, reading values with
// their raw text kept (Dolma "metadata" passes through untouched), and UTF-8 validation.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::corpus {

// Appends s to out as a JSON string literal, quotes included. Escapes '"', '\\' and every control
// character below U+0020 (\n \t \r \b \f by name, the rest as \u00XX); everything else, including
// non-ASCII UTF-8 and U+2028/U+2029, is copied as is. s should be valid UTF-8 (see is_valid_utf8).
void append_json_string(std::string& out, std::string_view s);

// True when s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
// simdjson's validator: several GB/s.
bool is_valid_utf8(std::string_view s);

// Byte offset of the first invalid UTF-8 sequence in s, or s.size() when s is valid (slow; for
// error messages).
size_t first_invalid_utf8(std::string_view s);

// A strict reader of JSON text (RFC 8259 grammar) that moves through it value by value, so that
// callers can decode the values they need and keep others as raw text in one pass. The bytes of
// strings are scanned 16 at a time. UTF-8 is not checked here (use is_valid_utf8 on the whole).
// On a failure the reader stops and error() says what is wrong and at which byte.
class JsonCursor {
 public:
  explicit JsonCursor(std::string_view text, int max_depth = 1024) : text_(text), max_depth_(max_depth) {}

  size_t pos() const { return pos_; }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }  // after skip_ws: the next token
  void skip_ws();
  // Consumes c if it is the next byte.
  bool consume(char c);

  // Checks the value at pos and moves past it.
  bool skip_value();
  // Decodes the string literal at pos into out (replacing its content) and moves past it. An
  // escaped lone surrogate (\ud800 without its pair) is an error: it has no UTF-8 form.
  bool read_string(std::string& out);

  // Sets error() to "<what> at byte <pos>" and returns false.
  bool fail(const char* what);
  const std::string& error() const { return error_; }

  std::string_view text() const { return text_; }

 private:
  bool value(int depth);
  bool string(std::string* out);
  bool number();
  bool literal(std::string_view word);

  std::string_view text_;
  size_t pos_ = 0;
  int max_depth_;
  std::string error_;
  std::vector<std::string_view>* keys_ = nullptr;  // for json_syntax_error
  friend std::string json_syntax_error(std::string_view, std::vector<std::string_view>*, int);
};

// Checks that text is exactly one JSON value (surrounding whitespace allowed), nested at most
// max_depth deep. Returns "" when it is, otherwise what is wrong and at which byte. UTF-8 is not
// checked. When top_level_keys is given and the value is an object, it receives the raw (still
// escaped) text of each top-level key, without the quotes.
std::string json_syntax_error(std::string_view text, std::vector<std::string_view>* top_level_keys = nullptr,
                              int max_depth = 1024);

// Decodes the inside of a JSON string literal (no quotes). Returns false on a malformed escape.
// A \uXXXX escape of a lone surrogate becomes U+FFFD.
bool unescape_json_string(std::string_view raw, std::string& out);

}  // namespace agpt::corpus
