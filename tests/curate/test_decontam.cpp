// Decontamination: the words agree with dedup's normal form, n-gram overlaps are found (and only
// at n words or more), cuts keep character boundaries, and whole runs drop or cut documents with
// the counts per benchmark item.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "base/error.h"
#include "curate/decontam.h"
#include "curate/hash.h"
#include "curate/minhash.h"

using namespace agpt::curate;
namespace fs = std::filesystem;

namespace {

std::string join_words(std::string_view text) {
  std::vector<NormWord> w;
  normalized_words(text, w);
  std::string out;
  for (const auto& x : w) {
    if (!out.empty()) out += ' ';
    std::string n = normalize_text(text.substr(x.begin, x.end - x.begin));
    out += n;
  }
  return out;
}

const char* kQuestion =
    "Which of the following gases makes up the largest fraction of the atmosphere of the Earth at sea level";

}  // namespace

TEST(Decontam, NormalizedWordsMatchNormalizeText) {
  for (std::string_view t : {"Hello, World!  foo-bar\tBAZ", "  ...  a.b.c  --- Ünïcode Straße\n\nx",
                             "", "!!!", "tail word"}) {
    EXPECT_EQ(join_words(t), normalize_text(t)) << t;
  }
  std::vector<NormWord> w;
  normalized_words("Ab, cd", w);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].begin, 0u);
  EXPECT_EQ(w[0].end, 3u);  // the comma is inside the word's bytes (it was part of the token)
  std::vector<NormWord> v;
  normalized_words("ab CD", v);
  EXPECT_EQ(w[0].hash, v[0].hash);
  EXPECT_EQ(w[1].hash, v[1].hash);
}

namespace {

// The normalised words of text, as strings of their bytes (CJK words) or normal form (others).
std::vector<std::string> word_texts(std::string_view text) {
  std::vector<NormWord> w;
  normalized_words(text, w);
  std::vector<std::string> out;
  for (const auto& x : w) out.push_back(normalize_text(text.substr(x.begin, x.end - x.begin)));
  return out;
}

// A JCommonsenseQA-like item and a CMMLU-like one (no spaces between words).
const char* kJaQuestion = "日本で一番高い山は富士山であり、その高さは約三千七百七十六メートルです。";
const char* kZhQuestion = "光合作用是植物利用光能把二氧化碳和水合成有机物并释放氧气的过程";

}  // namespace

TEST(Decontam, CjkCharactersAreWords) {
  // Each ideograph / kana / Hangul syllable is a word; CJK punctuation separates and is deleted;
  // Latin runs next to them stay one word.
  EXPECT_EQ(word_texts("日本語のテスト。GPT-3は「言語」モデル"),
            (std::vector<std::string>{"日", "本", "語", "の", "テ", "ス", "ト", "gpt3", "は", "言", "語", "モ", "デ",
                                      "ル"}));
  EXPECT_EQ(word_texts("한국어 문장"), (std::vector<std::string>{"한", "국", "어", "문", "장"}));
  // Full-width ASCII forms are their ASCII characters; the ideographic space separates.
  std::vector<NormWord> w, ascii;
  normalized_words("ＡＢＣ，１２３\u3000ｘ", w);
  normalized_words("abc123 x", ascii);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].hash, ascii[0].hash);
  EXPECT_EQ(w[1].hash, ascii[1].hash);
  EXPECT_EQ(w[0].end, 21u);  // 7 characters of 3 bytes
  normalized_words("(漢字)", w);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].begin, 1u);  // the character's own bytes, not the bracket
  EXPECT_EQ(w[0].end, 4u);
  EXPECT_EQ(w[1].begin, 4u);
  EXPECT_EQ(w[1].end, 7u);
  // Other non-ASCII text is unchanged: kept inside the word, byte for byte.
  EXPECT_EQ(word_texts("Straße—Ωmega naïve"), (std::vector<std::string>{"straße—Ωmega", "naïve"}));
  // A broken UTF-8 lead byte of the CJK range is one kept byte, as before.
  EXPECT_EQ(word_texts(std::string("ab\xE6" "cd")), (std::vector<std::string>{std::string("ab\xE6" "cd")}));
}

