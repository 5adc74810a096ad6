// Character edit distance (Levenshtein: insertions, deletions, substitutions of code points) for
// measuring extraction quality, e.g. a paper's PDF text against its LaTeX source.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate::extract {

// The code points of UTF-8 text (invalid bytes become U+FFFD).
std::vector<uint32_t> code_points(std::string_view utf8);

// Levenshtein distance by Myers' bit-vector algorithm in Hyyrö's block form: O(n·m/64) time and
// O(m/64 · σ) memory (σ = distinct symbols of a), so two 100 KB papers take about a second.
size_t edit_distance(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);

// The plain dynamic programme with two rows (the reference the tests check against).
size_t edit_distance_reference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);

// Whitespace runs become one space, ends trimmed; typographic quotes and dashes become ASCII.
std::string normalize_for_distance(std::string_view text);

// edit_distance / max(length) of the normalized texts, in [0, 1] (0 when both are empty).
double normalized_edit_distance(std::string_view a, std::string_view b);

}  // namespace agpt::curate::extract
