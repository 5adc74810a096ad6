#include "curate/text_stats.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <unordered_set>

#include "base/error.h"
#include "curate/dedup.h"
#include "curate/hash.h"
#include "text/unicode_class.h"

namespace agpt::curate {

const Attribute* DocAttributes::find(std::string_view name) const {
  for (const auto& a : items)
    if (a.name == name) return &a;
  return nullptr;
}

const double* DocAttributes::value(std::string_view name) const {
  const Attribute* a = find(name);
  return a && !a->spans.empty() ? &a->spans[0].value : nullptr;
}

void DocAttributes::add_value(std::string name, uint64_t text_size, double value) {
  items.push_back({std::move(name), {{0, text_size, value}}});
}

bool is_cjk_char(uint32_t cp) {
  return (cp >= 0x3000 && cp <= 0x30FF) ||    // CJK punctuation, Hiragana, Katakana
         (cp >= 0x3400 && cp <= 0x4DBF) ||    // CJK extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||    // CJK unified ideographs
         (cp >= 0xAC00 && cp <= 0xD7AF) ||    // Hangul syllables
         (cp >= 0xF900 && cp <= 0xFAFF) ||    // compatibility ideographs
         (cp >= 0xFF00 && cp <= 0xFFEF) ||    // half- and full-width forms
         (cp >= 0x20000 && cp <= 0x2FFFF);    // supplementary ideographs
}

namespace attr {
std::string top_ngram(int n) { return "agpt_gopher__top_" + std::to_string(n) + "gram_char_frac"; }
std::string dup_ngram(int n) { return "agpt_gopher__dup_" + std::to_string(n) + "gram_char_frac"; }
}  // namespace attr

namespace {

inline bool is_space_cp(uint32_t cp, const text::UnicodeClasses& uc) {
  return cp != text::kInvalidCodePoint && (uc.of(cp) & text::kClsSpace);
}

}  // namespace

void split_words(std::string_view text, std::vector<WordSpan>& out) {
  out.clear();
  if (text.size() > UINT32_MAX) fail("filter: a document of ", text.size(), " bytes is over the 4 GiB limit of the filter");
  const auto& uc = text::UnicodeClasses::get();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  bool in_word = false;
  WordSpan cur;
  auto close = [&](size_t at) {
    if (!in_word) return;
    cur.end = static_cast<uint32_t>(at);
    out.push_back(cur);
    in_word = false;
  };
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = text::decode_utf8(p + i, n - i, cp);
    if (is_space_cp(cp, uc)) {
      close(i);
    } else if (cp != text::kInvalidCodePoint && is_cjk_char(cp)) {
      close(i);
      WordSpan w;
      w.begin = static_cast<uint32_t>(i);
      w.end = static_cast<uint32_t>(i + len);
      w.chars = 1;
      w.cjk = true;
      w.alpha = (uc.of(cp) & text::kClsLetter) != 0;
      out.push_back(w);
    } else {
      if (!in_word) {
        cur = WordSpan{};
        cur.begin = static_cast<uint32_t>(i);
        in_word = true;
      }
      ++cur.chars;
      if (cp != text::kInvalidCodePoint && (uc.of(cp) & text::kClsLetter)) cur.alpha = true;
    }
    i += len;
  }
  close(n);
}

DupFractions duplicate_fractions(const std::vector<std::string_view>& elements) {
  DupFractions f;
  if (elements.empty()) return f;
  std::unordered_set<Hash128, Hash128Hasher> seen;
  seen.reserve(elements.size() * 2);
  uint64_t dup = 0, dup_bytes = 0, bytes = 0;
  for (auto e : elements) {
    bytes += e.size();
    if (!seen.insert(hash128(e)).second) {
      ++dup;
      dup_bytes += e.size();
    }
  }
  f.by_count = static_cast<double>(dup) / static_cast<double>(elements.size());
  f.by_chars = bytes ? static_cast<double>(dup_bytes) / static_cast<double>(bytes) : 0.0;
  return f;
}

