// The distributed optimizer's checkpoints when rank 0's directory is not visible to every rank (no
// shared filesystem): the ranks fall back to gathering the optimizer state on rank 0, which writes
// the whole checkpoint, and the run still resumes bit-identically, with fp32 and with bf16
// parameters (whose weight files then hold the gathered fp32 master values). One host cannot hide a
// directory from a rank, so AGPT_FAULT_UNSHARED_DIR=1 makes rank 1 report it as missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "mpi_test_env.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::testing_mpi;

namespace {

TEST(UnsharedCheckpointDir, RankZeroGathersAndTheRunResumesBitIdentically) {
  if (world().size() != 2) GTEST_SKIP() << "a 2-rank test";
  const fs::path dir = shared_dir("unshared");
  const std::string mix = make_mixture(dir);
  for (const char* dtype : {"fp32", "bf16"}) {
    auto cfg = [&](const std::string& out) {
      auto c = config(mix, dir / (std::string(dtype) + out), 6, 1);
      c.train.param_dtype = dtype;
      c.train.checkpoint_every = 3;
      return c;
    };
    std::vector<float> w_full, w_resumed;
    auto full = train_run(cfg("_full"), &world(), false, -1, &w_full);
    ::setenv("AGPT_FAULT_UNSHARED_DIR", "1", 1);
    train_run(cfg("_part"), &world(), false, 3);
    ::unsetenv("AGPT_FAULT_UNSHARED_DIR");
    if (world().rank() == 0) {
      const fs::path ck = dir / (std::string(dtype) + "_part") / "checkpoints" / "step_0000003";
      EXPECT_TRUE(fs::exists(ck / "optimizer.safetensors")) << dtype << ": the moments gathered on rank 0";
      EXPECT_FALSE(fs::exists(ck / "optimizer-00001-of-00002.safetensors")) << dtype;
    }
    auto rest = train_run(cfg("_part"), &world(), true, -1, &w_resumed);
    ASSERT_EQ(rest.size(), 3u) << dtype;
    for (int i = 0; i < 3; ++i) EXPECT_EQ(rest[i], full[3 + i]) << dtype << " step " << 4 + i;
    EXPECT_EQ(w_resumed, w_full) << dtype;
  }
  world().barrier();
}

}  // namespace