TEST(Decontam, FindsCjkThirteenGrams) {
  DecontamOptions opt;
  BenchmarkIndex index(opt);
  index.add_item(0, "ja", kJaQuestion);
  index.add_item(0, "zh", kZhQuestion);
  ASSERT_EQ(index.items().size(), 2u);
  EXPECT_EQ(index.items()[0].words, 34u);  // characters, the two punctuation marks left out
  EXPECT_EQ(index.items()[1].words, 31u);
  std::vector<NormWord> w;
  std::vector<BenchmarkIndex::Hit> hits;
  // 13 characters of the Japanese item, with other punctuation, inside other text.
  normalized_words("今日は晴れ。一番高い山は、富士山であり その高さは", w);
  index.find(w, hits);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].count, 13u);
  EXPECT_EQ(index.items_of(hits[0].slot).first[0], 0u);
  // 12 characters are not enough.
  normalized_words("今日は晴れ。一番高い山は富士山であり。", w);
  index.find(w, hits);
  EXPECT_TRUE(hits.empty());
  // Unrelated Chinese text sharing many characters (光, 植物, 水 ...) but no 13 in a row.
  normalized_words("植物需要水和光才能生长，二氧化碳在空气中的含量很低，有机物在土壤中分解。", w);
  index.find(w, hits);
  EXPECT_TRUE(hits.empty());
}

namespace {

// The splitter before CJK support (ASCII whitespace separates, ASCII punctuation deleted, ASCII
// letters lowercased, every other byte kept): text without CJK must give exactly these words.
std::vector<NormWord> old_words(std::string_view text) {
  std::vector<NormWord> out;
  std::string word;
  size_t begin = 0, end = 0;
  bool in = false;
  auto close = [&] {
    if (!word.empty()) out.push_back({uint32_t(begin), uint32_t(end), agpt::curate::xxh64(word, 0)});
    word.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (std::string_view(" \t\n\r\v\f").find(c) != std::string_view::npos) {
      if (in) close();
      in = false;
      continue;
    }
    if (!in) begin = i;
    in = true;
    end = i + 1;
    if (std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").find(c) != std::string_view::npos) continue;
    word.push_back(c >= 'A' && c <= 'Z' ? char(c + 32) : c);
  }
  if (in) close();
  return out;
}

}  // namespace

TEST(Decontam, NonCjkTextSplitsAsBefore) {
  // Random texts of ASCII, Latin, Greek, symbols of the 3-byte range (—, €, ℕ, ∑), 4-byte emoji and
  // broken UTF-8: the words (offsets and hashes) are those of the splitter before CJK support.
  const std::vector<std::string> pieces = {"a", "Z", "q", "7", " ", "\t", "\n", ",", "-", "!", "'", "é", "ü", "Ω",
                                           "—", "€", "ℕ", "∑", "😀", "\xE6", "\xE3\x81", "\xF0\xA0", "\xC3", "ﬁ"};
  uint64_t state = 12345;
  for (int t = 0; t < 500; ++t) {
    std::string text;
    const int len = 1 + t % 40;
    for (int k = 0; k < len; ++k) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      text += pieces[(state >> 33) % pieces.size()];
    }
    std::vector<NormWord> now;
    normalized_words(text, now);
    const auto before = old_words(text);
    ASSERT_EQ(now.size(), before.size()) << text;
    for (size_t i = 0; i < now.size(); ++i) {
      EXPECT_EQ(now[i].begin, before[i].begin) << text;
      EXPECT_EQ(now[i].end, before[i].end) << text;
      EXPECT_EQ(now[i].hash, before[i].hash) << text;
    }
  }
}

TEST(Decontam, FindsThirteenGramsAndNotTwelve) {
  DecontamOptions opt;
  BenchmarkIndex index(opt);
  index.add_item(0, "q1", kQuestion);  // 19 words
  std::vector<NormWord> w;
  std::vector<BenchmarkIndex::Hit> hits;
  // 13 consecutive words of the item, with other case and punctuation, inside other text.
  normalized_words("Intro text. WHICH of the following gases, makes up the largest fraction of the ATMOSPHERE! end", w);
  index.find(w, hits);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].first, 2u);
  EXPECT_EQ(hits[0].count, 13u);
  normalized_words("which of the following gases makes up the largest fraction of the", w);  // 12 words
  index.find(w, hits);
  EXPECT_TRUE(hits.empty());
  // An item shorter than 13 words (but >= 8) matches whole; shorter than 8 is not indexed.
  index.add_item(0, "short", "the boiling point of water at sea level");  // 8 words
  index.add_item(0, "tiny", "what is two plus two");                      // 5 words
  EXPECT_EQ(index.items().size(), 2u);
  normalized_words("At home, the boiling point of water at sea level is 100 C.", w);
  index.find(w, hits);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].count, 8u);
  EXPECT_EQ(index.file_counts()[0].too_short, 1u);
}

TEST(Decontam, CutsKeepCharacterBoundaries) {
  std::string t = std::string(10, 'a') + "é" + std::string(20, 'b') + "HIT" + std::string(20, 'c') + "ü" + "dd";
  const uint64_t hb = t.find("HIT"), he = hb + 3;
  auto pieces = pieces_after_cut(t, {{hb, he}}, 20);
  // 20 bytes before HIT start inside "b"s (b's start at 12); 20 after end in "c"s, then "ü" kept.
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].first, 0u);
  EXPECT_EQ(pieces[0].second, hb - 20);
  EXPECT_EQ(pieces[1].first, he + 20);
  auto wide = pieces_after_cut(t, {{hb, he}}, 21);  // would split "é" (2 bytes at 10..12)
  EXPECT_EQ(wide[0].second, 10u);                   // moved out to the character's start
  auto all = pieces_after_cut(t, {{hb, he}}, 1000);
  EXPECT_TRUE(all.empty());
  auto merged = merge_ranges({{5, 10}, {0, 3}, {9, 12}, {12, 14}});
  EXPECT_EQ(merged, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 3}, {5, 14}}));
}

class DecontamRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_decontam_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream b(dir_ / "bench.jsonl");
    b << "{\"id\": \"q1\", \"question\": \"" << kQuestion << "\", \"choices\": [\"nitrogen\", \"oxygen\"], "
      << "\"answer\": \"nitrogen\"}\n";
    b << "{\"id\": \"q2\", \"question\": \"In what year did the first person walk on the surface of the moon "
         "during the Apollo program\", \"answer\": 1969}\n";
    b << "{\"question\": \"too short\"}\n";
    std::string filler(600, ' ');
    for (size_t i = 0; i < filler.size(); ++i) filler[i] = "abcdefgh "[i % 9];
    std::ofstream d(dir_ / "docs.jsonl");
    d << "{\"id\":\"clean\",\"text\":\"" << filler << "\"}\n";
    d << "{\"id\":\"mid\",\"text\":\"" << filler << " " << kQuestion << " " << filler << "\"}\n";
    d << "{\"id\":\"edge\",\"text\":\"" << kQuestion << " short tail\"}\n";
    d << "{\"id\":\"moon\",\"text\":\"" << filler << " in what year did the first person walk on the surface of "
      << "the moon during the apollo program " << filler << "\"}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  DecontamOptions options() {
    DecontamOptions o;
    o.inputs = {(dir_ / "docs.jsonl").string()};
    o.benchmarks = {(dir_ / "bench.jsonl").string()};
    return o;
  }
  fs::path dir_;
};

TEST_F(DecontamRun, CutModeWritesFragmentsAndCountsItems) {
  std::vector<std::string> kept, removed;
  DecontamSink sink;
  sink.kept = [&](const agpt::corpus::Document& d) { kept.push_back(d.id + "|" + d.text); };
  sink.removed = [&](const agpt::corpus::Document& d, const char* r, const std::vector<std::string>& items) {
    removed.push_back(d.id + "|" + r + "|" + items.at(0));
  };
  auto opt = options();
  opt.threads = 2;
  auto rep = run_decontaminate(opt, sink);
  EXPECT_EQ(rep.documents_in, 4u);
  EXPECT_EQ(rep.documents_clean, 1u);
  EXPECT_EQ(rep.documents_contaminated, 3u);
  EXPECT_EQ(rep.documents_cut, 2u);  // mid and moon: two fragments each
  EXPECT_EQ(rep.fragments_written, 4u);
  ASSERT_EQ(removed.size(), 1u);  // edge: nothing long enough is left
  EXPECT_EQ(removed[0], "edge|" + std::string(kReasonNoFragment) + "|" + (dir_ / "bench.jsonl").string() + ":q1");
  ASSERT_EQ(kept.size(), 5u);
  EXPECT_EQ(kept[1].substr(0, 6), "mid#0|");
  EXPECT_EQ(kept[1].find("largest"), std::string::npos);
  EXPECT_EQ(kept[1].size(), 6u + 401u);  // the hit starts at byte 601: 200 bytes before it go too
  EXPECT_EQ(rep.benchmark_counts[0].items, 3u);
  EXPECT_EQ(rep.benchmark_counts[0].too_short, 1u);
  ASSERT_EQ(rep.items.size(), 2u);
  EXPECT_EQ(rep.items[0].id, "q1");
  EXPECT_EQ(rep.items[0].documents, 2u);
  EXPECT_EQ(rep.items[1].id, "q2");
  EXPECT_EQ(rep.documents_in, rep.documents_clean + rep.documents_cut + rep.removed_by_reason[kReasonNoFragment]);
}

TEST_F(DecontamRun, DropModeAndFrequentNgrams) {
  auto opt = options();
  opt.mode = DecontamOptions::Mode::kDrop;
  uint64_t kept = 0;
  DecontamSink sink;
  sink.kept = [&](const agpt::corpus::Document&) { ++kept; };
  auto rep = run_decontaminate(opt, sink);
  EXPECT_EQ(kept, 1u);
  EXPECT_EQ(rep.removed_by_reason[kReasonContaminated], 3u);
  // q1's n-grams occur in 2 documents: with at most 1 allowed they are ignored, only q2 counts.
  opt.max_ngram_docs = 1;
  rep = run_decontaminate(opt, sink);
  EXPECT_EQ(rep.documents_contaminated, 1u);
  EXPECT_GT(rep.ngrams_ignored_frequent, 0u);
}

