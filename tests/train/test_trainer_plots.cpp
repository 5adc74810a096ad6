// The trainer draws its curves into OUT/plots/ (train.plot, on by default): a short run leaves the
// PNG and SVG files, train.plot = false leaves none, and a plot that cannot be written is a warning,
// never the end of the run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/file.h"
#include "base/log.h"
#include "dataset/indexed_dataset.h"
#include "train/config.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::train;

namespace {

class TrainerPlotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_log_level(LogLevel::kQuiet);
    dir_ = fs::temp_directory_path() /
           ("agpt_train_plots_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Twenty documents counting through a 64-token vocabulary; the trainer plans them itself
    // (data.dataset), with a valid split so the loss chart has validation points.
    dataset::IndexedDatasetWriter w((dir_ / "count").string(), dataset::TokenDType::kUInt16);
    for (uint32_t d = 0; d < 20; ++d) {
      std::vector<uint32_t> doc(40);
      for (uint32_t i = 0; i < doc.size(); ++i) doc[i] = (d + i) % 64;
      w.add_document(doc);
    }
    w.finish();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A 4-step run of a very small model, checkpointing (and so plotting) at steps 2 and 4.
  TrainConfig config(const std::string& extra_train_keys = "") const {
    const std::string toml = R"(
[model]
preset = "none"
vocab_size = 64
hidden_size = 16
intermediate_size = 32
num_hidden_layers = 1
num_attention_heads = 2
[data]
seq_len = 8
split = "90,10,0"
valid_samples = 4
[train]
micro_batch = 2
steps = 4
warmup = 1
eval_every = 2
eval_batches = 1
checkpoint_every = 2
threads = 1
)" + extra_train_keys;
    return TrainConfig::parse(toml, "plots.toml",
                              {{"data.dataset", (dir_ / "count").string()}, {"train.out_dir", run().string()}});
  }
  fs::path run() const { return dir_ / "run"; }

  fs::path dir_;
};

}  // namespace

TEST_F(TrainerPlotsTest, ARunLeavesItsPlots) {
  TrainConfig c = config();
  EXPECT_TRUE(c.train.plot);  // the default
  Trainer t(c, {.quiet = true});
  t.run();
  for (const char* name : {"loss", "lr", "grad_norm", "throughput", "overview"})
    for (const char* ext : {".png", ".svg"}) EXPECT_TRUE(fs::exists(run() / "plots" / (name + std::string(ext)))) << name << ext;
  const std::string png = read_file((run() / "plots" / "loss.png").string());
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");
  // Drawn after the last checkpoint, so the final validation (step 4) is in the chart.
  const std::string svg = read_file((run() / "plots" / "loss.svg").string());
  EXPECT_NE(svg.find("validation"), std::string::npos);
}

TEST_F(TrainerPlotsTest, TrainPlotFalseDrawsNothing) {
  Trainer t(config("plot = false\n"), {.quiet = true});
  t.run();
  EXPECT_TRUE(fs::exists(run() / "checkpoints" / "latest"));
  EXPECT_FALSE(fs::exists(run() / "plots"));
}

TEST_F(TrainerPlotsTest, APlotThatCannotBeWrittenIsNotFatal) {
  fs::create_directories(run());
  std::ofstream((run() / "plots").string()) << "a file where the plots directory would go\n";
  Trainer t(config(), {.quiet = true});
  EXPECT_NO_THROW(t.run());
  EXPECT_EQ(read_file((run() / "checkpoints" / "latest").string()), "step_0000004\n");
  EXPECT_TRUE(fs::is_regular_file(run() / "plots"));
}
