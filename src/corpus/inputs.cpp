#include "corpus/inputs.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "base/log.h"
#include "corpus/stream.h"

namespace agpt::corpus {

namespace fs = std::filesystem;

namespace {

constexpr const char* kKnownNames =
    ".jsonl .json .ndjson (one document per line) or .txt .md .rst .text .markdown (one document per "
    "file), each optionally compressed as .gz or .zst";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A hint when the name says a compression we cannot read, else "".
std::string unsupported_compression(std::string_view path) {
  std::string l = lower(path);
  struct Hint {
    const char* ext;
    const char* tool;
  };
  static const Hint hints[] = {{".bz2", "bunzip2"}, {".xz", "unxz"},  {".lzma", "unxz"},
                               {".lz4", "lz4 -d"},  {".zip", "unzip"}, {".7z", "7z x"},
                               {".br", "brotli -d"}, {".tar", "tar xf"}, {".tgz", "tar xzf"}};
  for (const auto& h : hints)
    if (ends_with(l, h.ext))
      return cat(path, ": ", h.ext, " files are not supported; unpack it first (", h.tool,
                 ") or recompress with zstd");
  return "";
}

bool has_glob_chars(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos || (!s.empty() && s[0] == '~'); }

std::string normal(const fs::path& p) {
  std::string s = p.lexically_normal().string();
  return s.empty() ? "." : s;
}

struct Collector {
  std::vector<InputFile> files;
  std::set<std::string> seen;

  void add(std::string path, std::string name, InputKind kind) {
    if (!seen.insert(path).second) {
      log_warn(path, ": given more than once; reading it once");
      return;
    }
    files.push_back({std::move(path), std::move(name), kind});
  }

  // Every known file below dir, sorted. Returns how many were added; counts the ignored ones.
  size_t add_directory(const std::string& spec, const fs::path& dir, uint64_t& ignored, std::string& ignored_example) {
    std::vector<std::pair<std::string, std::string>> found;  // path, name
    std::vector<InputKind> kinds;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
    if (ec) fail(spec, ": cannot list directory ", dir.string(), " (", ec.message(), ")");
    for (; it != end; it.increment(ec)) {
      if (ec) fail(spec, ": cannot list directory ", dir.string(), " (", ec.message(), ")");
      std::error_code sec;
      if (it->is_symlink(sec) && it->is_directory(sec)) {
        log_warn(it->path().string(), ": a link to a directory, not followed (give it as an input of its own)");
        continue;
      }
      if (!it->is_regular_file(sec)) continue;  // directories are walked; sockets etc. ignored
      std::string path = normal(it->path());
      if (!input_kind(path)) {
        if (ignored++ == 0) ignored_example = path;
        continue;
      }
      found.emplace_back(path, it->path().lexically_relative(dir).generic_string());
    }
    if (ec) fail(spec, ": cannot list directory ", dir.string(), " (", ec.message(), ")");
    std::sort(found.begin(), found.end());
    for (auto& [path, name] : found) add(path, name, *input_kind(path));
    return found.size();
  }
};

}  // namespace

std::optional<InputKind> input_kind(std::string_view path) {
  std::string name = lower(strip_compression_suffix(path));
  for (const char* e : {".jsonl", ".json", ".ndjson"})
    if (ends_with(name, e)) return InputKind::kJsonl;
  for (const char* e : {".txt", ".md", ".rst", ".text", ".markdown"})
    if (ends_with(name, e)) return InputKind::kText;
  return std::nullopt;
}

std::vector<InputFile> expand_input_files(const std::vector<std::string>& specs) {
  Collector c;
  for (const std::string& spec : specs) {
    if (spec.empty()) fail("an input path is empty");
    std::error_code ec;
    fs::file_status st = fs::status(spec, ec);
    if (!ec && fs::is_directory(st)) {
      uint64_t ignored = 0;
      std::string example;
      size_t n = c.add_directory(spec, spec, ignored, example);
      if (n == 0)
        fail(spec, ": the directory holds no input files (looked for ", kKnownNames, "; ignored ", ignored,
             " other files", ignored ? cat(", e.g. ", example) : std::string(), ")");
      if (ignored > 0) log_info(spec, ": ignored ", ignored, " files of other types (e.g. ", example, ")");
      continue;
    }
    if (!ec && fs::exists(st)) {
      std::string bad = unsupported_compression(spec);
      if (!bad.empty()) fail(bad);
      auto kind = input_kind(spec);
      if (!kind) fail(spec, ": unknown input type; agpt reads ", kKnownNames, " (rename the file if it is one of these)");
      std::string path = normal(spec);
      c.add(path, path, *kind);
      continue;
    }
    if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
      fail(spec, ": cannot access (", ec.message(), ")");
    if (!has_glob_chars(spec)) fail(spec, ": no such file or directory");
    glob_t g{};
    int rc = ::glob(spec.c_str(), GLOB_NOSORT | GLOB_TILDE, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (rc == GLOB_NOMATCH) fail(spec, ": the pattern matches no files");
    if (rc != 0) fail(spec, ": cannot expand the pattern (", rc == GLOB_NOSPACE ? "out of memory" : "read error", ")");
    std::sort(matches.begin(), matches.end());
    uint64_t ignored = 0;
    std::string example;
    size_t added = 0;
    for (const std::string& m : matches) {
      std::error_code mec;
      if (fs::is_directory(m, mec)) {
        added += c.add_directory(spec, m, ignored, example);
        continue;
      }
      std::string bad = unsupported_compression(m);
      if (!bad.empty()) fail(bad);
      auto kind = input_kind(m);
      if (!kind) {
        if (ignored++ == 0) example = m;
        continue;
      }
      std::string path = normal(m);
      c.add(path, path, *kind);
      ++added;
    }
    if (added == 0)
      fail(spec, ": the pattern matches ", matches.size(), " paths but no input files (looked for ", kKnownNames,
           ignored ? cat("; e.g. ", example, " is not one") : std::string(), ")");
    if (ignored > 0) log_info(spec, ": ignored ", ignored, " matches of other types (e.g. ", example, ")");
  }
  return std::move(c.files);
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& specs) {
  std::vector<std::string> out;
  for (auto& f : expand_input_files(specs)) out.push_back(std::move(f.path));
  return out;
}

}  // namespace agpt::corpus
