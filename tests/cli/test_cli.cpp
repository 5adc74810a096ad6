// End-to-end checks of the `agpt` binary: help text, exit codes, error messages.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

namespace {
struct Result {
  int status;
  std::string output;
};

Result run(const std::string& args) {
  std::string cmd = std::string(AGPT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}
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
