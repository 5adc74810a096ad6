// Hand-written scanners for the known pre-tokenization patterns. Each gives, for a position in the
// text, the end of the piece the regular expression would match there (leftmost-first alternation
// with backtracking, worked out once by hand for each pattern; see pretokenizer.cpp for the
// derivations). Internal to src/text: the tokenizer inlines them into its encode loop, and
// pretokenizer.cpp wraps them as PreTokenizer objects. Tested against PCRE2 on real and random text.
#pragma once
#include <cstddef>
#include <cstdint>

#include "text/unicode_class.h"

namespace agpt::text::scan {

#define AGPT_INLINE inline __attribute__((always_inline))

struct Char {
  size_t len;
  uint8_t cls;
};

// The character at pos (< n) and its class; an invalid byte is one character of class 0.
AGPT_INLINE Char char_at(const UnicodeClasses& u, const unsigned char* s, size_t pos, size_t n) {
  unsigned char c = s[pos];
  if (c < 0x80) return {1, u.ascii(c)};
  uint32_t cp;
  size_t len = decode_utf8(s + pos, n - pos, cp);
  return {len, cp == kInvalidCodePoint ? uint8_t{0} : u.of(cp)};
}

// End of the run of characters whose class has any bit of `mask`, from pos.
AGPT_INLINE size_t run_any(const UnicodeClasses& u, const unsigned char* s, size_t pos, size_t n, uint8_t mask) {
  while (pos < n) {
    unsigned char c = s[pos];
    if (c < 0x80) {
      if (!(u.ascii(c) & mask)) break;
      ++pos;
      continue;
    }
    Char ch = char_at(u, s, pos, n);
    if (!(ch.cls & mask)) break;
    pos += ch.len;
  }
  return pos;
}

// End of `\p{N}{1,3}` whose first number character ends at pos (cl100k, o200k, Llama 3).
AGPT_INLINE size_t digits_up_to_3(const UnicodeClasses& u, const unsigned char* s, size_t pos, size_t n) {
  for (int k = 1; k < 3 && pos < n; ++k) {
    Char c = char_at(u, s, pos, n);
    if (!(c.cls & kClsNumber)) break;
    pos += c.len;
  }
  return pos;
}

// End of the run of characters whose class has no bit of `mask`, from pos.
AGPT_INLINE size_t run_none(const UnicodeClasses& u, const unsigned char* s, size_t pos, size_t n, uint8_t mask) {
  while (pos < n) {
    unsigned char c = s[pos];
    if (c < 0x80) {
      if (u.ascii(c) & mask) break;
      ++pos;
      continue;
    }
    Char ch = char_at(u, s, pos, n);
    if (ch.cls & mask) break;
    pos += ch.len;
  }
  return pos;
}

// A whitespace run from pos: its end, the start of its last character, its character count
// (capped at 2: only "one" or "more" matters), and the end of its last \r or \n (0 if none).
struct SpaceRun {
  size_t end, last_start, last_newline_end;
  int count;
};
AGPT_INLINE SpaceRun space_run(const UnicodeClasses& u, const unsigned char* s, size_t pos, size_t n) {
  SpaceRun r{pos, pos, 0, 0};
  while (pos < n) {
    Char ch = char_at(u, s, pos, n);
    if (!(ch.cls & kClsSpace)) break;
    if (ch.cls & kClsNewline) r.last_newline_end = pos + 1;
    r.last_start = pos;
    if (r.count < 2) ++r.count;
    pos += ch.len;
  }
  r.end = pos;
  return r;
}

// Length of a contraction at pos: GPT-2's case-sensitive '(?:[sdmt]|ll|ve|re).
AGPT_INLINE size_t contraction_cs(const unsigned char* s, size_t pos, size_t n) {
  if (pos + 1 >= n || s[pos] != '\'') return 0;
  unsigned char a = s[pos + 1];
  if (a == 's' || a == 'd' || a == 'm' || a == 't') return 2;
  if (pos + 2 >= n) return 0;
  unsigned char b = s[pos + 2];
  if ((a == 'l' && b == 'l') || (a == 'v' && b == 'e') || (a == 'r' && b == 'e')) return 3;
  return 0;
}

// Case-insensitive '(?i:[sdmt]|ll|ve|re) (cl100k, o200k). Unicode simple case folding adds one
// character: U+017F LATIN SMALL LETTER LONG S folds to 's'.
AGPT_INLINE size_t contraction_ci(const unsigned char* s, size_t pos, size_t n) {
  if (pos + 1 >= n || s[pos] != '\'') return 0;
  unsigned char a = s[pos + 1] | 0x20;  // ASCII letters to lower case (other bytes never match below)
  if (a == 's' || a == 'd' || a == 'm' || a == 't') return 2;
  if (pos + 2 >= n) return 0;
  if (s[pos + 1] == 0xC5 && s[pos + 2] == 0xBF) return 3;  // 'ſ
  unsigned char b = s[pos + 2] | 0x20;
  if ((a == 'l' && b == 'l') || (a == 'v' && b == 'e') || (a == 'r' && b == 'e')) return 3;
  return 0;
}

constexpr uint8_t kLNS = kClsLetter | kClsNumber | kClsSpace;    // [^\s\p{L}\p{N}] is "none of these"
constexpr uint8_t kLNNl = kClsLetter | kClsNumber | kClsNewline;  // [^\r\n\p{L}\p{N}] likewise

// r50k_base / GPT-2:  '(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s
struct Gpt2Scanner {
  const UnicodeClasses& u;
  size_t next(const unsigned char* s, size_t pos, size_t n) const {
    if (s[pos] == '\'') {
      if (size_t c = contraction_cs(s, pos, n)) return pos + c;
    }
    size_t p = (s[pos] == ' ' && pos + 1 < n) ? pos + 1 : pos;
    Char ch = char_at(u, s, p, n);
    if (ch.cls & kClsLetter) return run_any(u, s, p + ch.len, n, kClsLetter);
    if (ch.cls & kClsNumber) return run_any(u, s, p + ch.len, n, kClsNumber);
    if (!(ch.cls & kClsSpace)) return run_none(u, s, p + ch.len, n, kLNS);
    return space_tail(s, pos, n);
  }
  // \s++$|\s+(?!\S)|\s at a whitespace character.
  size_t space_tail(const unsigned char* s, size_t pos, size_t n) const {
    SpaceRun r = space_run(u, s, pos, n);
    if (r.end == n || r.count < 2) return r.end;
    return r.last_start;
  }
};

// cl100k_base (tiktoken >= 0.8 spelling, with_end_rule = true):
//   '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s
// Llama 3 / older cl100k spelling (with_end_rule = false): the same without \s++$, which differs
// only for trailing whitespace that holds a newline followed by more whitespace ("x\n  " at the end).
struct Cl100kScanner {
  const UnicodeClasses& u;
  bool with_end_rule;
  size_t next(const unsigned char* s, size_t pos, size_t n) const {
    if (s[pos] == '\'') {
      if (size_t c = contraction_ci(s, pos, n)) return pos + c;
    }
    Char ch = char_at(u, s, pos, n);
    if (!(ch.cls & kLNNl)) {  // a possible one-character prefix of a word
      size_t p2 = pos + ch.len;
      if (p2 < n) {
        Char c2 = char_at(u, s, p2, n);
        if (c2.cls & kClsLetter) return run_any(u, s, p2 + c2.len, n, kClsLetter);
      }
    } else if (ch.cls & kClsLetter) {
      return run_any(u, s, pos + ch.len, n, kClsLetter);
    }
    if (ch.cls & kClsNumber) return digits_up_to_3(u, s, pos + ch.len, n);
    size_t p = pos;
    Char cp = ch;
    if (s[pos] == ' ' && pos + 1 < n) {
      p = pos + 1;
      cp = char_at(u, s, p, n);
    }
    if (!(cp.cls & kLNS)) {
      size_t e = run_none(u, s, p + cp.len, n, kLNS);
      while (e < n && (s[e] == '\r' || s[e] == '\n')) ++e;
      return e;
    }
    SpaceRun r = space_run(u, s, pos, n);
    if (with_end_rule && r.end == n) return n;
    if (r.last_newline_end) return r.last_newline_end;
    if (r.end == n || r.count < 2) return r.end;
    return r.last_start;
  }
};

// o200k_base:
//   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//  |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//  |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
struct O200kScanner {
  const UnicodeClasses& u;

