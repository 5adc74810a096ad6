#include "curate/extract/extract.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "curate/extract/inputs.h"
#include "curate/extract/output.h"
#include "curate/extract/resume.h"
#include "curate/hash.h"

namespace agpt::curate::extract {
namespace {

// Everything that changes the bytes of the output: a resumed run must match it exactly.
std::string fingerprint(const ExtractOptions& o, const std::string& template_text) {
  const FileOptions& f = o.file;
  return cat("v1 format=", o.format ? format_name(*o.format) : "auto", " template=", xxh64(template_text),
             " source=", xxh64(f.source), " added=", xxh64(f.added), " pdf=", pdf_layout_name(f.pdf_layout),
             " records_per_doc=", f.records_per_doc, " code_chunks=", f.keep_code_chunks);
}

}  // namespace

std::string partial_path(const std::string& output) { return output + ".partial"; }
std::string progress_path(const std::string& output) { return output + ".progress"; }

ExtractReport run_extract(const ExtractOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  if (opt.output.empty()) fail("no output file given (--output)");
  if (std::filesystem::is_directory(opt.output)) fail(opt.output, ": is a directory; name the output file");

  FileOptions fopt = opt.file;
  std::string template_text;
  NarrativeTemplate tmpl;
  if (!opt.template_path.empty()) {
    template_text = read_file(opt.template_path);
    tmpl = parse_template(template_text, opt.template_path);
    fopt.narrative = &tmpl;
  }
  const std::string partial = partial_path(opt.output), progress = progress_path(opt.output);
  std::vector<InputEntry> inputs = list_inputs(opt.inputs, opt.format, {opt.output, partial, progress});
  std::string fp = fingerprint(opt, template_text);

  ExtractReport report;
  report.output = opt.output;
  ResumeState resume;
  if (opt.resume) {
    resume = load_progress(progress, partial, fp, inputs);
    for (const auto& n : resume.notes) log_info(n);
    for (const auto& e : resume.done) report.add(e.outcome);
    report.files_resumed = resume.done.size();
    if (!resume.done.empty())
      log_info(cat("resuming: ", resume.done.size(), " of ", inputs.size(), " files were done; output cut to ",
                   resume.output_size, " bytes"));
  } else if (file_exists(progress)) {
    log_info(progress, " from an interrupted run exists; starting again (--resume would continue it)");
  }
  ChunkWriter out(partial, resume.output_size, opt.output);
  ProgressLog log(progress, fp, resume.done);

  uint64_t total_bytes = 0, done_bytes = 0;
  for (const auto& in : inputs) {
    std::error_code ec;
    total_bytes += std::filesystem::file_size(in.path, ec);
  }
  for (const auto& e : resume.done) done_bytes += e.outcome.bytes_in;
  std::unique_ptr<Progress> bar;
  if (opt.progress_bar) {
    bar = std::make_unique<Progress>("extract", total_bytes, "B");
    bar->add(done_bytes);
  }

  // Batches of files are extracted in parallel into slots, then written in input order.
  int threads = opt.threads > 0 ? opt.threads : default_threads();
  size_t batch = std::max<size_t>(8, static_cast<size_t>(threads) * 4);
  size_t committed_now = 0;
  for (size_t start = resume.done.size(); start < inputs.size(); start += batch) {
    size_t n = std::min(batch, inputs.size() - start);
    std::vector<FileOutcome> slots(n);
    parallel_for(n, threads, [&](size_t i) {
      slots[i] = extract_file(inputs[start + i], fopt);
      if (bar) bar->add(slots[i].bytes_in);
    });
    for (size_t i = 0; i < n; ++i) {
      ProgressEntry e;
      std::string_view written = out.append(slots[i].jsonl);
      e.hash = xxh64(written);
      e.end = out.offset();
      slots[i].jsonl.clear();
      slots[i].jsonl.shrink_to_fit();
      e.outcome = std::move(slots[i]);
      log.append(e);
      report.add(e.outcome);
      if (opt.stop_after_files && ++committed_now >= opt.stop_after_files) {
        log.sync();
        fail("stopped after ", committed_now, " files (--stop-after, for tests); continue with --resume");
      }
    }
    log.sync();
  }
  if (bar) bar->finish();
  out.close();
  std::error_code ec;
  std::filesystem::rename(partial, opt.output, ec);
  if (ec) fail(opt.output, ": cannot rename ", partial, " to it (", ec.message(), ")");
  log.close_and_remove();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace agpt::curate::extract
