// The blended sample stream: blend tree, permutations, data lists, plans, resume and mixture change.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "base/error.h"
#include "base/file.h"
#include "dataset/blend.h"
#include "dataset/data_list.h"
#include "dataset/indexed_dataset.h"
#include "dataset/loader.h"
#include "dataset/mixture.h"
#include "dataset/permutation.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::dataset;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("agpt_mix_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Writes a dataset whose token at global position t (in file order) is (base + t) % 60000, so a
// sample's tokens reveal exactly where in the file it came from.
void write_source(const fs::path& prefix, const std::vector<int>& doc_lengths, uint32_t base) {
  IndexedDatasetWriter w(prefix.string(), TokenDType::kUInt16);
  uint64_t t = 0;
  for (int len : doc_lengths) {
    std::vector<uint32_t> doc(len);
    for (auto& x : doc) x = static_cast<uint32_t>((base + t++) % 60000);
    w.add_document(doc);
  }
  w.finish();
}

std::vector<int> random_lengths(int docs, int mean, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> dist(std::log(mean), 0.8);
  std::vector<int> out(docs);
  for (auto& x : out) x = std::max(1, static_cast<int>(dist(rng)));
  return out;
}

}  // namespace

TEST(Blend, CountsAndPicksAgreeAndLocalIndicesAreSequential) {
  std::vector<double> w = {3, 1, 2, 1, 0.5, 0.01, 7};
  BlendTree tree(w, {{0, 1}, {2, 3}, {4}, {5, 6}});
  const uint64_t n = 50000;
  std::vector<uint64_t> seen(w.size(), 0);
  for (uint64_t i = 0; i < n; ++i) {
    auto p = tree.pick(i);
    ASSERT_EQ(p.local, seen[p.source]) << "sample " << i;
    seen[p.source]++;
  }
  EXPECT_EQ(seen, tree.counts(n));
  uint64_t total = 0;
  for (auto c : tree.counts(123457)) total += c;
  EXPECT_EQ(total, 123457u);
}

TEST(Blend, EveryPrefixStaysWithinTheStatedBound) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(0, 1.5);
  std::vector<double> w(60);
  for (auto& x : w) x = dist(rng);
  std::vector<std::vector<uint32_t>> groups(6);
  for (uint32_t s = 0; s < w.size(); ++s) groups[s % 6].push_back(s);
  BlendTree tree(w, groups);
  auto share = tree.shares();
  auto bound = tree.prefix_bounds();
  std::vector<uint64_t> count(w.size(), 0);
  double worst = 0;
  for (uint64_t i = 1; i <= 200000; ++i) {
    count[tree.pick(i - 1).source]++;
    for (size_t s = 0; s < w.size(); ++s) {
      double dev = std::fabs(double(count[s]) - share[s] * double(i));
      ASSERT_LE(dev, bound[s] + 1e-9) << "source " << s << " after " << i;
      worst = std::max(worst, dev);
    }
  }
  for (double b : bound) EXPECT_LT(b, 4.0);  // depth is small for 60 sources
  RecordProperty("worst_deviation", std::to_string(worst));
}

TEST(Blend, SharesFollowGroupSums) {
  BlendTree tree({1, 1, 2}, {{0, 1}, {2}});
  auto c = tree.counts(4000);
  EXPECT_EQ(c[0], 1000u);
  EXPECT_EQ(c[1], 1000u);
  EXPECT_EQ(c[2], 2000u);
}

TEST(Blend, RejectsBadWeights) {
  EXPECT_THROW(BlendTree({1, 0}, {{0, 1}}), Error);
  EXPECT_THROW(BlendTree({1, -1}, {{0, 1}}), Error);
  EXPECT_THROW(BlendTree({1, std::nan("")}, {{0, 1}}), Error);
  EXPECT_THROW(BlendTree({}, {}), Error);
}

