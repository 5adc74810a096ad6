// Every extractor survives damaged input: random byte edits of valid PDF, LaTeX, HTML, CSV and JSON
// give either text (valid UTF-8 when the input was) or a failure with a reason, never a crash.
#include <gtest/gtest.h>

#include <random>

#include "corpus/json.h"
#include "curate/extract/html.h"
#include "curate/extract/latex.h"
#include "curate/extract/pdf.h"
#include "curate/extract/pdf_text.h"
#include "curate/extract/table.h"
#include "test_extract_util.h"

namespace agpt::curate::extract {
namespace {

// Flips, deletes and duplicates a few bytes; ASCII-only edits keep UTF-8 input valid.
std::string mutate(std::string s, std::mt19937& rng, bool ascii_only) {
  static const char kSpecial[] = "{}[]$\\%&#<>\"',\n\t/()*@";
  int edits = 1 + static_cast<int>(rng() % 6);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    size_t at = rng() % s.size();
    if (ascii_only && static_cast<unsigned char>(s[at]) >= 0x80) continue;
    switch (rng() % 3) {
      case 0:
        s[at] = ascii_only ? kSpecial[rng() % (sizeof kSpecial - 1)] : static_cast<char>(rng());
        break;
      case 1:
        s.erase(at, 1 + rng() % 8);
        break;
      default:
        s.insert(at, s.substr(at, rng() % 16));
    }
  }
  if (ascii_only && !corpus::is_valid_utf8(s)) return "";
  return s;
}

TEST(ExtractRobust, MutatedInputsNeverCrash) {
  std::mt19937 rng(12345);
  const std::string latex =
      "\\documentclass{article}\\newcommand{\\v}[1]{\\mathbf{#1}}\\title{T\\'e}\\begin{document}\\section{S}"
      "Text $\\v{x}^2$ and \\emph{em} \\cite{k}.\\begin{itemize}\\item a\\end{itemize}\\begin{align}a&=b\\\\c&=d"
      "\\end{align}\\begin{verbatim}code % x\\end{verbatim}\\begin{tabular}{ll}a&b\\\\\\end{tabular}\\end{document}";
  const std::string html =
      "<html><head><title>t</title><script>x</script></head><body><h1>H</h1><p>p <b>b</b></p><ul><li>i</li></ul>"
      "<pre>c\n d</pre><table><tr><td>1</td><td>2</td></tr></table></body></html>";
  const std::string csv = "a,b (m),c\n1,\"x,y\",3\n\"q\"\"q\",2,\n";
  const std::string json = "{\"a\":{\"b\":[1,2]},\"c\":\"d\"}\n{\"a\":null}\n";
  for (int i = 0; i < 300; ++i) {
    std::string l = mutate(latex, rng, true);
    LatexText t = latex_to_text(l, {});
    EXPECT_TRUE(corpus::is_valid_utf8(t.text)) << l;
    std::string h = mutate(html, rng, true);
    EXPECT_TRUE(corpus::is_valid_utf8(html_to_text(h).text)) << h;
    Table c = parse_delimited(mutate(csv, rng, false), ',');
    for (const auto& r : c.rows) EXPECT_EQ(r.values.size(), c.columns.size());
    Table j = parse_json_records(mutate(json, rng, false), i % 2 == 0);
    for (const auto& r : j.rows) EXPECT_EQ(r.values.size(), j.columns.size());
  }
  agpt::testing::PdfSpec spec;
  spec.pages = {{"Some text here.", "More (text)."}, {"Page two."}};
  spec.title = "Title";
  const std::string pdf = agpt::testing::make_pdf(spec);
  int opened = 0;
  for (int i = 0; i < 150; ++i) {
    PdfText t = read_pdf(mutate(pdf, rng, false));
    if (t.failure.empty()) {
      ++opened;
      for (const auto& p : t.pages) EXPECT_TRUE(corpus::is_valid_utf8(p));
      EXPECT_TRUE(corpus::is_valid_utf8(assemble_pages(t.pages).text));
    } else {
      EXPECT_FALSE(t.detail.empty());
    }
  }
  EXPECT_GT(opened, 0);  // poppler repairs many small edits
}

}  // namespace
}  // namespace agpt::curate::extract
