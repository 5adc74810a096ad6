// Decontamination: the words agree with dedup's normal form, n-gram overlaps are found (and only
// at n words or more), cuts keep character boundaries, and whole runs drop or cut documents with
// the counts per benchmark item.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/error.h"
#include "curate/decontam.h"
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
