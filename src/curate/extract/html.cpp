#include "curate/extract/html.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <climits>
#include <cstring>
#include <mutex>

#include "corpus/json.h"
#include "curate/extract/layout.h"

namespace agpt::curate::extract {
namespace {

bool name_is(const xmlNode* n, const char* name) {
  return n->name && xmlStrcasecmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
}

bool any_of(const xmlNode* n, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (name_is(n, name)) return true;
  return false;
}

std::string attr(const xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return {};
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

bool has_class(const std::string& classes, std::string_view c) {
  size_t i = 0;
  while (i < classes.size()) {
    while (i < classes.size() && classes[i] == ' ') ++i;
    size_t j = classes.find(' ', i);
    if (j == std::string::npos) j = classes.size();
    if (std::string_view(classes).substr(i, j - i) == c) return true;
    i = j;
  }
  return false;
}

// Elements that are not the page's content: page furniture, code for the browser, forms.
bool dropped(const xmlNode* n) {
  if (any_of(n, {"script", "style", "nav", "header", "footer", "noscript", "template", "iframe", "svg", "form",
                 "button", "select", "head", "object", "embed", "canvas", "map", "aside"}))
    return true;
  std::string role = attr(n, "role");
  if (role == "navigation" || role == "banner" || role == "contentinfo" || role == "search") return true;
  std::string cls = attr(n, "class");
  // Sphinx (Python's and most Debian HTML manuals): sidebars, the nav bar, the "¶" permalinks.
  return has_class(cls, "sphinxsidebar") || has_class(cls, "related") || has_class(cls, "headerlink") ||
         has_class(cls, "navigation") || has_class(cls, "breadcrumbs");
}

bool is_block(const xmlNode* n) {
  return any_of(n, {"p", "div", "section", "article", "main", "blockquote", "li", "dt", "dd", "ul", "ol", "dl",
                    "figure", "figcaption", "address", "center", "table", "tr", "hr", "caption", "details",
                    "summary", "body", "html"});
}

class Walker {
 public:
  std::string out;

  void walk(const xmlNode* n, int depth) {
    for (; n; n = n->next) node(n, depth);
  }

 private:
  struct List {
    bool ordered;
    int count;
  };

  void node(const xmlNode* n, int depth) {
    if (depth > 512) return;  // libxml2 already caps nesting; this keeps the stack safe regardless
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      if (n->content) {
        std::string t(reinterpret_cast<const char*>(n->content));
        neutralize_markers(t);
        out += t;
      }
      return;
    }
    if (n->type != XML_ELEMENT_NODE || dropped(n)) return;
    if (n->name && n->name[0] == 'h' && n->name[1] >= '1' && n->name[1] <= '6' && n->name[2] == 0) {
      out += kPara;
      out.append(static_cast<size_t>(n->name[1] - '0'), '#');
      out += ' ';
      size_t start = out.size();
      walk(n->children, depth + 1);
      // A heading is one line whatever its markup.
      for (size_t i = start; i < out.size(); ++i)
        if (out[i] == kLine || out[i] == kPara || out[i] == '\n') out[i] = ' ';
      out += kPara;
      return;
    }
    if (name_is(n, "pre")) {
      std::string code;
      collect_text(n->children, code, depth + 1);
      out += kVerbOpen;
      for (char c : code) out += (c == kVerbClose || c == kVerbOpen) ? ' ' : c;
      out += kVerbClose;
      return;
    }
    if (name_is(n, "br")) {
      out += kLine;
      return;
    }
    if (name_is(n, "img")) {
      return;  // alt texts are mostly file names or empty; captions carry the meaning
    }
    if (name_is(n, "math")) {
      std::string tex = attr(n, "alttext");
      if (!tex.empty()) {
        neutralize_markers(tex);
        out += "$" + tex + "$";
        return;
      }
    }
    if (name_is(n, "ul") || name_is(n, "ol")) {
      lists_.push_back({name_is(n, "ol"), 0});
      out += kPara;
      walk(n->children, depth + 1);
      out += kPara;
      lists_.pop_back();
      return;
    }
    if (name_is(n, "li")) {
      out += kLine;
      if (!lists_.empty() && lists_.back().ordered) out += std::to_string(++lists_.back().count) + ". ";
      else out += "- ";
      walk(n->children, depth + 1);
      out += kLine;
      return;
    }
    if (name_is(n, "tr")) {
      out += kLine;
      bool first = true;
      for (const xmlNode* c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || !(name_is(c, "td") || name_is(c, "th"))) continue;
        if (!first) out += " | ";
        first = false;
        size_t start = out.size();
        walk(c->children, depth + 1);
        for (size_t i = start; i < out.size(); ++i)  // one row, one line
          if (out[i] == kLine || out[i] == kPara || out[i] == '\n') out[i] = ' ';
      }
      out += kLine;
      return;
    }
    bool block = is_block(n);
    if (block) out += name_is(n, "li") || name_is(n, "dd") || name_is(n, "dt") ? kLine : kPara;
    walk(n->children, depth + 1);
    if (block) out += kPara;
  }

