// `agpt plot` through the binary: files appear and are printed, bad lines are reported, errors
// are clear, options are checked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "run_agpt.h"

namespace fs = std::filesystem;

namespace {
using Result = agpt::testing::CliResult;
Result run(const std::string& args) { return agpt::testing::run_agpt(args); }

class PlotCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_plot_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    write_run("run", 120, 1.0, /*bad_line=*/true);
    write_run("other", 90, 0.8, false);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A metrics.jsonl as the trainer writes it: decaying loss, warmup lr, evaluations every 20 steps.
  void write_run(const std::string& name, int steps, double scale, bool bad_line) {
    fs::create_directories(dir_ / name);
    std::ofstream f(dir_ / name / "metrics.jsonl");
    for (int i = 1; i <= steps; ++i) {
      const double loss = scale * (3 + 6 * std::exp(-i / 30.0)) + 0.1 * std::sin(i);
      f << "{\"step\":" << i << ",\"loss\":" << (i == 50 ? std::string("null") : std::to_string(loss))
        << ",\"lr\":" << 3e-4 * std::min(1.0, i / 10.0) << ",\"grad_norm\":" << 1 + std::exp(-i / 8.0)
        << ",\"tokens\":" << 4096 * i << ",\"tokens_per_s\":" << 1000 + i << ",\"flops_per_s\":1e10,\"elapsed\":" << i
        << ",\"rss_mib\":200}\n";
      if (i % 20 == 0) f << "{\"step\":" << i << ",\"val_loss\":" << loss + 0.1 << ",\"val_perplexity\":20,\"val_tokens\":512}\n";
      if (bad_line && i == 60) f << "{\"step\":61,\"loss\":3.1,\"lr\n";  // torn line of a crashed run
    }
  }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

}  // namespace

TEST_F(PlotCli, HelpHasExamples) {
  Result r = run("plot --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("Examples:"), std::string::npos);
  EXPECT_NE(r.output.find("--compare"), std::string::npos);
}

TEST_F(PlotCli, WritesAndPrintsThePlots) {
  Result r = run("plot " + p("run"));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* name : {"loss", "lr", "grad_norm", "throughput", "overview"})
    for (const char* ext : {".png", ".svg"}) {
      const std::string path = p("run/plots/") + name + ext;
      EXPECT_TRUE(fs::exists(path)) << path;
      EXPECT_GT(fs::file_size(path), 1000u) << path;
      EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
    }
  EXPECT_NE(r.output.find("skipped 1 line"), std::string::npos) << "the torn line is reported: " << r.output;
  EXPECT_NE(r.output.find("line 64"), std::string::npos) << r.output;  // after 60 step and 3 evaluation lines
}

TEST_F(PlotCli, FormatOutAndCompare) {
  Result r = run("plot " + p("run") + " --compare " + p("other") + " --format png --out " + p("cmp") +
                 " --smooth 0.5 --width 640 --height 400 --log-y");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(p("cmp/loss.png")));
  EXPECT_TRUE(fs::exists(p("cmp/overview.png")));
  EXPECT_FALSE(fs::exists(p("cmp/loss.svg")));
  r = run("plot " + p("run") + " --compare " + p("other") + " --format svg --out " + p("cmp"));
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream svg(p("cmp/loss.svg"));
  const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(">run</text>"), std::string::npos);    // legend labels are directory names
  EXPECT_NE(text.find(">other</text>"), std::string::npos);
}

TEST_F(PlotCli, ClearErrors) {
  fs::create_directories(dir_ / "empty");
  std::ofstream(dir_ / "empty" / "metrics.jsonl") << "";
  Result r = run("plot " + p("empty"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("no step lines in " + p("empty/metrics.jsonl")), std::string::npos) << r.output;

  r = run("plot " + p("missing"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("no such file or directory"), std::string::npos) << r.output;

  r = run("plot " + p("run") + " --smooth 1.5");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--smooth must be in [0, 1)"), std::string::npos) << r.output;

  r = run("plot " + p("run") + " --format gif");
  EXPECT_NE(r.status, 0);
}
