// poppler in a child process (curate/extract/pdf_isolated.h): the same result as in the process
// for good PDFs, and a PDF that crashes poppler or makes it hang (simulated by the test hook
// AGPT_TEST_PDF_CHILD) fails alone, counted with its reason, while the run goes on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "curate/extract/extract.h"
#include "curate/extract/pdf_isolated.h"
#include "test_extract_util.h"

namespace agpt::curate::extract {
namespace {

namespace fs = std::filesystem;
using agpt::testing::make_pdf;
using agpt::testing::PdfSpec;
using agpt::testing::read_bytes;
using agpt::testing::write_bytes;

// Sets the test hook for the scope.
struct Hook {
  explicit Hook(const char* value) { ::setenv("AGPT_TEST_PDF_CHILD", value, 1); }
  ~Hook() { ::unsetenv("AGPT_TEST_PDF_CHILD"); }
};

PdfSpec paper(const std::string& title) {
  PdfSpec s;
  s.pages = {{"A paper about " + title + ".", "Second line."}, {"Its second page."}, {}};
  s.title = title;
  s.author = "A. Author";
  return s;
}

void expect_same(const PdfText& a, const PdfText& b) {
  EXPECT_EQ(a.pages, b.pages);
  EXPECT_EQ(a.title, b.title);
  EXPECT_EQ(a.author, b.author);
  EXPECT_EQ(a.warnings, b.warnings);
  EXPECT_EQ(a.failure, b.failure);
  EXPECT_EQ(a.detail, b.detail);
}

TEST(PdfIsolated, ResultMessageRoundTripsAndRefusesTruncation) {
  PdfText t;
  t.pages = {"one", "", std::string("t\0wo", 4)};
  t.title = "T";
  t.warnings = {"w1", "w2"};
  t.failure = "needs OCR";
  t.detail = "d";
  std::string m = encode_pdf_text(t);
  PdfText back;
  ASSERT_TRUE(decode_pdf_text(m, back));
  expect_same(back, t);
  for (size_t cut : {size_t{0}, size_t{10}, m.size() / 2, m.size() - 1})
    EXPECT_FALSE(decode_pdf_text(std::string_view(m).substr(0, cut), back)) << cut;
  EXPECT_FALSE(decode_pdf_text(m + "x", back));
}

TEST(PdfIsolated, SameAsInProcessForGoodAndBadPdfs) {
  PdfIsolation iso;
  for (const std::string& data : {make_pdf(paper("alloys")), std::string("%PDF-1.4 garbage"), std::string("nope")}) {
    expect_same(read_pdf_isolated(data, PdfLayout::kRaw, iso), read_pdf(data, PdfLayout::kRaw));
    expect_same(read_pdf_isolated(data, PdfLayout::kPhysical, iso), read_pdf(data, PdfLayout::kPhysical));
  }
  PdfSpec locked = paper("secret");
  locked.encrypted = true;
  std::string data = make_pdf(locked);
  PdfText t = read_pdf_isolated(data, PdfLayout::kRaw, iso);
  EXPECT_EQ(t.failure, "encrypted");
  expect_same(t, read_pdf(data, PdfLayout::kRaw));
}

TEST(PdfIsolated, CrashAndHangAreFailuresWithTheirReason) {
  const std::string data = make_pdf(paper("alloys"));
  PdfIsolation iso;
  iso.timeout_s = 0.3;
  {
    Hook hook("crash");
    PdfText t = read_pdf_isolated(data, PdfLayout::kRaw, iso);
    EXPECT_EQ(t.failure, "crashed");
    EXPECT_NE(t.detail.find("SIGABRT"), std::string::npos) << t.detail;
    EXPECT_TRUE(t.pages.empty());
  }
  {
    Hook hook("hang");
    auto t0 = std::chrono::steady_clock::now();
    PdfText t = read_pdf_isolated(data, PdfLayout::kRaw, iso);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(t.failure, "timed out");
    EXPECT_NE(t.detail.find("more than 0.3 s"), std::string::npos) << t.detail;
    EXPECT_GE(s, 0.25);
    EXPECT_LT(s, 3.0);
  }
  {
    Hook hook("crash:NOT-IN-THIS-FILE");  // the marker limits the hook to other PDFs
    EXPECT_EQ(read_pdf_isolated(data, PdfLayout::kRaw, iso).failure, "");
  }
}

class PdfIsolatedRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_pdf_isolated_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    write_bytes(dir_ / "in" / "a.pdf", make_pdf(paper("alloys")));
    write_bytes(dir_ / "in" / "b.pdf", make_pdf(paper("HOSTILE bonds")));
    write_bytes(dir_ / "in" / "c.pdf", make_pdf(paper("ceramics")));
    write_bytes(dir_ / "in" / "d.md", "# Notes\n\nPlain text.\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  ExtractOptions options(const std::string& out) {
    ExtractOptions o;
    o.inputs = {(dir_ / "in").string()};
    o.output = (dir_ / out).string();
    o.threads = 3;
    o.progress_bar = false;
    o.file.pdf_isolation.timeout_s = 0.5;
    return o;
  }
  fs::path dir_;
};

TEST_F(PdfIsolatedRun, AHostilePdfFailsAloneAndTheRunGoesOn) {
  ExtractOptions in_process = options("in_process.jsonl");
  in_process.file.pdf_in_process = true;
  run_extract(in_process);
  const std::string expected = read_bytes(in_process.output);
  ExtractReport good = run_extract(options("isolated.jsonl"));
  EXPECT_EQ(good.total.files_ok, 4u);
  EXPECT_EQ(read_bytes(dir_ / "isolated.jsonl"), expected);  // identical to reading in the process

  // What the output is without b.pdf's line.
  std::string without_b;
  for (size_t at = 0; at < expected.size();) {
    size_t nl = expected.find('\n', at);
    std::string line = expected.substr(at, nl + 1 - at);
    if (line.find("HOSTILE") == std::string::npos) without_b += line;
    at = nl + 1;
  }
  ASSERT_LT(without_b.size(), expected.size());
  for (const char* mode : {"crash:HOSTILE", "hang:HOSTILE"}) {
    SCOPED_TRACE(mode);
    Hook hook(mode);
    const std::string out = std::string(mode).substr(0, 4) + ".jsonl";
    ExtractReport r = run_extract(options(out));
    const std::string reason = mode[0] == 'c' ? "crashed" : "timed out";
    EXPECT_EQ(r.total.files_ok, 3u);
    EXPECT_EQ(r.total.files_failed, 1u);
    EXPECT_EQ(r.formats["pdf"].failures_by_reason[reason], 1u);
    std::string problems;
    for (const auto& p : r.problems) problems += p + "\n";
    EXPECT_NE(problems.find("b.pdf: " + reason + " (poppler"), std::string::npos) << problems;
    EXPECT_EQ(read_bytes(dir_ / out), without_b);
    EXPECT_NE(r.to_json().find("\"" + reason + "\": 1"), std::string::npos) << r.to_json();
  }
}

}  // namespace
}  // namespace agpt::curate::extract