TEST_F(DecontamRun, BadBenchmarksAreClearErrors) {
  auto opt = options();
  std::ofstream(dir_ / "bad.jsonl") << "{\"question\": \"fine but short\"}\n[1, 2\n";
  opt.benchmarks = {(dir_ / "bad.jsonl").string()};
  try {
    run_decontaminate(opt, {});
    FAIL();
  } catch (const agpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  std::ofstream(dir_ / "nofields.jsonl") << "{\"prompt\": \"a b c d e f g h i j k l m n\"}\n";
  opt.benchmarks = {(dir_ / "nofields.jsonl").string()};
  try {
    run_decontaminate(opt, {});
    FAIL();
  } catch (const agpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--fields"), std::string::npos) << e.what();
  }
  opt.fields = {"prompt"};
  EXPECT_NO_THROW(run_decontaminate(opt, {}));
}

TEST(DecontamCjk, JapaneseAndChineseItemsAreCutOut) {
  const fs::path dir = fs::temp_directory_path() / ("agpt_decontam_cjk_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "bench.jsonl") << "{\"id\":\"jcqa-1\",\"question\":\"" << kJaQuestion << "\"}\n"
                                     << "{\"id\":\"cmmlu-1\",\"question\":\"" << kZhQuestion << "\"}\n"
                                     << "{\"id\":\"en-1\",\"question\":\"" << kQuestion << "\"}\n";
  std::string ja_filler, zh_filler, en_filler;
  for (int i = 0; i < 10; ++i) {
    ja_filler += "これは天気についての関係のない文書です。";  // 20 characters, 60 bytes
    zh_filler += "这是一个关于天气的无关文档，今天下雨了。";  // 20 characters, 60 bytes
    en_filler += "lorem ipsum dolor sit amet consectetur ";  // 39 bytes
  }
  en_filler += en_filler;
  const std::string unrelated = zh_filler + "光合作用很重要。" + ja_filler + "富士山はきれいです。" + zh_filler;
  {
    std::ofstream d(dir / "docs.jsonl");
    d << "{\"id\":\"ja\",\"text\":\"" << ja_filler << "昔から" << kJaQuestion << "と言われる。" << ja_filler << "\"}\n";
    d << "{\"id\":\"zh\",\"text\":\"" << zh_filler << kZhQuestion << zh_filler << "\"}\n";
    d << "{\"id\":\"unrelated\",\"text\":\"" << unrelated << "\"}\n";
    d << "{\"id\":\"en\",\"text\":\"" << en_filler << kQuestion << " " << en_filler << "\"}\n";
  }
  DecontamOptions opt;
  opt.inputs = {(dir / "docs.jsonl").string()};
  opt.benchmarks = {(dir / "bench.jsonl").string()};
  std::map<std::string, std::string> kept;
  DecontamSink sink;
  sink.kept = [&](const agpt::corpus::Document& d) { kept[d.id] = d.text; };
  auto rep = run_decontaminate(opt, sink);
  fs::remove_all(dir);
  EXPECT_EQ(rep.documents_in, 4u);
  EXPECT_EQ(rep.documents_contaminated, 3u);
  EXPECT_EQ(rep.documents_cut, 3u);
  EXPECT_EQ(rep.fragments_written, 6u);
  ASSERT_EQ(rep.items.size(), 3u);
  for (const auto& it : rep.items) EXPECT_EQ(it.documents, 1u) << it.id;
  // The unrelated document (it shares words and short phrases with the items) is untouched.
  ASSERT_EQ(kept.count("unrelated"), 1u);
  EXPECT_EQ(kept["unrelated"], unrelated);
  for (const char* id : {"ja#0", "ja#1", "zh#0", "zh#1", "en#0", "en#1"}) ASSERT_EQ(kept.count(id), 1u) << id;
  for (const char* id : {"ja#0", "ja#1"}) {
    EXPECT_EQ(kept[id].find("富士山"), std::string::npos) << kept[id];
    EXPECT_EQ(kept[id].size() % 3, 0u);  // cut at character boundaries
  }
  for (const char* id : {"zh#0", "zh#1"}) EXPECT_EQ(kept[id].find("光合作用"), std::string::npos) << kept[id];
  // 200 bytes before the hit go too: the hit starts after 600 + 9 bytes ("昔から"), the cut at
  // byte 409 moves back to the character start 408.
  EXPECT_EQ(kept["ja#0"], ja_filler.substr(0, 408));
  EXPECT_EQ(kept["zh#0"], zh_filler.substr(0, 399));  // 600 - 200 = 400, moved back to 399
  // English, as before: the 13+ words and 200 bytes either side are gone.
  EXPECT_EQ(kept["en#0"], en_filler.substr(0, en_filler.size() - 200));
}
