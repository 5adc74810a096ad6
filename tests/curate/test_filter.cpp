// The statistics and decisions of `agpt data filter`: words (CJK included), Gopher's quality and
// repetition measures on texts whose values can be counted by hand, the rules and the config,
// C4 line cleanup, and the attributes' JSON round trip.
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "curate/filter.h"
#include "curate/text_stats.h"

using namespace agpt::curate;

namespace {

double value_of(const DocAttributes& a, const std::string& name) {
  const double* v = a.value(name);
  EXPECT_NE(v, nullptr) << name;
  return v ? *v : -1;
}

DocAttributes stats(std::string_view text) {
  DocAttributes a;
  compute_text_attributes(text, a);
  return a;
}

// A plausible English paragraph of n distinct words (no repetition).
std::string prose(int n, int seed = 0) {
  static const char* w[] = {"river", "stone", "light", "garden", "window", "market", "teacher", "planet", "signal",
                            "winter", "forest", "bridge", "letter", "number", "silver", "motion", "record", "summer"};
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += w[(i * 7 + seed) % 18];
    s += static_cast<char>('a' + (i + seed) % 26);  // two letters: every word distinct, mean length ~8
    s += static_cast<char>('a' + (i / 26) % 26);
    s += (i % 12 == 11) ? ".\n" : " ";
  }
  return s + "end.";
}

}  // namespace

TEST(FilterWords, SplitsAtSpaceAndAroundEachCjkCharacter) {
  std::vector<WordSpan> w;
  split_words("Hello  世界 foo\t42", w);
  ASSERT_EQ(w.size(), 5u);
  EXPECT_EQ(w[0].begin, 0u);
  EXPECT_EQ(w[0].end, 5u);
  EXPECT_TRUE(w[0].alpha);
  EXPECT_TRUE(w[1].cjk);
  EXPECT_EQ(w[1].chars, 1u);
  EXPECT_TRUE(w[2].cjk);
  EXPECT_FALSE(w[3].cjk);
  EXPECT_FALSE(w[4].alpha);  // "42"
  split_words("日本語のテキスト", w);
  EXPECT_EQ(w.size(), 8u);
}

TEST(FilterStats, DuplicateFractionsCountRepeatsAfterTheFirst) {
  auto f = duplicate_fractions({"aa", "b", "aa", "aa"});
  EXPECT_DOUBLE_EQ(f.by_count, 0.5);
  EXPECT_DOUBLE_EQ(f.by_chars, 4.0 / 7.0);
  auto none = duplicate_fractions({});
  EXPECT_EQ(none.by_count, 0);
}

TEST(FilterStats, QualityMeasuresCountedByHand) {
  // 13 words: one with '#' (one hash), "wait..." (one ellipsis); "-", "-" and "123" without letters.
  const std::string t = "- first line of text\n- second #line here\nthird wait...\n123 done.";
  auto a = stats(t);
  EXPECT_EQ(value_of(a, attr::kWordCount), 13);  // "-" counts as a word (Gopher splits on space)
  EXPECT_NEAR(value_of(a, attr::kHashRatio), 1.0 / 13, 1e-12);
  EXPECT_NEAR(value_of(a, attr::kEllipsisRatio), 1.0 / 13, 1e-12);
  EXPECT_NEAR(value_of(a, attr::kBulletLines), 2.0 / 4, 1e-12);
  EXPECT_NEAR(value_of(a, attr::kEllipsisLines), 1.0 / 4, 1e-12);
  EXPECT_NEAR(value_of(a, attr::kAlphaWords), 10.0 / 13, 1e-12);  // "-", "-", "123" have no letter
  EXPECT_EQ(value_of(a, attr::kStopWords), 1);                     // "of"
  // Mean word length: characters over words (no CJK word here).
  double chars = 0;
  std::vector<WordSpan> w;
  split_words(t, w);
  for (auto& x : w) chars += x.chars;
  EXPECT_NEAR(value_of(a, attr::kMeanWordLength), chars / 13, 1e-12);
  EXPECT_EQ(chars, 1 + 5 + 4 + 2 + 4 + 1 + 6 + 5 + 4 + 5 + 7 + 3 + 5);
  // CJK-only text: no mean word length (the rule does not apply).
  auto j = stats("日本語の文章です。");
  EXPECT_EQ(j.value(attr::kMeanWordLength), nullptr);
  EXPECT_EQ(value_of(j, attr::kWordCount), 9);
}

