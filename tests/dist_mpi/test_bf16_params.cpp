// train.param_dtype = "bf16" over 2 ranks (Megatron's --bf16 with the distributed optimizer): the
// model holds bf16 weights and each rank the fp32 master values of its shard. The master values
// follow one fp32 AdamW exactly and the weights are their rounding; checkpoints keep the master
// values, so a resumed run is bit-identical (synchronous and background checkpoints); training
// stays close to fp32 parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "base/error.h"
#include "base/file.h"
#include "dist/communicator.h"
#include "model/adamw.h"
#include "model/safetensors.h"
#include "ops/backend_factory.h"
#include "train/distributed_optimizer.h"
#include "mpi_test_env.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::testing_mpi;

namespace {

std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = ops::bf16_to_f32(ops::f32_to_bf16(x));
  return v;
}

TEST(Bf16Params, MasterShardsFollowFp32AdamWAndTheWeightsAreTheirRounding) {
  auto be = ops::make_backend("cpu", 1, "fp32");
  const int r = world().rank();
  MeanGradientCase c(*be, 11);  // normal values, not bf16-representable: the master keeps every bit
  auto& params = c.params;
  auto& ref = c.ref;
  model::AdamWConfig cfg;
  cfg.lr = 1e-2;
  train::DistributedOptimizer opt(world(), *be, params, cfg, 40, /*bf16_params=*/true);
  EXPECT_THROW(opt.step(1e-2, 1.0f), Error);  // before shard_master_weights
  opt.shard_master_weights();
  EXPECT_THROW(opt.shard_master_weights(), Error);
  model::AdamW adam(*be, ref, cfg);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(params[i].value.dtype(), ops::DType::kBF16);
    EXPECT_EQ(params[i].grad.dtype(), ops::DType::kF32);
  }
  for (int step = 0; step < 3; ++step) {
    c.upload_gradients(*be, r);
    opt.reduce_gradients(0.5f);
    opt.step(1e-2, 0.9f);
    adam.step(ref, 1e-2, 0.9f);
    const std::vector<float> master = opt.gather_moment(2);
    for (size_t i = 0; i < 3; ++i) {
      const std::vector<float> want = be->to_host_f32(ref[i].value);
      EXPECT_EQ(be->to_host_f32(params[i].value), rounded(want)) << "parameter " << i << " step " << step;
      if (r == 0) {
        auto got = opt.param_slice(master, i);
        EXPECT_EQ(std::vector<float>(got.begin(), got.end()), want) << "master of parameter " << i << " step " << step;
      }
    }
  }
}

