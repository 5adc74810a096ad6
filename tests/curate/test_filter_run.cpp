// run_filter over files: every document accounted for, the same output and attributes for any
// thread count, and re-deciding from the attributes equals computing again with the new config.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/error.h"
#include "corpus/stream.h"
#include "curate/filter.h"

using namespace agpt::curate;
namespace fs = std::filesystem;

namespace {

std::string prose(int n, int seed) {
  static const char* w[] = {"river", "stone", "light", "garden", "window", "market", "teacher", "planet", "signal",
                            "winter", "forest", "bridge", "letter", "number", "silver", "motion", "record", "summer"};
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += w[(i * 7 + seed) % 18];
    s += static_cast<char>('a' + (i + seed) % 26);  // two letters: every word distinct, mean length ~8
    s += static_cast<char>('a' + (i / 26) % 26);
    s += (i % 12 == 11) ? ".\\n" : " ";
  }
  return s + "end.";
}

struct Result {
  std::vector<std::string> kept;
  std::vector<std::string> removed;
  FilterReport report;
};

Result run(FilterOptions opt) {
  Result r;
  FilterSink sink;
  sink.kept = [&](const agpt::corpus::Document& d) { r.kept.push_back(d.id + "|" + d.text); };
  sink.removed = [&](const agpt::corpus::Document& d, const std::string& why) { r.removed.push_back(d.id + "|" + why); };
  r.report = run_filter(opt, sink);
  return r;
}

}  // namespace

class FilterRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_filter_run_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "in" / "sub");
    std::ofstream a(dir_ / "in" / "a.jsonl");
    for (int d = 0; d < 40; ++d) {
      std::string text;
      switch (d % 5) {
        case 0: text = prose(60 + d, d); break;
        case 1: text = "short text " + std::to_string(d); break;
        case 2: for (int i = 0; i < 20; ++i) text += "buy now and save big today.\\n"; break;
        case 3: text = prose(70, d) + "\\nEnable javascript in your browser\\nClick here"; break;
        case 4: text = prose(55, d) + " " + std::string(30, '#'); break;
      }
      a << "{\"id\":\"a" << d << "\",\"text\":\"" << text << "\"}\n";
    }
    a << "not json\n";
    std::ofstream b(dir_ / "in" / "sub" / "b.jsonl");
    for (int d = 0; d < 7; ++d) b << "{\"id\":\"b" << d << "\",\"text\":\"" << prose(50 + 3 * d, 100 + d) << "\"}\n";
    std::ofstream(dir_ / "in" / "sub" / "empty.jsonl");
  }
  void TearDown() override { fs::remove_all(dir_); }
  FilterOptions options() {
    FilterOptions o;
    o.inputs = {(dir_ / "in").string()};
    o.batch_documents = 7;  // several batches
    return o;
  }
  fs::path dir_;
};

TEST_F(FilterRun, AccountsForEveryDocumentWhateverTheThreads) {
  auto o1 = options();
  o1.threads = 1;
  o1.attributes_dir = (dir_ / "attrs1").string();
  o1.config.c4 = true;
  o1.config.set("c4.min_sentences", 1.0, "t");
  auto o3 = o1;
  o3.threads = 3;
  o3.attributes_dir = (dir_ / "attrs3").string();
  Result r1 = run(o1), r3 = run(o3);
  EXPECT_EQ(r1.kept, r3.kept);
  EXPECT_EQ(r1.removed, r3.removed);
  const auto& rep = r1.report;
  EXPECT_EQ(rep.documents_in, 47u);
  EXPECT_EQ(rep.read.skipped, 1u);
  uint64_t removed = 0;
  for (const auto& [k, v] : rep.removed_by_reason) removed += v;
  EXPECT_EQ(rep.documents_in, rep.documents_kept + removed);
  EXPECT_EQ(rep.removed_by_reason.at("length.min_words"), 8u);
  EXPECT_EQ(rep.removed_by_reason.at("repetition.max_dup_line_frac"), 8u);
  EXPECT_EQ(rep.removed_by_reason.at("quality.max_hash_ratio"), 8u);
  EXPECT_GE(rep.documents_cut, 8u);  // at least the ones with a javascript line
  EXPECT_EQ(rep.lines_removed_by_rule.at("c4.drop_javascript"), 8u);
  for (const auto& k : r1.kept) EXPECT_EQ(k.find("javascript"), std::string::npos) << k;
  // Attributes: one file per input (the empty input too), byte-identical across thread counts.
  ASSERT_EQ(rep.attribute_files.size(), 3u);
  for (const char* f : {"a.jsonl.zst", "sub/b.jsonl.zst", "sub/empty.jsonl.zst"}) {
    ASSERT_TRUE(fs::exists(dir_ / "attrs1" / f)) << f;
    EXPECT_EQ(agpt::corpus::read_decompressed((dir_ / "attrs1" / f).string()),
              agpt::corpus::read_decompressed((dir_ / "attrs3" / f).string()));
  }
  std::string a = agpt::corpus::read_decompressed((dir_ / "attrs1" / "a.jsonl.zst").string());
  EXPECT_EQ(std::count(a.begin(), a.end(), '\n'), 40);
  EXPECT_NE(a.find("{\"id\":\"a0\",\"attributes\":{\"agpt_gopher__word_count\":[[0,"), std::string::npos);
}

TEST_F(FilterRun, ReDecidingFromAttributesEqualsComputingAgain) {
  auto first = options();
  first.attributes_dir = (dir_ / "attrs").string();
  run(first);
  FilterOptions strict = options();
  strict.config.set("length.min_words", 65.0, "t");
  strict.config.set("quality.max_hash_ratio", -1.0, "t");
  strict.config.c4 = true;
  strict.config.set("c4.min_sentences", 1.0, "t");
  Result direct = run(strict);
  strict.from_attributes = true;
  strict.attributes_dir = (dir_ / "attrs").string();
  strict.threads = 2;
  Result again = run(strict);
  EXPECT_EQ(direct.kept, again.kept);
  EXPECT_EQ(direct.removed, again.removed);
  EXPECT_EQ(direct.report.removed_by_reason, again.report.removed_by_reason);
  EXPECT_EQ(direct.report.removed_by_reason.count("quality.max_hash_ratio"), 0u);

  // Attributes of other inputs are refused, not silently misapplied.
  std::ofstream(dir_ / "in" / "sub" / "b.jsonl", std::ios::app)
      << "{\"id\":\"extra\",\"text\":\"" << prose(60, 7) << "\"}\n";
  try {
    run(strict);
    FAIL() << "attributes with fewer lines than documents must be an error";
  } catch (const agpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fewer attribute lines"), std::string::npos) << e.what();
  }
  strict.attributes_dir = (dir_ / "nothing").string();
  EXPECT_THROW(run(strict), agpt::Error);
}

TEST_F(FilterRun, LanguageRuleNeedsAModel) {
  auto o = options();
  o.config.set("langid.languages", std::string("en"), "t");
  try {
    run(o);
    FAIL();
  } catch (const agpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--langid-model"), std::string::npos) << e.what();
  }
}
