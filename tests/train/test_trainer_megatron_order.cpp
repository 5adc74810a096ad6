// The trainer on a mixture planned with `agpt data mix --order megatron`: it trains on exactly
// Megatron's samples in Megatron's order, resume is bit-identical, and a resume under another plan
// (a changed Megatron mixture, or the other order) is refused with a clear error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "dataset/indexed_dataset.h"
#include "dataset/megatron_order.h"
#include "dataset/mixture.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"
#include "trainer_test_util.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::train;
using agpt::train::test_util::tiny_config;

namespace {

fs::path run_dir(const std::string& name) { return test_util::fresh_dir("train_mo", name); }

const std::vector<uint32_t> kTokens = {3, 17, 42, 99, 7, 180, 255, 64, 12, 5, 200};

// Two token files of 30 and 20 documents, each document the cycle above from its own phase (token
// ids < 256), listed with weights 2 and 1.
fs::path make_files(const fs::path& dir) {
  for (int f = 0; f < 2; ++f) {
    dataset::IndexedDatasetWriter w((dir / ("part" + std::to_string(f))).string(), dataset::TokenDType::kUInt16);
    for (size_t d = 0; d < (f == 0 ? 30u : 20u); ++d) {
      std::vector<uint32_t> doc(100 + 7 * d % 40);
      for (size_t i = 0; i < doc.size(); ++i) doc[i] = kTokens[(i + d + 5 * f) % kTokens.size()];
      w.add_document(doc);
    }
    w.finish();
  }
  fs::path list = dir / "list.txt";
  std::ofstream(list.string()) << "2 part0 a\n1 part1 b\n";
  return list;
}

// DIR/NAME: a Megatron-order plan (as `agpt data mix --order megatron --out DIR/NAME` writes it).
std::string megatron_plan(const fs::path& dir, const std::string& name, uint64_t seed, uint64_t train_samples = 200) {
  dataset::MegatronOrderOptions o;
  o.list_path = make_files(dir).string();
  o.seq_len = 16;
  o.seed = seed;
  o.split = "90,10,0";
  o.samples = {train_samples, 8, 0};
  auto order = dataset::MegatronOrder::build(o);
  order.save((dir / name).string());
  return (dir / name).string();
}


// The mean loss of the model over two micro-batches of 2 samples each, as the trainer's first step
// computes it, for the Megatron train samples first .. first + 3.
double step_loss(model::Llama& model, const dataset::MegatronOrder& order, uint64_t first) {
  const int64_t B = 2, T = 16;
  std::vector<uint32_t> row(T + 1);
  double sum = 0;
  for (int a = 0; a < 2; ++a) {
    std::vector<int32_t> ids, targets;
    for (int64_t b = 0; b < B; ++b) {
      order.read(dataset::Split::kTrain, first + static_cast<uint64_t>(a * B + b), row.data());
      for (int64_t t = 0; t < T; ++t) ids.push_back(int32_t(row[t])), targets.push_back(int32_t(row[t + 1]));
    }
    sum += model.forward(ids, targets, B, T);
  }
  return sum / 2;
}

class TrainerMegatronOrderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_log_level(LogLevel::kQuiet);
    dir_ = run_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    mix_ = megatron_plan(dir_, "mix", 7);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string mix_;
};

}  // namespace

