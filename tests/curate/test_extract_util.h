// Test fixtures for `agpt data extract`: minimal PDF files written byte by byte (a catalog, pages
// with one text stream each in Helvetica, an info dictionary and a correct xref table), so the
// tests need no tools to make PDFs.
#pragma once
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace agpt::testing {

struct PdfSpec {
  std::vector<std::vector<std::string>> pages;  // lines of text per page (an empty page: no text)
  std::string title, author;
  bool encrypted = false;  // an /Encrypt dictionary whose user password is not empty: locked
};

inline std::string pdf_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '(' || c == ')' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

inline std::string make_pdf(const PdfSpec& spec) {
  std::vector<std::string> objects;  // bodies of objects 1..n
  size_t npages = spec.pages.size();
  // 1 catalog, 2 pages, 3 font, then per page: page, contents; then info; then encrypt.
  objects.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  std::string kids;
  for (size_t p = 0; p < npages; ++p) kids += std::to_string(4 + 2 * p) + " 0 R ";
  objects.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(npages) + " >>");
  objects.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>");
  for (size_t p = 0; p < npages; ++p) {
    std::string stream;
    if (!spec.pages[p].empty()) {
      stream = "BT /F1 11 Tf 14 TL 72 720 Td\n";
      for (const auto& line : spec.pages[p]) stream += "(" + pdf_escape(line) + ") Tj T*\n";
      stream += "ET\n";
    }
    objects.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents " +
                      std::to_string(5 + 2 * p) + " 0 R /Resources << /Font << /F1 3 0 R >> >> >>");
    objects.push_back("<< /Length " + std::to_string(stream.size()) + " >>\nstream\n" + stream + "endstream");
  }
  size_t info = objects.size() + 1;
  objects.push_back("<< /Title (" + pdf_escape(spec.title) + ") /Author (" + pdf_escape(spec.author) +
                    ") /Producer (agpt tests) >>");
  size_t encrypt = 0;
  if (spec.encrypted) {
    encrypt = objects.size() + 1;
    std::string o(64, 'A'), u(64, 'B');  // hashes of no password: the empty password fails
    objects.push_back("<< /Filter /Standard /V 1 /R 2 /O <" + o + "> /U <" + u + "> /P -4 >>");
  }
  std::string pdf = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  char buf[32];
  for (size_t off : offsets) {
    std::snprintf(buf, sizeof buf, "%010zu 00000 n \n", off);
    pdf += buf;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R /Info " + std::to_string(info) +
         " 0 R";
  if (encrypt) pdf += " /Encrypt " + std::to_string(encrypt) + " 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]";
  pdf += " >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

inline void write_bytes(const std::filesystem::path& p, const std::string& data) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << data;
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace agpt::testing