TEST(Permutation, IsABijectionForAnySize) {
  for (uint64_t n : {1ULL, 2ULL, 3ULL, 7ULL, 64ULL, 1000ULL, 12345ULL, 65537ULL}) {
    Permutation p(n, 99);
    std::vector<bool> hit(n, false);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t v = p(i);
      ASSERT_LT(v, n);
      ASSERT_FALSE(hit[v]) << "n=" << n;
      hit[v] = true;
    }
  }
}

TEST(Permutation, KeysGiveDifferentOrders) {
  Permutation a(1000, 1), b(1000, 2);
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) same += a(i) == b(i);
  EXPECT_LT(same, 20);
}

TEST(DataList, ParsesCommentsRelativePathsAndExtensions) {
  auto e = parse_data_list_text("# header\n 0.5 data/a.bin web # trailing\n\n2 /abs/b.idx\n1e-3 c papers\n", "l.txt", "/base");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].prefix, "/base/data/a");
  EXPECT_EQ(e[0].corpus, "web");
  EXPECT_EQ(e[0].line, 2);
  EXPECT_EQ(e[1].prefix, "/abs/b");
  EXPECT_EQ(e[1].corpus, "b");
  EXPECT_DOUBLE_EQ(e[2].weight, 1e-3);
}

TEST(DataList, BadLinesNameFileAndLine) {
  for (const char* bad : {"0 a c", "-1 a c", "nan a c", "inf a c", "x a c", "1", "1 a b c d", "1 a c\n2 a.bin d", ""}) {
    try {
      parse_data_list_text(bad, "list.txt", "");
      FAIL() << "accepted: " << bad;
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find("list.txt"), std::string::npos) << err.what();
    }
  }
}

TEST(Split, ParsesMegatronStyle) {
  auto s = parse_split("98,1,1");
  EXPECT_NEAR(s[0], 0.98, 1e-12);
  EXPECT_NEAR(s[2], 0.01, 1e-12);
  auto t = parse_split("1");
  EXPECT_EQ(t[0], 1.0);
  EXPECT_THROW(parse_split("0,0,0"), Error);
  EXPECT_THROW(parse_split("1,1,1,1"), Error);
}

class MixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    write_source(dir_ / "web_a", random_lengths(300, 60, 1), 0);
    write_source(dir_ / "web_b", random_lengths(100, 40, 2), 10000);
    write_source(dir_ / "paper", random_lengths(50, 200, 3), 20000);
    write_source(dir_ / "tiny", {5, 3}, 30000);  // fewer tokens than one sample
    std::ofstream(dir_ / "list.txt") << "3 web_a web\n1 web_b web\n2 paper papers\n0.5 tiny tiny\n";
    opt_.list_path = (dir_ / "list.txt").string();
    opt_.seq_len = 32;
    opt_.samples = {5000, 0, 0};
    opt_.seed = 42;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  MixtureOptions opt_;
};

TEST_F(MixtureTest, PlanCountsAndWarnings) {
  Mixture m = Mixture::plan(opt_);
  uint64_t total = 0;
  for (auto& s : m.sources()) total += s.split[0].samples;
  EXPECT_EQ(total, 5000u);
  EXPECT_FALSE(m.sources()[3].split[0].active);
  ASSERT_FALSE(m.warnings().empty());
  EXPECT_NE(m.warnings()[0].find("tiny"), std::string::npos);
  // web_a : web_b : paper = 3 : 1 : 2 once tiny drops out
  EXPECT_NEAR(double(m.sources()[0].split[0].samples), 2500, 1);
  EXPECT_NEAR(double(m.sources()[1].split[0].samples), 833.3, 1);
  EXPECT_NEAR(double(m.sources()[2].split[0].samples), 1666.7, 1);
}

