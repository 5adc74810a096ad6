// PDF text through poppler-cpp: the text layer of every page in reading order, the document's
// title and author, and what was wrong with it (encrypted, damaged, pages without text).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate::extract {

// Which of poppler's text layouts gives the page text. Measured on 16 papers against their LaTeX
// sources (docs/extract.md), content-stream order was as good or better than poppler's reading
// order on every paper, two-column ones included: TeX writes text in reading order.
enum class PdfLayout {
  kRaw,       // content-stream order: the default
  kReading,   // poppler's reading order (columns found, blocks separated by blank lines): for PDFs
              // whose streams are out of order (some non-TeX producers)
  kPhysical,  // the page's geometry, columns side by side
};
const char* pdf_layout_name(PdfLayout l);
bool parse_pdf_layout(std::string_view name, PdfLayout& out);

struct PdfText {
  std::vector<std::string> pages;  // UTF-8 text of each page (empty for a page without text)
  std::string title, author;       // from the document information, when present and valid UTF-8
  std::vector<std::string> warnings;
  // Non-empty when no usable text could be taken: "encrypted", "damaged", "needs OCR" (no text
  // layer, or one that is mostly symbols: fonts without a Unicode mapping).
  std::string failure;
  std::string detail;   // what exactly, for the failure or the first warning
};

// Reads the PDF in data (the whole file; it must outlive the call). Never throws for bad data:
// problems are in failure/warnings. Safe to call from several threads on different documents.
PdfText read_pdf(std::string_view data, PdfLayout layout = PdfLayout::kRaw);

}  // namespace agpt::curate::extract
