// `agpt data decontaminate` through the binary: contaminated documents cut or dropped, the report
// per benchmark item, attributes, identical output for any -j, and clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "corpus/stream.h"
#include "run_agpt.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class DecontamCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_decontam_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream b(dir_ / "arc.jsonl");
    b << "{\"id\":\"arc-1\",\"question\":\"Which property of a mineral can be determined just by looking at it\","
         "\"choices\":{\"text\":[\"luster\",\"mass\",\"weight\",\"hardness\"],\"label\":[\"A\",\"B\",\"C\",\"D\"]},"
         "\"answer\":\"A\"}\n";
    b << "{\"id\":\"arc-2\",\"question\":\"A student riding a bicycle observes that it moves faster on a smooth road "
         "than on a rough road\",\"answer\":\"friction\"}\n";
    std::string filler;
    for (int i = 0; i < 60; ++i) filler += "word" + std::to_string(i) + " ";
    std::ofstream d(dir_ / "docs.jsonl");
    for (int i = 0; i < 12; ++i) {
      d << "{\"id\":\"d" << i << "\",\"text\":\"" << filler;
      if (i % 4 == 1) d << "Which property of a MINERAL can be determined, just by looking at it? ";
      d << filler << "\"}\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

}  // namespace

TEST_F(DecontamCli, CutsAndReportsPerItem) {
  auto r = agpt::testing::run_agpt("data decontaminate -b " + p("arc.jsonl") + " -i " + p("docs.jsonl") + " -o " +
                                   p("out.jsonl") + " --report " + p("report.json") + " --attributes " + p("attrs") +
                                   " -j 3");
  ASSERT_EQ(r.status, 0) << r.output;
  std::string out = slurp(p("out.jsonl")), report = slurp(p("report.json"));
  EXPECT_EQ(out.find("MINERAL"), std::string::npos);
  EXPECT_NE(out.find("\"id\":\"d1#0\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"id\":\"d1#1\""), std::string::npos) << out;
  EXPECT_NE(report.find("\"documents_contaminated\": 3"), std::string::npos) << report;
  EXPECT_NE(report.find("\"id\": \"arc-1\",\n      \"documents\": 3"), std::string::npos) << report;
  EXPECT_NE(report.find("\"documents_cut\": 3"), std::string::npos) << report;
  EXPECT_NE(r.output.find("contaminated"), std::string::npos) << r.output;
  // One attributes line per document: nothing for d0; for d1 the question, after the filler
  // ("word0 " .. "word59 ": 10 x 6 + 50 x 7 = 410 bytes) up to "it?".
  std::string attrs = agpt::corpus::read_decompressed(p("attrs/docs.jsonl.zst"));
  EXPECT_EQ(std::count(attrs.begin(), attrs.end(), '\n'), 12);
  EXPECT_NE(attrs.find("{\"id\":\"d0\",\"attributes\":{\"agpt_decontam__overlap\":[]}}"), std::string::npos) << attrs;
  EXPECT_NE(attrs.find("{\"id\":\"d1\",\"attributes\":{\"agpt_decontam__overlap\":[[410,479,1]]}}"), std::string::npos) << attrs;

  auto one = agpt::testing::run_agpt("data decontaminate -b " + p("arc.jsonl") + " -i " + p("docs.jsonl") + " -o " +
                                     p("out1.jsonl") + " -j 1");
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_EQ(slurp(p("out1.jsonl")), out);

  auto drop = agpt::testing::run_agpt("data decontaminate -b " + p("arc.jsonl") + " -i " + p("docs.jsonl") + " -o " +
                                      p("drop.jsonl") + " --mode drop --removed " + p("removed.jsonl"));
  ASSERT_EQ(drop.status, 0) << drop.output;
  std::string removed = slurp(p("removed.jsonl"));
  EXPECT_NE(removed.find("\"id\":\"d1\",\"reason\":\"contaminated\",\"items\":[\"" + p("arc.jsonl") + ":arc-1\"]"),
            std::string::npos)
      << removed;
  size_t lines = 0;
  for (char c : slurp(p("drop.jsonl"))) lines += c == '\n';
  EXPECT_EQ(lines, 9u);
}

