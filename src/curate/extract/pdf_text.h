// Turning the text of PDF pages (lines in reading order, as poppler gives them) into paragraphs:
// running headers, footers and page numbers dropped, words hyphenated across line ends joined,
// lines joined into paragraphs. Pure text work, so it is tested without PDFs.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace agpt::curate::extract {

struct PageAssembly {
  std::string text;              // paragraphs separated by one blank line
  size_t header_lines_dropped = 0;  // running headers/footers and page numbers removed
  size_t hyphens_joined = 0;
};

// pages: the text of each page; lines end with '\n' (a '\r' or '\f' is ignored); a blank line
// separates text blocks. Rules (see docs/extract.md):
//  - headers/footers: among the first and the last two non-blank lines of every page, a line whose
//    shape (digits replaced by '#', whitespace collapsed, lowercased) occurs there on at least 3
//    pages and at least 30% of the pages is dropped: running titles and page numbers;
//  - hyphenation: "mod-" at a line end followed by "els" becomes "models", unless the document
//    elsewhere writes "mod-els" and never "models" (compounds such as "model-based" keep it);
//  - paragraphs: lines of a block are joined with spaces; a block ends a paragraph, and so does a
//    line that ends a sentence and is shorter than 80% of the block's longest line; a paragraph
//    cut by a page break (no sentence end, next page starts in lower case) is joined again;
//  - headings: a short line like "2.1. Model fitting" or "A. Proofs" (no final period), or a lone
//    "Abstract", "References", ..., is a paragraph of its own;
//  - the ligatures ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ become their letters; soft hyphens are removed.
PageAssembly assemble_pages(const std::vector<std::string>& pages);

}  // namespace agpt::curate::extract
