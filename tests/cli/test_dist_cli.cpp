// `mpirun -np 2 agpt train`: two CPU ranks train as one job; a hung rank ends the job with an error
// naming the rank and the operation (the watchdog); a slow rank is reported as a straggler.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/file.h"
#include "run_agpt.h"
#include "dataset/indexed_dataset.h"

namespace fs = std::filesystem;
using agpt::testing::run_agpt;

namespace {

class DistCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_dist_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    {
      agpt::dataset::IndexedDatasetWriter w((dir_ / "syn").string(), agpt::dataset::TokenDType::kUInt16);
      for (uint32_t d = 0; d < 30; ++d) {
        std::vector<uint32_t> doc(100);
        for (uint32_t i = 0; i < doc.size(); ++i) doc[i] = (i * 7 + d) % 200;
        w.add_document(doc);
      }
      w.finish();
    }
    std::ofstream((dir_ / "run.toml").string()) << "[model]\npreset = \"none\"\nvocab_size = 256\nhidden_size = 32\n"
                                                   "intermediate_size = 64\nnum_hidden_layers = 1\nnum_attention_heads = 2\n"
                                                   "num_key_value_heads = 1\n[data]\ndataset = \""
                                                << (dir_ / "syn").string()
                                                << "\"\nseq_len = 16\n[train]\nmicro_batch = 2\nsteps = 6\nwarmup = 1\n"
                                                   "threads = 1\nplot = false\nlog_every = 1\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // mpirun with 2 ranks (as root where CI runs so) in front of the agpt binary.
  agpt::testing::CliResult mpirun(const std::string& env, const std::string& args) {
    std::string launcher = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + env + " " +
                           std::string(AGPT_MPIEXEC) + " -np 2 --oversubscribe";
    std::string cmd = launcher + " " + AGPT_BINARY + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = pclose(p);
    return {WEXITSTATUS(status), out};
  }

  fs::path dir_;
};

TEST_F(DistCli, TwoRanksTrainAsOneJob) {
  auto r = mpirun("", "train " + (dir_ / "run.toml").string() + " --train.out_dir " + (dir_ / "out").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("x 2 ranks"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("distributed optimizer"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "out" / "checkpoints" / "step_0000006" / "model.safetensors"));
  std::string metrics = agpt::read_file((dir_ / "out" / "metrics.jsonl").string());
  EXPECT_NE(metrics.find("\"ranks\":2"), std::string::npos);
  EXPECT_NE(metrics.find("\"step\":6"), std::string::npos);
}

TEST_F(DistCli, HungRankEndsTheJobWithAClearError) {
  auto r = mpirun("AGPT_FAULT_HANG=1:3", "train " + (dir_ / "run.toml").string() + " --train.out_dir " +
                                             (dir_ / "out").string() + " --train.dist_timeout 2 --train.checkpoint_every 2");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("rank 0 of 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("at step 3 has not completed after"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  // The checkpoint of step 2 is there to restart from.
  EXPECT_TRUE(fs::exists(dir_ / "out" / "checkpoints" / "step_0000002" / "trainer_state.json"));
}

TEST_F(DistCli, SlowRankIsReportedAsAStraggler) {
  auto r = mpirun("AGPT_FAULT_SLOW=1:0.3", "train " + (dir_ / "run.toml").string() + " --train.out_dir " +
                                               (dir_ / "out").string() + " --train.straggler_every 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("straggler at step 2: rank 1"), std::string::npos) << r.output;
  std::string metrics = agpt::read_file((dir_ / "out" / "metrics.jsonl").string());
  EXPECT_NE(metrics.find("\"stragglers\":[{\"rank\":1"), std::string::npos) << metrics;
}

}  // namespace