namespace {

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\f\v");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\f\v");
  return s.substr(b, e - b + 1);
}

bool starts_with_any(std::string_view s, std::initializer_list<std::string_view> xs) {
  for (auto x : xs)
    if (s.starts_with(x)) return true;
  return false;
}
bool ends_with_any(std::string_view s, std::initializer_list<std::string_view> xs) {
  for (auto x : xs)
    if (s.ends_with(x)) return true;
  return false;
}

void ascii_lower(std::string_view s, std::string& out) {
  out.assign(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
}

size_t count_of(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

// The lines of text that are not blank (trimmed views, and their untrimmed byte ranges).
struct Line {
  std::string_view trimmed;
  uint64_t begin, end;  // the whole line, without its "\n"
};
void split_lines(std::string_view text, std::vector<Line>& out) {
  out.clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view t = trim(text.substr(pos, nl - pos));
    if (!t.empty()) out.push_back({t, pos, nl});
    pos = nl + 1;
  }
}

// Occurrence counts of 64-bit keys: open addressing with linear probing, cleared between uses.
// Sorting (hash, position) pairs cost 60% of the statistics' time; counting in a table is linear.
class KeyCounter {
 public:
  void reset(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    keys_.assign(cap, 0);
    counts_.assign(cap, 0);
    mask_ = cap - 1;
  }
  uint32_t& slot(uint64_t key) {
    key |= 1;  // 0 marks an empty slot; losing the low bit keeps 63 bits of hash
    size_t i = static_cast<size_t>(key * 0x9E3779B97F4A7C15ull >> 20) & mask_;
    while (keys_[i] != 0 && keys_[i] != key) i = (i + 1) & mask_;
    keys_[i] = key;
    return counts_[i];
  }
  uint32_t count(uint64_t key) { return slot(key); }

 private:
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> counts_;
  size_t mask_ = 0;
};

// Gopher's n-gram repetition measures over the words' bytes. top[n]: bytes covered by the most
// frequent n-gram (n = 2..4; counted only when it occurs at least twice) over all word bytes.
// dup[n]: bytes of the words covered by any n-gram occurring at least twice (n = 5..10; a word
// inside several such n-grams is counted once) over all word bytes.
void ngram_repetition(std::string_view text, const std::vector<WordSpan>& words, std::array<double, 11>& frac) {
  frac.fill(0.0);
  const size_t w = words.size();
  if (w < 2) return;
  thread_local std::vector<uint64_t> wh, bytes_prefix, gram;
  thread_local std::vector<uint8_t> covered;
  thread_local KeyCounter counter;
  wh.resize(w);
  bytes_prefix.assign(w + 1, 0);
  for (size_t i = 0; i < w; ++i) {
    wh[i] = xxh64(text.substr(words[i].begin, words[i].end - words[i].begin));
    bytes_prefix[i + 1] = bytes_prefix[i] + (words[i].end - words[i].begin);
  }
  const double total = static_cast<double>(bytes_prefix[w]);
  if (total <= 0) return;
  // gram[s] is the hash of the n-gram starting at s, extended by one word per n.
  gram.resize(w);
  for (size_t s = 0; s < w; ++s) gram[s] = mix64(0x243F6A8885A308D3ull ^ wh[s]);
  for (int n = 2; n <= 10; ++n) {
    if (w < static_cast<size_t>(n)) break;
    const size_t count = w - n + 1;
    for (size_t s = 0; s < count; ++s) gram[s] = mix64(gram[s] ^ wh[s + n - 1]) + static_cast<uint64_t>(n);
    counter.reset(count);
    for (size_t s = 0; s < count; ++s) ++counter.slot(gram[s]);
    if (n <= 4) {
      uint64_t best = 0;  // most occurrences, then most bytes: deterministic on ties
      uint32_t best_count = 0;
      for (size_t s = 0; s < count; ++s) {
        const uint32_t c = counter.count(gram[s]);
        const uint64_t gram_bytes = bytes_prefix[s + n] - bytes_prefix[s];
        if (c >= 2 && (c > best_count || (c == best_count && gram_bytes * c > best))) {
          best_count = c;
          best = gram_bytes * c;
        }
      }
      frac[n] = std::min(1.0, static_cast<double>(best) / total);
    } else {
      covered.assign(w, 0);
      size_t covered_to = 0;  // words before this are marked already
      for (size_t s = 0; s < count; ++s) {
        if (counter.count(gram[s]) < 2) continue;
        for (size_t k = std::max(s, covered_to); k < s + n; ++k) covered[k] = 1;
        covered_to = std::max(covered_to, s + n);
      }
      uint64_t cov = 0;
      for (size_t i = 0; i < w; ++i)
        if (covered[i]) cov += words[i].end - words[i].begin;
      frac[n] = static_cast<double>(cov) / total;
    }
  }
}

constexpr std::array<std::string_view, 8> kStopWords = {"the", "be", "to", "of", "and", "that", "have", "with"};
constexpr std::array<std::string_view, 6> kPolicy = {"terms of use", "privacy policy", "cookie policy",
                                                     "uses cookies", "use of cookies", "use cookies"};

}  // namespace

