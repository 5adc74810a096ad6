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
