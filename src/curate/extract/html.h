// HTML to text through libxml2's HTML parser (forgiving, like browsers, and in Debian since
// forever): navigation, scripts, styles, headers and footers dropped; headings, paragraphs, lists,
// pre/code and tables kept as text.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate::extract {

struct HtmlText {
  std::string text;   // "# " ... "###### " heading lines, "- " list items, table rows "a | b"
  std::string title;  // <title>, whitespace collapsed
  std::vector<std::string> warnings;
  std::string failure;  // non-empty when the data could not be parsed at all
};

// Converts one HTML page. Never throws for bad input. Safe to call from several threads.
HtmlText html_to_text(std::string_view html);

}  // namespace agpt::curate::extract
