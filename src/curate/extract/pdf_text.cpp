#include "curate/extract/pdf_text.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace agpt::curate::extract {
namespace {

// A line of a page, after cleanup; blank lines are kept as block separators.
using Lines = std::vector<std::string>;

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

// Ligature code points (U+FB00..U+FB06) and the soft hyphen, which PDFs carry from the fonts.
std::string clean_glyphs(std::string_view s) {
  static const char* kLig[] = {"ff", "fi", "fl", "ffi", "ffl", "st", "st"};
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xAC) {
      unsigned char c3 = static_cast<unsigned char>(s[i + 2]);
      if (c3 >= 0x80 && c3 <= 0x86) {
        out += kLig[c3 - 0x80];
        i += 2;
        continue;
      }
    }
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xAD) {  // soft hyphen
      ++i;
      continue;
    }
    if (c == '\r' || c == '\f') continue;
    out += s[i];
  }
  return out;
}

Lines split_lines(const std::string& page) {
  Lines lines;
  size_t start = 0;
  while (start <= page.size()) {
    size_t nl = page.find('\n', start);
    if (nl == std::string::npos) nl = page.size();
    lines.push_back(trim(clean_glyphs(std::string_view(page).substr(start, nl - start))));
    start = nl + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// The shape of a header/footer line: page numbers differ between pages, the words do not.
std::string shape(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    if (c >= '0' && c <= '9') {
      if (out.empty() || out.back() != '#') out += '#';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

// Indices of the first and last `n` non-blank lines of a page.
std::vector<size_t> edge_lines(const Lines& lines, size_t n, bool top) {
  std::vector<size_t> idx;
  if (top) {
    for (size_t i = 0; i < lines.size() && idx.size() < n; ++i)
      if (!lines[i].empty()) idx.push_back(i);
  } else {
    for (size_t i = lines.size(); i-- > 0 && idx.size() < n;)
      if (!lines[i].empty()) idx.push_back(i);
  }
  return idx;
}

size_t drop_running_lines(std::vector<Lines>& pages) {
  constexpr size_t kEdge = 2;
  if (pages.size() < 3) return 0;
  // Pages on which each shape occurs at the top (resp. bottom).
  std::unordered_map<std::string, size_t> count[2];
  for (const Lines& p : pages) {
    for (int top = 0; top < 2; ++top) {
      std::unordered_set<std::string> seen;
      for (size_t i : edge_lines(p, kEdge, top)) seen.insert(shape(p[i]));
      for (const auto& s : seen) ++count[top][s];
    }
  }
  size_t need = std::max<size_t>(3, (pages.size() * 3 + 9) / 10);
  size_t dropped = 0;
  for (Lines& p : pages) {
    std::vector<size_t> drop;
    for (int top = 0; top < 2; ++top)
      for (size_t i : edge_lines(p, kEdge, top))
        if (count[top][shape(p[i])] >= need) drop.push_back(i);
    std::sort(drop.begin(), drop.end());
    drop.erase(std::unique(drop.begin(), drop.end()), drop.end());
    for (size_t k = drop.size(); k-- > 0;) {
      p[drop[k]].clear();  // a blank line: the header also separated blocks
      ++dropped;
    }
  }
  return dropped;
}

bool is_lower_start(std::string_view s) {
  if (s.empty()) return false;
  unsigned char c = static_cast<unsigned char>(s[0]);
  return (c >= 'a' && c <= 'z') || c >= 0xC3;  // non-ASCII letters: lower case is more likely
}

bool ends_sentence(std::string_view s) {
  while (!s.empty() && (s.back() == ')' || s.back() == '"' || s.back() == '\'')) s.remove_suffix(1);
  if (s.empty()) return false;
  char c = s.back();
  return c == '.' || c == '!' || c == '?' || c == ':';
}

// Code points, roughly: UTF-8 continuation bytes do not count.
size_t width(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_word_byte(char c) { return std::isalpha(static_cast<unsigned char>(c)) || (static_cast<unsigned char>(c) >= 0x80); }

// The word that ends s (letters only, before a final '-') and the word that starts t.
std::string_view last_word(std::string_view s) {
  size_t e = s.size(), b = e;
  while (b > 0 && is_word_byte(s[b - 1])) --b;
  return s.substr(b, e - b);
}
std::string_view first_word(std::string_view t) {
  size_t e = 0;
  while (e < t.size() && is_word_byte(t[e])) ++e;
  return t.substr(0, e);
}

// A section heading on a line of its own: "2.1. Model fitting", "A. Proofs" (short, no final
// period) or a lone "Abstract"/"References"/... It becomes a paragraph of its own.
bool is_heading_line(std::string_view s, size_t measure) {
  static constexpr std::string_view kWords[] = {"Abstract", "References", "Acknowledgments", "Acknowledgements",
                                                "Bibliography", "Appendix", "Contents", "Introduction"};
  for (auto w : kWords)
    if (s == w) return true;
  if (s.empty() || width(s) * 10 >= measure * 7 || s.back() == '.' || s.back() == ',') return false;
  size_t i = 0;
  if (s[0] >= 'A' && s[0] <= 'Z' && s.size() > 1 && s[1] == '.') {
    i = 2;  // appendix "A." or "A.1."
  } else {
    if (!(s[0] >= '1' && s[0] <= '9')) return false;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i > 8) return false;
  }
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  if (i >= s.size() || s[i] != ' ') return false;
  return i + 1 < s.size() && s[i + 1] >= 'A' && s[i + 1] <= 'Z';
}

// Words of the whole document (for the hyphenation rule).
struct Vocabulary {
  std::unordered_set<std::string> words;  // maximal runs of letters and '-' inside a line
  void add_line(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && !is_word_byte(s[i])) ++i;
      size_t b = i;
      while (i < s.size() && (is_word_byte(s[i]) || (s[i] == '-' && i + 1 < s.size() && is_word_byte(s[i + 1])))) ++i;
      if (i > b) words.emplace(s.substr(b, i - b));
    }
  }
  bool has(const std::string& w) const { return words.count(w) > 0; }
};

// Joins line `next` onto paragraph text `para` (which ends with the previous line).
void join_line(std::string& para, const std::string& next, const Vocabulary& vocab, size_t& hyphens) {
  if (para.empty()) {
    para = next;
    return;
  }
  if (para.size() >= 2 && para.back() == '-' && is_word_byte(para[para.size() - 2]) && is_lower_start(next)) {
    std::string_view head = last_word(std::string_view(para).substr(0, para.size() - 1));
    std::string_view tail = first_word(next);
    std::string joined = std::string(head) + std::string(tail);
    std::string kept = std::string(head) + "-" + std::string(tail);
    bool compound = vocab.has(kept) && !vocab.has(joined);
    if (!compound) {
      para.pop_back();
      ++hyphens;
    }
    para += next;
    return;
  }
  para += ' ';
  para += next;
}

}  // namespace

PageAssembly assemble_pages(const std::vector<std::string>& page_texts) {
  PageAssembly out;
  std::vector<Lines> pages;
  pages.reserve(page_texts.size());
  for (const auto& t : page_texts) pages.push_back(split_lines(t));
  out.header_lines_dropped = drop_running_lines(pages);

  Vocabulary vocab;
  for (const Lines& p : pages)
    for (const auto& l : p) vocab.add_line(l);

  std::vector<std::string> paragraphs;
  std::string para;
  auto flush = [&] {
    if (!para.empty()) paragraphs.push_back(std::move(para));
    para.clear();
  };
  for (const Lines& p : pages) {
    // A paragraph cut by the page break continues when this page starts in lower case.
    size_t first = 0;
    while (first < p.size() && p[first].empty()) ++first;
    if (!para.empty() && !(first < p.size() && !ends_sentence(para) && is_lower_start(p[first]))) flush();
    // Blocks: runs of non-blank lines; the longest line of a block is its measure.
    size_t i = first;
    while (i < p.size()) {
      if (p[i].empty()) {
        ++i;
        continue;
      }
      size_t j = i;
      size_t measure = 0;
      while (j < p.size() && !p[j].empty()) measure = std::max(measure, width(p[j++]));
      for (size_t k = i; k < j; ++k) {
        if (is_heading_line(p[k], measure)) {
          flush();
          paragraphs.push_back(p[k]);
          continue;
        }
        join_line(para, p[k], vocab, out.hyphens_joined);
        bool short_line = width(p[k]) * 10 < measure * 8;
        if (k + 1 < j && short_line && ends_sentence(p[k])) flush();
      }
      // The last block of the page stays open (it may continue on the next page).
      size_t after = j;
      while (after < p.size() && p[after].empty()) ++after;
      if (after < p.size()) flush();
      i = j;
    }
  }
  flush();
  for (size_t k = 0; k < paragraphs.size(); ++k) {
    if (k) out.text += "\n\n";
    out.text += paragraphs[k];
  }
  return out;
}

}  // namespace agpt::curate::extract
