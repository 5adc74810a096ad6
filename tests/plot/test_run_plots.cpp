// The run plots end to end in the library: files written, valid, deterministic; edge cases
// (one point, constant series, wide gradient norms, several runs).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "plot/run_plots.h"
#include "png_reader.h"

using namespace agpt;
using namespace agpt::plot;
namespace fs = std::filesystem;

namespace {

plot::Run synthetic_run(const std::string& label, int steps, double scale = 1) {
  plot::Run r{label, {}};
  r.metrics.path = "/nonexistent/" + label + "/metrics.jsonl";
  for (int i = 1; i <= steps; ++i) {
    const double loss = scale * (2.5 + 7 * std::exp(-i / 40.0)) + 0.15 * std::sin(i * 1.7);
    r.metrics.steps.push_back({i, i == 57 ? NAN : loss, 3e-4 * std::min(1.0, i / 20.0), 0.5 + 3 * std::exp(-i / 10.0),
                               1000 + 50 * std::cos(i * 0.3), 0.3, i == 57});
    if (i % 25 == 0) r.metrics.evals.push_back({i, scale * (2.6 + 7 * std::exp(-i / 40.0))});
  }
  return r;
}

class RunPlots : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_plot_runs_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

}  // namespace

TEST_F(RunPlots, WritesTenValidDeterministicFiles) {
  PlotOptions opt;
  opt.out_dir = (dir_ / "plots").string();
  opt.width = 500, opt.height = 300;
  const std::vector<std::string> paths = write_plots({synthetic_run("a", 200)}, opt);
  ASSERT_EQ(paths.size(), 10u);
  EXPECT_EQ(paths[0], (dir_ / "plots" / "loss.png").string());
  EXPECT_EQ(paths[9], (dir_ / "plots" / "overview.svg").string());
  const agpt::testing::DecodedPng overview = agpt::testing::decode_png(read_file(paths[8]));
  ASSERT_EQ(overview.error, "");
  EXPECT_EQ(overview.width, 1000u);
  EXPECT_EQ(overview.height, 600u + 16u);  // 2x2 charts under a header line
  const std::string again = read_file(paths[8]);
  write_plots({synthetic_run("a", 200)}, opt);
  EXPECT_EQ(read_file(paths[8]), again);

  opt.png = false;
  opt.out_dir = (dir_ / "svg-only").string();
  EXPECT_EQ(write_plots({synthetic_run("a", 200)}, opt).size(), 5u);
  EXPECT_FALSE(fs::exists(dir_ / "svg-only" / "loss.png"));
}

TEST_F(RunPlots, SinglePointAndConstantSeriesDraw) {
  PlotOptions opt;
  opt.out_dir = dir_.string();
  plot::Run one = synthetic_run("one", 1);
  EXPECT_EQ(write_plots({one}, opt).size(), 10u);
  plot::Run flat = synthetic_run("flat", 30);
  for (StepRecord& r : flat.metrics.steps) r.loss = 4, r.lr = 0, r.grad_norm = NAN;
  EXPECT_EQ(write_plots({flat}, opt).size(), 10u);
  const ChartLayout L = layout_chart(loss_chart({flat}, opt), {0, 0, 1000, 600});
  EXPECT_LT(L.y.lo, 3.9);  // a constant is padded into a visible range
  EXPECT_GT(L.y.hi, 4.1);
  EXPECT_GE(L.y.ticks.size(), 3u);
  EXPECT_LE(L.y.ticks.size(), 12u);
}

TEST_F(RunPlots, LossChartSeriesAndLogAxes) {
  PlotOptions opt;
  const plot::Run run = synthetic_run("a", 100);
  const Chart c = loss_chart({run}, opt);
  ASSERT_EQ(c.series.size(), 4u);  // raw, EMA, validation, skipped steps
  EXPECT_EQ(c.series[1].label, "train EMA 0.9");
  EXPECT_EQ(c.series[2].label, "validation");
  EXPECT_EQ(c.series[2].data.size(), 4u);
  EXPECT_EQ(c.series[3].label, "skipped steps (1)");
  EXPECT_FALSE(c.log_y);
  opt.log_y = true;
  EXPECT_TRUE(layout_chart(loss_chart({run}, opt), {0, 0, 1000, 600}).y.log);

  EXPECT_FALSE(grad_norm_chart(run, opt).log_y);  // 0.5 .. 3.5: linear
  plot::Run wide = run;
  wide.metrics.steps[3].grad_norm = 1e4;  // a spike over two decades above the rest
  EXPECT_TRUE(grad_norm_chart(wide, opt).log_y);
}

TEST_F(RunPlots, CompareOverlaysRunsWithLabels) {
  PlotOptions opt;
  const Chart c = loss_chart({synthetic_run("base", 100), synthetic_run("bigger-lr", 80, 0.9)}, opt);
  std::vector<std::string> labels;
  for (const Series& s : c.series)
    if (!s.label.empty()) labels.push_back(s.label);
  EXPECT_EQ(labels, (std::vector<std::string>{"base", "base val", "bigger-lr", "bigger-lr val"}));
  EXPECT_FALSE(c.series[1].color == c.series[4].color);
}

TEST(RunLabel, DirectoryNames) {
  EXPECT_EQ(run_label("runs/tiny"), "tiny");
  EXPECT_EQ(run_label("runs/tiny/"), "tiny");
  EXPECT_EQ(run_label("runs/tiny/metrics.jsonl"), "tiny");
  EXPECT_EQ(run_label("/a/b/../c"), "c");
}

TEST(RunPlotOptions, BadOptionsAreClearErrors) {
  PlotOptions opt;
  opt.smooth = 1;
  try {
    write_plots({synthetic_run("a", 5)}, opt);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--smooth"), std::string::npos);
  }
}
