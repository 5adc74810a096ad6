// A tiny bitmap font designed for axis labels: 5x7 glyphs above the baseline plus 2 rows of
// descenders, every printable ASCII character. Text is drawn by scaling each font pixel to a
// scale x scale block, so labels stay crisp at any integer size.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace agpt::plot {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphRows = 9;    // 7 above the baseline, 2 below
inline constexpr int kBaselineRow = 7;  // rows [0, 7) sit on the baseline
inline constexpr int kAdvance = 6;      // glyph plus one column of spacing
inline constexpr int kLineHeight = 10;

// Rows top to bottom; bit 4 is the leftmost column. Characters outside printable ASCII give '?'.
const std::array<uint8_t, kGlyphRows>& glyph(char c);

// The characters the font draws for UTF-8 text: one per code point, '?' for non-ASCII ones.
std::string font_text(std::string_view utf8);

// Width in pixels of font_text(utf8) at scale (no trailing spacing column).
int text_width(std::string_view utf8, int scale);

}  // namespace agpt::plot