  // The two word alternatives after the optional prefix, from start: U* W+ C? (U* backtracking:
  // when no W follows the U run, it ends after the run's last character that is also in W), else
  // (unless first_only) U+ W* C?. 0 = no match. ASCII fast path: A-Z are the only ASCII U, a-z W.
  size_t word(const unsigned char* s, size_t start, size_t n, bool first_only) const {
    size_t q = start, last_lower_end = 0;
    while (q < n) {
      unsigned char c = s[q];
      if (c < 0x80) {
        if (static_cast<unsigned char>(c - 'A') < 26) {
          ++q;
          continue;
        }
        break;
      }
      Char ch = char_at(u, s, q, n);
      if (!(ch.cls & kClsUpperSet)) break;
      q += ch.len;
      if (ch.cls & kClsLowerSet) last_lower_end = q;
    }
    size_t r = q;
    while (r < n) {
      unsigned char c = s[r];
      if (c < 0x80) {
        if (static_cast<unsigned char>(c - 'a') < 26) {
          ++r;
          continue;
        }
        break;
      }
      Char ch = char_at(u, s, r, n);
      if (!(ch.cls & kClsLowerSet)) break;
      r += ch.len;
    }
    size_t end;
    if (r > q) end = r;
    else if (last_lower_end) end = last_lower_end;
    else if (!first_only && q > start) end = q;
    else return 0;
    return end + contraction_ci(s, end, n);
  }

  size_t next(const unsigned char* s, size_t pos, size_t n) const {
    Char ch = char_at(u, s, pos, n);
    if (!(ch.cls & kLNNl)) {  // may be the optional prefix
      size_t p2 = pos + ch.len;
      if (ch.cls & kClsMark) {
        // A mark is also a word character: if the first alternative fails with the mark as the
        // prefix, it matches starting at the mark (before the second alternative is tried).
        if (p2 < n) {
          if (size_t e = word(s, p2, n, true)) return e;
        }
        return word(s, pos, n, true);
      }
      if (p2 < n) {
        if (size_t e = word(s, p2, n, false)) return e;
      }
    } else if (ch.cls & kClsLetter) {
      return word(s, pos, n, false);  // a letter is in U or W: always matches
    }
    if (ch.cls & kClsNumber) return digits_up_to_3(u, s, pos + ch.len, n);
    size_t p = pos;
    Char cp = ch;
    if (s[pos] == ' ' && pos + 1 < n) {
      p = pos + 1;
      cp = char_at(u, s, p, n);
    }
    if (!(cp.cls & kLNS)) {
      size_t e = run_none(u, s, p + cp.len, n, kLNS);
      while (e < n && (s[e] == '\r' || s[e] == '\n' || s[e] == '/')) ++e;
      return e;
    }
    SpaceRun r = space_run(u, s, pos, n);
    if (r.last_newline_end) return r.last_newline_end;
    if (r.end == n || r.count < 2) return r.end;
    return r.last_start;
  }
};

}  // namespace agpt::text::scan
