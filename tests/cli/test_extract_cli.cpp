// `agpt data extract` through the binary: a directory of mixed formats to compressed JSONL with a
// report, the same bytes for -j 1 and -j 3, resume after an interruption, and clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "../curate/test_extract_util.h"
#include "corpus/stream.h"
#include "run_agpt.h"

namespace fs = std::filesystem;

namespace {

class ExtractCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_extract_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    agpt::testing::PdfSpec pdf;
    pdf.pages = {{"Alloy paper, page one."}, {"Page two."}};
    agpt::testing::write_bytes(dir_ / "in" / "paper.pdf", agpt::testing::make_pdf(pdf));
    agpt::testing::write_bytes(dir_ / "in" / "broken.pdf", "%PDF-1.7\nnothing else");
    agpt::testing::write_bytes(dir_ / "in" / "notes.tex", "\\section{Notes}Some $a+b$ text.");
    agpt::testing::write_bytes(dir_ / "in" / "page.html", "<h1>Title</h1><p>Body.</p>");
    agpt::testing::write_bytes(dir_ / "in" / "readme.md", "Readme text.");
    agpt::testing::write_bytes(dir_ / "in" / "data.tsv", "material\tdensity [g/cm^3]\niron\t7.87\n");
    agpt::testing::write_bytes(dir_ / "in" / "image.png", "PNG");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(ExtractCli, ExtractsADirectoryWithAReport) {
  auto r = agpt::testing::run_agpt("-q data extract -i " + p("in") + " -o " + p("out/docs.jsonl.zst") +
                                   " --report " + p("out/report.json") + " -j 1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("broken.pdf: damaged"), std::string::npos) << r.output;
  std::string docs = agpt::corpus::read_decompressed(p("out/docs.jsonl.zst"));
  EXPECT_NE(docs.find("\"text\":\"Iron has a density of 7.87 g/cm^3.\""), std::string::npos) << docs;
  EXPECT_NE(docs.find("\"text\":\"# Title\\n\\nBody.\""), std::string::npos);
  auto report = nlohmann::json::parse(agpt::testing::read_bytes(dir_ / "out" / "report.json"));
  EXPECT_EQ(report["total"]["files"], 7);
  EXPECT_EQ(report["total"]["documents"], 5);
  EXPECT_EQ(report["total"]["failures_by_reason"]["damaged"], 1);
  EXPECT_EQ(report["total"]["failures_by_reason"]["unknown format"], 1);
  EXPECT_EQ(report["formats"]["pdf"]["pages"], 2);

  auto r3 = agpt::testing::run_agpt("-q data extract -i " + p("in") + " -o " + p("out/docs3.jsonl.zst") + " -j 3");
  ASSERT_EQ(r3.status, 0) << r3.output;
  EXPECT_EQ(agpt::testing::read_bytes(dir_ / "out" / "docs.jsonl.zst"),
            agpt::testing::read_bytes(dir_ / "out" / "docs3.jsonl.zst"));
}

TEST_F(ExtractCli, ResumesAnInterruptedRun) {
  std::string base = "-q data extract -i " + p("in") + " -o " + p("r.jsonl");
  auto stopped = agpt::testing::run_agpt(base + " --stop-after 3");
  EXPECT_NE(stopped.status, 0);
  EXPECT_NE(stopped.output.find("continue with --resume"), std::string::npos) << stopped.output;
  EXPECT_TRUE(fs::exists(p("r.jsonl.progress")));
  auto resumed = agpt::testing::run_agpt(base + " --resume --report " + p("r.json"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed: 3 files"), std::string::npos) << resumed.output;
  auto clean = agpt::testing::run_agpt("-q data extract -i " + p("in") + " -o " + p("c.jsonl"));
  ASSERT_EQ(clean.status, 0);
  EXPECT_EQ(agpt::testing::read_bytes(dir_ / "r.jsonl"), agpt::testing::read_bytes(dir_ / "c.jsonl"));
}

TEST_F(ExtractCli, ClearErrors) {
  auto missing = agpt::testing::run_agpt("data extract -i " + p("nope") + " -o " + p("o.jsonl"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("nope: no such file or directory"), std::string::npos) << missing.output;
  auto unknown = agpt::testing::run_agpt("data extract -i " + p("in/image.png") + " -o " + p("o.jsonl"));
  EXPECT_NE(unknown.status, 0);
  EXPECT_NE(unknown.output.find("Use --format to force one"), std::string::npos) << unknown.output;
  agpt::testing::write_bytes(dir_ / "bad.tmpl", "format density: %n\n");
  auto tmpl = agpt::testing::run_agpt("data extract -i " + p("in/data.tsv") + " --template " + p("bad.tmpl") +
                                      " -o " + p("o.jsonl"));
  EXPECT_NE(tmpl.status, 0);
  EXPECT_NE(tmpl.output.find("bad.tmpl:1: number format '%n'"), std::string::npos) << tmpl.output;
  auto help = agpt::testing::run_agpt("data extract --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("Examples:"), std::string::npos);
}

}  // namespace
