// Low-level scanning of LaTeX source for latex.cpp: control-sequence names, brace groups,
// optional arguments and matching \end{...}, with the escapes (\{ \} \\) that TeX honours.
// Every function stays inside the view: unbalanced input ends at the end, never beyond.
#pragma once
#include <cstddef>
#include <string_view>

namespace agpt::curate::extract::latex {

inline bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '@'; }

// Reads a control sequence name at s[i] (just after the backslash): a run of letters, or one other
// character ("" at the end). i moves past it.
std::string_view read_name(std::string_view s, size_t& i);

// Skips spaces and tabs and at most one newline (what TeX skips between a command and its argument).
void skip_space(std::string_view s, size_t& i);

// Reads a mandatory argument at s[i] (after skip_space): a brace group's inside, or else one token
// (a control sequence with its backslash, or one UTF-8 character). False when s ends first or the
// group is unbalanced (then out is the rest of s and i is at the end).
bool read_arg(std::string_view s, size_t& i, std::string_view& out);

// Reads an optional [..] argument if one follows (after skip_space); false (i unchanged) when none.
bool read_optional(std::string_view s, size_t& i, std::string_view& out);

// From i (just after \begin{name}), the position of the matching "\end{name}" (nested
// \begin{name} counted), or npos. end_after receives the position just past it.
size_t find_end(std::string_view s, size_t i, std::string_view name, size_t& end_after);

}  // namespace agpt::curate::extract::latex