TEST_F(MixtureTest, EverySampleIsInBoundsAndEachEpochCoversTokensOnce) {
  Mixture m = Mixture::plan(opt_);
  const uint64_t L = opt_.seq_len;
  std::map<std::pair<uint32_t, uint64_t>, std::vector<uint64_t>> starts;  // (source, epoch) -> starts
  std::vector<uint32_t> tokens(L + 1);
  for (uint64_t i = 0; i < 5000; ++i) {
    SampleRef r = m.sample(Split::kTrain, i);
    const auto& sp = m.sources()[r.source].split[0];
    ASSERT_GE(r.start_token, sp.token_begin);
    ASSERT_LE(r.start_token + L + 1, sp.token_end);
    m.read(r, tokens.data());
    uint32_t base = std::vector<uint32_t>{0, 10000, 20000, 30000}[r.source];
    ASSERT_EQ(tokens[0], (base + r.start_token) % 60000);  // the window we asked for
    starts[{r.source, r.epoch}].push_back(r.start_token);
  }
  bool some_epoch_complete = false;
  for (auto& [key, v] : starts) {
    const auto& sp = m.sources()[key.first].split[0];
    std::sort(v.begin(), v.end());
    for (size_t k = 1; k < v.size(); ++k) ASSERT_EQ((v[k] - v[k - 1]) % L, 0u);   // one packing per epoch
    ASSERT_EQ(std::set<uint64_t>(v.begin(), v.end()).size(), v.size());          // no window twice
    if (v.size() == sp.samples_per_epoch) {
      some_epoch_complete = true;
      // a complete epoch covers every token of the split but fewer than seq_len
      uint64_t covered = v.size() * L + 1;
      EXPECT_GT(covered + L, sp.token_end - sp.token_begin);
    }
  }
  EXPECT_TRUE(some_epoch_complete);
}

TEST_F(MixtureTest, RepeatedEpochsDoNotReplayTheSameSamples) {
  Mixture m = Mixture::plan(opt_);
  // web_b is small: many epochs. Compare the order of windows between epochs 0 and 1.
  std::map<uint64_t, std::vector<uint64_t>> by_epoch;
  for (uint64_t i = 0; i < 5000; ++i) {
    SampleRef r = m.sample(Split::kTrain, i);
    if (r.source == 1) by_epoch[r.epoch].push_back(r.start_token);
  }
  ASSERT_GE(by_epoch.size(), 2u);
  EXPECT_NE(by_epoch[0], by_epoch[1]);
}

TEST_F(MixtureTest, DeterministicAcrossInstancesAndSaveLoad) {
  Mixture a = Mixture::plan(opt_);
  a.save((dir_ / "plan").string());
  Mixture b = Mixture::load((dir_ / "plan").string());
  for (uint64_t i = 0; i < 5000; i += 7) {
    SampleRef x = a.sample(Split::kTrain, i), y = b.sample(Split::kTrain, i);
    ASSERT_EQ(x.source, y.source);
    ASSERT_EQ(x.start_token, y.start_token);
  }
  opt_.seed = 43;
  Mixture c = Mixture::plan(opt_);
  int same = 0;
  for (uint64_t i = 0; i < 1000; ++i) same += a.sample(Split::kTrain, i).start_token == c.sample(Split::kTrain, i).start_token;
  EXPECT_LT(same, 100);
}

TEST_F(MixtureTest, RebasingKeepsEverySourceSequenceAndTheRemainingCounts) {
  // Re-planning at a resume point with unchanged weights: the blend restarts at the resume point,
  // each source continues its own sequence, and the per-source totals over the run stay within
  // the blend bound of the uninterrupted plan's.
  Mixture full = Mixture::plan(opt_);
  StreamState st = full.state_at(Split::kTrain, 1234);
  Mixture resumed = Mixture::plan(opt_, &st);
  EXPECT_THROW(resumed.sample(Split::kTrain, 10), Error);
  for (size_t s = 0; s < full.sources().size(); ++s) {
    const auto& a = full.sources()[s].split[0];
    const auto& b = resumed.sources()[s].split[0];
    EXPECT_NEAR(double(b.base + b.samples), double(a.samples), 2.0) << s;
  }
  StreamState end = resumed.state_at(Split::kTrain, 5000);
  uint64_t total = 0;
  for (auto& [prefix, n] : end.per_source) total += n;
  EXPECT_EQ(total, 5000u);
}