TEST(FilterStats, RepetitionMeasuresCountedByHand) {
  // Words a b a b a b c: 2-grams "a b" x3 (2 bytes each) -> 6 of 7 word bytes.
  auto a = stats("a b a b a b c");
  EXPECT_NEAR(value_of(a, attr::top_ngram(2)), 6.0 / 7, 1e-12);
  // 3-grams: "a b a" x2, "b a b" x2, "a b c" x1: tie on count, same bytes -> 2*3 of 7.
  EXPECT_NEAR(value_of(a, attr::top_ngram(3)), 6.0 / 7, 1e-12);
  // A 5-gram of 5-byte words twice, then 3 unique words: 10 covered words of 13.
  auto b = stats("aaaaa bbbbb ccccc ddddd eeeee aaaaa bbbbb ccccc ddddd eeeee xxxxx yyyyy zzzzz");
  EXPECT_NEAR(value_of(b, attr::dup_ngram(5)), 10.0 / 13, 1e-12);
  EXPECT_NEAR(value_of(b, attr::dup_ngram(6)), 0.0, 1e-12);  // no 6-gram occurs twice
  // Lines and paragraphs.
  auto c = stats("one line\n\none line\n\nother line\n\none line");
  EXPECT_NEAR(value_of(c, attr::kDupLineFrac), 0.5, 1e-12);
  EXPECT_NEAR(value_of(c, attr::kDupParaFrac), 0.5, 1e-12);
  EXPECT_NEAR(value_of(c, attr::kDupLineCharFrac), 16.0 / 34, 1e-12);
  // Unique prose has no repetition.
  auto p = stats(prose(80));
  EXPECT_EQ(value_of(p, attr::top_ngram(2)), 0);
  EXPECT_EQ(value_of(p, attr::dup_ngram(5)), 0);
}

TEST(FilterDecide, DefaultsKeepProseAndNameTheFirstFailingRule) {
  FilterConfig cfg;
  EXPECT_TRUE(decide(cfg, stats(prose(80))).keep);
  auto short_doc = decide(cfg, stats("too short to keep."));
  EXPECT_FALSE(short_doc.keep);
  EXPECT_EQ(short_doc.reason, "length.min_words");
  // A long text of one repeated line fails several rules; the reason is the first in table order.
  std::string rep;
  for (int i = 0; i < 40; ++i) rep += "the same line again and again.\n";
  auto d = decide(cfg, stats(rep));
  EXPECT_FALSE(d.keep);
  EXPECT_EQ(d.reason, "repetition.max_dup_line_frac");
  EXPECT_GE(d.failing_rules.size(), 3u);
  // Turning the rules off (negative) keeps it.
  for (const char* k : {"repetition.max_dup_line_frac", "repetition.max_dup_para_frac",
                        "repetition.max_dup_line_char_frac", "repetition.max_dup_para_char_frac",
                        "repetition.max_top_2gram_char_frac", "repetition.max_top_3gram_char_frac",
                        "repetition.max_top_4gram_char_frac", "repetition.max_dup_5gram_char_frac",
                        "repetition.max_dup_6gram_char_frac", "repetition.max_dup_7gram_char_frac",
                        "repetition.max_dup_8gram_char_frac", "repetition.max_dup_9gram_char_frac",
                        "repetition.max_dup_10gram_char_frac"})
    cfg.set(k, -1.0, "test");
  EXPECT_TRUE(decide(cfg, stats(rep)).keep);
}

