#include "curate/extract/pdf.h"

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>

#include "base/error.h"
#include "corpus/json.h"

namespace agpt::curate::extract {
namespace {

// poppler reports syntax problems through one global callback. It runs on the thread that parses,
// so a thread-local log gives each document its own messages.
struct PopplerLog {
  size_t count = 0;
  std::string first;
};
thread_local PopplerLog* t_log = nullptr;

void on_poppler_error(const std::string& message, void*) {
  if (!t_log) return;
  if (t_log->count++ == 0) t_log->first = message;
}

void install_error_hook() {
  static std::once_flag once;
  std::call_once(once, [] { poppler::set_debug_error_function(on_poppler_error, nullptr); });
}

std::string utf8(const poppler::ustring& s) {
  poppler::byte_array b = s.to_utf8();
  std::string out(b.begin(), b.end());
  // Strip NULs some producers leave in strings; drop what is not valid UTF-8.
  out.erase(std::remove(out.begin(), out.end(), '\0'), out.end());
  if (!corpus::is_valid_utf8(out)) return {};
  return out;
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n\f");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n\f");
  return s.substr(b, e - b + 1);
}

poppler::page::text_layout_enum to_poppler(PdfLayout l) {
  switch (l) {
    case PdfLayout::kReading: return poppler::page::non_raw_non_physical_layout;
    case PdfLayout::kRaw: return poppler::page::raw_order_layout;
    case PdfLayout::kPhysical: return poppler::page::physical_layout;
  }
  return poppler::page::non_raw_non_physical_layout;
}

// "1-3, 7" from sorted 1-based page numbers (short warnings for long documents).
std::string page_ranges(const std::vector<int>& pages) {
  std::string out;
  for (size_t i = 0; i < pages.size();) {
    size_t j = i;
    while (j + 1 < pages.size() && pages[j + 1] == pages[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(pages[i]);
    if (j > i) out += "-" + std::to_string(pages[j]);
    i = j + 1;
  }
  return out;
}

// Fraction of non-space characters that are symbols (U+2600..U+27BF) or private use: what fonts
// without a Unicode mapping (bitmap Type 3, some old TeX fonts) extract as. Readable text in any
// script is far below 0.3.
double garbled_fraction(const std::vector<std::string>& pages) {
  size_t odd = 0, all = 0;
  for (const auto& p : pages) {
    for (size_t i = 0; i < p.size();) {
      unsigned char c = static_cast<unsigned char>(p[i]);
      size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      uint32_t cp = c;
      if (len == 3 && i + 2 < p.size())
        cp = ((c & 0x0F) << 12) | ((static_cast<unsigned char>(p[i + 1]) & 0x3F) << 6) |
             (static_cast<unsigned char>(p[i + 2]) & 0x3F);
      if (c > ' ') {
        ++all;
        odd += (cp >= 0x2600 && cp <= 0x27BF) || (cp >= 0xE000 && cp <= 0xF8FF);
      }
      i += len;
    }
  }
  return all ? static_cast<double>(odd) / static_cast<double>(all) : 0.0;
}

}  // namespace

const char* pdf_layout_name(PdfLayout l) {
  switch (l) {
    case PdfLayout::kReading: return "reading";
    case PdfLayout::kRaw: return "raw";
    case PdfLayout::kPhysical: return "physical";
  }
  return "?";
}

bool parse_pdf_layout(std::string_view name, PdfLayout& out) {
  for (PdfLayout l : {PdfLayout::kReading, PdfLayout::kRaw, PdfLayout::kPhysical})
    if (name == pdf_layout_name(l)) {
      out = l;
      return true;
    }
  return false;
}

PdfText read_pdf(std::string_view data, PdfLayout layout) {
  install_error_hook();
  PdfText out;
  PopplerLog log;
  t_log = &log;
  struct Reset {
    ~Reset() { t_log = nullptr; }
  } reset;

  if (data.size() > static_cast<size_t>(INT_MAX)) {
    out.failure = "too large";
    out.detail = "poppler reads PDFs up to 2 GB";
    return out;
  }
  if (data.substr(0, std::min<size_t>(data.size(), 1024)).find("%PDF-") == std::string_view::npos) {
    out.failure = "damaged";
    out.detail = "no %PDF- header in the first 1024 bytes: not a PDF file";
    return out;
  }
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(data.data(), static_cast<int>(data.size())));
  if (!doc) {
    out.failure = "damaged";
    out.detail = "poppler could not open it" + (log.first.empty() ? std::string() : " (" + trim(log.first) + ")");
    return out;
  }
  if (doc->is_locked()) {
    out.failure = "encrypted";
    out.detail = "the PDF needs a password to open; decrypt it first (e.g. qpdf --decrypt)";
    return out;
  }
  if (doc->is_encrypted()) out.warnings.push_back("encrypted (opened without a password)");
  out.title = trim(utf8(doc->get_title()));
  out.author = trim(utf8(doc->get_author()));

  int n = doc->pages();
  std::vector<int> empty_pages, bad_pages;
  out.pages.resize(n > 0 ? n : 0);
  for (int i = 0; i < n; ++i) {
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    if (!page) {
      bad_pages.push_back(i + 1);
      continue;
    }
    out.pages[i] = utf8(page->text(poppler::rectf(), to_poppler(layout)));
    if (trim(out.pages[i]).empty()) empty_pages.push_back(i + 1);
  }
  if (!bad_pages.empty()) out.warnings.push_back("damaged pages: " + page_ranges(bad_pages));
  if (n == 0) {
    out.failure = "damaged";
    out.detail = "the PDF has no pages";
  } else if (empty_pages.size() + bad_pages.size() == static_cast<size_t>(n)) {
    out.failure = "needs OCR";
    out.detail = "no page has a text layer (scanned images?); run OCR first";
  } else if (double g = garbled_fraction(out.pages); g > 0.3) {
    out.failure = "needs OCR";
    out.detail = cat(static_cast<int>(g * 100), "% of the text is symbols: the fonts have no Unicode mapping; run OCR");
  } else if (!empty_pages.empty()) {
    out.warnings.push_back("needs OCR: pages without text " + page_ranges(empty_pages));
  }
  if (log.count > 0)
    out.warnings.push_back(cat("poppler reported ", log.count, " problem", log.count > 1 ? "s" : "", " (first: ",
                               trim(log.first), ")"));
  if (!out.failure.empty() && out.detail.empty()) out.detail = out.failure;
  return out;
}

}  // namespace agpt::curate::extract
