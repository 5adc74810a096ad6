#include "curate/extract/resume.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/file.h"
#include "curate/hash.h"

namespace agpt::curate::extract {
namespace {

using Json = nlohmann::ordered_json;

std::string entry_line(const ProgressEntry& e) {
  const FileOutcome& o = e.outcome;
  Json j;
  j["name"] = o.name;
  j["end"] = e.end;
  j["hash"] = e.hash;
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
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

bool parse_entry(const std::string& line, ProgressEntry& e) {
  Json j = Json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  try {
    FileOutcome& o = e.outcome;
    o.name = j.at("name").get<std::string>();
    e.end = j.at("end").get<uint64_t>();
    e.hash = j.at("hash").get<uint64_t>();
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
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

std::string header_line(const std::string& fingerprint) {
  Json j;
  j["agpt_extract_progress"] = 1;
  j["fingerprint"] = fingerprint;
  return j.dump() + "\n";
}

}  // namespace

ResumeState load_progress(const std::string& progress_path, const std::string& partial_path,
                          const std::string& fingerprint, const std::vector<InputEntry>& inputs) {
  ResumeState st;
  if (!file_exists(progress_path)) {
    st.notes.push_back("no progress file " + progress_path + ": starting from the first input");
    return st;
  }
  std::ifstream in(progress_path, std::ios::binary);
  std::string line;
  if (!std::getline(in, line)) {
    st.notes.push_back("empty progress file: starting from the first input");
    return st;
  }
  Json h = Json::parse(line, nullptr, false);
  if (h.is_discarded() || !h.is_object() || !h.contains("fingerprint"))
    fail(progress_path, ":1: not an agpt extract progress file; delete it or rerun without --resume");
  if (h["fingerprint"] != fingerprint)
    fail("--resume: the options differ from the interrupted run's (", h["fingerprint"].dump(), " vs \"", fingerprint,
         "\"); rerun with the same options, or without --resume to start again");
  uint64_t partial_size = file_exists(partial_path) ? file_size(partial_path) : 0;
  std::ifstream partial(partial_path, std::ios::binary);
  uint64_t prev = 0;
  size_t k = 0;
  std::string chunk;
  while (std::getline(in, line)) {
    ProgressEntry e;
    if (!parse_entry(line, e)) {
      st.notes.push_back(cat(progress_path, ":", k + 2, ": unreadable (an interrupted write?); resuming before it"));
      break;
    }
    if (k >= inputs.size() || inputs[k].name != e.outcome.name)
      fail("--resume: input ", k + 1, " was '", e.outcome.name, "' in the interrupted run but is '",
           k < inputs.size() ? inputs[k].name : std::string("(none)"),
           "' now; the inputs changed. Rerun without --resume to start again.");
    if (e.end < prev || e.end > partial_size) {
      st.notes.push_back(cat("the partial output is shorter than the progress file says; resuming at input ", k + 1));
      break;
    }
    chunk.resize(e.end - prev);
    partial.seekg(static_cast<std::streamoff>(prev));
    partial.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (!partial || xxh64(chunk) != e.hash) {
      st.notes.push_back(cat("the partial output differs from what input ", k + 1, " wrote; resuming there"));
      break;
    }
    prev = e.end;
    st.done.push_back(std::move(e));
    ++k;
  }
  st.output_size = prev;
  return st;
}

ProgressLog::ProgressLog(const std::string& path, const std::string& fingerprint,
                         const std::vector<ProgressEntry>& kept)
    : path_(path) {
  std::string text = header_line(fingerprint);
  for (const auto& e : kept) text += entry_line(e);
  write_file_atomic(path, text);
  f_ = std::fopen(path.c_str(), "ab");
  if (!f_) fail(path, ": cannot open for appending (", std::strerror(errno), ")");
}

ProgressLog::~ProgressLog() {
  if (f_) std::fclose(f_);
}

void ProgressLog::append(const ProgressEntry& e) {
  std::string l = entry_line(e);
  if (std::fwrite(l.data(), 1, l.size(), f_) != l.size() || std::fflush(f_) != 0)
    fail(path_, ": write failed (", std::strerror(errno), ")");
}

void ProgressLog::sync() {
  if (f_) ::fsync(fileno(f_));
}

void ProgressLog::close_and_remove() {
  if (f_) std::fclose(f_);
  f_ = nullptr;
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

}  // namespace agpt::curate::extract
