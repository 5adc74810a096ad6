// The command tables of the LaTeX converter (latex.cpp): which commands are dropped with their
// arguments, unwrapped, replaced by a symbol or are headings; math environments; accents.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace agpt::curate::extract::latex {

// Commands whose arguments are dropped with them: name -> number of mandatory arguments
// (optional [..] arguments before them are dropped too).
const std::unordered_map<std::string_view, int>& dropped_commands();
// Commands replaced by their (first) argument's text.
const std::unordered_set<std::string_view>& unwrapped_commands();
// Commands without arguments that become a fixed text ("" = dropped).
const std::unordered_map<std::string_view, std::string_view>& symbol_commands();
// Sectioning commands -> the Markdown prefix of their line ("" = run-in, like \paragraph).
const std::unordered_map<std::string_view, std::string_view>& heading_commands();
// Environments whose content is math (kept as LaTeX between dollar signs).
bool is_math_env(std::string_view name);
// For display environments of aligned lines: "aligned" or "gathered"; "" for the others.
std::string_view aligned_form(std::string_view name);
// \' \` \^ \" \~ \= \. \u \v \H \c \k \r \d \b
bool is_accent_command(std::string_view name);
// Combines a letter with a TeX accent: \'e -> é, by Unicode composition (NFC).
std::string accent(std::string_view cmd, std::string_view letter);

}  // namespace agpt::curate::extract::latex
