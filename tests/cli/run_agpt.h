// Runs the `agpt` binary under test with arguments and returns its exit status and output.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace agpt::testing {

struct CliResult {
  int status;
  std::string output;  // stdout and stderr together
};

inline CliResult run_agpt(const std::string& args) {
  std::string cmd = std::string(AGPT_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

}  // namespace agpt::testing
