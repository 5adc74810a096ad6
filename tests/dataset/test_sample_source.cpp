// The sample-source view of both orders: load_sample_source dispatches on mixture.json's "order",
// and the Loader over a Megatron-order plan serves exactly MegatronOrder::read's samples, in order,
// for any rank/world split, and resumes from `consumed`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "base/error.h"
#include "base/file.h"
#include "dataset/indexed_dataset.h"
#include "dataset/loader.h"
#include "dataset/megatron_order.h"
#include "dataset/mixture.h"
#include "dataset/sample_source.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::dataset;

namespace {

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("agpt_source_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// `docs` documents of random lengths in [1, max_len]; token t of the file is (first + t) mod 50000, so
// a token tells where it came from.
void make_file(const fs::path& prefix, int docs, int max_len, uint32_t first, uint64_t seed) {
  std::mt19937_64 rng(seed);
  IndexedDatasetWriter w(prefix.string(), TokenDType::kUInt16);
  uint32_t t = first;
  for (int d = 0; d < docs; ++d) {
    std::vector<uint32_t> doc(1 + rng() % max_len);
    for (auto& x : doc) x = t++ % 50000;
    w.add_document(doc);
  }
  w.finish();
}

class SampleSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch(::testing::UnitTest::GetInstance()->current_test_info()->name());
    make_file(dir_ / "a", 80, 50, 0, 1);
    make_file(dir_ / "b", 40, 90, 10000, 2);
    make_file(dir_ / "c", 60, 30, 20000, 3);
    std::ofstream(dir_ / "list.txt") << "3 a web\n1 b web\n2 c code\n";
    mo_.list_path = (dir_ / "list.txt").string();
    mo_.seq_len = 11;
    mo_.seed = 17;
    mo_.split = "90,10,0";
    mo_.samples = {240, 24, 0};
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  MegatronOrderOptions mo_;
};

}  // namespace

TEST_F(SampleSourceTest, LoaderOverMegatronOrderServesItsSamplesForEveryRankSplit) {
  const MegatronOrder order = MegatronOrder::build(mo_);
  order.save((dir_ / "plan").string());
  auto source = load_sample_source((dir_ / "plan").string());
  ASSERT_STREQ(source->order(), "megatron");
  ASSERT_NE(as_megatron_order(*source), nullptr);
  EXPECT_EQ(as_mixture(*source), nullptr);
  EXPECT_EQ(source->seq_len(), mo_.seq_len);
  const uint64_t width = mo_.seq_len + 1;
  std::vector<uint32_t> want(width);
  for (Split split : {Split::kTrain, Split::kValid}) {
    const uint64_t n = order.size(split);
    ASSERT_GT(n, 0u);
    ASSERT_EQ(source->start_index(split), 0u);
    ASSERT_EQ(source->end_index(split), n);
    for (int world : {1, 2, 3}) {
      for (uint64_t mb : {uint64_t(1), uint64_t(4)}) {
        const uint64_t round = mb * static_cast<uint64_t>(world);
        std::vector<std::unique_ptr<Loader>> ranks;
        for (int r = 0; r < world; ++r)
          ranks.push_back(std::make_unique<Loader>(source, LoaderOptions{split, mb, r, world, 3}, 0));
        uint64_t rounds = 0;
        for (; (rounds + 1) * round <= n; ++rounds) {
          for (int r = 0; r < world; ++r) {
            Batch b = ranks[r]->next();
            const uint64_t first = rounds * round + static_cast<uint64_t>(r) * mb;
            ASSERT_EQ(b.first_index, first);
            ASSERT_EQ(b.tokens.size(), mb * width);
            EXPECT_TRUE(b.refs.empty());
            for (uint64_t k = 0; k < mb; ++k) {
              order.read(split, first + k, want.data());
              ASSERT_TRUE(std::equal(want.begin(), want.end(), b.tokens.begin() + k * width))
                  << split_name(split) << " world " << world << " micro-batch " << mb << " rank " << r << " sample "
                  << first + k;
            }
          }
        }
        // The stream ends where the order ends.
        EXPECT_THROW(ranks[world - 1]->next(), Error);
        EXPECT_EQ(ranks[0]->consumed(), rounds * round);
        // Resume: a loader started at a consumed count continues exactly; the state is consumed only.
        const uint64_t at = (rounds / 2) * round;
        Loader resumed(source, {split, mb, world - 1, world, 2}, at);
        StreamState st = resumed.state();
        EXPECT_EQ(st.consumed, at);
        EXPECT_TRUE(st.per_source.empty());
        Batch b = resumed.next();
        ASSERT_EQ(b.first_index, at + static_cast<uint64_t>(world - 1) * mb);
        order.read(split, b.first_index, want.data());
        EXPECT_TRUE(std::equal(want.begin(), want.end(), b.tokens.begin()));
        EXPECT_EQ(resumed.consumed(), at + round);
      }
    }
  }
  // Samples read through the source are the order's, past the end an error.
  source->read(Split::kTrain, 5, want.data());
  std::vector<uint32_t> direct(width);
  order.read(Split::kTrain, 5, direct.data());
  EXPECT_EQ(want, direct);
  EXPECT_THROW(source->read(Split::kTrain, order.size(Split::kTrain), want.data()), Error);
  EXPECT_FALSE(source->supports_changed_mixture_resume());
}

