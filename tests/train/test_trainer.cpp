// The trainer end to end on a tiny model and a synthetic mixture: it learns, resume is bit-exact,
// damaged checkpoints are detected, non-finite steps are skipped and then stop the run, a loss
// spike is skipped without touching the weights.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "dataset/indexed_dataset.h"
#include "dataset/mixture.h"
#include "ops/cpu/cpu_backend.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"
#include "trainer_test_util.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::train;
using agpt::train::test_util::tiny_config;

namespace {

fs::path fresh_dir(const std::string& name) { return test_util::fresh_dir("train", name); }

const std::vector<uint32_t> kCycle = {3, 17, 42, 99, 7, 180, 255, 64, 12, 5, 200};

// A token dataset DIR/NAME of 40 documents that repeat one cycle of tokens from a 256-token
// vocabulary (each document starts at a different phase), and a mixture over it with a valid split
// (DIR/NAME.mix, returned).
std::string make_mixture(const fs::path& dir, uint64_t train_samples, const std::string& name = "syn",
                         const std::vector<uint32_t>& cycle = kCycle) {
  {
    dataset::IndexedDatasetWriter w((dir / name).string(), dataset::TokenDType::kUInt16);
    for (size_t d = 0; d < 40; ++d) {
      std::vector<uint32_t> doc(120);
      for (size_t i = 0; i < doc.size(); ++i) doc[i] = cycle[(i + d) % cycle.size()];
      w.add_document(doc);
    }
    w.finish();
  }
  const fs::path list = dir / (name + ".list.txt");
  std::ofstream(list.string()) << "1.0 " << name << " synthetic\n";
  dataset::MixtureOptions o;
  o.list_path = list.string();
  o.seq_len = 16;
  o.samples = {train_samples, 8, 0};
  o.seed = 7;
  o.split = {0.9, 0.1, 0};
  auto m = dataset::Mixture::plan(o);
  fs::path mix = dir / (name + ".mix");
  m.save(mix.string());
  return mix.string();
}


std::string read(const fs::path& p) { return read_file(p.string()); }

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_log_level(LogLevel::kQuiet);
    dir_ = fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    mix_ = make_mixture(dir_, 400);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string mix_;
};

}  // namespace

TEST_F(TrainerTest, LearnsARepetitiveSequence) {
  TrainConfig c = tiny_config(mix_, dir_ / "run", 50);
  c.train.lr = 1e-2;
  c.train.min_lr = 1e-3;
  Trainer t(c, {.quiet = true});
  t.run();
  ASSERT_EQ(t.history().size(), 50u);
  double first = t.history().front().loss, last = t.history().back().loss;
  EXPECT_NEAR(first, std::log(256.0), 0.3);
  EXPECT_LT(last, 0.25 * first) << "loss " << first << " -> " << last;
  ASSERT_FALSE(t.evals().empty());
  EXPECT_LT(t.evals().back().loss, 0.3 * first);
  // metrics.jsonl: one object per step, then the validation.
  std::string metrics = read(dir_ / "run" / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 51);
  EXPECT_NE(metrics.find("\"tokens_per_s\""), std::string::npos);
  EXPECT_NE(metrics.find("\"val_perplexity\""), std::string::npos);
  // The final checkpoint is a HF model directory and verifies.
  fs::path ck = dir_ / "run" / "checkpoints" / "step_0000050";
  EXPECT_EQ(verify_checkpoint(ck.string()), "");
  EXPECT_TRUE(fs::exists(ck / "config.json"));
  EXPECT_EQ(read(dir_ / "run" / "checkpoints" / "latest"), "step_0000050\n");
  // ... that loads back as a model with exactly the trained weights.
  auto backend = ops::make_cpu_backend(1);
  model::Llama loaded = model::Llama::load(ck.string(), *backend);
  ASSERT_EQ(loaded.parameters().size(), t.model().parameters().size());
  for (size_t i = 0; i < loaded.parameters().size(); ++i)
    EXPECT_EQ(backend->to_host_f32(loaded.parameters()[i].value),
              t.model().backend().to_host_f32(t.model().parameters()[i].value)) << loaded.parameters()[i].name;
}