void compute_text_attributes(std::string_view text, DocAttributes& out) {
  const uint64_t size = text.size();
  thread_local std::vector<WordSpan> words;
  thread_local std::vector<Line> lines;
  thread_local std::string lower;
  split_words(text, words);
  split_lines(text, lines);

  // Length and word shape.
  uint64_t chars = 0;
  for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
  uint64_t latin_words = 0, latin_chars = 0, alpha = 0;
  unsigned stop_mask = 0;
  for (const auto& wd : words) {
    if (wd.alpha) ++alpha;
    if (wd.cjk) continue;
    ++latin_words;
    latin_chars += wd.chars;
    if (wd.end - wd.begin <= 6) {
      std::string_view s = text.substr(wd.begin, wd.end - wd.begin);
      ascii_lower(s, lower);
      std::string_view l = lower;
      while (!l.empty() && std::ispunct(static_cast<unsigned char>(l.back()))) l.remove_suffix(1);
      while (!l.empty() && std::ispunct(static_cast<unsigned char>(l.front()))) l.remove_prefix(1);
      for (size_t k = 0; k < kStopWords.size(); ++k)
        if (l == kStopWords[k]) stop_mask |= 1u << k;
    }
  }
  const double nw = static_cast<double>(words.size());
  const double per_word = words.empty() ? 1.0 : nw;
  out.add_value(attr::kWordCount, size, nw);
  out.add_value(attr::kCharCount, size, static_cast<double>(chars));
  if (latin_words > 0)
    out.add_value(attr::kMeanWordLength, size, static_cast<double>(latin_chars) / static_cast<double>(latin_words));
  out.add_value(attr::kHashRatio, size, static_cast<double>(count_of(text, "#")) / per_word);
  out.add_value(attr::kEllipsisRatio, size,
                static_cast<double>(count_of(text, "...") + count_of(text, "\xE2\x80\xA6")) / per_word);

  // Lines.
  uint64_t bullets = 0, ellipsis_lines = 0;
  for (const auto& ln : lines) {
    if (starts_with_any(ln.trimmed, {"\xE2\x80\xA2", "\xE2\x80\xA3", "\xE2\x97\xA6", "\xE2\x97\x8F", "\xE2\x97\x8B",
                                     "\xE2\x96\xAA", "\xE2\x96\xA0", "-", "*"}))
      ++bullets;
    if (ends_with_any(ln.trimmed, {"...", "\xE2\x80\xA6"})) ++ellipsis_lines;
  }
  const double nl = lines.empty() ? 1.0 : static_cast<double>(lines.size());
  out.add_value(attr::kBulletLines, size, static_cast<double>(bullets) / nl);
  out.add_value(attr::kEllipsisLines, size, static_cast<double>(ellipsis_lines) / nl);
  out.add_value(attr::kAlphaWords, size, words.empty() ? 0.0 : static_cast<double>(alpha) / nw);
  out.add_value(attr::kStopWords, size, static_cast<double>(std::popcount(stop_mask)));

  // Repetition: lines, paragraphs, n-grams.
  std::vector<std::string_view> elems;
  elems.reserve(lines.size());
  for (const auto& ln : lines) elems.push_back(ln.trimmed);
  DupFractions dl = duplicate_fractions(elems);
  DupFractions dp = duplicate_fractions(split_paragraphs(text));
  out.add_value(attr::kDupLineFrac, size, dl.by_count);
  out.add_value(attr::kDupParaFrac, size, dp.by_count);
  out.add_value(attr::kDupLineCharFrac, size, dl.by_chars);
  out.add_value(attr::kDupParaCharFrac, size, dp.by_chars);
  std::array<double, 11> frac;
  ngram_repetition(text, words, frac);
  for (int n = 2; n <= 4; ++n) out.add_value(attr::top_ngram(n), size, frac[n]);
  for (int n = 5; n <= 10; ++n) out.add_value(attr::dup_ngram(n), size, frac[n]);

  // C4: flags per line (spans), then per document.
  Attribute no_punct{attr::kC4NoTerminalPunct, {}}, js{attr::kC4Javascript, {}}, policy{attr::kC4Policy, {}},
      few{attr::kC4FewWords, {}}, longw{attr::kC4LongWord, {}};
  for (const auto& ln : lines) {
    if (!ends_with_any(ln.trimmed, {".", "!", "?", "\"", "'", "\xE2\x80\x9D", "\xE2\x80\x99", "\xE2\x80\xA6",
                                    "\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F"}))
      no_punct.spans.push_back({ln.begin, ln.end, 1});
    ascii_lower(ln.trimmed, lower);
    if (lower.find("javascript") != std::string::npos) js.spans.push_back({ln.begin, ln.end, 1});
    for (auto p : kPolicy)
      if (lower.find(p) != std::string::npos) {
        policy.spans.push_back({ln.begin, ln.end, 1});
        break;
      }
    // Words of a line in C4's sense: whitespace-separated (CJK text has few: see the docs).
    uint32_t line_words = 0, longest = 0;
    for (size_t i = 0; i < ln.trimmed.size();) {
      size_t j = ln.trimmed.find_first_of(" \t", i);
      if (j == std::string_view::npos) j = ln.trimmed.size();
      if (j > i) {
        ++line_words;
        uint32_t c = 0;
        for (size_t k = i; k < j; ++k) c += (static_cast<unsigned char>(ln.trimmed[k]) & 0xC0) != 0x80;
        longest = std::max(longest, c);
      }
      i = j + 1;
    }
    if (line_words < static_cast<uint32_t>(kC4FewWordsCeiling)) few.spans.push_back({ln.begin, ln.end, double(line_words)});
    if (longest >= static_cast<uint32_t>(kC4LongWordFloor)) longw.spans.push_back({ln.begin, ln.end, double(longest)});
  }
  out.items.push_back(std::move(no_punct));
  out.items.push_back(std::move(js));
  out.items.push_back(std::move(policy));
  out.items.push_back(std::move(few));
  out.items.push_back(std::move(longw));
  ascii_lower(text, lower);
  out.add_value(attr::kC4LoremIpsum, size, lower.find("lorem ipsum") != std::string::npos ? 1 : 0);
  out.add_value(attr::kC4CurlyBracket, size, text.find('{') != std::string_view::npos ? 1 : 0);
  uint64_t sentences = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if ((c == '.' || c == '!' || c == '?') &&
        (i + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[i + 1]))))
      ++sentences;
  }
  sentences += count_of(text, "\xE3\x80\x82") + count_of(text, "\xEF\xBC\x81") + count_of(text, "\xEF\xBC\x9F");
  out.add_value(attr::kC4Sentences, size, static_cast<double>(sentences));
}

}  // namespace agpt::curate
