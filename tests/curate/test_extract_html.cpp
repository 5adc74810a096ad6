// HTML to text with libxml2: page furniture dropped, structure kept as text.
#include <gtest/gtest.h>

#include "curate/extract/html.h"

namespace agpt::curate::extract {
namespace {

TEST(ExtractHtml, KeepsContentDropsFurniture) {
  HtmlText h = html_to_text(
      "<!DOCTYPE html><html><head><title> The  Page </title><style>p{color:red}</style>"
      "<script>var x = 1;</script></head><body>"
      "<nav><a href='/'>Home</a></nav><header>Site banner</header>"
      "<div class='sphinxsidebar'>Sidebar</div><div role='navigation'>Prev | Next</div>"
      "<h1>Main <em>title</em><a class='headerlink' href='#'>\xC2\xB6</a></h1>"
      "<p>First   paragraph\nwith <b>bold</b> text.</p><p>Second<br>line.</p>"
      "<ul><li>one</li><li>two <code>x</code></li></ul><ol><li>a</li><li>b</li></ol>"
      "<pre>def f():\n    return 1\n</pre>"
      "<table><tr><th>name</th><th>density</th></tr><tr><td>iron</td><td>7.87</td></tr></table>"
      "<footer>Copyright</footer></body></html>");
  ASSERT_TRUE(h.failure.empty());
  EXPECT_EQ(h.title, "The Page");
  EXPECT_EQ(h.text,
            "# Main title\n\nFirst paragraph with bold text.\n\nSecond\nline.\n\n- one\n- two x\n\n1. a\n2. b\n\n"
            "def f():\n    return 1\n\nname | density\niron | 7.87");
}

TEST(ExtractHtml, MalformedMarkupAndLatin1) {
  HtmlText h = html_to_text("<p>Unclosed <b>bold <i>and<p>next</div></span> para");
  ASSERT_TRUE(h.failure.empty());
  EXPECT_EQ(h.text, "Unclosed bold and\n\nnext para");
  // A page declared as ISO-8859-1 is converted to UTF-8.
  HtmlText l = html_to_text("<html><head><meta charset='iso-8859-1'></head><body><p>caf\xE9</p></body></html>");
  EXPECT_EQ(l.text, "caf\xC3\xA9");
  EXPECT_TRUE(html_to_text("").text.empty());
}

TEST(ExtractHtml, MathAltTextBecomesLatex) {
  HtmlText h = html_to_text("<p>Energy <math alttext='E=mc^2'><mi>E</mi></math> holds.</p>");
  EXPECT_EQ(h.text, "Energy $E=mc^2$ holds.");
}

}  // namespace
}  // namespace agpt::curate::extract