TEST_F(TrainerTest, ResumeIsBitIdentical) {
  const int64_t N = 6;
  TrainConfig a = tiny_config(mix_, dir_ / "a", N);
  Trainer ta(a, {.quiet = true});
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
  second.run();
  ASSERT_EQ(second.history().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(second.history()[i].step, ta.history()[3 + i].step);
    EXPECT_EQ(second.history()[i].loss, ta.history()[3 + i].loss) << "step " << 4 + i;  // to the last bit
    EXPECT_EQ(second.history()[i].grad_norm, ta.history()[3 + i].grad_norm);
    EXPECT_EQ(second.history()[i].lr, ta.history()[3 + i].lr);
  }
  ASSERT_EQ(second.evals().size(), 1u);
  EXPECT_EQ(second.evals()[0].loss, ta.evals()[0].loss);
  fs::path ca = dir_ / "a" / "checkpoints" / "step_0000006", cb = dir_ / "b" / "checkpoints" / "step_0000006";
  EXPECT_TRUE(read(ca / "model.safetensors") == read(cb / "model.safetensors"));
  EXPECT_TRUE(read(ca / "optimizer.safetensors") == read(cb / "optimizer.safetensors"));
  EXPECT_EQ(ta.state().consumed, second.state().consumed);
  // metrics.jsonl of the resumed run holds each step once.
  std::string m = read(dir_ / "b" / "metrics.jsonl");
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), N + 1);  // N steps + the final validation
}

// Optimizer CPU offload keeps the moments in host memory and applies the same arithmetic: the run
// and its checkpoints are bit-identical to keeping them on the device, and either resumes the other.
TEST_F(TrainerTest, OptimizerCpuOffloadIsBitIdentical) {
  const int64_t N = 5;
  TrainConfig a = tiny_config(mix_, dir_ / "a", N);
  Trainer ta(a, {.quiet = true});
  ta.run();

  TrainConfig b = tiny_config(mix_, dir_ / "b", N);
  b.train.optimizer_cpu_offload = 1;
  {
    Trainer first(b, {.stop_after = 2, .quiet = true});
    first.run();
  }
  b.train.optimizer_cpu_offload = 0;  // a device-moment run continues the offloaded checkpoint ...
  {
    Trainer second(b, {.resume = true, .stop_after = 4, .quiet = true});
    second.run();
  }
  b.train.optimizer_cpu_offload = 1;  // ... and a run with half of them offloaded continues that one
  b.train.optimizer_offload_fraction = 0.5;
  Trainer third(b, {.resume = true, .quiet = true});
  third.run();
  ASSERT_EQ(third.history().size(), 1u);
  EXPECT_EQ(third.history()[0].loss, ta.history()[N - 1].loss);
  EXPECT_EQ(third.history()[0].grad_norm, ta.history()[N - 1].grad_norm);
  fs::path ca = dir_ / "a" / "checkpoints" / "step_0000005", cb = dir_ / "b" / "checkpoints" / "step_0000005";
  EXPECT_TRUE(read(ca / "model.safetensors") == read(cb / "model.safetensors"));
  EXPECT_TRUE(read(ca / "optimizer.safetensors") == read(cb / "optimizer.safetensors"));
}

// train.update_in_backward: on a backend without fused weight-gradient products (the CPU) nothing
// is updated inside the backward, so the run is the same as without it.
TEST_F(TrainerTest, UpdateInBackwardIsTheSameRunWhereNothingFuses) {
  const int64_t N = 4;
  TrainConfig a = tiny_config(mix_, dir_ / "a", N);
  a.train.clip = 0;
  a.train.grad_accum = 1;
  Trainer ta(a, {.quiet = true});
  ta.run();
  TrainConfig b = tiny_config(mix_, dir_ / "b", N);
  b.train.clip = 0;
  b.train.grad_accum = 1;
  b.train.update_in_backward = 1;
  Trainer tb(b, {.quiet = true});
  tb.run();
  ASSERT_EQ(ta.history().size(), tb.history().size());
  for (size_t i = 0; i < ta.history().size(); ++i) {
    EXPECT_EQ(ta.history()[i].loss, tb.history()[i].loss) << i;
    EXPECT_EQ(ta.history()[i].updated_in_backward, -1) << "not arranged";
    // Arranged from the second step (the first backward makes the gradients); nothing fuses here.
    EXPECT_EQ(tb.history()[i].updated_in_backward, i == 0 ? -1 : 0) << i;
  }
  EXPECT_TRUE(read(dir_ / "a" / "checkpoints" / "step_0000004" / "model.safetensors") ==
              read(dir_ / "b" / "checkpoints" / "step_0000004" / "model.safetensors"));
}