TEST_F(DecontamCli, ClearErrors) {
  auto missing = agpt::testing::run_agpt("data decontaminate -b " + p("nope.jsonl") + " -i " + p("docs.jsonl") +
                                         " -o " + p("o.jsonl"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("nope.jsonl"), std::string::npos) << missing.output;
  auto fields = agpt::testing::run_agpt("data decontaminate -b " + p("arc.jsonl") + " --fields prompt -i " +
                                        p("docs.jsonl") + " -o " + p("o.jsonl"));
  EXPECT_NE(fields.status, 0);
  EXPECT_NE(fields.output.find("--fields"), std::string::npos) << fields.output;
  EXPECT_FALSE(fs::exists(p("o.jsonl")));
  auto help = agpt::testing::run_agpt("data decontaminate --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("Examples:"), std::string::npos);
}

// Interrupted after one of three input files, continued with --resume: the same bytes (outputs,
// attributes, report) as an uninterrupted run; a resume with other settings is refused.
TEST_F(DecontamCli, ResumesAnInterruptedRunByteForByte) {
  const std::string docs = slurp(dir_ / "docs.jsonl");
  fs::create_directories(dir_ / "many");
  for (const char* name : {"a.jsonl", "b.jsonl", "c.jsonl"}) std::ofstream(dir_ / "many" / name) << docs;
  auto cmd = [&](const std::string& out, const std::string& extra) {
    return "data decontaminate -b " + p("arc.jsonl") + " -i " + p("many") + " -o " + p(out + "/clean.jsonl.zst") +
           " --removed " + p(out + "/removed.jsonl") + " --attributes " + p(out + "/attrs") + " --report " +
           p(out + ".json") + " --max-ngram-docs 20 --mode drop " + extra;
  };
  auto clean = agpt::testing::run_agpt(cmd("c", "-j 3"));
  ASSERT_EQ(clean.status, 0) << clean.output;
  auto stopped = agpt::testing::run_agpt(cmd("r", "-j 2 --stop-after 1"));
  EXPECT_NE(stopped.status, 0);
  EXPECT_NE(stopped.output.find("continue with --resume"), std::string::npos) << stopped.output;
  auto other = agpt::testing::run_agpt(cmd("r", "--resume --ngram 10"));
  EXPECT_NE(other.status, 0);
  EXPECT_NE(other.output.find("the options differ"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("ngram ('13' then, '10' now)"), std::string::npos) << other.output;
  auto resumed = agpt::testing::run_agpt(cmd("r", "-j 1 --resume"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("first pass (n-gram document counts) was done"), std::string::npos) << resumed.output;
  for (const char* f : {"clean.jsonl.zst", "removed.jsonl", "attrs/a.jsonl.zst", "attrs/c.jsonl.zst"})
    EXPECT_TRUE(slurp(dir_ / "r" / f) == slurp(dir_ / "c" / f)) << f;
  EXPECT_NE(slurp(dir_ / "c" / "removed.jsonl").find("\"reason\":"), std::string::npos);
  auto report = [&](const std::string& name) {
    std::string s = slurp(dir_ / (name + ".json"));
    return s.substr(0, s.find("\"seconds\""));
  };
  EXPECT_EQ(report("r"), report("c"));
  EXPECT_NE(report("c").find("\"documents_contaminated\": 9"), std::string::npos) << report("c");
}

TEST_F(DecontamCli, CutsJapaneseAndChineseItems) {
  // Benchmark items without spaces: 13 consecutive characters are a hit, whatever the punctuation.
  std::ofstream(p("cjk.jsonl")) << "{\"id\":\"ja-1\",\"question\":\"水は摂氏百度で沸騰し、零度で凍るという性質を持つ物質である。\"}\n"
                                << "{\"id\":\"zh-1\",\"question\":\"地球绕太阳公转一周大约需要三百六十五天的时间\"}\n";
  std::string ja, zh;
  for (int i = 0; i < 12; ++i) {
    ja += "今日は関係のない話をします。";  // 14 characters, 42 bytes
    zh += "这是一段没有关系的文字。";      // 12 characters, 36 bytes
  }
  {
    std::ofstream d(p("cjk_docs.jsonl"));
    d << "{\"id\":\"ja\",\"text\":\"" << ja << "水は摂氏百度で沸騰し零度で凍る" << ja << "\"}\n";  // 15 characters of ja-1
    d << "{\"id\":\"zh\",\"text\":\"" << zh << "地球绕太阳公转一周大约需要三百六十五天" << zh << "\"}\n";
    d << "{\"id\":\"other\",\"text\":\"" << ja << "水は百度で沸騰する。" << zh << "地球绕太阳公转。" << "\"}\n";
  }
  auto r = agpt::testing::run_agpt("data decontaminate -b " + p("cjk.jsonl") + " -i " + p("cjk_docs.jsonl") + " -o " +
                                   p("cjk_out.jsonl") + " --report " + p("cjk_report.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  std::string out = slurp(p("cjk_out.jsonl")), report = slurp(p("cjk_report.json"));
  EXPECT_NE(report.find("\"documents_contaminated\": 2"), std::string::npos) << report;
  EXPECT_EQ(out.find("沸騰し零度"), std::string::npos) << out;
  EXPECT_EQ(out.find("三百六十五天"), std::string::npos) << out;
  for (const char* id : {"ja#0", "ja#1", "zh#0", "zh#1"})
    EXPECT_NE(out.find(std::string("\"id\":\"") + id + "\""), std::string::npos) << id << "\n" << out;
  // The unrelated document shares short phrases only: written whole.
  EXPECT_NE(out.find("\"id\":\"other\""), std::string::npos) << out;
  EXPECT_NE(out.find("水は百度で沸騰する。"), std::string::npos) << out;
}
