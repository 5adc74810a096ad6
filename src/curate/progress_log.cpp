#include "curate/progress_log.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/file.h"
#include "curate/hash.h"

namespace agpt::curate {
namespace {

using Json = nlohmann::ordered_json;

std::string entry_line(const ProgressEntry& e) {
  Json j;
  j["name"] = e.name;
  j["size"] = e.input_size;
  Json chunks = Json::array();
  for (const auto& c : e.chunks) chunks.push_back({c.end, c.hash});
  j["chunks"] = std::move(chunks);
  Json files = Json::array();
  for (const auto& f : e.files) files.push_back({f.path, f.size, f.hash});
  j["files"] = std::move(files);
  j["data"] = Json::parse(e.data.empty() ? std::string("{}") : e.data);
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

bool parse_entry(const std::string& line, ProgressEntry& e) {
  Json j = Json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  try {
    e.name = j.at("name").get<std::string>();
    e.input_size = j.at("size").get<uint64_t>();
    for (const auto& c : j.at("chunks")) e.chunks.push_back({c.at(0).get<uint64_t>(), c.at(1).get<uint64_t>()});
    for (const auto& f : j.at("files"))
      e.files.push_back({f.at(0).get<std::string>(), f.at(1).get<uint64_t>(), f.at(2).get<uint64_t>()});
    const Json& d = j.at("data");
    if (!d.is_object()) return false;
    e.data = d.dump();
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

Json fingerprint_json(const Fingerprint& fp) {
  Json j = Json::object();
  for (const auto& [k, v] : fp) j[k] = v;
  return j;
}

// "config ('a' then, 'b' now), removed (… then, … now)"
std::string differences(const Json& then, const Fingerprint& now) {
  std::string out;
  auto add = [&](const std::string& k, const std::string& a, const std::string& b) {
    if (!out.empty()) out += "; ";
    out += k + " ('" + a + "' then, '" + b + "' now)";
  };
  for (const auto& [k, v] : now) {
    if (!then.contains(k) || !then[k].is_string()) add(k, "(none)", v);
    else if (then[k].get<std::string>() != v) add(k, then[k].get<std::string>(), v);
  }
  for (const auto& [k, v] : then.items()) {
    bool known = false;
    for (const auto& p : now) known = known || p.first == k;
    if (!known) add(k, v.is_string() ? v.get<std::string>() : v.dump(), "(none)");
  }
  return out;
}

}  // namespace

std::string partial_path(const std::string& output) { return output + ".partial"; }
std::string progress_path(const std::string& output) { return output + ".progress"; }

bool hash_file_range(const std::string& path, uint64_t begin, uint64_t end, uint64_t& hash) {
  std::ifstream in(path, std::ios::binary);
  if (!in || end < begin) return false;
  in.seekg(static_cast<std::streamoff>(begin));
  Xxh64Stream h;
  std::string buf(std::min<uint64_t>(end - begin, uint64_t{1} << 20), '\0');
  for (uint64_t at = begin; at < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - at));
    in.read(buf.data(), static_cast<std::streamsize>(n));
    if (!in) return false;
    h.update({buf.data(), n});
    at += n;
  }
  hash = h.digest();
  return true;
}

ResumeState load_progress(const std::string& command, const std::string& progress, const Fingerprint& fingerprint,
                          const std::vector<ProgressInput>& inputs, const std::vector<std::string>& partials) {
  ResumeState st;
  st.output_sizes.assign(partials.size(), 0);
  if (!file_exists(progress)) {
    st.notes.push_back("no progress file " + progress + ": starting from the first input");
    return st;
  }
  std::ifstream in(progress, std::ios::binary);
  std::string line;
  if (!std::getline(in, line)) {
    st.notes.push_back(progress + " is empty: starting from the first input");
    return st;
  }
  Json h = Json::parse(line, nullptr, false);
  if (h.is_discarded() || !h.is_object() || !h.contains("agpt_progress") || !h["agpt_progress"].is_string() ||
      !h.contains("fingerprint") || !h["fingerprint"].is_object())
    fail(progress, ":1: not a progress file of agpt (an older version's, or damaged); delete it, or rerun without "
         "--resume to start again");
  if (h["agpt_progress"] != command)
    fail(progress, ": written by `agpt data ", h["agpt_progress"].get<std::string>(), "`, not `agpt data ", command,
         "`: is the output the right one? Rerun without --resume to start again");
  std::string diff = differences(h["fingerprint"], fingerprint);
  if (!diff.empty())
    fail("--resume: the options differ from the interrupted run's (", progress, "): ", diff,
         ". Rerun with the interrupted run's options to continue it, or without --resume to start again");
  if (h.contains("data") && !h["data"].is_null()) st.header_data = h["data"].dump();

  std::vector<uint64_t> sizes(partials.size(), 0);
  for (size_t o = 0; o < partials.size(); ++o) sizes[o] = file_exists(partials[o]) ? file_size(partials[o]) : 0;
  std::vector<uint64_t> prev(partials.size(), 0);
  size_t k = 0;
  while (std::getline(in, line)) {
    ProgressEntry e;
    if (!parse_entry(line, e) || e.chunks.size() != partials.size()) {
      st.notes.push_back(cat(progress, ":", k + 2, ": unreadable (an interrupted write?); resuming before it"));
      break;
    }
    if (k >= inputs.size() || inputs[k].name != e.name)
      fail("--resume: input ", k + 1, " was '", e.name, "' in the interrupted run but is '",
           k < inputs.size() ? inputs[k].name : std::string("(none)"),
           "' now: the inputs changed. Give the same inputs to continue, or rerun without --resume to start again");
    std::error_code ec;
    uint64_t now = std::filesystem::file_size(inputs[k].path, ec);
    if (ec) now = 0;  // as the run recorded an unreadable input
    if (now != e.input_size)
      fail("--resume: input ", k + 1, " '", e.name, "' was ", e.input_size, " bytes in the interrupted run but is ",
           ec ? std::string("unreadable") : cat(now, " bytes"),
           " now: it changed. Rerun without --resume to start again");
    bool ok = true;
    for (size_t o = 0; o < partials.size() && ok; ++o) {
      const ChunkMark& c = e.chunks[o];
      uint64_t hash = 0;
      if (c.end < prev[o] || c.end > sizes[o]) {
        st.notes.push_back(cat(partials[o], " is shorter than ", progress, " says; resuming at input ", k + 1));
        ok = false;
      } else if (!hash_file_range(partials[o], prev[o], c.end, hash) || hash != c.hash) {
        st.notes.push_back(cat(partials[o], " differs from what input ", k + 1, " wrote; resuming there"));
        ok = false;
      }
    }
    for (size_t f = 0; f < e.files.size() && ok; ++f) {
      const FileMark& m = e.files[f];
      uint64_t hash = 0;
      if (!file_exists(m.path) || file_size(m.path) != m.size || !hash_file_range(m.path, 0, m.size, hash) ||
          hash != m.hash) {
        st.notes.push_back(cat(m.path, " is missing or changed since input ", k + 1, " wrote it; resuming there"));
        ok = false;
      }
    }
    if (!ok) break;
    for (size_t o = 0; o < partials.size(); ++o) prev[o] = e.chunks[o].end;
    st.done.push_back(std::move(e));
    ++k;
  }
  st.output_sizes = prev;
  return st;
}

ProgressLog::ProgressLog(const std::string& path, const std::string& command, const Fingerprint& fingerprint,
                         const std::string& header_data, const std::vector<ProgressEntry>& kept)
    : path_(path) {
  Json h;
  h["agpt_progress"] = command;
  h["version"] = 1;
  h["fingerprint"] = fingerprint_json(fingerprint);
  h["data"] = header_data.empty() ? Json(nullptr) : Json::parse(header_data);
  std::string text = h.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
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

}  // namespace agpt::curate