TEST_F(SampleSourceTest, LoadDispatchesOnTheOrderAndTheAgptViewMatchesTheMixture) {
  MixtureOptions o;
  o.list_path = mo_.list_path;
  o.seq_len = mo_.seq_len;
  o.samples = {200, 0, 0};
  o.seed = 3;
  Mixture::plan(o).save((dir_ / "agpt").string());
  MegatronOrder::build(mo_).save((dir_ / "megatron").string());
  EXPECT_EQ(plan_order((dir_ / "agpt").string()), "agpt");
  EXPECT_EQ(plan_order((dir_ / "megatron").string()), "megatron");

  auto source = load_sample_source((dir_ / "agpt").string());
  ASSERT_STREQ(source->order(), "agpt");
  const Mixture* m = as_mixture(*source);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(source->supports_changed_mixture_resume());
  EXPECT_EQ(source->end_index(Split::kTrain), 200u);
  std::vector<uint32_t> a(o.seq_len + 1), b(o.seq_len + 1);
  for (uint64_t i : {uint64_t(0), uint64_t(7), uint64_t(199)}) {
    SampleRef ref;
    EXPECT_TRUE(source->read(Split::kTrain, i, a.data(), &ref));
    SampleRef want = m->sample(Split::kTrain, i);
    EXPECT_EQ(ref.source, want.source);
    EXPECT_EQ(ref.start_token, want.start_token);
    m->read(want, b.data());
    EXPECT_EQ(a, b);
  }
  EXPECT_EQ(source->state_at(Split::kTrain, 100).per_source, m->state_at(Split::kTrain, 100).per_source);
  // The Loader over the agpt view still fills the windows.
  Loader l(source, {Split::kTrain, 2, 0, 1, 2}, 0);
  EXPECT_EQ(l.next().refs.size(), 2u);
  // Two plans of different orders (or settings) have different fingerprints.
  EXPECT_NE(source->fingerprint(), load_sample_source((dir_ / "megatron").string())->fingerprint());
  EXPECT_EQ(source->fingerprint(), load_sample_source((dir_ / "agpt").string())->fingerprint());

  // Plans this agpt cannot serve fail with the file named.
  fs::create_directories(dir_ / "bad");
  write_file_atomic((dir_ / "bad" / "mixture.json").string(), R"({"format": "agpt-mixture", "order": "shuffled"})");
  try {
    load_sample_source((dir_ / "bad").string());
    FAIL() << "an unknown order was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shuffled"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mixture.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_sample_source((dir_ / "missing").string()), Error);
}