// train.async_checkpoint writes from a copy in host memory on another thread: the same files as
// a synchronous checkpoint (with or without optimizer offload), old ones rotated the same way, and
// a resume as exact.
TEST_F(TrainerTest, AsyncCheckpointsAreTheSameFilesAndResumeExactly) {
  const int64_t N = 6;
  auto make = [&](const char* out, bool async) {
    TrainConfig c = tiny_config(mix_, dir_ / out, N);
    c.train.checkpoint_every = 2;
    c.train.keep_last = 2;
    c.train.async_checkpoint = async;
    return c;
  };
  Trainer sync_run(make("sync", false), {.quiet = true});
  sync_run.run();
  {
    // Half of the moments in host memory (optimizer CPU offload, bit-identical): the copy reads
    // both kinds.
    TrainConfig offloaded = make("async", true);
    offloaded.train.optimizer_cpu_offload = 1;
    offloaded.train.optimizer_offload_fraction = 0.5;
    Trainer first(offloaded, {.stop_after = 4, .quiet = true});
    first.run();  // returns with the checkpoint of step 4 complete
    EXPECT_NE(first.last_checkpoint().find("step_0000004"), std::string::npos);
  }
  fs::path sync_ck = dir_ / "sync" / "checkpoints", async_ck = dir_ / "async" / "checkpoints";
  EXPECT_EQ(list_checkpoints(async_ck.string()), (std::vector<int64_t>{2, 4}));
  for (const char* step : {"step_0000002", "step_0000004"})
    EXPECT_EQ(verify_checkpoint((async_ck / step).string()), "") << step;
  // The synchronous run kept 4 and 6 (keep_last 2); step 4 is in both.
  EXPECT_TRUE(read(sync_ck / "step_0000004" / "model.safetensors") == read(async_ck / "step_0000004" / "model.safetensors"));
  EXPECT_TRUE(read(sync_ck / "step_0000004" / "optimizer.safetensors") ==
              read(async_ck / "step_0000004" / "optimizer.safetensors"));
  EXPECT_TRUE(read(sync_ck / "step_0000004" / "config.json") == read(async_ck / "step_0000004" / "config.json"));

  Trainer second(make("async", true), {.resume = true, .quiet = true});
  second.run();
  ASSERT_EQ(second.history().size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(second.history()[i].loss, sync_run.history()[4 + i].loss) << "step " << 5 + i;
  EXPECT_EQ(list_checkpoints(async_ck.string()), (std::vector<int64_t>{4, 6}));
  EXPECT_EQ(read(async_ck / "latest"), "step_0000006\n");
  EXPECT_TRUE(read(sync_ck / "step_0000006" / "model.safetensors") == read(async_ck / "step_0000006" / "model.safetensors"));
  EXPECT_TRUE(read(sync_ck / "step_0000006" / "optimizer.safetensors") ==
              read(async_ck / "step_0000006" / "optimizer.safetensors"));
}

// A background write that fails stops the run with the reason, at the latest at the next checkpoint.
TEST_F(TrainerTest, AsyncCheckpointThatCannotBeWrittenStopsTheRun) {
  TrainConfig c = tiny_config(mix_, dir_ / "run", 4);
  c.train.checkpoint_every = 2;
  c.train.async_checkpoint = 1;
  fs::create_directories(dir_ / "run");
  std::ofstream((dir_ / "run" / "checkpoints").string()) << "a file where the checkpoints should go\n";
  Trainer t(c, {.quiet = true});
  try {
    t.run();
    ADD_FAILURE() << "the run ended although its checkpoints could not be written";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint of step 2 could not be written"), std::string::npos) << e.what();
  }
  EXPECT_LE(t.history().size(), 4u);
}

TEST_F(TrainerTest, DamagedCheckpointFallsBackToThePreviousOne) {
  TrainConfig a = tiny_config(mix_, dir_ / "a", 6);
  Trainer ta(a, {.quiet = true});
  ta.run();

  TrainConfig b = tiny_config(mix_, dir_ / "b", 6);
  b.train.checkpoint_every = 2;
  b.train.keep_last = 2;
  {
    Trainer first(b, {.stop_after = 4, .quiet = true});
    first.run();
  }
  fs::path root = dir_ / "b" / "checkpoints";
  EXPECT_EQ(list_checkpoints(root.string()), (std::vector<int64_t>{2, 4}));
  // Truncate the newest checkpoint's weights: detected by size; flip a byte: detected by checksum.
  fs::path w4 = root / "step_0000004" / "model.safetensors";
  fs::resize_file(w4, fs::file_size(w4) - 10);
  EXPECT_NE(verify_checkpoint((root / "step_0000004").string()).find("truncated"), std::string::npos);
  EXPECT_EQ(find_resume_checkpoint(root.string()), (root / "step_0000002").string());
  {
    std::fstream f((root / "step_0000002" / "optimizer.safetensors").string(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    char ch;
    f.read(&ch, 1);
    ch ^= 1;
    f.seekp(200);
    f.write(&ch, 1);
  }
  EXPECT_NE(verify_checkpoint((root / "step_0000002").string()).find("checksum"), std::string::npos);
  EXPECT_EQ(find_resume_checkpoint(root.string()), "");
  EXPECT_THROW(Trainer(b, {.resume = true, .quiet = true}), Error);  // checkpoints exist, none valid
  // Restore step 2 by rewriting it: train a fresh run there... instead damage only step 4 again.
  fs::remove_all(root);
  {
    Trainer first(b, {.stop_after = 4, .quiet = true});
    first.run();
  }
  fs::resize_file(w4, 100);
  Trainer resumed(b, {.resume = true, .quiet = true});
  EXPECT_NE(resumed.resumed_from().find("step_0000002"), std::string::npos);
  resumed.run();
  ASSERT_EQ(resumed.history().size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(resumed.history()[i].loss, ta.history()[2 + i].loss) << "step " << 3 + i;
  EXPECT_EQ(verify_checkpoint((root / "step_0000004").string()), "");  // rewritten
  EXPECT_TRUE(read(root / "step_0000006" / "model.safetensors") ==
              read(dir_ / "a" / "checkpoints" / "step_0000006" / "model.safetensors"));
}

TEST_F(TrainerTest, RefusesToOverwriteARunWithoutResume) {
  TrainConfig c = tiny_config(mix_, dir_ / "run", 2);
  Trainer(c, {.quiet = true}).run();
  EXPECT_THROW(Trainer(c, {.quiet = true}), Error);
  Trainer again(c, {.resume = true, .quiet = true});  // already done: nothing to do
  again.run();
  EXPECT_TRUE(again.history().empty());
}

TEST_F(TrainerTest, NonFiniteStepsAreSkippedThenStop) {
  TrainConfig c = tiny_config(mix_, dir_ / "run", 20);
  c.train.lr = 1e30;  // blows the weights up after the first update
  c.train.min_lr = 0;
  c.train.warmup = 0;
  c.train.clip = 0;
  c.train.max_bad_steps = 3;
  Trainer t(c, {.quiet = true});
  try {
    t.run();
    FAIL() << "expected training to stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 steps in a row were skipped"), std::string::npos) << e.what();
  }
  ASSERT_GE(t.history().size(), 4u);
  EXPECT_FALSE(t.history()[0].skipped);
  EXPECT_TRUE(t.history().back().skipped);
  std::string m = read(dir_ / "run" / "metrics.jsonl");
  EXPECT_NE(m.find("\"skipped\""), std::string::npos);
}

TEST_F(TrainerTest, LossSpikeIsSkippedThenTrainingContinues) {
  // A deterministic spike from public behaviour only: a run that has learned kCycle resumes for one
  // step on data of another cycle (tokens it has never seen: its loss is far above the recent
  // window), then resumes on its own data again. The resume under a changed mixture only warns.
  const std::string shifted = make_mixture(dir_, 400, "shift", {1, 2, 4, 8, 16, 32, 128});
  TrainConfig c = tiny_config(mix_, dir_ / "run", 30);
  c.train.lr = 1e-2;
  c.train.min_lr = 1e-3;
  c.train.spike_zscore = 6;
  c.train.spike_window = 8;
  const fs::path root = dir_ / "run" / "checkpoints";
  {
    Trainer t(c, {.stop_after = 20, .quiet = true});
    t.run();
    for (const StepRecord& r : t.history()) EXPECT_FALSE(r.skipped) << "step " << r.step << ": " << r.reason;
  }
  TrainConfig s = c;
  s.data.mixture = shifted;
  double spike_loss = 0;
  {
    Trainer t(s, {.resume = true, .stop_after = 21, .quiet = true});
    auto& params = t.model().parameters();
    std::vector<std::vector<float>> before;
    for (const auto& p : params) before.push_back(t.model().backend().to_host_f32(p.value));
    t.run();
    ASSERT_EQ(t.history().size(), 1u);
    const StepRecord& r = t.history()[0];
    EXPECT_EQ(r.step, 21);
    EXPECT_TRUE(r.skipped);
    EXPECT_NE(r.reason.find("loss spike"), std::string::npos) << r.reason;
    spike_loss = r.loss;
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(t.model().backend().to_host_f32(params[i].value) == before[i]) << params[i].name << " changed";
    EXPECT_EQ(t.state().skipped, 1);
    EXPECT_EQ(t.state().optimizer_steps, 20);
  }
  // The checkpoint after the skipped step holds the same weights and AdamW moments as the one before.
  EXPECT_TRUE(read(root / "step_0000020" / "model.safetensors") == read(root / "step_0000021" / "model.safetensors"));
  EXPECT_TRUE(read(root / "step_0000020" / "optimizer.safetensors") ==
              read(root / "step_0000021" / "optimizer.safetensors"));
  {
    Trainer t(c, {.resume = true, .quiet = true});
    t.run();
    ASSERT_EQ(t.history().size(), 9u);
    for (const StepRecord& r : t.history()) {
      EXPECT_FALSE(r.skipped) << "step " << r.step << ": " << r.reason;
      EXPECT_LT(r.loss, 0.25 * spike_loss) << "step " << r.step;
    }
    EXPECT_EQ(t.state().skipped, 1);
    EXPECT_EQ(t.state().optimizer_steps, 29);
  }
  // metrics.jsonl: step 21, and only it, says why it was skipped.
  std::istringstream metrics(read(dir_ / "run" / "metrics.jsonl"));
  int skipped_lines = 0;
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("skipped")) continue;
    ++skipped_lines;
    EXPECT_EQ(j["step"], 21);
    EXPECT_NE(j["skipped"].get<std::string>().find("loss spike"), std::string::npos) << line;
  }
  EXPECT_EQ(skipped_lines, 1);
}

