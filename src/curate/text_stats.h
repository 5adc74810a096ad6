// The statistics that `agpt data filter` decides on: Gopher's quality and repetition measures and
// C4's line and document flags, computed once per document and stored as Dolma-style attributes,
// so that other thresholds can be applied later without computing them again (see filter.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate {

// One Dolma attribute value: a byte span of the text and a score. Document-level values use the
// span [0, text size).
struct AttrSpan {
  uint64_t begin = 0, end = 0;
  double value = 0;
};

// A named attribute: "agpt_gopher__word_count" -> [[0, 1234, 210]].
struct Attribute {
  std::string name;
  std::vector<AttrSpan> spans;
};

// The attributes of one document, in a fixed order.
struct DocAttributes {
  std::vector<Attribute> items;

  // The value of the first span of name, or nullptr when name is absent (or has no span).
  const double* value(std::string_view name) const;
  const Attribute* find(std::string_view name) const;
  void add_value(std::string name, uint64_t text_size, double value);
};

// True for the scripts written without spaces between words (Han, Hiragana, Katakana, Hangul
// syllables, CJK punctuation and full-width forms): each such character counts as one word, so
// that word-based rules mean something for Chinese and Japanese.
bool is_cjk_char(uint32_t cp);

// A word: a maximal run of non-whitespace characters, except that every CJK character is a word of
// its own. Offsets are bytes of the text.
struct WordSpan {
  uint32_t begin = 0, end = 0;
  uint32_t chars = 0;   // code points
  bool cjk = false;     // a single CJK character
  bool alpha = false;   // contains at least one letter (Unicode \p{L})
};
// Invalid UTF-8 bytes count as one (non-letter) character each.
void split_words(std::string_view text, std::vector<WordSpan>& out);

// Names of the attributes compute_text_attributes writes (prefix agpt_gopher__ / agpt_c4__).
namespace attr {
inline constexpr const char* kWordCount = "agpt_gopher__word_count";
inline constexpr const char* kCharCount = "agpt_gopher__char_count";
inline constexpr const char* kMeanWordLength = "agpt_gopher__mean_word_length";  // absent: no non-CJK word
inline constexpr const char* kHashRatio = "agpt_gopher__hash_to_word_ratio";
inline constexpr const char* kEllipsisRatio = "agpt_gopher__ellipsis_to_word_ratio";
inline constexpr const char* kBulletLines = "agpt_gopher__bullet_lines_ratio";
inline constexpr const char* kEllipsisLines = "agpt_gopher__ellipsis_lines_ratio";
inline constexpr const char* kAlphaWords = "agpt_gopher__alpha_words_ratio";
inline constexpr const char* kStopWords = "agpt_gopher__stop_words";
inline constexpr const char* kDupLineFrac = "agpt_gopher__dup_line_frac";
inline constexpr const char* kDupParaFrac = "agpt_gopher__dup_para_frac";
inline constexpr const char* kDupLineCharFrac = "agpt_gopher__dup_line_char_frac";
inline constexpr const char* kDupParaCharFrac = "agpt_gopher__dup_para_char_frac";
// agpt_gopher__top_{2,3,4}gram_char_frac and agpt_gopher__dup_{5..10}gram_char_frac
std::string top_ngram(int n);
std::string dup_ngram(int n);
// C4: spans of lines (each [line begin, line end, 1]) and document values.
inline constexpr const char* kC4NoTerminalPunct = "agpt_c4__line_no_terminal_punct";
inline constexpr const char* kC4Javascript = "agpt_c4__line_javascript";
inline constexpr const char* kC4Policy = "agpt_c4__line_policy";
inline constexpr const char* kC4FewWords = "agpt_c4__line_words";      // value: the line's word count
inline constexpr const char* kC4LongWord = "agpt_c4__line_max_word_length";  // value: its longest word
inline constexpr const char* kC4LoremIpsum = "agpt_c4__lorem_ipsum";    // 1 when present
inline constexpr const char* kC4CurlyBracket = "agpt_c4__curly_bracket";  // 1 when "{" present
inline constexpr const char* kC4Sentences = "agpt_c4__sentences";
}  // namespace attr

// Lines short enough to be kept as spans by kC4FewWords / kC4LongWord: only lines with fewer than
// this many words, or with a word at least kC4LongWordFloor characters long, get a span (a span on
// every line would make the attributes as large as the text).
inline constexpr int kC4FewWordsCeiling = 10;
inline constexpr int kC4LongWordFloor = 100;

// Computes every Gopher and C4 statistic of text into out (appended, in a fixed order).
// Deterministic and independent of any threshold.
void compute_text_attributes(std::string_view text, DocAttributes& out);

// Gopher's duplicate measure over a list of elements (lines or paragraphs): an element counts as
// duplicate when an equal one appeared before it. Returns {duplicate elements / elements,
// duplicate bytes / bytes of all elements}; {0, 0} for no elements.
struct DupFractions {
  double by_count = 0, by_chars = 0;
};
DupFractions duplicate_fractions(const std::vector<std::string_view>& elements);

}  // namespace agpt::curate
