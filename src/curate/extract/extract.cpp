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
#include <nlohmann/json.hpp>

#include "curate/extract/inputs.h"
#include "curate/hash.h"
#include "curate/resumable_run.h"

namespace agpt::curate::extract {
namespace {

using Json = nlohmann::ordered_json;

// Everything that changes the bytes of the output: a resumed run must match it exactly.
Fingerprint fingerprint(const ExtractOptions& o, const std::string& template_text) {
  const FileOptions& f = o.file;
  return {{"format", o.format ? format_name(*o.format) : "auto"},
          {"template", cat("xxh64 ", xxh64(template_text))},
          {"source", f.source},
          {"added", f.added},
          {"pdf_layout", pdf_layout_name(f.pdf_layout)},
          {"records_per_doc", std::to_string(f.records_per_doc)},
          {"keep_code_chunks", f.keep_code_chunks ? "yes" : "no"}};
}

// A file's outcome (without its documents) as a progress entry keeps it, and back.
std::string outcome_json(const FileOutcome& o) {
  Json j;
  j["format"] = o.format;
  j["status"] = o.status;
  j["reason"] = o.reason;
  j["detail"] = o.detail;
  j["bytes_in"] = o.bytes_in;
  j["documents"] = o.documents;
  j["text_bytes"] = o.text_bytes;
  j["pages"] = o.pages;
  j["records"] = o.records;
  j["bad_records"] = o.bad_records;
  j["warnings"] = o.warnings;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

FileOutcome outcome_from_json(const ProgressEntry& e, const std::string& where) {
  FileOutcome o;
  try {
    Json j = Json::parse(e.data);
    o.name = e.name;
    o.format = j.at("format").get<std::string>();
    o.status = j.at("status").get<std::string>();
    o.reason = j.at("reason").get<std::string>();
    o.detail = j.at("detail").get<std::string>();
    o.bytes_in = j.at("bytes_in").get<uint64_t>();
    o.documents = j.at("documents").get<uint64_t>();
    o.text_bytes = j.at("text_bytes").get<uint64_t>();
    o.pages = j.at("pages").get<uint64_t>();
    o.records = j.at("records").get<uint64_t>();
    o.bad_records = j.at("bad_records").get<uint64_t>();
    o.warnings = j.at("warnings").get<std::vector<std::string>>();
  } catch (const std::exception& ex) {
    fail(where, ": the entry of '", e.name, "' is damaged (", ex.what(), "); rerun without --resume to start again");
  }
  return o;
}

}  // namespace

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
  std::vector<InputEntry> inputs =
      list_inputs(opt.inputs, opt.format, {opt.output, partial_path(opt.output), progress_path(opt.output)});
  std::vector<ProgressInput> names;
  for (const auto& in : inputs) names.push_back({in.name, in.path});
  ResumableRun run("extract", {opt.output}, fingerprint(opt, template_text), opt.resume, names, opt.stop_after_files);

  ExtractReport report;
  report.output = opt.output;
  for (const auto& e : run.done()) report.add(outcome_from_json(e, progress_path(opt.output)));
  report.files_resumed = run.done().size();
  run.start();

  uint64_t total_bytes = 0, done_bytes = 0;
  for (const auto& in : inputs) {
    std::error_code ec;
    total_bytes += std::filesystem::file_size(in.path, ec);
  }
  for (size_t i = 0; i < run.done().size(); ++i) {
    std::error_code ec;
    done_bytes += std::filesystem::file_size(inputs[i].path, ec);
  }
  std::unique_ptr<Progress> bar;
  if (opt.progress_bar) {
    bar = std::make_unique<Progress>("extract", total_bytes, "B");
    bar->add(done_bytes);
  }

  // Batches of files are extracted in parallel into slots, then written in input order.
  int threads = opt.threads > 0 ? opt.threads : default_threads();
  size_t batch = std::max<size_t>(8, static_cast<size_t>(threads) * 4);
  for (size_t start = run.done().size(); start < inputs.size(); start += batch) {
    size_t n = std::min(batch, inputs.size() - start);
    std::vector<FileOutcome> slots(n);
    parallel_for(n, threads, [&](size_t i) {
      slots[i] = extract_file(inputs[start + i], fopt);
      if (bar) bar->add(slots[i].bytes_in);
    });
    for (size_t i = 0; i < n; ++i) {
      run.output(0).write(slots[i].jsonl);
      slots[i].jsonl.clear();
      slots[i].jsonl.shrink_to_fit();
      report.add(slots[i]);
      ProgressEntry e;
      e.name = slots[i].name;
      std::error_code ec;
      e.input_size = std::filesystem::file_size(inputs[start + i].path, ec);
      e.data = outcome_json(slots[i]);
      run.commit(e);
    }
    run.sync();
  }
  if (bar) bar->finish();
  run.finish();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace agpt::curate::extract
