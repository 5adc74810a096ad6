// Character classes the pre-tokenizer patterns need (letters, numbers, marks, White_Space, the
// upper/lower sets of o200k), looked up in a two-stage table built once from utf8proc, and a
// tolerant UTF-8 decoder (an invalid byte reads as one character of class 0, "other").
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace agpt::text {

// Bits of a character's class.
enum CharClass : uint8_t {
  kClsLetter = 1,     // \p{L}: Lu Ll Lt Lm Lo
  kClsNumber = 2,     // \p{N}: Nd Nl No
  kClsMark = 4,       // \p{M}: Mn Mc Me
  kClsSpace = 8,      // \s: the Unicode White_Space property (as Rust's regex, hence tiktoken)
  kClsNewline = 16,   // \r or \n
  kClsUpperSet = 32,  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k)
  kClsLowerSet = 64,  // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k)
};

// The class table: class_of(cp) for any code point 0..0x10FFFF.
class UnicodeClasses {
 public:
  static const UnicodeClasses& get();
  uint8_t of(uint32_t cp) const {
    return cp < 0x110000 ? blocks_[static_cast<size_t>(index_[cp >> 8]) * 256 + (cp & 255)] : 0;
  }
  uint8_t ascii(unsigned char c) const { return blocks_[c]; }  // block 0 holds U+0000..U+00FF

 private:
  UnicodeClasses();
  uint16_t index_[0x1100];
  uint8_t* blocks_;
};

// Decodes one UTF-8 character at p (avail > 0 bytes). Returns its length (1..4) and sets cp;
// for an invalid or truncated sequence returns 1 and sets cp = kInvalidCodePoint.
constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;
inline __attribute__((always_inline)) size_t decode_utf8(const unsigned char* p, size_t avail, uint32_t& cp) {
  unsigned c0 = p[0];
  if (c0 < 0x80) {
    cp = c0;
    return 1;
  }
  cp = kInvalidCodePoint;
  if (c0 < 0xC2) return 1;
  if (c0 < 0xE0) {
    if (avail < 2 || (p[1] & 0xC0) != 0x80) return 1;
    cp = ((c0 & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (c0 < 0xF0) {
    if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 1;
    uint32_t v = ((c0 & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (v < 0x800 || (v >= 0xD800 && v < 0xE000)) return 1;
    cp = v;
    return 3;
  }
  if (c0 < 0xF5) {
    if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 1;
    uint32_t v = ((c0 & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    if (v < 0x10000 || v > 0x10FFFF) return 1;
    cp = v;
    return 4;
  }
  return 1;
}

// Length of the longest valid UTF-8 prefix of text (== text.size() when all of it is valid).
size_t valid_utf8_prefix(std::string_view text);

// Appends the UTF-8 encoding of cp (a valid scalar value) to out.
void append_utf8(uint32_t cp, std::string& out);

}  // namespace agpt::text
