#include "dataset/data_list.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "base/error.h"
#include "base/file.h"

namespace agpt::dataset {

std::vector<DataListEntry> parse_data_list(const std::string& path) {
  std::string base = std::filesystem::path(path).parent_path().string();
  return parse_data_list_text(read_file(path), path, base);
}

std::vector<DataListEntry> parse_data_list_text(const std::string& text, const std::string& name,
                                                const std::string& base_dir) {
  std::vector<DataListEntry> out;
  std::map<std::string, int> seen;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.empty()) continue;
    if (f.size() < 2 || f.size() > 3)
      fail(name, ":", number, ": expected `weight prefix [corpus]`, found ", f.size(), " fields");
    DataListEntry e;
    e.line = number;
    char* end = nullptr;
    errno = 0;
    e.weight = std::strtod(f[0].c_str(), &end);
    if (end == f[0].c_str() || *end != '\0' || errno == ERANGE)
      fail(name, ":", number, ": weight `", f[0], "` is not a number");
    if (!std::isfinite(e.weight) || e.weight <= 0)
      fail(name, ":", number, ": weight ", f[0], " must be a positive finite number (drop the line to leave a source out)");
    std::string prefix = f[1];
    for (const char* ext : {".bin", ".idx"})
      if (prefix.size() > 4 && prefix.compare(prefix.size() - 4, 4, ext) == 0) prefix.resize(prefix.size() - 4);
    std::filesystem::path p(prefix);
    if (p.is_relative() && !base_dir.empty()) p = std::filesystem::path(base_dir) / p;
    e.prefix = p.lexically_normal().string();
    e.corpus = f.size() == 3 ? f[2] : p.filename().string();
    if (auto it = seen.find(e.prefix); it != seen.end())
      fail(name, ":", number, ": prefix ", e.prefix, " is listed twice (first on line ", it->second,
           "); give each file one line and adjust its weight instead");
    seen[e.prefix] = number;
    out.push_back(std::move(e));
  }
  if (out.empty()) fail(name, ": the data file list names no sources");
  return out;
}

}  // namespace agpt::dataset
