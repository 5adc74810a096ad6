#include "curate/extract/latex_prepass.h"

#include "curate/extract/latex_scan.h"

namespace agpt::curate::extract::latex {

bool is_verbatim_env(std::string_view name) {
  static constexpr std::string_view kNames[] = {"verbatim", "verbatim*", "Verbatim", "Verbatim*", "lstlisting",
                                                "Sinput",   "Soutput",   "Scode",    "Code",      "CodeInput",
                                                "CodeOutput", "minted",  "alltt",    "comment",   "lstinline"};
  for (auto n : kNames)
    if (name == n) return true;
  return false;
}

std::string strip_sweave_chunks(std::string_view s, bool keep) {
  std::string out;
  out.reserve(s.size());
  bool in_chunk = false;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    size_t end = nl == std::string_view::npos ? s.size() : nl;
    std::string_view line = s.substr(start, end - start);
    start = end + 1;
    std::string_view t = line;
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.remove_suffix(1);
    bool opens = t.starts_with("<<") && t.ends_with(">>=");
    if (opens) {
      if (in_chunk && keep) out += "\\end{Scode}\n";
      in_chunk = true;
      if (keep) out += "\\begin{Scode}\n";
      continue;
    }
    if (in_chunk && !line.empty() && line[0] == '@' && (line.size() == 1 || line[1] == ' ' || line[1] == '\t' ||
                                                        line[1] == '\r' || line[1] == '%')) {
      in_chunk = false;
      if (keep) out += "\\end{Scode}\n";
      continue;
    }
    if (in_chunk && !keep) continue;
    out += line;
    out += '\n';
  }
  if (in_chunk && keep) out += "\\end{Scode}\n";
  return out;
}

std::string strip_comments(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  bool line_has_text = false;  // non-space seen on the current output line
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\') {
      if (s.substr(i).starts_with("\\begin{")) {
        size_t nb = i + 7, ne = s.find('}', nb);
        if (ne != std::string_view::npos && is_verbatim_env(s.substr(nb, ne - nb))) {
          size_t after;
          size_t e = find_end(s, ne + 1, s.substr(nb, ne - nb), after);
          if (e == std::string_view::npos) after = s.size();
          out.append(s.substr(i, after - i));
          i = after;
          line_has_text = true;
          continue;
        }
      }
      if (s.substr(i).starts_with("\\verb") && i + 5 < s.size() && !is_letter(s[i + 5]) && s[i + 5] != '*') {
        char delim = s[i + 5];
        size_t e = s.find(delim, i + 6);
        size_t nl = s.find('\n', i + 6);
        if (e != std::string_view::npos && (nl == std::string_view::npos || e < nl)) {
          out.append(s.substr(i, e + 1 - i));
          i = e + 1;
          line_has_text = true;
          continue;
        }
      }
      out += c;
      if (i + 1 < s.size()) out += s[i + 1];
      i += 2;
      line_has_text = true;
      continue;
    }
    if (c == '%') {
      size_t nl = s.find('\n', i);
      if (nl == std::string_view::npos) break;
      i = nl + 1;
      if (!line_has_text) {
        // A comment-only line: drop it and the spaces before the '%'.
        while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
        continue;
      }
      // TeX eats the line end and the next line's indentation; a blank line after still ends the paragraph.
      while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
      if (i < s.size() && s[i] == '\n') out += '\n';
      continue;
    }
    if (c == '\n') {
      line_has_text = false;
    } else if (c != ' ' && c != '\t' && c != '\r') {
      line_has_text = true;
    }
    if (c != '\r') out += c;
    ++i;
  }
  return out;
}

}  // namespace agpt::curate::extract::latex
