// Running poppler in a child process, so that a hostile PDF that crashes it (a segfault, an abort,
// memory exhaustion) or makes it hang cannot take down `agpt data extract`: each PDF is read by a
// forked child that sends the text back through a pipe, under a time limit. A crash or a timeout
// becomes the file's failure ("crashed", "timed out") with the reason, and the run goes on. For a
// PDF that poppler reads, the result is exactly that of read_pdf in the process.
#pragma once
#include <string_view>

#include "curate/extract/pdf.h"

namespace agpt::curate::extract {

struct PdfIsolation {
  double timeout_s = 120;  // wall-clock seconds per PDF before the child is killed
};

// read_pdf(data, layout) in a child process. If no child can be started (fork fails), reads in
// this process and logs a warning once. Never throws for bad data. Thread-safe.
//
// Tests: the environment variable AGPT_TEST_PDF_CHILD=crash|hang[:MARKER] makes the child abort
// or sleep (only for PDFs whose bytes hold MARKER, when given), to simulate a hostile file.
PdfText read_pdf_isolated(std::string_view data, PdfLayout layout, const PdfIsolation& isolation);

// The child's result as bytes and back (exposed for tests). decode returns false when bytes are
// not a complete message.
std::string encode_pdf_text(const PdfText& t);
bool decode_pdf_text(std::string_view bytes, PdfText& t);

}  // namespace agpt::curate::extract
