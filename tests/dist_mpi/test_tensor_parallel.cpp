// Tensor parallelism on the CPU over 2 MPI ranks: the model split over a group of 2 computes what
// the whole model computes (loss, logits of its vocabulary block, every gradient gathered back), and
// its checkpoints load into either layout.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "base/error.h"
#include "base/file.h"
#include "model/llama.h"
#include "ops/backend_factory.h"
#include "train/tensor_parallel_group.h"
#include "mpi_test_env.h"

namespace fs = std::filesystem;
using namespace agpt;

namespace {

model::LlamaConfig tiny(bool tied, int64_t vocab) {
  model::LlamaConfig c;
  c.vocab_size = vocab;  // odd sizes give the ranks unequal vocabulary blocks
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.2;  // large enough that the loss and gradients are far from uniform
  return c;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Batch {
  std::vector<int32_t> ids, targets;
  int64_t B = 2, T = 12;
};
Batch batch(int64_t vocab) {
  Batch b;
  std::mt19937 rng(5);
  for (int64_t i = 0; i < b.B * b.T; ++i) b.ids.push_back(static_cast<int32_t>(rng() % vocab));
  b.targets = model::shift_targets(b.ids, b.B, b.T);
  b.targets[3] = model::kIgnoreIndex;  // an ignored position inside a row too
  return b;
}

class TensorParallel : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(TensorParallel, TwoRanksComputeWhatOneComputes) {
  const auto [tied, recompute] = GetParam();
  dist::Communicator& world = testing_mpi::world();
  ASSERT_EQ(world.size(), 2);
  auto groups = train::make_parallel_groups(world, 2);
  train::CommTensorParallel tp(*groups.tp);
  auto be = ops::make_backend("cpu", 1, "fp32");
  const model::LlamaConfig c = tiny(tied, 301);
  const Batch b = batch(c.vocab_size);

  model::Llama whole(c, *be);
  whole.init_weights(11);
  model::Llama split(c, *be, &tp);
  split.init_weights(11);
  whole.set_recompute(recompute);
  split.set_recompute(recompute);

  const float loss1 = whole.forward(b.ids, b.targets, b.B, b.T);
  const float loss2 = split.forward(b.ids, b.targets, b.B, b.T);
  EXPECT_NEAR(loss2, loss1, 2e-6 * std::abs(loss1));
  EXPECT_GT(loss1, 1.0f);
  // This rank's logits are the columns of its vocabulary block.
  const auto& shard = split.parameters()[0].shard;
  ASSERT_TRUE(shard.split());
  EXPECT_EQ(shard.begin, world.rank() == 0 ? 0 : 151);
  EXPECT_EQ(shard.count, world.rank() == 0 ? 151 : 150);
  const std::vector<float> full_logits = be->to_host_f32(whole.logits()), part = be->to_host_f32(split.logits());
  std::vector<float> expected;
  for (int64_t n = 0; n < b.B * b.T; ++n)
    expected.insert(expected.end(), full_logits.begin() + n * c.vocab_size + shard.begin,
                    full_logits.begin() + n * c.vocab_size + shard.begin + shard.count);
  EXPECT_LT(rel_diff(part, expected), 1e-6);

  whole.zero_grad();
  whole.backward();
  split.zero_grad();
  split.backward();
  for (size_t i = 0; i < whole.parameters().size(); ++i) {
    const model::Parameter& p1 = whole.parameters()[i];
    const model::Parameter& p2 = split.parameters()[i];
    ASSERT_EQ(p1.name, p2.name);
    EXPECT_EQ(p2.full_shape, p1.value.shape()) << p1.name;
    EXPECT_LT(rel_diff(split.gather_full(p2, p2.grad), be->to_host_f32(p1.grad)), 1e-5) << p1.name;
    EXPECT_EQ(split.gather_full(p2, p2.value), be->to_host_f32(p1.value)) << p1.name;
  }
}
INSTANTIATE_TEST_SUITE_P(TiedAndRecompute, TensorParallel,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()));

// Saved by 2 tensor-parallel ranks, the checkpoint is the whole model: one process loads it, and
// loading it back into 2 ranks gives each its slice.
TEST(TensorParallelCheckpoint, LoadsIntoEitherLayout) {
  dist::Communicator& world = testing_mpi::world();
  auto groups = train::make_parallel_groups(world, 2);
  train::CommTensorParallel tp(*groups.tp);
  auto be = ops::make_backend("cpu", 1, "fp32");
  const model::LlamaConfig c = tiny(false, 300);
  std::string dir;
  if (world.rank() == 0) {
    dir = (fs::temp_directory_path() / ("agpt_tp_ckpt_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir);
  }
  world.broadcast(dir, 0);
  model::Llama split(c, *be, &tp);
  split.init_weights(3);
  split.save(dir);
  world.barrier();
  model::Llama whole = model::Llama::load(dir, *be);
  model::Llama reference(c, *be);
  reference.init_weights(3);
  for (size_t i = 0; i < whole.parameters().size(); ++i)
    EXPECT_EQ(be->to_host_f32(whole.parameters()[i].value), be->to_host_f32(reference.parameters()[i].value))
        << whole.parameters()[i].name;
  model::Llama again(c, *be, &tp);
  again.load_weights(model::WeightReader(dir));
  for (size_t i = 0; i < again.parameters().size(); ++i)
    EXPECT_EQ(be->to_host_f32(again.parameters()[i].value), be->to_host_f32(split.parameters()[i].value));
  world.barrier();
  if (world.rank() == 0) fs::remove_all(dir);
}

TEST(TensorParallelLayout, RefusesShapesThatDoNotSplit) {
  dist::Communicator& world = testing_mpi::world();
  auto groups = train::make_parallel_groups(world, 2);
  train::CommTensorParallel tp(*groups.tp);
  auto be = ops::make_backend("cpu", 1, "fp32");
  model::LlamaConfig c = tiny(true, 300);
  c.num_key_value_heads = 1;
  try {
    model::Llama m(c, *be, &tp);
    FAIL() << "one key/value head cannot be split over 2 ranks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_key_value_heads divisible by 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(train::make_parallel_groups(world, 3), Error);
}

}  // namespace

// ---- training --------------------------------------------------------------------------------------

namespace {
using testing_mpi::config;
using testing_mpi::make_mixture;
using testing_mpi::max_rel_diff;
using testing_mpi::on_rank_zero;
using testing_mpi::shared_dir;
using testing_mpi::train_run;

void expect_same_curve(const std::vector<double>& got, const std::vector<double>& want, size_t offset = 0) {
  ASSERT_LE(got.size() + offset, want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[offset + i], 1e-5 * std::abs(want[offset + i])) << "step " << offset + i + 1;
}

// A group of 2 ranks splitting every layer trains like one process with the same batch.
TEST(TensorParallelTraining, TwoRanksSplittingEachLayerTrainLikeOne) {
  dist::Communicator& world = testing_mpi::world();
  if (world.size() != 2) GTEST_SKIP() << "a 2-rank test";
  const fs::path dir = shared_dir("tp2");
  const std::string mix = make_mixture(dir);
  auto c = config(mix, dir / "tp2", 6, 2);
  c.train.tensor_parallel = 2;
  std::vector<float> w2, w1;
  auto l2 = train_run(c, &world, false, -1, &w2);
  on_rank_zero([&] {
    auto l1 = train_run(config(mix, dir / "one", 6, 2), nullptr, false, -1, &w1);
    ASSERT_EQ(l2.size(), l1.size());
    expect_same_curve(l2, l1);
    EXPECT_LT(max_rel_diff(w2, w1), 1e-5);
    const std::string metrics = read_file((dir / "tp2" / "metrics.jsonl").string());
    EXPECT_NE(metrics.find("\"tensor_parallel\":2"), std::string::npos);
  });
}

// Same layout: stop at 3, resume to 6, bit-identical. A TP=2 checkpoint resumes in one process,
// and a one-process checkpoint under TP=2, both continuing the uninterrupted curve.
TEST(TensorParallelTraining, ResumeUnderTheSameOrAnotherLayout) {
  dist::Communicator& world = testing_mpi::world();
  if (world.size() != 2) GTEST_SKIP() << "a 2-rank test";
  const fs::path dir = shared_dir("tp_resume");
  const std::string mix = make_mixture(dir);
  auto tp2 = [&](const char* out) {
    auto c = config(mix, dir / out, 6, 1);
    c.train.tensor_parallel = 2;
    return c;
  };
  std::vector<float> w_full, w_resumed, w_to1, w_to2;
  auto full = train_run(tp2("full"), &world, false, -1, &w_full);
  train_run(tp2("part"), &world, false, 3);
  auto rest = train_run(tp2("part"), &world, true, -1, &w_resumed);
  ASSERT_EQ(rest.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rest[i], full[3 + i]) << "step " << 4 + i;
  EXPECT_EQ(w_resumed, w_full);

  train_run(tp2("split"), &world, false, 3);
  on_rank_zero([&] {
    fs::copy(dir / "split", dir / "to1", fs::copy_options::recursive);
    auto one = train_run(config(mix, dir / "to1", 6, 1), nullptr, true, -1, &w_to1);
    ASSERT_EQ(one.size(), 3u);
    expect_same_curve(one, full, 3);
    EXPECT_LT(max_rel_diff(w_to1, w_full), 1e-5);
    train_run(config(mix, dir / "to2", 6, 1), nullptr, false, 3);
  });
  auto two = train_run(tp2("to2"), &world, true, -1, &w_to2);
  ASSERT_EQ(two.size(), 3u);
  expect_same_curve(two, full, 3);
  EXPECT_LT(max_rel_diff(w_to2, w_full), 1e-5);
}

// 4 ranks: the TP 2 x DP 2 checkpoint is one moment shard per rank (parts of its slices). Stopped at
// step 3, the run resumes bit-identically (synchronous and background checkpoints), and one process
// (grad_accum 2) continues it like the uninterrupted run, putting every tensor back together from
// the slices' parts.
TEST(TensorParallelTraining, FourRanksResumeFromSlicedShards) {
  dist::Communicator& world = testing_mpi::world();
  if (world.size() != 4) GTEST_SKIP() << "a 4-rank test (ctest dist_mpi_4_ranks)";
  const fs::path dir = shared_dir("tp2dp2_resume");
  const std::string mix = make_mixture(dir);
  auto grid = [&](const std::string& out, bool async) {
    auto c = config(mix, dir / out, 6, 1);
    c.train.tensor_parallel = 2;
    c.train.checkpoint_every = 3;
    c.train.async_checkpoint = async;
    return c;
  };
  std::vector<float> w_full, w_resumed, w_one;
  auto full = train_run(grid("full", false), &world, false, -1, &w_full);
  for (bool async : {false, true}) {
    const std::string name = async ? "part_async" : "part";
    train_run(grid(name, async), &world, false, 3);
    auto rest = train_run(grid(name, async), &world, true, -1, &w_resumed);
    ASSERT_EQ(rest.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(rest[i], full[3 + i]) << "step " << 4 + i << (async ? " (background)" : "");
    EXPECT_EQ(w_resumed, w_full);
  }
  train_run(grid("stopped", false), &world, false, 3);
  on_rank_zero([&] {
    auto one = train_run(config(mix, dir / "stopped", 6, 2), nullptr, true, -1, &w_one);
    ASSERT_EQ(one.size(), 3u);
    expect_same_curve(one, full, 3);
    EXPECT_LT(max_rel_diff(w_one, w_full), 1e-5);
  });
}

// 4 ranks (ctest dist_mpi_4_ranks): tensor parallel 2 x data parallel 2 with the distributed
// optimizer trains like one process with grad_accum 2, and its checkpoint resumes in one process.
TEST(TensorParallelTraining, FourRanksAsTwoByTwo) {
  dist::Communicator& world = testing_mpi::world();
  if (world.size() != 4) GTEST_SKIP() << "a 4-rank test (ctest dist_mpi_4_ranks)";
  const fs::path dir = shared_dir("tp2dp2");
  const std::string mix = make_mixture(dir);
  auto c = config(mix, dir / "grid", 6, 1);
  c.train.tensor_parallel = 2;
  std::vector<float> w4, w1, w_to1;
  auto l4 = train_run(c, &world, false, -1, &w4);
  on_rank_zero([&] {
    auto l1 = train_run(config(mix, dir / "one", 6, 2), nullptr, false, -1, &w1);
    ASSERT_EQ(l4.size(), l1.size());
    expect_same_curve(l4, l1);
    EXPECT_LT(max_rel_diff(w4, w1), 1e-5);
    // The 2 x 2 checkpoint of step 6: whole weight tensors, and one moment shard per rank holding
    // parts of its slices; one process loads it and sees the same weights.
    for (int r = 1; r <= 4; ++r)
      EXPECT_TRUE(fs::exists(dir / "grid" / "checkpoints" / "step_0000006" /
                             ("optimizer-0000" + std::to_string(r) + "-of-00004.safetensors")));
    auto resumed = train_run(config(mix, dir / "grid", 6, 2), nullptr, true, -1, &w_to1);
    EXPECT_TRUE(resumed.empty());
    EXPECT_EQ(w_to1, w4);
  });
}
}  // namespace
