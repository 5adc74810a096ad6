// The hand-written scanners must split exactly as PCRE2 running the same pattern does.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "text/pretokenizer.h"
#include "text_test_util.h"

namespace agpt::text {
namespace {

using testing::RandomText;

struct NamedPattern {
  const char* name;
  std::string pattern;
  PatternKind kind;
};

// Every spelling that make_pretokenizer maps to a scanner.
std::vector<NamedPattern> all_spellings() {
  return {
      {"gpt2_tiktoken014", kGpt2Pattern, PatternKind::kGpt2},
      {"gpt2_original", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", PatternKind::kGpt2},
      {"gpt2_brackets", R"('s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}]+| ?[\p{N}]+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", PatternKind::kGpt2},
      {"gpt2_tiktoken07", R"('(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", PatternKind::kGpt2},
      {"cl100k_tiktoken014", kCl100kPattern, PatternKind::kCl100k},
      {"llama3", R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
       PatternKind::kCl100kNoEndRule},
      {"cl100k_tiktoken07", R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)",
       PatternKind::kCl100kNoEndRule},
      {"o200k", kO200kPattern, PatternKind::kO200k},
  };
}

std::vector<std::string> pieces(const PreTokenizer& p, std::string_view text) {
  std::vector<std::string_view> v;
  p.split(text, v);
  return {v.begin(), v.end()};
}

std::string show(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += "[" + x + "]";
  return s;
}

// Compares scanner and regex on text; returns false (after one failure message) on a difference.
bool same_split(const NamedPattern& np, const PreTokenizer& fast, const PreTokenizer& ref, const std::string& text) {
  auto a = pieces(fast, text), b = pieces(ref, text);
  if (a == b) return true;
  ADD_FAILURE() << np.name << " differs on text " << ::testing::PrintToString(text) << "\n  scanner: " << show(a)
                << "\n  pcre2:   " << show(b);
  return false;
}

TEST(PreTokenizer, KnownSpellingsAreRecognised) {
  for (auto& np : all_spellings()) {
    EXPECT_EQ(known_pattern_kind(np.pattern), np.kind) << np.name;
    EXPECT_EQ(make_pretokenizer(np.pattern)->pattern(), np.pattern);
  }
  EXPECT_EQ(known_pattern_kind(R"(\p{L}+|\s+)"), PatternKind::kOther);
  EXPECT_EQ(known_pattern_kind(std::string(kGpt2Pattern) + " "), PatternKind::kOther);
}

TEST(PreTokenizer, UnknownPatternUsesPcre2) {
  auto p = make_pretokenizer(R"(\p{L}+|\p{N}+)");
  EXPECT_EQ(pieces(*p, "ab12 cd"), (std::vector<std::string>{"ab", "12", " ", "cd"}));  // the gap stays
  EXPECT_THROW(make_pretokenizer("(unclosed"), agpt::Error);
}

TEST(PreTokenizer, HandPickedEdges) {
  // Splits that tell the families apart; each checked against PCRE2 too.
  const char* texts[] = {"x\n  ",  "x \n \n  ", "  a", "a  ", "'s 'S 'ſ 'll 'LL", "don't", "HTMLParser's",
                         "ÆgirÉcole", "a\u0301b", "\u0301", " \u0301x", "!\u0301", "123456789", "x/\n/y",
                         "\t\tx", "\u3000x", "\u00a0\u00a0y", "\r\n\r\n", "a.\r\nb", "ǅungla", "ʰa"};
  for (auto& np : all_spellings()) {
    auto fast = make_pretokenizer(np.pattern);
    auto ref = make_regex_pretokenizer(np.pattern);
    for (const char* t : texts) same_split(np, *fast, *ref, t);
  }
  // The only difference of the Llama 3 spelling from tiktoken 0.14's cl100k: trailing whitespace
  // with a newline followed by more whitespace.
  auto cl = make_pretokenizer(kCl100kPattern);
  auto llama = make_pretokenizer(all_spellings()[5].pattern);
  EXPECT_EQ(pieces(*cl, "x\n  "), (std::vector<std::string>{"x", "\n  "}));
  EXPECT_EQ(pieces(*llama, "x\n  "), (std::vector<std::string>{"x", "\n", "  "}));
}

TEST(PreTokenizer, MatchesPcre2OnCases) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  auto cases = testing::load_cases();
  ASSERT_FALSE(cases.empty());
  for (auto& np : all_spellings()) {
    auto fast = make_pretokenizer(np.pattern);
    auto ref = make_regex_pretokenizer(np.pattern);
    for (auto& c : cases) same_split(np, *fast, *ref, c.text);
  }
}

TEST(PreTokenizer, MatchesPcre2OnRandomUnicode) {
  for (auto& np : all_spellings()) {
    auto fast = make_pretokenizer(np.pattern);
    auto ref = make_regex_pretokenizer(np.pattern);
    RandomText gen(1234);
    int failures = 0;
    for (int i = 0; i < 6000 && failures < 5; ++i) failures += !same_split(np, *fast, *ref, gen.next());
  }
}

TEST(PreTokenizer, MatchesPcre2OnRealText) {
  auto texts = testing::real_texts(3u << 20);
  if (texts.empty()) GTEST_SKIP() << "no /usr/share/doc/python3.11 docs";
  for (auto& np : all_spellings()) {
    auto fast = make_pretokenizer(np.pattern);
    auto ref = make_regex_pretokenizer(np.pattern);
    int failures = 0;
    for (auto& t : texts) {
      if (failures >= 3) break;
      failures += !same_split(np, *fast, *ref, t);
    }
  }
}

TEST(PreTokenizer, InvalidUtf8NeverLosesBytes) {
  // Input is meant to be valid UTF-8; invalid bytes still come back, each in some piece.
  std::string junk = "ab\xff\xfe cd \xc3 \xe2\x82 x\xf0\x9f\x98";
  for (auto& np : all_spellings()) {
    auto fast = make_pretokenizer(np.pattern);
    std::string joined;
    for (auto& p : pieces(*fast, junk)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, junk) << np.name;
  }
}

}  // namespace
}  // namespace agpt::text
