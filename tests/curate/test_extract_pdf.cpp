// PDF extraction: poppler on hand-written PDFs (text, title, damaged, encrypted, pages without
// text) and the page assembly rules (running headers, hyphenation, paragraphs) on plain text.
#include <gtest/gtest.h>

#include "curate/extract/pdf.h"
#include "curate/extract/pdf_text.h"
#include "test_extract_util.h"

namespace agpt::curate::extract {
namespace {

using agpt::testing::make_pdf;
using agpt::testing::PdfSpec;

TEST(ExtractPdf, ReadsTextTitleAndAuthor) {
  PdfSpec spec;
  spec.pages = {{"Measured densities of metals", "were compared with tables."}, {"Second page text."}};
  spec.title = "Density Study";
  spec.author = "A. Author";
  PdfText t = read_pdf(make_pdf(spec));
  ASSERT_TRUE(t.failure.empty()) << t.failure << ": " << t.detail;
  ASSERT_EQ(t.pages.size(), 2u);
  EXPECT_NE(t.pages[0].find("Measured densities of metals"), std::string::npos) << t.pages[0];
  EXPECT_NE(t.pages[0].find("were compared with tables."), std::string::npos);
  EXPECT_NE(t.pages[1].find("Second page text."), std::string::npos);
  EXPECT_EQ(t.title, "Density Study");
  EXPECT_EQ(t.author, "A. Author");
}

TEST(ExtractPdf, PagesWithoutTextNeedOcr) {
  PdfSpec spec;
  spec.pages = {{"Only the first page has text."}, {}, {}};
  PdfText t = read_pdf(make_pdf(spec));
  ASSERT_TRUE(t.failure.empty());
  ASSERT_FALSE(t.warnings.empty());
  EXPECT_NE(t.warnings[0].find("needs OCR: pages without text 2-3"), std::string::npos) << t.warnings[0];

  spec.pages = {{}, {}};
  t = read_pdf(make_pdf(spec));
  EXPECT_EQ(t.failure, "needs OCR");
}

TEST(ExtractPdf, DamagedAndNonPdfDataFailClearly) {
  EXPECT_EQ(read_pdf("this is not a pdf").failure, "damaged");
  EXPECT_EQ(read_pdf("").failure, "damaged");
  PdfSpec spec;
  spec.pages = {{"Some text on the page."}};
  std::string pdf = make_pdf(spec);
  // Truncated in the middle of the first object: nothing usable is left.
  PdfText t = read_pdf(std::string_view(pdf).substr(0, 40));
  EXPECT_FALSE(t.failure.empty());
  EXPECT_FALSE(t.detail.empty());
  // Garbage over the xref table: poppler reconstructs it and still finds the text (with warnings).
  std::string broken = pdf;
  size_t x = broken.find("xref");
  for (size_t i = x; i < broken.size() - 30; ++i) broken[i] = 'z';
  t = read_pdf(broken);
  if (t.failure.empty()) {
    EXPECT_NE(t.pages[0].find("Some text"), std::string::npos);
  }
}

TEST(ExtractPdf, EncryptedWithPasswordIsReported) {
  PdfSpec spec;
  spec.pages = {{"Secret text."}};
  spec.encrypted = true;
  PdfText t = read_pdf(make_pdf(spec));
  EXPECT_EQ(t.failure, "encrypted") << t.detail;
  EXPECT_NE(t.detail.find("password"), std::string::npos);
}

TEST(PageAssembly, DropsRunningHeadersAndPageNumbers) {
  const char* bodies[] = {"Alpha starts", "Beta follows", "Gamma is in the middle", "Delta comes", "Epsilon ends"};
  std::vector<std::string> pages;
  for (int p = 1; p <= 5; ++p)
    pages.push_back("Journal of Tests " + std::to_string(p) + "\n\n" + bodies[p - 1] + " on page " +
                    std::to_string(p) + ".\n\n" + std::to_string(p) + "\n");
  PageAssembly a = assemble_pages(pages);
  EXPECT_EQ(a.text.find("Journal of Tests"), std::string::npos) << a.text;
  EXPECT_NE(a.text.find("Gamma is in the middle on page 3."), std::string::npos);
  EXPECT_EQ(a.header_lines_dropped, 10u);
  // Digits inside the body survive: only edge lines are candidates.
  EXPECT_NE(a.text.find("page 5"), std::string::npos);
}

TEST(PageAssembly, KeepsHeadersOfShortDocuments) {
  PageAssembly a = assemble_pages({"Title line\nText one.\n", "Title line\nText two.\n"});
  EXPECT_NE(a.text.find("Title line"), std::string::npos);
}

TEST(PageAssembly, JoinsHyphenatedWordsButKeepsCompounds) {
  PageAssembly a = assemble_pages(
      {"The estimation of mixed mod-\nels is well studied. A model-based ap-\nproach uses a model-\nbased "
       "criterion.\n"});
  EXPECT_NE(a.text.find("mixed models is"), std::string::npos) << a.text;
  EXPECT_NE(a.text.find("approach"), std::string::npos);
  EXPECT_NE(a.text.find("a model-based criterion"), std::string::npos) << a.text;
  EXPECT_EQ(a.hyphens_joined, 2u);
}

TEST(PageAssembly, ParagraphsFromBlocksShortLinesAndPageBreaks) {
  std::string p1 =
      "This is the first paragraph which is long enough to set\n"
      "the measure of the block and ends here.\n"
      "A new paragraph starts after a short line that ends a sentence\n"
      "and it continues onto the next page without a\n";
  std::string p2 = "sentence end, so it is joined.\n\nA separate block.\n";
  PageAssembly a = assemble_pages({p1, p2});
  EXPECT_EQ(a.text,
            "This is the first paragraph which is long enough to set the measure of the block and ends here.\n\n"
            "A new paragraph starts after a short line that ends a sentence and it continues onto the next page "
            "without a sentence end, so it is joined.\n\nA separate block.");
}

TEST(PageAssembly, LigaturesAndSoftHyphensBecomeLetters) {
  PageAssembly a = assemble_pages({"e\xEF\xAC\x83" "cient \xEF\xAC\x81t co\xC2\xAD" "operate\n"});
  EXPECT_EQ(a.text, "efficient fit cooperate");
}

}  // namespace
}  // namespace agpt::curate::extract

namespace agpt::curate::extract {
namespace {

TEST(PageAssembly, NumberedHeadingsStandAlone) {
  PageAssembly a = assemble_pages(
      {"2.1. Model fitting\nThe model is fitted by penalized least squares and this line is long.\nAbstract\n"
       "Short text.\n"});
  EXPECT_EQ(a.text,
            "2.1. Model fitting\n\nThe model is fitted by penalized least squares and this line is long.\n\n"
            "Abstract\n\nShort text.");
}

}  // namespace
}  // namespace agpt::curate::extract
