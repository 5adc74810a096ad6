#include "curate/extract/inputs.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "base/error.h"

namespace agpt::curate::extract {
namespace {

namespace fs = std::filesystem;

std::string canonical_or_same(const std::string& p) {
  std::error_code ec;
  auto c = fs::weakly_canonical(p, ec);
  return ec ? p : c.string();
}

void add_directory(const std::string& dir, std::optional<Format> forced, std::vector<InputEntry>& out) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) files.push_back(it->path().string());
  }
  if (ec) fail(dir, ": cannot list the directory (", ec.message(), ")");
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    InputEntry e;
    e.name = fs::path(f).lexically_relative(dir).string();
    e.path = std::move(f);
    e.format = forced ? forced : format_of_path(e.path);
    out.push_back(std::move(e));
  }
}

}  // namespace

std::vector<InputEntry> list_inputs(const std::vector<std::string>& specs, std::optional<Format> forced,
                                    const std::vector<std::string>& exclude) {
  std::vector<InputEntry> all;
  for (const auto& spec : specs) {
    std::error_code ec;
    if (fs::is_directory(spec, ec)) {
      add_directory(spec, forced, all);
      continue;
    }
    if (fs::is_regular_file(spec, ec)) {
      InputEntry e{spec, spec, forced ? forced : format_of_path(spec)};
      if (!e.format)
        fail(spec, ": not a format agpt data extract reads; known: ", known_extensions(),
             ". Use --format to force one.");
      all.push_back(std::move(e));
      continue;
    }
    glob_t g{};
    int rc = ::glob(spec.c_str(), GLOB_TILDE | GLOB_NOSORT, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0)
      for (size_t k = 0; k < g.gl_pathc; ++k) matches.emplace_back(g.gl_pathv[k]);
    globfree(&g);
    if (matches.empty()) fail(spec, ": no such file or directory, and no file matches it as a pattern");
    std::sort(matches.begin(), matches.end());
    for (const auto& m : matches) {
      if (fs::is_directory(m, ec)) {
        add_directory(m, forced, all);
      } else if (fs::is_regular_file(m, ec)) {
        all.push_back({m, m, forced ? forced : format_of_path(m)});
      }
    }
  }
  std::set<std::string> seen;
  for (const auto& x : exclude) seen.insert(canonical_or_same(x));
  std::vector<InputEntry> out;
  for (auto& e : all)
    if (seen.insert(canonical_or_same(e.path)).second) out.push_back(std::move(e));
  if (out.empty()) fail("no input files in ", specs.size(), " input spec(s)");
  return out;
}

}  // namespace agpt::curate::extract
