#include "text/unicode_class.h"

#include <utf8proc.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace agpt::text {
namespace {

bool is_white_space(uint32_t cp) {
  // Unicode's White_Space property (PropList.txt), which \s means in Rust's regex crate.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

uint8_t compute_class(uint32_t cp) {
  uint8_t c = 0;
  if (cp >= 0xD800 && cp < 0xE000) return 0;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LT:
      c = kClsLetter | kClsUpperSet;
      break;
    case UTF8PROC_CATEGORY_LL:
      c = kClsLetter | kClsLowerSet;
      break;
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      c = kClsLetter | kClsUpperSet | kClsLowerSet;
      break;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
      c = kClsMark | kClsUpperSet | kClsLowerSet;
      break;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      c = kClsNumber;
      break;
    default:
      break;
  }
  if (is_white_space(cp)) c |= kClsSpace;
  if (cp == '\r' || cp == '\n') c |= kClsNewline;
  return c;
}

}  // namespace

UnicodeClasses::UnicodeClasses() {
  // Two stages: index_[cp >> 8] names a 256-entry block; identical blocks are stored once.
  std::vector<uint8_t> blocks;
  std::map<std::string, uint16_t> seen;
  uint8_t block[256];
  for (uint32_t hi = 0; hi < 0x1100; ++hi) {
    for (uint32_t lo = 0; lo < 256; ++lo) block[lo] = compute_class((hi << 8) | lo);
    std::string key(reinterpret_cast<const char*>(block), 256);
    auto it = seen.find(key);
    if (it == seen.end()) {
      uint16_t idx = static_cast<uint16_t>(blocks.size() / 256);
      it = seen.emplace(std::move(key), idx).first;
      blocks.insert(blocks.end(), block, block + 256);
    }
    index_[hi] = it->second;
  }
  blocks_ = new uint8_t[blocks.size()];  // lives as long as the process (a static singleton)
  std::memcpy(blocks_, blocks.data(), blocks.size());
}

const UnicodeClasses& UnicodeClasses::get() {
  static const UnicodeClasses* table = new UnicodeClasses();
  return *table;
}

size_t valid_utf8_prefix(std::string_view text) {
  auto p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    uint32_t cp;
    size_t len = decode_utf8(p + i, n - i, cp);
    if (cp == kInvalidCodePoint) return i;
    i += len;
  }
  return n;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace agpt::text