TEST(FilterDecide, GopherDefaultsAreThePublishedOnes) {
  FilterConfig cfg;
  EXPECT_EQ(cfg.threshold("length.min_words"), 50);
  EXPECT_EQ(cfg.threshold("length.max_words"), 100000);
  EXPECT_EQ(cfg.threshold("quality.min_mean_word_length"), 3);
  EXPECT_EQ(cfg.threshold("quality.max_mean_word_length"), 10);
  EXPECT_EQ(cfg.threshold("quality.max_hash_ratio"), 0.1);
  EXPECT_EQ(cfg.threshold("quality.max_bullet_lines_ratio"), 0.9);
  EXPECT_EQ(cfg.threshold("quality.max_ellipsis_lines_ratio"), 0.3);
  EXPECT_EQ(cfg.threshold("quality.min_alpha_words_ratio"), 0.8);
  EXPECT_EQ(cfg.threshold("repetition.max_dup_line_frac"), 0.3);
  EXPECT_EQ(cfg.threshold("repetition.max_dup_para_char_frac"), 0.2);
  EXPECT_EQ(cfg.threshold("repetition.max_top_2gram_char_frac"), 0.2);
  EXPECT_EQ(cfg.threshold("repetition.max_top_3gram_char_frac"), 0.18);
  EXPECT_EQ(cfg.threshold("repetition.max_top_4gram_char_frac"), 0.16);
  EXPECT_DOUBLE_EQ(cfg.threshold("repetition.max_dup_5gram_char_frac"), 0.15);
  EXPECT_DOUBLE_EQ(cfg.threshold("repetition.max_dup_10gram_char_frac"), 0.10);
}

TEST(FilterConfig, SetChecksNamesTypesAndRanges) {
  FilterConfig cfg;
  cfg.set("length.min_words", 20.0, "t");
  EXPECT_EQ(cfg.threshold("length.min_words"), 20);
  try {
    cfg.set("length.min_wrods", 20.0, "cfg.toml:3");
    FAIL();
  } catch (const agpt::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("cfg.toml:3"), std::string::npos);
    EXPECT_NE(m.find("length.min_words"), std::string::npos) << m;  // the known keys are listed
  }
  EXPECT_THROW(cfg.set("length.min_words", std::string("many"), "t"), agpt::Error);
  EXPECT_THROW(cfg.set("c4.enabled", 1.0, "t"), agpt::Error);
  EXPECT_THROW(cfg.set("c4.min_words_per_line", 50.0, "t"), agpt::Error);
  EXPECT_THROW(cfg.set("langid.languages", std::string("en,FR"), "t"), agpt::Error);
  cfg.set("langid.languages", std::string("en,fr"), "t");
  EXPECT_EQ(cfg.languages, (std::vector<std::string>{"en", "fr"}));
  cfg.merge_json(R"({"c4": {"enabled": true, "min_sentences": 2}, "langid": {"languages": ["ja"]}})", "c.json");
  EXPECT_TRUE(cfg.c4);
  EXPECT_EQ(cfg.threshold("c4.min_sentences"), 2);
  EXPECT_EQ(cfg.languages, (std::vector<std::string>{"ja"}));
  EXPECT_THROW(cfg.merge_json("{\"c4\": 3}", "c.json"), agpt::Error);
  EXPECT_THROW(cfg.merge_json("{oops", "c.json"), agpt::Error);
}

