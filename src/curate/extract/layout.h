// The small markup shared by the LaTeX and HTML converters: they write text with markers for hard
// line breaks, paragraph breaks and verbatim spans, and layout() turns that into the final text.
// The source's own whitespace is soft: a run with two or more line ends is a paragraph break,
// any other run is one space.
#pragma once
#include <string>
#include <string_view>

namespace agpt::curate::extract {

constexpr char kLine = '\x01';       // a hard line break (headings, list items, \\, <br>)
constexpr char kPara = '\x02';       // a paragraph break (one blank line)
constexpr char kVerbOpen = '\x03';   // verbatim text follows, kept as it is (code, <pre>)...
constexpr char kVerbClose = '\x04';  // ...up to here

// Resolves the markers: no spaces at line starts or ends, at most one blank line in a row, no
// leading or trailing blank lines. Verbatim spans keep their spaces and line ends (leading and
// trailing blank lines trimmed) and stand on their own lines.
std::string layout(std::string_view marked);

// Replaces the marker bytes in untrusted input by spaces, so that input cannot forge them.
void neutralize_markers(std::string& s);

}  // namespace agpt::curate::extract