TEST_F(MixtureTest, ChangedWeightsContinueEachSourceWithoutRepeats) {
  Mixture first = Mixture::plan(opt_);
  const uint64_t consumed = 2000;
  StreamState st = first.state_at(Split::kTrain, consumed);
  std::set<std::pair<uint32_t, uint64_t>> served;  // (source, source_sample)
  for (uint64_t i = 0; i < consumed; ++i) {
    SampleRef r = first.sample(Split::kTrain, i);
    served.insert({r.source, r.source_sample});
  }
  // New weights, and the `paper` corpus removed.
  std::ofstream(dir_ / "list.txt") << "1 web_a web\n5 web_b web\n";
  Mixture second = Mixture::plan(opt_, &st);
  ASSERT_EQ(second.sources().size(), 2u);
  std::map<uint32_t, uint64_t> next = {{0, st.per_source[(dir_ / "web_a").string()]},
                                       {1, st.per_source[(dir_ / "web_b").string()]}};
  for (uint64_t i = consumed; i < 5000; ++i) {
    SampleRef r = second.sample(Split::kTrain, i);
    ASSERT_EQ(r.source_sample, next[r.source]++) << "each source continues where it stopped";
    ASSERT_FALSE(served.count({r.source, r.source_sample}));
  }
  bool warned = false;
  for (auto& w : second.warnings()) warned |= w.find("paper") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST_F(MixtureTest, ChangedFileIsDetectedOnLoad) {
  Mixture a = Mixture::plan(opt_);
  a.save((dir_ / "plan").string());
  write_source(dir_ / "web_b", random_lengths(100, 41, 2), 10000);
  EXPECT_THROW(Mixture::load((dir_ / "plan").string()), Error);
}

TEST_F(MixtureTest, SplitsUseDisjointDocuments) {
  opt_.split = parse_split("80,10,10");
  opt_.samples = {1000, 100, 100};
  Mixture m = Mixture::plan(opt_);
  for (auto& s : m.sources()) {
    EXPECT_EQ(s.split[0].doc_end, s.split[1].doc_begin);
    EXPECT_EQ(s.split[1].doc_end, s.split[2].doc_begin);
  }
  for (uint64_t i = 0; i < 100; ++i) {
    SampleRef r = m.sample(Split::kValid, i);
    const auto& sp = m.sources()[r.source].split[1];
    ASSERT_GE(r.start_token, sp.token_begin);
    ASSERT_LE(r.start_token + opt_.seq_len + 1, sp.token_end);
  }
}

TEST_F(MixtureTest, BadFilesGiveClearErrors) {
  std::ofstream(dir_ / "list.txt") << "1 web_a web\n1 missing web\n";
  try {
    Mixture::plan(opt_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("list.txt:2"), std::string::npos) << e.what();
  }
  // truncated .bin
  fs::resize_file(dir_ / "web_b.bin", fs::file_size(dir_ / "web_b.bin") - 2);
  std::ofstream(dir_ / "list.txt") << "1 web_b web\n";
  EXPECT_THROW(Mixture::plan(opt_), Error);
}

TEST_F(MixtureTest, VocabularyMismatchIsAnError) {
  {
    IndexedDatasetWriter w((dir_ / "wide").string(), TokenDType::kInt32);
    std::vector<uint32_t> doc(500, 70000);
    w.add_document(doc);
    w.finish();
  }
  std::ofstream(dir_ / "list.txt") << "1 web_a web\n1 wide web\n";
  EXPECT_THROW(Mixture::plan(opt_), Error);
}

TEST_F(MixtureTest, LoaderRanksPartitionTheStreamAndResumeExactly) {
  auto m = std::make_shared<Mixture>(Mixture::plan(opt_));
  const uint64_t mb = 4, width = opt_.seq_len + 1;
  // Two ranks together see exactly the single-rank stream, interleaved by micro-batch.
  Loader solo(m, {Split::kTrain, mb * 2, 0, 1, 3}, 0);
  Loader r0(m, {Split::kTrain, mb, 0, 2, 2}, 0), r1(m, {Split::kTrain, mb, 1, 2, 5}, 0);
  for (int step = 0; step < 50; ++step) {
    Batch a = solo.next(), b0 = r0.next(), b1 = r1.next();
    ASSERT_EQ(std::vector<uint32_t>(a.tokens.begin(), a.tokens.begin() + mb * width), b0.tokens);
    ASSERT_EQ(std::vector<uint32_t>(a.tokens.begin() + mb * width, a.tokens.end()), b1.tokens);
  }
  EXPECT_EQ(solo.consumed(), 400u);
  // Resume from the consumed count: the continuation equals the uninterrupted stream.
  Loader resumed(m, {Split::kTrain, mb * 2, 0, 1, 3}, solo.consumed());
  for (int step = 0; step < 20; ++step) ASSERT_EQ(solo.next().tokens, resumed.next().tokens);
  EXPECT_THROW(Loader(m, {Split::kTrain, mb, 0, 2, 2}, 3), Error);  // not a multiple of the round
}

TEST_F(MixtureTest, LoaderReportsExhaustion) {
  opt_.samples = {10, 0, 0};
  auto m = std::make_shared<Mixture>(Mixture::plan(opt_));
  Loader l(m, {Split::kTrain, 4, 0, 1, 2}, 0);
  l.next();
  l.next();
  EXPECT_THROW(l.next(), Error);
}

TEST(Blend, CursorMatchesRandomAccessFromAnyStart) {
  BlendTree tree({3, 1, 2, 1, 0.5, 0.01, 7}, {{0, 1}, {2, 3}, {4}, {5, 6}});
  for (uint64_t start : {0ULL, 1ULL, 999ULL, 123456ULL}) {
    BlendTree::Cursor c(tree, start);
    for (uint64_t i = start; i < start + 5000; ++i) {
      auto a = c.next();
      auto b = tree.pick(i);
      ASSERT_EQ(a.source, b.source) << i;
      ASSERT_EQ(a.local, b.local) << i;
    }
  }
}

TEST_F(MixtureTest, CursorMatchesRandomAccess) {
  Mixture m = Mixture::plan(opt_);
  for (uint64_t start : {0ULL, 17ULL, 4000ULL}) {
    Mixture::Cursor c(m, Split::kTrain, start);
    for (uint64_t i = start; i < 5000; ++i) {
      SampleRef a = c.next(), b = m.sample(Split::kTrain, i);
      ASSERT_EQ(a.source, b.source);
      ASSERT_EQ(a.start_token, b.start_token);
      ASSERT_EQ(a.source_sample, b.source_sample);
    }
  }
}

TEST_F(MixtureTest, CursorHandlesManyEpochsWithinOneBatch) {
  // A source of 3 windows at a heavy weight changes epoch several times inside each batch of the
  // cursor; every sample must still equal random access.
  write_source(dir_ / "small", {100}, 40000);
  std::ofstream(dir_ / "list.txt") << "1 web_a web\n8 small small\n";
  Mixture m = Mixture::plan(opt_);
  ASSERT_EQ(m.sources()[1].split[0].samples_per_epoch, 3u);
  Mixture::Cursor c(m, Split::kTrain, 5);
  for (uint64_t i = 5; i < 3000; ++i) {
    SampleRef a = c.next(), b = m.sample(Split::kTrain, i);
    ASSERT_EQ(a.source, b.source) << i;
    ASSERT_EQ(a.epoch, b.epoch) << i;
    ASSERT_EQ(a.start_token, b.start_token) << i;
  }
}