TEST(Bf16Params, TrainsCloseToFp32AndResumesBitIdentically) {
  const fs::path dir = shared_dir("bf16_params");
  const std::string mix = make_mixture(dir);
  auto cfg = [&](const std::string& out, bool bf16, bool async = false) {
    auto c = config(mix, dir / out, 6, 1);
    c.train.param_dtype = bf16 ? "bf16" : "fp32";
    c.train.checkpoint_every = 3;
    c.train.async_checkpoint = async;
    return c;
  };
  std::vector<float> w32, w16, w_resumed;
  auto l32 = train_run(cfg("fp32", false), &world(), false, -1, &w32);
  auto l16 = train_run(cfg("bf16", true), &world(), false, -1, &w16);
  ASSERT_EQ(l16.size(), l32.size());
  for (size_t i = 0; i < l32.size(); ++i) EXPECT_NEAR(l16[i], l32[i], 2e-2 * l32[i]) << "step " << i + 1;
  EXPECT_EQ(w16, rounded(w16)) << "the model's weights are bf16";
  EXPECT_LT(max_rel_diff(w16, w32), 2e-2);

  for (bool async : {false, true}) {
    const std::string name = async ? "part_async" : "part";
    train_run(cfg(name, true, async), &world(), false, 3);
    auto rest = train_run(cfg(name, true, async), &world(), true, -1, &w_resumed);
    ASSERT_EQ(rest.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(rest[i], l16[3 + i]) << "step " << 4 + i << (async ? " (background)" : "");
    EXPECT_EQ(w_resumed, w16);
  }
  on_rank_zero([&] {
    // A background checkpoint writes the same files as a synchronous one.
    for (const char* file : {"model.safetensors", "optimizer-00001-of-00002.safetensors", "optimizer-00002-of-00002.safetensors"}) {
      const fs::path a = dir / "part" / "checkpoints" / "step_0000006" / file;
      const fs::path b = dir / "part_async" / "checkpoints" / "step_0000006" / file;
      EXPECT_TRUE(fs::exists(a) && fs::exists(b) && read_file(a.string()) == read_file(b.string())) << file;
    }
    // Each rank's shard holds the fp32 master values of its parts; the weight files are bf16.
    const fs::path ck = dir / "bf16" / "checkpoints" / "step_0000003";
    for (const char* shard : {"optimizer-00001-of-00002.safetensors", "optimizer-00002-of-00002.safetensors"}) {
      model::SafetensorsFile f((ck / shard).string());
      size_t masters = 0;
      for (const auto& t : f.tensors()) masters += t.name.rfind("master.", 0) == 0;
      EXPECT_GT(masters, 0u) << shard;
    }
    model::SafetensorsFile weights((ck / "model.safetensors").string());
    EXPECT_EQ(weights.at("model.embed_tokens.weight").dtype, model::StDType::BF16);
    const std::vector<float> embed = weights.read_f32("model.embed_tokens.weight");
    EXPECT_EQ(embed, rounded(embed));
  });
}

TEST(Bf16Params, OneRankResumesTheMasterValuesWithFp32Parameters) {
  const fs::path dir = shared_dir("bf16_to_one");
  const std::string mix = make_mixture(dir);
  auto c = config(mix, dir / "two", 6, 1);
  c.train.param_dtype = "bf16";
  std::vector<float> w_two, w_one;
  auto full = train_run(c, &world(), false, -1, &w_two);
  auto stopped = config(mix, dir / "stopped", 6, 1);
  stopped.train.param_dtype = "bf16";
  train_run(stopped, &world(), false, 3);
  on_rank_zero([&] {
    // Alone (grad_accum 2 keeps the global batch), fp32 parameters: a warning, then the same
    // trajectory up to the rounding of the weights the products read.
    auto one_cfg = config(mix, dir / "stopped", 6, 2);
    one_cfg.train.param_dtype = "bf16";
    auto rest = train_run(one_cfg, nullptr, true, -1, &w_one);
    ASSERT_EQ(rest.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(rest[i], full[3 + i], 2e-2 * full[3 + i]) << "step " << 4 + i;
    EXPECT_LT(max_rel_diff(w_one, w_two), 2e-2);
    EXPECT_NE(w_one, rounded(w_one)) << "alone, the parameters are fp32 (the master values)";
  });
}

// 4 ranks (ctest dist_mpi_4_ranks), tensor parallel 2 x data parallel 2: every rank writes the
// parts of its slices with their master values, so a stopped run resumes bit-identically,
// synchronously and in the background.
TEST(Bf16Params, FourRanksAsTwoByTwoResumeBitIdentically) {
  if (world().size() != 4) GTEST_SKIP() << "a 4-rank test (ctest dist_mpi_4_ranks)";
  const fs::path dir = shared_dir("bf16_tp2dp2");
  const std::string mix = make_mixture(dir);
  auto cfg = [&](const std::string& out, bool async) {
    auto c = config(mix, dir / out, 6, 1);
    c.train.tensor_parallel = 2;
    c.train.param_dtype = "bf16";
    c.train.checkpoint_every = 3;
    c.train.async_checkpoint = async;
    return c;
  };
  std::vector<float> w_full, w_resumed;
  auto full = train_run(cfg("full", false), &world(), false, -1, &w_full);
  EXPECT_EQ(w_full, rounded(w_full));
  for (bool async : {false, true}) {
    const std::string name = async ? "part_async" : "part";
    train_run(cfg(name, async), &world(), false, 3);
    auto rest = train_run(cfg(name, async), &world(), true, -1, &w_resumed);
    ASSERT_EQ(rest.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(rest[i], full[3 + i]) << "step " << 4 + i << (async ? " (background)" : "");
    EXPECT_EQ(w_resumed, w_full);
  }
  on_rank_zero([&] {
    // Every rank wrote its shard: parts of its tensor-parallel slices, with their master values.
    const fs::path ck = dir / "full" / "checkpoints" / "step_0000003";
    size_t sliced = 0;
    for (int r = 1; r <= 4; ++r) {
      model::SafetensorsFile f((ck / ("optimizer-0000" + std::to_string(r) + "-of-00004.safetensors")).string());
      for (const auto& [key, value] : f.metadata()) sliced += key.rfind("slice.", 0) == 0;
      size_t masters = 0;
      for (const auto& t : f.tensors()) masters += t.name.rfind("master.", 0) == 0;
      EXPECT_GT(masters, 0u) << "shard " << r;
    }
    EXPECT_GT(sliced, 0u);
    EXPECT_FALSE(fs::exists(ck / "optimizer.safetensors"));
    model::SafetensorsFile weights((ck / "model.safetensors").string());
    EXPECT_EQ(weights.at("model.embed_tokens.weight").dtype, model::StDType::BF16);
  });
}

}  // namespace
