// `agpt data extract`: PDF, LaTeX, HTML, text and structured data (CSV/TSV, JSON records) to
// Dolma JSONL documents.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "cli/command.h"
#include "curate/extract/extract.h"

namespace agpt::cli {
namespace {

namespace fs = std::filesystem;
namespace ex = curate::extract;

void setup_extract(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand(
      "extract", "PDF, LaTeX, HTML, text and CSV/TSV/JSON records to Dolma JSONL documents (with a report)");
  struct Args {
    ex::ExtractOptions opt;
    std::string output, report, format = "auto", pdf_layout = "raw";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-i,--input", a->opt.inputs, "files, directories (recursive) or glob patterns")->required();
  cmd->add_option("-o,--output", a->output,
                  "Dolma JSONL (.jsonl, .jsonl.gz, .jsonl.zst); a directory gets extract.jsonl.zst")
      ->required();
  cmd->add_option("--format", a->format, "auto (by file name) or force one: pdf latex html text csv tsv json")
      ->check(CLI::IsMember({"auto", "pdf", "latex", "html", "text", "csv", "tsv", "json"}))
      ->capture_default_str();
  cmd->add_option("--template", a->opt.template_path,
                  "narrative template for CSV/TSV/JSON records ({{column}} placeholders, units, formats)");
  cmd->add_option("--records-per-doc", a->opt.file.records_per_doc,
                  "structured data: records per document (0 = one document per file)")
      ->capture_default_str();
  cmd->add_option("--source", a->opt.file.source, "Dolma \"source\" of every document (default: the format's name)");
  cmd->add_option("--added", a->opt.file.added,
                  "Dolma \"added\" timestamp to write (default: none, so the output is deterministic)");
  cmd->add_option("--pdf-layout", a->pdf_layout, "poppler text layout: raw (content-stream order, the default: best measured on TeX papers), reading or physical")
      ->check(CLI::IsMember({"raw", "reading", "physical"}))
      ->capture_default_str();
  cmd->add_option("--pdf-timeout", a->opt.file.pdf_isolation.timeout_s,
                  "seconds poppler may spend on one PDF (each is read in a child process); a PDF that takes "
                  "longer, or crashes poppler, is counted as failed (\"timed out\", \"crashed\") and the run goes on")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--pdf-in-process", a->opt.file.pdf_in_process,
                "read PDFs in this process (no child processes; a crashing PDF ends the run): for comparisons")
      ->group("");
  cmd->add_flag("--keep-code-chunks", a->opt.file.keep_code_chunks,
                "Sweave .Rnw: keep the R code chunks as verbatim text (dropped by default)");
  cmd->add_option("--report", a->report, "write the counts (per format: files, documents, bytes, failures) as JSON");
  cmd->add_flag("--resume", a->opt.resume,
                "continue an interrupted run: skip the input files it finished (OUTPUT.progress), cut "
                "OUTPUT.partial after the last one");
  cmd->add_option("--stop-after", a->opt.stop_after_files, "stop after N files, as if interrupted (for tests)")
      ->group("");
  add_threads_flag(*cmd, a->opt.threads);
  cmd->footer(
      "Formats by file name: .pdf; .tex .ltx (.Rnw .Snw: Sweave, code chunks dropped); .html .htm .xhtml;\n"
      ".txt .md .rst; .csv .tsv; .json (array of records) .jsonl (one record per line). Text formats may\n"
      "be .gz/.zst compressed. Files of other kinds found in directories are counted as skipped.\n"
      "Each PDF is read by poppler in a child process: a PDF that crashes it or runs past --pdf-timeout is\n"
      "counted as failed with its reason (\"crashed\", \"timed out\") and the run goes on.\n"
      "Every file is one document (structured data: see --records-per-doc); ids are the file's path\n"
      "relative to the directory given. Output order is input order for any -j. Resumable per input file:\n"
      "after an interruption, the same command with --resume gives the same bytes as an uninterrupted run.\n"
      "See docs/extract.md.\n\n"
      "Examples:\n"
      "  agpt data extract -i papers/ -o out/papers.jsonl.zst --report out/extract.json\n"
      "  agpt data extract -i 'docs/*.html' -i notes.md -o out/docs.jsonl.gz -j 8\n"
      "  agpt data extract -i examples/extract/materials.csv --template examples/extract/materials.tmpl -o out/m.jsonl\n"
      "  agpt data extract -i papers/ -o out/papers.jsonl.zst --resume   # after an interruption");
  set_action(cmd, [a] {
    if (a->format != "auto") a->opt.format = ex::parse_format(a->format);
    ex::parse_pdf_layout(a->pdf_layout, a->opt.file.pdf_layout);
    a->opt.output = output_file(a->output, "extract.jsonl.zst");
    auto report = ex::run_extract(a->opt);
    if (!a->report.empty()) write_file_atomic(a->report, report.to_json());
    std::cerr << report.table();
    std::cerr << "wrote " << report.total.documents << " documents from " << report.total.files << " files to "
              << a->opt.output << "\n";
  });
}

AGPT_COMMAND(39, setup_extract);

}  // namespace
}  // namespace agpt::cli
