#include "corpus/document.h"

#include <cstdio>

namespace agpt::corpus {

namespace {

std::string grouped(uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string human_bytes(uint64_t b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1000 && u < 5) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace

void ReadReport::add_skip(const std::string& reason, std::string message) {
  ++skipped;
  ++skipped_by_reason[reason];
  if (examples.size() < kMaxExamples) examples.push_back(std::move(message));
}

std::string ReadReport::summary() const {
  std::string s = "read " + grouped(files) + (files == 1 ? " file: " : " files: ") + grouped(lines) +
                  (lines == 1 ? " line, " : " lines, ") + grouped(documents) +
                  (documents == 1 ? " document, " : " documents, ") + human_bytes(bytes);
  if (blank_lines > 0) s += " (" + grouped(blank_lines) + " blank lines ignored)";
  s += "\n";
  if (skipped == 0) {
    s += "skipped nothing\n";
    return s;
  }
  s += "skipped " + grouped(skipped) + (skipped == 1 ? " line:\n" : " lines:\n");
  for (const auto& [why, n] : skipped_by_reason) s += "  " + grouped(n) + "  " + why + "\n";
  s += examples.size() < skipped ? "first problems:\n" : "problems:\n";
  for (const auto& e : examples) s += "  " + e + "\n";
  return s;
}

}  // namespace agpt::corpus