TEST(FilterC4, LineCleanupRemovesFlaggedLines) {
  std::string t = prose(60) + "\nPlease enable JavaScript to view this page.\nmenu item\n" +
                  "We use cookies to improve it. Read the privacy policy.\nA good sentence with words ends here.\n";
  FilterConfig cfg;
  cfg.c4 = true;
  cfg.set("c4.min_sentences", 1.0, "t");
  auto a = stats(t);
  auto d = decide(cfg, a);
  ASSERT_TRUE(d.keep) << d.reason;
  std::string kept = remove_lines(t, d.cut_lines);
  EXPECT_EQ(kept.find("JavaScript"), std::string::npos);
  EXPECT_EQ(kept.find("menu item"), std::string::npos);  // no terminal punctuation, 2 words
  EXPECT_EQ(kept.find("cookies"), std::string::npos);
  EXPECT_NE(kept.find("A good sentence with words ends here.\n"), std::string::npos);
  EXPECT_EQ(d.lines_by_rule["c4.drop_javascript"], 1u);
  EXPECT_EQ(d.lines_by_rule["c4.drop_policy"], 1u);
  // Off: nothing is cut.
  cfg.c4 = false;
  EXPECT_TRUE(decide(cfg, a).cut_lines.empty());
  // Document rules of C4.
  cfg.c4 = true;
  auto lorem = decide(cfg, stats(prose(60) + " Lorem ipsum dolor sit amet."));
  EXPECT_EQ(lorem.reason, "c4.drop_lorem_ipsum");
  auto curly = decide(cfg, stats(prose(60) + " int main() { return 0; }"));
  EXPECT_EQ(curly.reason, "c4.drop_curly_bracket");
  EXPECT_EQ(remove_lines("only line\n", {{0, 9}}), "");
}

TEST(FilterAttributes, JsonRoundTripGivesTheSameDecisions) {
  const std::string t = prose(70, 3) + "\nrepeated line.\nrepeated line.\n- bullet\n";
  DocAttributes a = stats(t);
  a.add_value(langid_attribute("en"), t.size(), 0.987654321);
  std::string line;
  append_attributes_json(line, "doc-1", a);
  std::string id;
  DocAttributes b;
  parse_attributes_json(line, id, b, "t:1");
  EXPECT_EQ(id, "doc-1");
  ASSERT_EQ(a.items.size(), b.items.size());
  for (size_t i = 0; i < a.items.size(); ++i) {
    EXPECT_EQ(a.items[i].name, b.items[i].name);
    ASSERT_EQ(a.items[i].spans.size(), b.items[i].spans.size());
    for (size_t s = 0; s < a.items[i].spans.size(); ++s) {
      EXPECT_EQ(a.items[i].spans[s].value, b.items[i].spans[s].value) << a.items[i].name;  // bit-exact
      EXPECT_EQ(a.items[i].spans[s].end, b.items[i].spans[s].end);
    }
  }
  FilterConfig cfg;
  cfg.c4 = true;
  cfg.set("langid.languages", std::string("en"), "t");
  EXPECT_EQ(decide(cfg, a).keep, decide(cfg, b).keep);
  EXPECT_EQ(decide(cfg, a).cut_lines, decide(cfg, b).cut_lines);
  EXPECT_THROW(parse_attributes_json("{\"id\":1}", id, b, "t:2"), agpt::Error);
  EXPECT_THROW(parse_attributes_json("{\"attributes\":{\"x\":[[5,1,0]]}}", id, b, "t:3"), agpt::Error);
  // The language rule without language scores is an error, not a silent removal.
  cfg.languages = {"en"};
  EXPECT_THROW(decide(cfg, stats(t)), agpt::Error);
}

TEST(FilterAttributes, PathsMirrorTheInputNames) {
  agpt::corpus::InputFile f{"/data/c/a/b.jsonl.zst", "a/b.jsonl.zst", agpt::corpus::InputKind::kJsonl};
  EXPECT_EQ(attributes_path("out/attrs", f), "out/attrs/a/b.jsonl.zst");
  agpt::corpus::InputFile t{"/abs/x.txt", "/abs/x.txt", agpt::corpus::InputKind::kText};
  EXPECT_EQ(attributes_path("out/", t), "out/x.txt.jsonl.zst");
}
