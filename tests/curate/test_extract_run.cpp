// run_extract over a directory of every format: accounting of every file, identical output for
// any thread count, resume after an interruption (also with a damaged partial output), and the
// edit distance used by the quality benchmark.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "base/error.h"
#include "corpus/stream.h"
#include "curate/extract/edit_distance.h"
#include "curate/extract/extract.h"
#include "test_extract_util.h"

namespace agpt::curate::extract {
namespace {

namespace fs = std::filesystem;
using agpt::testing::make_pdf;
using agpt::testing::PdfSpec;
using agpt::testing::read_bytes;
using agpt::testing::write_bytes;

class ExtractRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_extract_run_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::path in = dir_ / "in";
    PdfSpec pdf;
    pdf.pages = {{"A paper about alloys."}, {"Its second page."}};
    pdf.title = "Alloys";
    write_bytes(in / "a.pdf", make_pdf(pdf));
    write_bytes(in / "b.tex", "\\begin{document}\\section{Intro}Math $x^2$.\\end{document}");
    write_bytes(in / "c.html", "<html><body><h2>Head</h2><p>Para.</p></body></html>");
    write_bytes(in / "d.md", "# Notes\n\nPlain text.\n");
    write_bytes(in / "e.csv", "material,density (g/cm3)\niron,7.87\nbad,row,here\ncopper,8.96\n");
    write_bytes(in / "f.jsonl", "{\"name\":\"gold\",\"density (g/cm3)\":19.3}\n");
    write_bytes(in / "g.bin", "\x01\x02");
    write_bytes(in / "h.pdf", "%PDF-1.4 garbage");
    pdf.encrypted = true;
    write_bytes(in / "i.pdf", make_pdf(pdf));
    write_bytes(in / "j.txt", "caf\xE9 latin-1\n");
    for (int k = 0; k < 6; ++k) write_bytes(in / "more" / (std::to_string(k) + ".txt"), "text " + std::to_string(k));
  }
  void TearDown() override { fs::remove_all(dir_); }

  ExtractOptions options(const std::string& out, int threads) {
    ExtractOptions o;
    o.inputs = {(dir_ / "in").string()};
    o.output = (dir_ / out).string();
    o.threads = threads;
    o.progress_bar = false;
    return o;
  }
  fs::path dir_;
};

TEST_F(ExtractRun, AccountsForEveryFileAndIsDeterministic) {
  ExtractReport r1 = run_extract(options("one.jsonl", 1));
  ExtractReport r4 = run_extract(options("four.jsonl", 4));
  std::string out = read_bytes(dir_ / "one.jsonl");
  EXPECT_EQ(out, read_bytes(dir_ / "four.jsonl"));
  EXPECT_FALSE(fs::exists(dir_ / "one.jsonl.partial"));
  EXPECT_FALSE(fs::exists(dir_ / "one.jsonl.progress"));

  const FormatCounts& t = r1.total;
  EXPECT_EQ(t.files, 16u);
  EXPECT_EQ(t.files, t.files_ok + t.files_failed + t.files_empty + t.files_skipped);
  EXPECT_EQ(t.files_ok, 12u);
  EXPECT_EQ(t.documents, 12u);
  EXPECT_EQ(t.failures_by_reason.at("unknown format"), 1u);
  EXPECT_EQ(t.failures_by_reason.at("damaged"), 1u);
  EXPECT_EQ(t.failures_by_reason.at("encrypted"), 1u);
  EXPECT_EQ(t.failures_by_reason.at("invalid UTF-8"), 1u);
  EXPECT_EQ(r1.formats.at("csv").bad_records, 1u);
  EXPECT_EQ(r1.formats.at("csv").records, 2u);
  EXPECT_EQ(r1.formats.at("pdf").pages, 2u);  // damaged and encrypted ones have no pages read
  EXPECT_EQ(r4.to_json(), [&] { ExtractReport c = r1; c.seconds = r4.seconds; c.output = r4.output; return c.to_json(); }());

  // Documents in input order (sorted paths), with the expected ids and texts.
  EXPECT_NE(out.find("{\"id\":\"a.pdf\",\"text\":\"A paper about alloys.\\n\\nIts second page.\",\"source\":\"pdf\","
                     "\"metadata\":{\"path\":\"a.pdf\",\"format\":\"pdf\",\"method\":\"poppler\",\"pages\":2,"
                     "\"title\":\"Alloys\"}}"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"text\":\"## Intro\\n\\nMath $x^2$.\""), std::string::npos);
  EXPECT_NE(out.find("\"text\":\"Iron has a density of 7.87 g/cm3.\\n\\nCopper has a density of 8.96 g/cm3.\""),
            std::string::npos);
  EXPECT_NE(out.find("\"text\":\"Gold has a density of 19.3 g/cm3.\""), std::string::npos);
  EXPECT_LT(out.find("\"id\":\"a.pdf\""), out.find("\"id\":\"b.tex\""));
  EXPECT_EQ(out.find("\"id\":\"j.txt\""), std::string::npos);  // failed: no document
  std::string problems = "\n";
  for (const auto& p : r1.problems) problems += p + "\n";
  EXPECT_NE(problems.find("\ne.csv:3: expected 2 fields (as the header), found 3\n"),
            std::string::npos)
      << problems;
}

