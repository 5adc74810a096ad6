// End-to-end checks of the `agpt` binary: help text, exit codes, error messages.
#include <gtest/gtest.h>

#include "run_agpt.h"

#include <array>
#include <cstdio>
#include <string>

namespace {
using Result = agpt::testing::CliResult;
Result run(const std::string& args) { return agpt::testing::run_agpt(args); }
}  // namespace

TEST(Cli, HelpListsExamples) {
  Result r = run("--help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("Examples:"), std::string::npos);
}

TEST(Cli, NoCommandIsAnErrorWithHint) {
  Result r = run("");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--help"), std::string::npos);
}

TEST(Cli, UnknownCommandFails) {
  Result r = run("frobnicate");
  EXPECT_NE(r.status, 0);
}

TEST(Cli, VersionPrints) {
  Result r = run("--version");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("0."), std::string::npos);
}

// The shipped 7B example resolves to the CUDA issue's 7B shape (8.03B parameters: d 4,096, 32
// layers, 32/8 heads, MLP 14,336, vocabulary 128,256, untied) on the GPU in bf16.
TEST(Cli, Llama7bExampleIsTheIssuesShape) {
  Result r = run("train " + std::string(AGPT_SOURCE_DIR) + "/examples/llama-7b.toml --print-config");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("# model: 8030261248 parameters"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("device = \"cuda\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("precision = \"bf16\""), std::string::npos) << r.output;
}
