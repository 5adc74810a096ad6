#include "curate/extract/layout.h"

#include <algorithm>

namespace agpt::curate::extract {

void neutralize_markers(std::string& s) {
  for (char& c : s)
    if (c >= '\x01' && c <= '\x04') c = ' ';
}

std::string layout(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  int newlines = 0;  // pending line breaks (2 = paragraph)
  bool space = false;
  auto emit_breaks = [&] {
    if (out.empty()) {
      newlines = 0;
      space = false;
      return;
    }
    if (newlines > 0) {
      while (!out.empty() && out.back() == ' ') out.pop_back();
      out.append(static_cast<size_t>(std::min(newlines, 2)), '\n');
    } else if (space && out.back() != '\n') {
      out += ' ';
    }
    newlines = 0;
    space = false;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      int nl = 0;
      size_t j = i;
      for (; j < s.size() && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'); ++j) nl += s[j] == '\n';
      if (nl >= 2) newlines = 2;
      else space = true;
      i = j - 1;
    } else if (c == kLine) {
      newlines = std::max(newlines, 1);
    } else if (c == kPara) {
      newlines = 2;
    } else if (c == kVerbOpen) {
      size_t e = s.find(kVerbClose, i + 1);
      if (e == std::string_view::npos) e = s.size();
      std::string_view v = s.substr(i + 1, e - i - 1);
      while (!v.empty() && v.front() == '\n') v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      if (!v.empty()) {
        newlines = std::max(newlines, 1);
        emit_breaks();
        out.append(v);
      }
      newlines = std::max(newlines, 1);
      i = e;
    } else {
      emit_breaks();
      out += c;
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n')) out.pop_back();
  return out;
}

}  // namespace agpt::curate::extract
