// PDF extraction quality and speed: for papers shipped both as PDF and as LaTeX/Sweave source
// (Debian's r-cran-* packages carry their vignettes both ways), agpt extracts the text of each,
// and the normalized character edit distance between the two is reported (Levenshtein over code
// points / the longer text, whitespace collapsed, typographic quotes and dashes as ASCII), as in
// Nougat's evaluation (plain embedded-text extraction of arXiv PDFs: 0.255 there).
// Speed: thread CPU time of poppler + page assembly, as pages/s and MB/s of PDF.
//
//   curate_extract_bench [--layout raw|reading|physical] [--dump DIR] PDF SOURCE [PDF SOURCE ...]
//   curate_extract_bench --find /usr/lib/R/site-library     (every PDF with a .Rnw/.tex beside it)
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "base/file.h"
#include "curate/extract/edit_distance.h"
#include "curate/extract/latex.h"
#include "curate/extract/pdf.h"
#include "curate/extract/pdf_text.h"
#include "machine.h"

namespace fs = std::filesystem;
namespace ex = agpt::curate::extract;

namespace {

struct Pair {
  std::string pdf, source;
};

std::vector<Pair> find_pairs(const std::string& root) {
  std::vector<Pair> out;
  for (auto& e : fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied)) {
    if (!e.is_regular_file() || e.path().extension() != ".pdf") continue;
    for (const char* ext : {".Rnw", ".tex"}) {
      fs::path s = e.path();
      s.replace_extension(ext);
      if (fs::exists(s)) {
        out.push_back({e.path().string(), s.string()});
        break;
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const Pair& a, const Pair& b) { return a.pdf < b.pdf; });
  return out;
}

std::string source_text(const std::string& path, bool keep_chunks) {
  ex::LatexOptions o;
  o.sweave = path.ends_with(".Rnw") || path.ends_with(".rnw");
  o.keep_code_chunks = keep_chunks;
  return ex::latex_to_text(agpt::read_file(path), o, ex::directory_resolver(fs::path(path).parent_path().string()))
      .text;
}

// The "prose" comparison leaves out what only one side can have: the source's math (LaTeX; the
// PDF has glyphs), [cite] placeholders and heading marks; the PDF's bibliography (after its last
// "References" heading; the source has only \bibliography{}).
std::string prose_source(const std::string& t) {
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t[i] == '$') {
      // Math spans end on their line (R code such as x$y keeps its dollars when nothing closes them).
      bool display = i + 1 < t.size() && t[i + 1] == '$';
      size_t e = t.find(display ? "$$" : "$", i + (display ? 2 : 1));
      size_t nl = t.find('\n', i);
      if (e != std::string::npos && (nl == std::string::npos || e < nl)) {
        i = e + (display ? 2 : 1);
        continue;
      }
    }
    if (t.compare(i, 6, "[cite]") == 0) {
      i += 6;
      continue;
    }
    if (t[i] == '#' && (i == 0 || t[i - 1] == '\n')) {
      while (i < t.size() && (t[i] == '#' || t[i] == ' ')) ++i;
      continue;
    }
    out += t[i++];
  }
  return out;
}

std::string prose_pdf(const std::string& t) {
  size_t r = t.rfind("\n\nReferences\n\n");
  return r == std::string::npos ? t : t.substr(0, r);
}

}  // namespace

int main(int argc, char** argv) {
  ex::PdfLayout layout = ex::PdfLayout::kRaw;
  std::string dump;
  std::vector<Pair> pairs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--layout" && i + 1 < argc) {
      if (!ex::parse_pdf_layout(argv[++i], layout)) return std::fprintf(stderr, "bad --layout\n"), 2;
    } else if (a == "--dump" && i + 1 < argc) {
      dump = argv[++i];
      fs::create_directories(dump);
    } else if (a == "--find" && i + 1 < argc) {
      auto f = find_pairs(argv[++i]);
      pairs.insert(pairs.end(), f.begin(), f.end());
    } else if (i + 1 < argc) {
      pairs.push_back({argv[i], argv[i + 1]});
      ++i;
    } else {
      std::fprintf(stderr, "usage: %s [--layout L] [--dump DIR] (--find DIR | PDF SOURCE ...)\n", argv[0]);
      return 2;
    }
  }
  std::printf("cpu: %s; layout: %s\n", agpt::bench::cpu_model().c_str(), ex::pdf_layout_name(layout));
  std::printf("%-40s %5s %8s %9s %9s %8s %8s %8s %8s\n", "paper", "pages", "PDF KB", "PDF chars", "src chars",
              "NED", "NED+code", "prose", "ms/page");
  double sum = 0, sum_code = 0, sum_prose = 0, cpu = 0;
  int stubs = 0;
  uint64_t pages = 0, bytes = 0;
  int n = 0;
  for (const auto& p : pairs) {
    std::string data = agpt::read_file(p.pdf);
    double t0 = agpt::bench::thread_cpu_seconds();
    ex::PdfText pdf = ex::read_pdf(data, layout);
    ex::PageAssembly a = ex::assemble_pages(pdf.pages);
    double dt = agpt::bench::thread_cpu_seconds() - t0;
    if (!pdf.failure.empty()) {
      std::printf("%-40s failed: %s\n", fs::path(p.pdf).filename().c_str(), pdf.failure.c_str());
      continue;
    }
    std::string src = source_text(p.source, false), src_code = source_text(p.source, true);
    if (src.size() * 5 < a.text.size()) {  // e.g. Rcpp's .Rnw files only include a prebuilt PDF
      std::printf("%-40s skipped: the source has %zu bytes of text for %zu in the PDF (a stub)\n",
                  fs::path(p.pdf).filename().c_str(), src.size(), a.text.size());
      ++stubs;
      continue;
    }
    double prose = ex::normalized_edit_distance(prose_pdf(a.text), prose_source(src_code));
    double ned = ex::normalized_edit_distance(a.text, src);
    double ned_code = ex::normalized_edit_distance(a.text, src_code);
    std::string name = fs::path(p.pdf).parent_path().parent_path().filename().string() + "/" +
                       fs::path(p.pdf).filename().string();
    std::printf("%-40s %5zu %8.0f %9zu %9zu %8.3f %8.3f %8.3f %8.1f\n", name.c_str(), pdf.pages.size(),
                data.size() / 1e3, ex::code_points(a.text).size(), ex::code_points(src).size(), ned, ned_code, prose,
                1e3 * dt / std::max<size_t>(1, pdf.pages.size()));
    if (!dump.empty()) {
      std::string stem = (fs::path(dump) / fs::path(p.pdf).stem()).string();
      agpt::write_file_atomic(stem + ".pdf.txt", a.text);
      agpt::write_file_atomic(stem + ".src.txt", src);
    }
    sum += ned;
    sum_code += ned_code;
    sum_prose += prose;
    cpu += dt;
    pages += pdf.pages.size();
    bytes += data.size();
    ++n;
  }
  if (n == 0) return 1;
  std::printf("mean over %d papers (%d stubs skipped): NED %.3f (code chunks dropped from the source), %.3f (kept), "
              "%.3f (prose: no math, citations or bibliography)\n",
              n, stubs, sum / n, sum_code / n, sum_prose / n);
  std::printf("speed (thread CPU time, one core): %.1f pages/s, %.2f MB/s of PDF (%llu pages, %.1f MB, %.2f s)\n",
              pages / cpu, bytes / 1e6 / cpu, (unsigned long long)pages, bytes / 1e6, cpu);
  return 0;
}
