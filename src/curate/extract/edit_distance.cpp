#include "curate/extract/edit_distance.h"

#include <algorithm>
#include <unordered_map>

namespace agpt::curate::extract {

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    uint32_t cp = len == 1 ? c : (c & (0x7F >> len));
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

size_t edit_distance_reference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

size_t edit_distance(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  // a is the "pattern" along the bit vectors (rows), b is scanned column by column.
  if (a.empty()) return b.size();
  if (b.empty()) return a.size();
  using Word = uint64_t;
  const size_t m = a.size(), blocks = (m + 63) / 64;
  // Peq[symbol][block]: bit i set where a[block*64 + i] == symbol.
  std::unordered_map<uint32_t, size_t> sym;
  for (uint32_t c : a) sym.emplace(c, sym.size());
  std::vector<Word> peq((sym.size() + 1) * blocks, 0);  // the last row: symbols not in a
  for (size_t i = 0; i < m; ++i) peq[sym[a[i]] * blocks + i / 64] |= Word(1) << (i % 64);
  std::vector<Word> pv(blocks, ~Word(0)), mv(blocks, 0);
  const Word last_bit = Word(1) << ((m - 1) % 64);
  size_t score = m;
  const size_t absent = sym.size();
  for (uint32_t c : b) {
    auto it = sym.find(c);
    const Word* eq_row = &peq[(it == sym.end() ? absent : it->second) * blocks];
    int hin = 1;  // D[0][j] - D[0][j-1]: the top row grows by one per column
    for (size_t k = 0; k < blocks; ++k) {
      Word eq = eq_row[k], p = pv[k], mm = mv[k];
      Word xv = eq | mm;
      if (hin < 0) eq |= 1;
      Word xh = (((eq & p) + p) ^ p) | eq;
      Word ph = mm | ~(xh | p);
      Word mh = p & xh;
      Word high = k + 1 == blocks ? last_bit : Word(1) << 63;
      int hout = (ph & high) ? 1 : (mh & high) ? -1 : 0;
      ph <<= 1;
      mh <<= 1;
      if (hin < 0) mh |= 1;
      else if (hin > 0) ph |= 1;
      pv[k] = mh | ~(xv | ph);
      mv[k] = ph & xv;
      hin = hout;
    }
    score += hin;  // the bottom row's horizontal delta
  }
  return score;
}

std::string normalize_for_distance(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    // U+2018/2019 -> ', U+201C/201D -> ", U+2013/2014 -> -, U+00A0 -> space.
    if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80) {
      unsigned char d = static_cast<unsigned char>(text[i + 2]);
      const char* r = d == 0x98 || d == 0x99 ? "'" : d == 0x9C || d == 0x9D ? "\"" : d == 0x93 || d == 0x94 ? "-" : nullptr;
      if (r) {
        out += r;
        i += 2;
        continue;
      }
    }
    if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xA0) {
      space = !out.empty();
      ++i;
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

double normalized_edit_distance(std::string_view a, std::string_view b) {
  auto x = code_points(normalize_for_distance(a)), y = code_points(normalize_for_distance(b));
  size_t n = std::max(x.size(), y.size());
  if (n == 0) return 0;
  // The shorter text as the pattern: fewer blocks.
  size_t d = x.size() <= y.size() ? edit_distance(x, y) : edit_distance(y, x);
  return static_cast<double>(d) / static_cast<double>(n);
}

}  // namespace agpt::curate::extract
