#include "curate/input_sequence.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "base/error.h"

namespace agpt::curate {

using Json = nlohmann::ordered_json;

InputSequence::InputSequence(std::vector<corpus::InputFile> files, size_t first, corpus::OnError on_error)
    : files_(std::move(files)), reports_(files_.size()), on_error_(on_error), next_(first) {
  for (size_t f = first; f < files_.size(); ++f) {
    std::error_code ec;
    auto size = std::filesystem::file_size(files_[f].path, ec);
    if (!ec) total_ += size;
  }
}

InputSequence::~InputSequence() = default;

uint64_t InputSequence::bytes_read() const { return done_ + (reader_ ? reader_->bytes_read_compressed() : 0); }

bool InputSequence::next(corpus::Document& doc, size_t& file) {
  while (true) {
    if (!reader_) {
      if (next_ >= files_.size()) return false;
      // One reader per file: given the file's own path, it reads it as a reader of the whole
      // input list would, except for the id of a text file (its name relative to the directory
      // given), set below.
      reader_ = std::make_unique<corpus::DocumentReader>(std::vector<std::string>{files_[next_].path}, on_error_);
      ++next_;
    }
    const size_t f = next_ - 1;
    bool got;
    try {
      got = reader_->next(doc);
    } catch (...) {
      reports_[f] = reader_->report();
      throw;
    }
    if (got) {
      if (files_[f].kind == corpus::InputKind::kText) doc.id = files_[f].name;
      file = f;
      return true;
    }
    reports_[f] = reader_->report();
    done_ += reader_->bytes_total_compressed();
    reader_.reset();
  }
}

std::vector<ProgressInput> progress_inputs(const std::vector<corpus::InputFile>& files) {
  std::vector<ProgressInput> out;
  out.reserve(files.size());
  for (const auto& f : files) out.push_back({f.name, f.path});
  return out;
}

Json read_report_json(const corpus::ReadReport& r) {
  Json j;
  j["files"] = r.files;
  j["lines"] = r.lines;
  j["documents"] = r.documents;
  j["bytes"] = r.bytes;
  j["skipped"] = r.skipped;
  j["blank_lines"] = r.blank_lines;
  j["skipped_by_reason"] = r.skipped_by_reason;
  j["examples"] = r.examples;
  return j;
}

void add_read_report(corpus::ReadReport& into, const corpus::ReadReport& r) {
  into.files += r.files;
  into.lines += r.lines;
  into.documents += r.documents;
  into.bytes += r.bytes;
  into.skipped += r.skipped;
  into.blank_lines += r.blank_lines;
  for (const auto& [k, v] : r.skipped_by_reason) into.skipped_by_reason[k] += v;
  for (const auto& e : r.examples)
    if (into.examples.size() < corpus::ReadReport::kMaxExamples) into.examples.push_back(e);
}

void add_read_report_json(corpus::ReadReport& into, const Json& j) {
  corpus::ReadReport r;
  r.files = j.at("files").get<uint64_t>();
  r.lines = j.at("lines").get<uint64_t>();
  r.documents = j.at("documents").get<uint64_t>();
  r.bytes = j.at("bytes").get<uint64_t>();
  r.skipped = j.at("skipped").get<uint64_t>();
  r.blank_lines = j.at("blank_lines").get<uint64_t>();
  r.skipped_by_reason = j.at("skipped_by_reason").get<std::map<std::string, uint64_t>>();
  r.examples = j.at("examples").get<std::vector<std::string>>();
  add_read_report(into, r);
}

}  // namespace agpt::curate