TEST_F(TrainerMegatronOrderTest, TrainsOnMegatronsSamplesInOrder) {
  const auto order = dataset::MegatronOrder::load(mix_);
  TrainConfig c = tiny_config(mix_, dir_ / "run", 12);
  c.train.lr = 1e-2;
  c.train.min_lr = 1e-3;
  Trainer t(c, {.quiet = true});
  ASSERT_STREQ(t.data().order(), "megatron");
  EXPECT_EQ(t.seq_len(), 16);
  // The untrained model's loss on Megatron's samples 0..3 is what step 1 reports; other samples
  // give another loss (so this tells the samples apart).
  const double want = step_loss(t.model(), order, 0), other = step_loss(t.model(), order, 4);
  ASSERT_NE(want, other);
  t.run();
  ASSERT_EQ(t.history().size(), 12u);
  EXPECT_DOUBLE_EQ(t.history()[0].loss, want);
  EXPECT_LT(t.history().back().loss, 0.8 * t.history().front().loss);
  ASSERT_EQ(t.evals().size(), 1u);  // the valid split of the Megatron order
  EXPECT_TRUE(std::isfinite(t.evals()[0].loss));
  EXPECT_EQ(t.state().consumed, 12u * 4u);
  EXPECT_TRUE(t.state().stream.per_source.empty());
  // The checkpoint records the order and the plan.
  auto j = nlohmann::json::parse(read_file((dir_ / "run" / "checkpoints" / "step_0000012" / "trainer_state.json").string()));
  EXPECT_EQ(j.at("data_stream").at("order"), "megatron");
  EXPECT_EQ(j.at("data_stream").at("consumed"), 48);
}

TEST_F(TrainerMegatronOrderTest, ResumeIsBitIdentical) {
  const int64_t N = 6;
  Trainer ta(tiny_config(mix_, dir_ / "a", N), {.quiet = true});
  ta.run();

  TrainConfig b = tiny_config(mix_, dir_ / "b", N);
  {
    Trainer first(b, {.stop_after = 3, .quiet = true});
    first.run();
    ASSERT_EQ(first.history().size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(first.history()[i].loss, ta.history()[i].loss) << i;
  }
  Trainer second(b, {.resume = true, .quiet = true});
  EXPECT_NE(second.resumed_from().find("step_0000003"), std::string::npos);
  EXPECT_EQ(second.state().consumed, 12u);
  second.run();
  ASSERT_EQ(second.history().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(second.history()[i].step, ta.history()[3 + i].step);
    EXPECT_EQ(second.history()[i].loss, ta.history()[3 + i].loss) << "step " << 4 + i;  // to the last bit
    EXPECT_EQ(second.history()[i].grad_norm, ta.history()[3 + i].grad_norm);
  }
  ASSERT_EQ(second.evals().size(), 1u);
  EXPECT_EQ(second.evals()[0].loss, ta.evals()[0].loss);
  fs::path ca = dir_ / "a" / "checkpoints" / "step_0000006", cb = dir_ / "b" / "checkpoints" / "step_0000006";
  EXPECT_TRUE(read_file((ca / "model.safetensors").string()) == read_file((cb / "model.safetensors").string()));
  EXPECT_TRUE(read_file((ca / "optimizer.safetensors").string()) == read_file((cb / "optimizer.safetensors").string()));
  EXPECT_EQ(ta.state().consumed, second.state().consumed);
}

TEST_F(TrainerMegatronOrderTest, ResumeUnderAnotherPlanIsRefused) {
  TrainConfig b = tiny_config(mix_, dir_ / "b", 6);
  {
    Trainer first(b, {.stop_after = 2, .quiet = true});
    first.run();
  }
  // The Megatron plan re-made with another seed: a changed mixture, which the Megatron order cannot
  // continue.
  megatron_plan(dir_, "mix", 8);
  try {
    Trainer t(b, {.resume = true, .quiet = true});
    FAIL() << "resumed under a changed Megatron-order plan";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not supported for the Megatron order"), std::string::npos) << e.what();
  }
  // The same files planned in the agpt order: a run cannot switch orders.
  dataset::MixtureOptions o;
  o.list_path = (dir_ / "list.txt").string();
  o.seq_len = 16;
  o.samples = {200, 8, 0};
  o.split = {0.9, 0.1, 0};
  dataset::Mixture::plan(o).save(mix_);
  try {
    Trainer t(b, {.resume = true, .quiet = true});
    FAIL() << "resumed a Megatron-order run on an agpt-order plan";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("megatron sample order"), std::string::npos) << e.what();
  }
  // The original plan again: the run continues.
  megatron_plan(dir_, "mix", 7);
  Trainer t(b, {.resume = true, .quiet = true});
  t.run();
  EXPECT_EQ(t.state().step, 6);
}
