// The reference patterns, the table of their equivalent spellings, and the scanner-backed
// PreTokenizer. How each scanner follows its regex (leftmost-first alternation, backtracking):
//
// GPT-2 / r50k. At a position: a contraction if one starts here; else skip one optional space and
// take a run of letters, of numbers, or of "other" (not space, letter, number). Otherwise we are at
// whitespace: the whole run if it reaches the end of the text (\s++$); a run of 2+ characters
// before a non-space gives back its last character (\s+(?!\S)), which then prefixes the next word
// as " word" or stands alone (\s).
//
// cl100k. As GPT-2, but the word prefix is any one character that is not \r, \n, a letter or a
// number (so "\tword", "'word", "(word"), numbers come in runs of at most 3, a punctuation run
// swallows the \r\n after it, and a whitespace run that holds a newline ends right after its last
// \r/\n (\s*[\r\n] backtracks to the last newline), unless it reaches the end of the text (\s++$).
//
// o200k. The two word alternatives are U* W+ C? and U+ W* C? (U: Lu Lt Lm Lo M, W: Ll Lm Lo M,
// C: a contraction), each with an optional prefix as cl100k's. U* W+ backtracks: after the greedy
// U run, W+ either continues with a run of lower-case-set characters, or (none follows) ends just
// after the last character of the U run that is also in W. Marks are not \p{L}, so a mark can be
// the prefix; if matching with the prefix fails, the regex retries the mark as the word's start.
// Whitespace as cl100k, without the end-of-text rule; punctuation runs swallow [\r\n/]*.
#include <array>

#include "base/error.h"
#include "text/pretokenizer.h"
#include "text/pretokenizer_scanners.h"

namespace agpt::text {

// tiktoken 0.14, tiktoken_ext/openai_public.py (r50k_pat_str, cl100k_base, o200k_base).
const char* const kGpt2Pattern =
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)";
const char* const kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s)";
const char* const kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

struct Spelling {
  const char* pattern;
  PatternKind kind;
};

// Equivalent spellings. Each is tested against PCRE2 running that very spelling (test_pretokenizer).
const std::array<Spelling, 8>& spellings() {
  static const std::array<Spelling, 8> table = {{
      {kGpt2Pattern, PatternKind::kGpt2},
      // GPT-2's encoder.py; Hugging Face ByteLevel(use_regex=true); tiktoken < 0.8 gpt2/r50k.
      {R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", PatternKind::kGpt2},
      {R"('s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}]+| ?[\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", PatternKind::kGpt2},
      {R"('(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", PatternKind::kGpt2},
      {kCl100kPattern, PatternKind::kCl100k},
      // Llama 3 tokenizer.json; tiktoken < 0.7 cl100k_base.
      {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
       PatternKind::kCl100kNoEndRule},
      // tiktoken 0.7 cl100k_base (possessive, still without \s++$).
      {R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)",
       PatternKind::kCl100kNoEndRule},
      {kO200kPattern, PatternKind::kO200k},
  }};
  return table;
}

template <typename Scanner>
class ScannerPreTokenizer final : public PreTokenizer {
 public:
  ScannerPreTokenizer(std::string pattern, Scanner scanner) : pattern_(std::move(pattern)), scanner_(scanner) {}
  void split(std::string_view text, std::vector<std::string_view>& out) const override {
    auto s = reinterpret_cast<const unsigned char*>(text.data());
    size_t n = text.size(), pos = 0;
    while (pos < n) {
      size_t end = scanner_.next(s, pos, n);
      out.push_back(text.substr(pos, end - pos));
      pos = end;
    }
  }
  const std::string& pattern() const override { return pattern_; }

 private:
  std::string pattern_;
  Scanner scanner_;
};

}  // namespace

PatternKind known_pattern_kind(std::string_view pattern) {
  for (const Spelling& s : spellings())
    if (pattern == s.pattern) return s.kind;
  return PatternKind::kOther;
}

const char* pattern_kind_name(PatternKind kind) {
  switch (kind) {
    case PatternKind::kGpt2: return "gpt2";
    case PatternKind::kCl100k: return "cl100k";
    case PatternKind::kCl100kNoEndRule: return "llama3";
    case PatternKind::kO200k: return "o200k";
    case PatternKind::kOther: break;
  }
  return "custom regex";
}

std::unique_ptr<PreTokenizer> make_pretokenizer(const std::string& pattern) {
  const UnicodeClasses& u = UnicodeClasses::get();
  switch (known_pattern_kind(pattern)) {
    case PatternKind::kGpt2:
      return std::make_unique<ScannerPreTokenizer<scan::Gpt2Scanner>>(pattern, scan::Gpt2Scanner{u});
    case PatternKind::kCl100k:
      return std::make_unique<ScannerPreTokenizer<scan::Cl100kScanner>>(pattern, scan::Cl100kScanner{u, true});
    case PatternKind::kCl100kNoEndRule:
      return std::make_unique<ScannerPreTokenizer<scan::Cl100kScanner>>(pattern, scan::Cl100kScanner{u, false});
    case PatternKind::kO200k:
      return std::make_unique<ScannerPreTokenizer<scan::O200kScanner>>(pattern, scan::O200kScanner{u});
    case PatternKind::kOther:
      break;
  }
  return make_regex_pretokenizer(pattern);
}

}  // namespace agpt::text