TEST_F(TrainerTest, DataTooShortAndVocabMismatchAreClearErrors) {
  TrainConfig c = tiny_config(mix_, dir_ / "run", 1000);  // 4000 samples needed, 400 planned
  try {
    Trainer t(c, {.quiet = true});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plan more"), std::string::npos) << e.what();
  }
  TrainConfig v = tiny_config(mix_, dir_ / "run2", 2);
  v.model.vocab_size = 100;  // the data holds ids up to 255
  Trainer t(v, {.quiet = true});
  try {
    t.run();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the model's vocabulary"), std::string::npos) << e.what();
  }
}

TEST_F(TrainerTest, SingleDatasetWithSplit) {
  TrainConfig c = tiny_config(mix_, dir_ / "run", 3);
  c.data.mixture.clear();
  c.data.dataset = (dir_ / "syn").string();
  c.data.seq_len = 16;
  c.data.split = "90,10,0";
  c.data.valid_samples = 4;
  Trainer t(c, {.quiet = true});
  t.run();
  EXPECT_EQ(t.history().size(), 3u);
  EXPECT_EQ(t.evals().size(), 1u);
  EXPECT_TRUE(fs::exists(dir_ / "run" / "data" / "mixture.json"));
}

TEST_F(TrainerTest, DataListSectionIsPlannedLikeDataMix) {
  // The mixture given as a section of the training config: list, seq_len, split, samples, seed.
  std::ofstream(dir_ / "list.txt") << "# relative prefixes are relative to the list\n2 syn corpus_a\n";
  TrainConfig c = tiny_config(mix_, dir_ / "run", 3);
  c.data.mixture.clear();
  c.data.list = (dir_ / "list.txt").string();
  c.data.seq_len = 16;
  c.data.split = "90,10,0";
  c.data.valid_samples = 4;
  Trainer t(c, {.quiet = true});
  t.run();
  EXPECT_EQ(t.history().size(), 3u);
  auto plan = dataset::Mixture::load((dir_ / "run" / "data").string());
  EXPECT_EQ(plan.sources().size(), 1u);
  EXPECT_EQ(plan.sources()[0].corpus, "corpus_a");
  c.data.dataset = (dir_ / "syn").string();  // two data sources at once is an error
  EXPECT_THROW(c.validate(), Error);
}