TEST_F(ExtractRun, RecordsPerDocumentAndTemplateErrors) {
  ExtractOptions o = options("recs.jsonl", 2);
  o.inputs = {(dir_ / "in" / "e.csv").string()};
  o.file.records_per_doc = 1;
  ExtractReport r = run_extract(o);
  std::string out = read_bytes(dir_ / "recs.jsonl");
  EXPECT_EQ(r.total.documents, 2u);
  EXPECT_NE(out.find("\"id\":\"" + (dir_ / "in" / "e.csv").string() + "#1\""), std::string::npos) << out;
  EXPECT_NE(out.find("#2\""), std::string::npos);
  // A template naming a missing column fails that file with the reason, not the run.
  write_bytes(dir_ / "t.tmpl", "---\n{{nope}}\n");
  o.template_path = (dir_ / "t.tmpl").string();
  ExtractReport bad = run_extract(o);
  EXPECT_EQ(bad.total.files_failed, 1u);
  EXPECT_NE(bad.problems[0].find("column 'nope'"), std::string::npos) << bad.problems[0];
}

TEST_F(ExtractRun, ResumesAfterInterruptionWithIdenticalOutput) {
  for (std::string name : {"r.jsonl", "r.jsonl.zst", "r.jsonl.gz"}) {
    SCOPED_TRACE(name);
    ExtractOptions clean = options("clean_" + name, 3);
    run_extract(clean);
    std::string expected = corpus::read_decompressed((dir_ / ("clean_" + name)).string());

    ExtractOptions o = options(name, 3);
    o.stop_after_files = 5;
    EXPECT_THROW(run_extract(o), Error);
    std::string partial = partial_path(o.output);
    ASSERT_TRUE(fs::exists(partial));
    ASSERT_TRUE(fs::exists(progress_path(o.output)));
    // A crash in the middle of the next file's write leaves bytes the progress file does not know.
    { std::ofstream(partial, std::ios::app | std::ios::binary) << "{\"id\":\"torn"; }
    o.stop_after_files = 0;
    o.resume = true;
    o.threads = 1;
    ExtractReport r = run_extract(o);
    EXPECT_EQ(r.files_resumed, 5u);
    EXPECT_EQ(r.total.files, 16u);
    EXPECT_EQ(r.total.documents, 12u);
    EXPECT_EQ(corpus::read_decompressed(o.output), expected);
    EXPECT_FALSE(fs::exists(partial));
  }
}

TEST_F(ExtractRun, ResumeRefusesOtherOptionsAndDamagedPartialIsRedone) {
  ExtractOptions o = options("x.jsonl", 2);
  o.stop_after_files = 4;
  EXPECT_THROW(run_extract(o), Error);
  ExtractOptions other = o;
  other.stop_after_files = 0;
  other.resume = true;
  other.file.source = "elsewhere";
  try {
    run_extract(other);
    ADD_FAILURE() << "resume with other options must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the options differ"), std::string::npos) << e.what();
  }
  // Overwrite a byte of the first chunk: its hash no longer matches, everything is redone.
  {
    std::fstream f(partial_path(o.output), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('#');
  }
  o.stop_after_files = 0;
  o.resume = true;
  ExtractReport r = run_extract(o);
  EXPECT_EQ(r.files_resumed, 0u);
  ExtractOptions clean = options("clean.jsonl", 1);
  run_extract(clean);
  EXPECT_EQ(read_bytes(o.output), read_bytes(clean.output));
}

TEST_F(ExtractRun, TruncatedCompressedInputIsCountedWithItsReason) {
  // A .gz cut in the middle (an interrupted download): the file fails as "damaged", the run goes on.
  std::string text(4000, 'x');
  for (size_t i = 0; i < text.size(); i += 7) text[i] = ' ';
  ExtractOptions gz = options("gz.md.gz", 1);
  gz.inputs = {(dir_ / "in" / "d.md").string()};
  write_bytes(dir_ / "in" / "d.md", text);
  run_extract(gz);  // writes a gzip file (the output is gzip by its name)
  std::string bytes = read_bytes(dir_ / "gz.md.gz");
  write_bytes(dir_ / "cut" / "notes.md.gz", bytes.substr(0, bytes.size() / 2));
  write_bytes(dir_ / "cut" / "ok.txt", "fine");
  ExtractOptions o = options("cut.jsonl", 2);
  o.inputs = {(dir_ / "cut").string()};
  ExtractReport r = run_extract(o);
  EXPECT_EQ(r.total.files_ok, 1u);
  EXPECT_EQ(r.total.failures_by_reason.at("damaged"), 1u);
  ASSERT_FALSE(r.problems.empty());
  EXPECT_NE(r.problems[0].find("notes.md.gz: damaged ("), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[0].find("gzip"), std::string::npos) << r.problems[0];
}

TEST(EditDistance, MatchesTheReference) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    size_t n = rng() % 300, m = rng() % 300;
    std::vector<uint32_t> a(n), b(m);
    uint32_t sigma = 2 + rng() % 6;
    for (auto& c : a) c = rng() % sigma;
    for (auto& c : b) c = rng() % sigma;
    if (trial % 3 == 0 && n > 10) {  // similar texts: b is a with edits
      b = a;
      for (int e = 0; e < 5; ++e) b[rng() % b.size()] = 9;
      b.erase(b.begin() + rng() % b.size());
    }
    ASSERT_EQ(edit_distance(a, b), edit_distance_reference(a, b)) << "trial " << trial;
    ASSERT_EQ(edit_distance(b, a), edit_distance_reference(a, b));
  }
  EXPECT_EQ(edit_distance(code_points("kitten"), code_points("sitting")), 3u);
  EXPECT_EQ(edit_distance(code_points("café"), code_points("cafe")), 1u);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("a  b\n\nc", "a b c"), 0.0);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("\xE2\x80\x9Cq\xE2\x80\x9D", "\"q\""), 0.0);
  EXPECT_DOUBLE_EQ(normalized_edit_distance("abcd", "abxd"), 0.25);
}

}  // namespace
}  // namespace agpt::curate::extract
