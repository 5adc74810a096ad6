#include "curate/extract/report.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace agpt::curate::extract {
namespace {

nlohmann::ordered_json counts_json(const FormatCounts& c) {
  nlohmann::ordered_json j;
  j["files"] = c.files;
  j["files_extracted"] = c.files_ok;
  j["files_failed"] = c.files_failed;
  j["files_empty"] = c.files_empty;
  j["files_skipped"] = c.files_skipped;
  j["documents"] = c.documents;
  j["bytes_in"] = c.bytes_in;
  j["text_bytes"] = c.text_bytes;
  if (c.pages) j["pages"] = c.pages;
  if (c.records || c.bad_records) {
    j["records"] = c.records;
    j["bad_records"] = c.bad_records;
  }
  j["files_with_warnings"] = c.files_with_warnings;
  j["failures_by_reason"] = c.failures_by_reason;
  return j;
}

}  // namespace

void FormatCounts::add(const FileOutcome& f) {
  ++files;
  if (f.status == "ok") ++files_ok;
  else if (f.status == "failed") ++files_failed;
  else if (f.status == "empty") ++files_empty;
  else ++files_skipped;
  if (f.status != "ok") ++failures_by_reason[f.reason];
  documents += f.documents;
  bytes_in += f.bytes_in;
  text_bytes += f.text_bytes;
  pages += f.pages;
  records += f.records;
  bad_records += f.bad_records;
  files_with_warnings += !f.warnings.empty();
}

void ExtractReport::add(const FileOutcome& f) {
  formats[f.format].add(f);
  total.add(f);
  // Skipped files (unknown formats: images, scripts, ...) are counted by reason, not listed.
  if (problems.size() < kMaxProblems && f.status != "ok" && f.status != "skipped")
    problems.push_back(f.name + ": " + f.reason + (f.detail.empty() ? "" : " (" + f.detail + ")"));
  for (const auto& w : f.warnings) {
    if (problems.size() >= kMaxProblems) break;
    problems.push_back(w.starts_with(f.name + ":") ? w : f.name + ": warning: " + w);
  }
}

std::string ExtractReport::to_json() const {
  nlohmann::ordered_json j;
  j["output"] = output;
  j["total"] = counts_json(total);
  nlohmann::ordered_json by;
  for (const auto& [name, c] : formats) by[name] = counts_json(c);
  j["formats"] = by;
  j["files_resumed"] = files_resumed;
  j["problems"] = problems;
  j["seconds"] = seconds;
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string ExtractReport::table() const {
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-8s %7s %7s %7s %6s %8s %10s %8s %10s %10s\n", "format", "files", "ok", "failed",
                "empty", "skipped", "documents", "pages", "MB in", "MB text");
  out += buf;
  auto row = [&](const std::string& name, const FormatCounts& c) {
    std::snprintf(buf, sizeof buf, "%-8s %7llu %7llu %7llu %6llu %8llu %10llu %8llu %10.2f %10.2f\n", name.c_str(),
                  (unsigned long long)c.files, (unsigned long long)c.files_ok, (unsigned long long)c.files_failed,
                  (unsigned long long)c.files_empty, (unsigned long long)c.files_skipped,
                  (unsigned long long)c.documents, (unsigned long long)c.pages, c.bytes_in / 1e6, c.text_bytes / 1e6);
    out += buf;
  };
  for (const auto& [name, c] : formats) row(name, c);
  if (formats.size() > 1) row("total", total);
  if (!total.failures_by_reason.empty()) {
    out += "not extracted, by reason:\n";
    for (const auto& [r, n] : total.failures_by_reason) {
      std::snprintf(buf, sizeof buf, "  %6llu  %s\n", (unsigned long long)n, r.c_str());
      out += buf;
    }
  }
  if (total.bad_records) out += "bad records skipped: " + std::to_string(total.bad_records) + "\n";
  if (!problems.empty()) {
    out += "first problems:\n";
    for (const auto& p : problems) out += "  " + p + "\n";
  }
  if (files_resumed) out += "resumed: " + std::to_string(files_resumed) + " files were done by the interrupted run\n";
  return out;
}

}  // namespace agpt::curate::extract
