#include "curate/extract/latex_scan.h"

namespace agpt::curate::extract::latex {

std::string_view read_name(std::string_view s, size_t& i) {
  size_t b = i;
  if (i >= s.size()) return {};
  if (is_letter(s[i])) {
    while (i < s.size() && is_letter(s[i])) ++i;
  } else {
    ++i;
  }
  return s.substr(b, i - b);
}

void skip_space(std::string_view s, size_t& i) {
  bool newline = false;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == '\t') {
      ++i;
    } else if (s[i] == '\n' && !newline) {
      // A blank line is a paragraph break, not space: stop before it.
      size_t j = i + 1;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j < s.size() && s[j] == '\n') return;
      newline = true;
      ++i;
    } else {
      return;
    }
  }
}

// Position just past the '}' closing the group whose '{' is at s[i], or npos.
static size_t close_brace(std::string_view s, size_t i, char open = '{', char close = '}') {
  int depth = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      ++i;  // an escaped brace or bracket does not count
      continue;
    }
    if (c == open) {
      ++depth;
    } else if (c == close) {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

bool read_arg(std::string_view s, size_t& i, std::string_view& out) {
  skip_space(s, i);
  if (i >= s.size()) {
    out = {};
    return false;
  }
  if (s[i] == '{') {
    size_t e = close_brace(s, i);
    if (e == std::string_view::npos) {
      out = s.substr(i + 1);
      i = s.size();
      return false;
    }
    out = s.substr(i + 1, e - i - 2);
    i = e;
    return true;
  }
  size_t b = i;
  if (s[i] == '\\') {
    ++i;
    read_name(s, i);
  } else {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;  // rest of a UTF-8 char
  }
  out = s.substr(b, i - b);
  return true;
}

bool read_optional(std::string_view s, size_t& i, std::string_view& out) {
  size_t j = i;
  skip_space(s, j);
  if (j >= s.size() || s[j] != '[') return false;
  // Brackets inside braces ([{a]b}]) do not close the argument.
  int braces = 0;
  for (size_t k = j + 1; k < s.size(); ++k) {
    char c = s[k];
    if (c == '\\') {
      ++k;
    } else if (c == '{') {
      ++braces;
    } else if (c == '}') {
      --braces;
    } else if (c == ']' && braces <= 0) {
      out = s.substr(j + 1, k - j - 1);
      i = k + 1;
      return true;
    }
  }
  return false;
}

size_t find_end(std::string_view s, size_t i, std::string_view name, size_t& end_after) {
  int depth = 1;
  while (i < s.size()) {
    size_t p = s.find('\\', i);
    if (p == std::string_view::npos) break;
    std::string_view rest = s.substr(p);
    bool is_begin = rest.starts_with("\\begin{"), is_end = rest.starts_with("\\end{");
    if (is_begin || is_end) {
      size_t nb = p + (is_begin ? 7 : 5);
      size_t ne = s.find('}', nb);
      if (ne == std::string_view::npos) break;
      if (s.substr(nb, ne - nb) == name) {
        depth += is_begin ? 1 : -1;
        if (depth == 0) {
          end_after = ne + 1;
          return p;
        }
      }
      i = ne + 1;
    } else {
      i = p + 2;  // skip the escaped character
    }
  }
  end_after = s.size();
  return std::string_view::npos;
}

}  // namespace agpt::curate::extract::latex