  // The text under n, as it is (for <pre>): markup inside code blocks is mostly highlighting.
  void collect_text(const xmlNode* n, std::string& o, int depth) {
    if (depth > 512) return;
    for (; n; n = n->next) {
      if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        if (n->content) o += reinterpret_cast<const char*>(n->content);
      } else if (n->type == XML_ELEMENT_NODE) {
        if (name_is(n, "br")) o += '\n';
        else if (!dropped(n)) collect_text(n->children, o, depth + 1);
      }
    }
  }

  std::vector<List> lists_;
};

void init_libxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

std::string collapse(const std::string& s) {
  std::string o;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !o.empty();
    } else {
      if (space) o += ' ';
      space = false;
      o += c;
    }
  }
  return o;
}

}  // namespace

HtmlText html_to_text(std::string_view html) {
  init_libxml();
  HtmlText out;
  if (html.size() > static_cast<size_t>(INT_MAX)) {
    out.failure = "too large (over 2 GB)";
    return out;
  }
  // Valid UTF-8 is read as UTF-8 whatever the page claims; otherwise libxml2 follows the page's
  // <meta charset> (and assumes ISO-8859-1 without one), converting to UTF-8.
  const char* encoding = corpus::is_valid_utf8(html) ? "UTF-8" : nullptr;
  int options = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                HTML_PARSE_COMPACT;  // not NOIMPLIED: without <body>, libxml2 2.9 nests <p> into a preceding <h1>
  htmlDocPtr doc = htmlReadMemory(html.data(), static_cast<int>(html.size()), nullptr, encoding, options);
  if (!doc) {
    out.failure = "libxml2 could not parse it as HTML";
    return out;
  }
  const xmlNode* root = xmlDocGetRootElement(doc);
  // The title, from <head> (which the walk drops).
  for (const xmlNode* n = root; n; n = n->next) {
    for (const xmlNode* h = n->children; h; h = h->next) {
      if (h->type == XML_ELEMENT_NODE && name_is(h, "head")) {
        for (const xmlNode* t = h->children; t; t = t->next)
          if (t->type == XML_ELEMENT_NODE && name_is(t, "title")) {
            xmlChar* c = xmlNodeGetContent(t);
            if (c) {
              out.title = collapse(reinterpret_cast<const char*>(c));
              xmlFree(c);
            }
          }
      }
    }
  }
  Walker w;
  w.walk(root, 0);
  xmlFreeDoc(doc);
  out.text = layout(w.out);
  if (!corpus::is_valid_utf8(out.text)) {
    out.failure = "text is not valid UTF-8 after decoding (wrong <meta charset>?)";
    out.text.clear();
  }
  if (!corpus::is_valid_utf8(out.title)) out.title.clear();
  return out;
}

}  // namespace agpt::curate::extract
