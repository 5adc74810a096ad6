// The Llama model and the trainer on the CUDA backend: the PyTorch references (logits, loss,
// every gradient, 5 AdamW steps) with the CPU test's tolerances; 200 training steps that track
// the CPU run's loss curve; and a resumed CUDA run that is bit-identical to an uninterrupted one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/log.h"
#include "dataset/indexed_dataset.h"
#include "dataset/mixture.h"
#include "gpu_test_util.h"
#include "model/llama.h"
#include "model/verify.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace agpt;

namespace {

TEST(CudaModel, MatchesTransformersReferences) {
  AGPT_REQUIRE_GPU();
  for (const char* name : {"llama-tiny", "llama-tiny-tied"}) {
    std::string dir = gpu_testing::testdata_dir() + "/llama-ref/" + name;
    if (!fs::exists(dir + "/reference.safetensors")) GTEST_SKIP() << "no " << dir;
    auto backend = ops::make_cuda_backend(0);
    model::Llama m = model::Llama::load(dir + "/model", *backend);
    model::VerifyReport r = model::verify_reference(m, dir + "/reference.safetensors", model::VerifyOptions{});
    double worst = 0;
    for (const auto& t : r.tensors) {
      worst = std::max(worst, t.rel_l2);
      EXPECT_TRUE(t.ok) << name << " " << t.name << " rel_l2 " << t.rel_l2 << " max_abs " << t.max_abs_err;
    }
    for (const auto& s : r.scalars) EXPECT_TRUE(s.ok) << name << " " << s.name << " " << s.value << " vs " << s.reference;
    std::printf("    %s on %s: %zu tensors, worst rel_l2 %.2e\n", name, backend->name().c_str(), r.tensors.size(), worst);
  }
}

// A token dataset whose documents repeat a cycle (learnable), and a mixture over it.
std::string make_mixture(const fs::path& dir, uint64_t samples, int64_t seq_len) {
  const std::vector<uint32_t> cycle = {3, 17, 42, 99, 7, 180, 255, 64, 12, 5, 200, 31, 77};
  dataset::IndexedDatasetWriter w((dir / "syn").string(), dataset::TokenDType::kUInt16);
  for (size_t d = 0; d < 64; ++d) {
    std::vector<uint32_t> doc(300);
    for (size_t i = 0; i < doc.size(); ++i) doc[i] = cycle[(i * (d % 3 + 1) + d) % cycle.size()];
    w.add_document(doc);
  }
  w.finish();
  std::ofstream((dir / "list.txt").string()) << "1.0 syn synthetic\n";
  dataset::MixtureOptions o;
  o.list_path = (dir / "list.txt").string();
  o.seq_len = seq_len;
  o.samples = {samples, 16, 0};
  o.seed = 3;
  o.split = {0.9, 0.1, 0};
  fs::path mix = dir / "mix";
  dataset::Mixture::plan(o).save(mix.string());
  return mix.string();
}

train::TrainConfig small_config(const std::string& mix, const fs::path& out, const std::string& device, int64_t steps) {
  std::string toml = R"(
[model]
preset = "none"
vocab_size = 256
hidden_size = 64
intermediate_size = 160
num_hidden_layers = 2
num_attention_heads = 4
num_key_value_heads = 2
[train]
micro_batch = 4
grad_accum = 2
lr = 3e-3
min_lr = 3e-4
warmup = 10
weight_decay = 0.1
eval_every = 100
eval_batches = 2
log_every = 1000
)";
  return train::TrainConfig::parse(toml, "gpu-test.toml",
                                   {{"data.mixture", mix},
                                    {"train.out_dir", out.string()},
                                    {"train.steps", std::to_string(steps)},
                                    {"train.device", device}});
}

class CudaTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    AGPT_REQUIRE_GPU();
    set_log_level(LogLevel::kQuiet);
    dir_ = fs::temp_directory_path() / ("agpt_gpu_train_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    mix_ = make_mixture(dir_, 2000, 64);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string mix_;
};

TEST_F(CudaTraining, TracksTheCpuLossCurve) {
  const int64_t steps = 200;
  train::Trainer cpu(small_config(mix_, dir_ / "cpu", "cpu", steps), {.quiet = true});
  cpu.run();
  train::Trainer gpu(small_config(mix_, dir_ / "gpu", "cuda", steps), {.quiet = true});
  gpu.run();
  ASSERT_EQ(cpu.history().size(), gpu.history().size());
  // fp32 on both sides, different summation orders: the runs agree to rounding at first, then
  // drift apart slowly (training amplifies rounding). Early steps must agree to 1e-4 relative;
  // every step to 2% of its loss (+1e-3 absolute once the loss is near zero).
  double worst_early = 0, worst = 0;
  for (size_t i = 0; i < cpu.history().size(); ++i) {
    double a = cpu.history()[i].loss, b = gpu.history()[i].loss;
    if (i < 20) worst_early = std::max(worst_early, std::abs(a - b) / a);
    worst = std::max(worst, std::abs(a - b) / (a + 0.05));
  }
  std::printf("    200 steps: loss %.4f -> cpu %.4f, cuda %.4f; steps 1-20 worst relative difference %.2e; "
              "all steps worst |cpu-cuda|/(cpu+0.05) %.2e\n",
              cpu.history().front().loss, cpu.history().back().loss, gpu.history().back().loss, worst_early, worst);
  EXPECT_LT(worst_early, 1e-4);
  EXPECT_LT(worst, 2e-2);
  EXPECT_LT(gpu.history().back().loss, 0.5 * gpu.history().front().loss) << "the CUDA run did not learn";
  ASSERT_FALSE(gpu.evals().empty());
  EXPECT_NEAR(gpu.evals().back().loss, cpu.evals().back().loss, 2e-2 * cpu.evals().back().loss + 1e-3);
}

// bf16 matrix products: the curve stays close to the fp32 CPU run (bf16 rounding, not bugs).
TEST_F(CudaTraining, Bf16MatmulsLearnLikeFp32) {
  const int64_t steps = 200;
  train::Trainer cpu(small_config(mix_, dir_ / "cpu", "cpu", steps), {.quiet = true});
  cpu.run();
  auto cfg = small_config(mix_, dir_ / "bf16", "cuda", steps);
  cfg.train.precision = "bf16";
  train::Trainer gpu(cfg, {.quiet = true});
  gpu.run();
  double a = cpu.evals().back().loss, b = gpu.evals().back().loss;
  std::printf("    200 steps, validation loss: cpu fp32 %.4f, cuda bf16 matmuls %.4f\n", a, b);
  EXPECT_LT(std::abs(a - b), 0.1 * a + 0.02);
}

TEST_F(CudaTraining, ResumeIsBitIdentical) {
  const int64_t steps = 12;
  train::Trainer whole(small_config(mix_, dir_ / "a", "cuda", steps), {.quiet = true});
  whole.run();
  auto cfg = small_config(mix_, dir_ / "b", "cuda", steps);
  {
    train::Trainer first(cfg, {.stop_after = 5, .quiet = true});
    first.run();
  }
  train::Trainer second(cfg, {.resume = true, .quiet = true});
  second.run();
  ASSERT_EQ(second.history().size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(second.history()[i].loss, whole.history()[5 + i].loss) << "step " << 6 + i;
    EXPECT_EQ(second.history()[i].grad_norm, whole.history()[5 + i].grad_norm) << "step " << 6 + i;
  }
}

}  // namespace
