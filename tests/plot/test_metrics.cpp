// Reading metrics.jsonl: step and evaluation lines, nulls, torn and foreign lines, repeated steps.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "base/error.h"
#include "plot/metrics.h"

using namespace agpt;
using namespace agpt::plot;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kText =
    R"({"step":1,"loss":9.5,"lr":0.0001,"grad_norm":1.25,"tokens":4096,"tokens_per_s":1000,"flops_per_s":1e10,"elapsed":1,"rss_mib":200})" "\n"
    R"({"step":2,"loss":null,"lr":0.0002,"grad_norm":null,"tokens":8192,"tokens_per_s":1100,"flops_per_s":1e10,"elapsed":2,"rss_mib":200,"skipped":"non-finite loss"})" "\n"
    "\n"
    R"({"step":3,"loss":8.5,"lr":0.0003,"grad_)" "\n"  // torn by a crash
    R"({"step":2,"val_loss":9.1,"val_perplexity":8955.3,"val_tokens":1024})" "\n"
    "[1, 2, 3]\n"
    R"({"loss":1.0})" "\n"
    R"({"step":3,"loss":8.0,"lr":0.0003,"grad_norm":1.0,"tokens":12288,"tokens_per_s":1200,"mfu":0.25,"elapsed":3,"rss_mib":201})" "\r\n";

}  // namespace

TEST(Metrics, StepsEvalsNullsAndBadLines) {
  const RunMetrics m = parse_metrics(kText, "run/metrics.jsonl");
  ASSERT_EQ(m.steps.size(), 3u);
  EXPECT_EQ(m.steps[0].step, 1);
  EXPECT_EQ(m.steps[0].loss, 9.5);
  EXPECT_EQ(m.steps[0].grad_norm, 1.25);
  EXPECT_TRUE(std::isnan(m.steps[0].mfu));  // absent
  EXPECT_TRUE(std::isnan(m.steps[1].loss));  // null
  EXPECT_TRUE(m.steps[1].skipped);
  EXPECT_EQ(m.steps[2].mfu, 0.25);
  ASSERT_EQ(m.evals.size(), 1u);
  EXPECT_EQ(m.evals[0].step, 2);
  EXPECT_EQ(m.evals[0].val_loss, 9.1);
  EXPECT_EQ(m.bad_lines, 3u);  // torn JSON, an array, no step
  EXPECT_EQ(m.first_bad_line, 4u);
  EXPECT_EQ(m.first_bad_reason, "not valid JSON");
  const std::string w = metrics_warning(m);
  EXPECT_NE(w.find("skipped 3 lines"), std::string::npos) << w;
  EXPECT_NE(w.find("line 4"), std::string::npos) << w;
}

TEST(Metrics, RepeatedStepsKeepTheLastLineInStepOrder) {
  const RunMetrics m = parse_metrics(
      "{\"step\":1,\"loss\":3}\n{\"step\":2,\"loss\":2}\n{\"step\":3,\"loss\":1}\n{\"step\":2,\"loss\":5}\n", "m");
  ASSERT_EQ(m.steps.size(), 3u);
  EXPECT_EQ(m.steps[1].step, 2);
  EXPECT_EQ(m.steps[1].loss, 5);
  EXPECT_EQ(m.repeated_steps, 1u);
  EXPECT_EQ(m.bad_lines, 0u);
  EXPECT_NE(metrics_warning(m).find("1 repeated steps"), std::string::npos);
}

TEST(Metrics, MissingAndEmptyFilesAreClearErrors) {
  const fs::path dir = fs::temp_directory_path() / ("agpt_plot_metrics_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  EXPECT_NE(error_of([&] { read_metrics((dir / "nope").string()); }).find("no such file"), std::string::npos);
  EXPECT_NE(error_of([&] { read_metrics(dir.string()); }).find("no metrics.jsonl"), std::string::npos);
  std::ofstream(dir / "metrics.jsonl") << "";
  EXPECT_NE(error_of([&] { read_metrics(dir.string()); }).find("no step lines in " + (dir / "metrics.jsonl").string()),
            std::string::npos);
  std::ofstream(dir / "metrics.jsonl") << "garbage\n";
  EXPECT_NE(error_of([&] { read_metrics(dir.string()); }).find("1 line could not be read (line 1: not valid JSON)"), std::string::npos);
  std::ofstream(dir / "metrics.jsonl") << "{\"step\":1,\"loss\":2.5}\n";
  EXPECT_EQ(read_metrics(dir.string()).steps.size(), 1u);
  EXPECT_EQ(read_metrics((dir / "metrics.jsonl").string()).steps.size(), 1u);  // the file itself works too
  fs::remove_all(dir);
}
