// `agpt data dedup` through the binary: outputs, report, removed log, determinism across -j, and a
// clear error for a bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "run_agpt.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
size_t count_lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class DedupCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_dedup_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream f(dir_ / "docs.jsonl");
    const char* words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
                           "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"};
    auto doc = [&](int seed, int n) {
      std::string t;
      unsigned x = 2166136261u ^ seed;
      for (int i = 0; i < n; ++i) {
        x = x * 16777619u + 12345u;
        t += std::string(words[(x >> 8) % 20]) + std::to_string((x >> 16) % 50) + " ";
      }
      return t;
    };
    for (int d = 0; d < 30; ++d) {
      f << "{\"id\":\"d" << d << "\",\"text\":\"" << doc(d, 150) << "\"}\n";
      if (d % 5 == 0) f << "{\"id\":\"x" << d << "\",\"text\":\"" << doc(d, 150) << "\\n\"}\n";          // exact
      if (d % 7 == 0) f << "{\"id\":\"n" << d << "\",\"text\":\"" << doc(d, 150) << " added words\"}\n";  // near
    }
    f << "{\"id\": 5, \"text\": }\n";  // a bad line: skipped and counted
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(DedupCli, RemovesDuplicatesAndReports) {
  auto r = agpt::testing::run_agpt("data dedup -i " + p("docs.jsonl") + " -o " + p("out.jsonl") + " --report " +
                                   p("report.json") + " --removed " + p("removed.jsonl") + " -j 3");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("exact documents"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("total"), std::string::npos);
  std::string out = slurp(p("out.jsonl")), removed = slurp(p("removed.jsonl")), report = slurp(p("report.json"));
  EXPECT_EQ(count_lines(out), 30u);
  EXPECT_EQ(count_lines(removed), 6u + 5u);
  EXPECT_NE(removed.find("\"reason\":\"exact duplicate\",\"duplicate_of\":\"d5\""), std::string::npos) << removed;
  EXPECT_NE(removed.find("\"reason\":\"near duplicate\",\"duplicate_of\":\"d7\""), std::string::npos) << removed;
  EXPECT_NE(report.find("\"documents_in\": 41"), std::string::npos) << report;
  EXPECT_NE(report.find("\"documents_kept\": 30"), std::string::npos) << report;
  EXPECT_NE(report.find("\"skipped\": 1"), std::string::npos) << report;

  auto r1 = agpt::testing::run_agpt("data dedup -i " + p("docs.jsonl") + " -o " + p("out1.jsonl") + " -j 1 --paragraphs");
  auto r4 = agpt::testing::run_agpt("data dedup -i " + p("docs.jsonl") + " -o " + p("out4.jsonl") + " -j 4 --paragraphs");
  ASSERT_EQ(r1.status, 0) << r1.output;
  ASSERT_EQ(r4.status, 0) << r4.output;
  EXPECT_EQ(slurp(p("out1.jsonl")), slurp(p("out4.jsonl")));
}

TEST_F(DedupCli, ClearErrors) {
  auto r = agpt::testing::run_agpt("data dedup -i " + p("missing.jsonl") + " -o " + p("out.jsonl"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("missing.jsonl"), std::string::npos) << r.output;
  auto f = agpt::testing::run_agpt("data dedup -i " + p("docs.jsonl") + " -o " + p("out.jsonl") + " --on-error fail");
  EXPECT_NE(f.status, 0);
  EXPECT_NE(f.output.find("docs.jsonl:"), std::string::npos) << f.output;
  EXPECT_FALSE(fs::exists(p("out.jsonl")));
  auto b = agpt::testing::run_agpt("data dedup -i " + p("docs.jsonl") + " -o " + p("out.jsonl") + " --bands 0");
  EXPECT_NE(b.status, 0);
  EXPECT_NE(b.output.find("bands"), std::string::npos) << b.output;
}

}  // namespace
