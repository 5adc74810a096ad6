#include "curate/extract/latex.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "curate/extract/latex_commands.h"
#include "curate/extract/latex_prepass.h"
#include "curate/extract/latex_scan.h"
#include "curate/extract/layout.h"

namespace agpt::curate::extract {
namespace {

using namespace latex;  // NOLINT: the scanning helpers

// \ref{key} is written as kRefOpen key kRefClose and replaced by the number once every label is known.
constexpr char kRefOpen = '\x05';
constexpr char kRefClose = '\x06';

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

class Converter {
 public:
  Converter(const LatexOptions& options, const IncludeResolver& resolver, LatexText& result)
      : opt_(options), resolver_(resolver), result_(result) {}

  void run(std::string_view source) {
    std::string src = prepare(source);
    std::string_view s = src;
    size_t b = s.find("\\begin{document}");
    std::string body_out;
    if (b == std::string_view::npos) {
      text(s, 0);
    } else {
      scan_preamble(s.substr(0, b), 0);
      size_t start = b + 16;
      size_t e = s.find("\\end{document}", start);
      std::string_view body = s.substr(start, e == std::string_view::npos ? std::string_view::npos : e - start);
      emit_title_block();
      text(body, 0);
    }
    result_.text = resolve_refs(layout(out_));
    result_.title = resolve_refs(result_.title);
    result_.author = resolve_refs(result_.author);
  }

 private:
  std::string prepare(std::string_view source) {
    std::string s(source);
    neutralize_markers(s);  // our markers cannot come from the input
    for (char& c : s)
      if (c == kRefOpen || c == kRefClose) c = ' ';
    if (opt_.sweave) s = strip_sweave_chunks(s, opt_.keep_code_chunks);
    return strip_comments(s);
  }

  void warn(std::string w) {
    if (result_.warnings.size() >= 20) return;
    if (std::find(result_.warnings.begin(), result_.warnings.end(), w) == result_.warnings.end())
      result_.warnings.push_back(std::move(w));
  }

  // The text of a fragment as one line (titles, captions, headings).
  std::string plain(std::string_view s, int depth) {
    std::string saved;
    std::swap(saved, out_);
    text(s, depth + 1);
    std::swap(saved, out_);
    return one_line(layout(saved));
  }

  void emit_title_block() {
    if (title_emitted_ || result_.title.empty()) return;
    title_emitted_ = true;
    out_ += kPara;
    out_ += "# " + result_.title;
    out_ += kPara;
    if (!result_.author.empty()) {
      out_ += result_.author;
      out_ += kPara;
    }
    if (!abstract_.empty()) {
      out_ += "Abstract";
      out_ += kLine;
      out_ += abstract_;
      out_ += kPara;
    }
    if (!keywords_.empty()) {
      out_ += "Keywords: " + keywords_;
      out_ += kPara;
    }
  }

  // The preamble: only definitions, the title, the author and (JSS) the abstract matter.
  void scan_preamble(std::string_view s, int depth) {
    size_t i = 0;
    while (i < s.size()) {
      size_t p = s.find('\\', i);
      if (p == std::string_view::npos) break;
      i = p + 1;
      std::string_view name = read_name(s, i);
      if (name == "newcommand" || name == "renewcommand" || name == "providecommand" || name == "def" ||
          name == "gdef" || name == "edef" || name == "DeclareMathOperator" || name == "DeclareRobustCommand" ||
          name == "let" || name == "newcommand*" || name == "renewcommand*") {
        define(s, i, name);
      } else if (name == "title" || name == "author" || name == "Abstract" || name == "Keywords") {
        std::string_view opt, arg;
        read_optional(s, i, opt);
        read_arg(s, i, arg);
        set_front_matter(name, arg, depth);
      } else if ((name == "input" || name == "include") && depth < opt_.max_include_depth) {
        std::string content;
        if (include(s, i, content)) scan_preamble(prepare(content), depth + 1);
      }
    }
  }

  void set_front_matter(std::string_view name, std::string_view arg, int depth) {
    if (name == "title") {
      result_.title = plain(arg, depth);
    } else if (name == "author") {
      std::string a(arg);
      for (std::string_view sep : {"\\\\", "\\And", "\\AND", "\\and"}) {
        for (size_t p = a.find(sep); p != std::string::npos; p = a.find(sep, p + 2)) a.replace(p, sep.size(), ", ");
      }
      result_.author = plain(a, depth);
      for (size_t p; (p = result_.author.find(" ,")) != std::string::npos;) result_.author.erase(p, 1);
      // Separators from several sources collapse: "A, , B" -> "A, B".
      std::string& au = result_.author;
      for (size_t p; (p = au.find(",  ,")) != std::string::npos || (p = au.find(", ,")) != std::string::npos;)
        au.erase(p, au.compare(p, 4, ",  ,") == 0 ? 3 : 2);
    } else if (name == "Abstract") {
      abstract_ = layout(plain_keep_lines(arg, depth));
    } else if (name == "Keywords") {
      keywords_ = plain(arg, depth);
    }
  }

  std::string plain_keep_lines(std::string_view s, int depth) {
    std::string saved;
    std::swap(saved, out_);
    text(s, depth + 1);
    std::swap(saved, out_);
    return saved;
  }

  // \newcommand{\name}[n][default]{body}, \def\name#1#2{body}, \DeclareMathOperator{\name}{text},
  // \let\a\b. Only stored; expanded when used (with a budget).
  void define(std::string_view s, size_t& i, std::string_view how) {
    std::string_view name_arg;
    size_t j = i;
    if (how == "let") {
      skip_space(s, j);
      std::string_view a, b;
      if (!read_arg(s, j, a)) return;
      skip_space(s, j);
      if (j < s.size() && s[j] == '=') ++j;
      if (!read_arg(s, j, b)) return;
      i = j;
      auto it = macros_.find(std::string(b.substr(b.starts_with("\\") ? 1 : 0)));
      if (a.starts_with("\\") && it != macros_.end()) macros_[std::string(a.substr(1))] = it->second;
      return;
    }
    if (s.substr(j).starts_with("*")) ++j;
    if (!read_arg(s, j, name_arg)) return;
    while (!name_arg.empty() && name_arg.back() == ' ') name_arg.remove_suffix(1);
    if (!name_arg.starts_with("\\") || name_arg.size() < 2) {
      i = j;
      return;
    }
    Macro m;
    if (how == "def" || how == "gdef" || how == "edef") {
      while (j < s.size() && s[j] != '{') {  // parameter text: count #1..#9
        if (s[j] == '#' && j + 1 < s.size() && s[j + 1] >= '1' && s[j + 1] <= '9') m.nargs = s[j + 1] - '0';
        ++j;
      }
    } else if (how == "DeclareMathOperator") {
      std::string_view body;
      read_arg(s, j, body);
      m.body = "\\operatorname{" + std::string(body) + "}";
      macros_[std::string(name_arg.substr(1))] = m;
      i = j;
      return;
    } else {
      std::string_view n, d;
      if (read_optional(s, j, n)) m.nargs = std::clamp(std::atoi(std::string(n).c_str()), 0, 9);
      if (read_optional(s, j, d)) m.default_arg = std::string(d);
    }
    std::string_view body;
    read_arg(s, j, body);
    m.body = std::string(body);
    std::string key(name_arg.substr(1));
    if (how != "providecommand" || !macros_.count(key)) macros_[key] = std::move(m);
    i = j;
  }

  // Expands a user macro at s[i] (after its name); false when the budget is spent.
  bool expand(const std::string& name, std::string_view s, size_t& i, std::string& expanded) {
    if (++expansions_ > opt_.max_expansions) {
      warn(cat("macro expansion limit (", opt_.max_expansions, ") reached; later macros dropped"));
      return false;
    }
    const auto& m = macros_.at(name);
    std::vector<std::string> args;
    for (int k = 0; k < m.nargs; ++k) {
      std::string_view a;
      if (k == 0 && m.default_arg) {
        args.emplace_back(read_optional(s, i, a) ? std::string(a) : *m.default_arg);
        continue;
      }
      read_arg(s, i, a);
      args.emplace_back(a);
    }
    expanded.clear();
    for (size_t p = 0; p < m.body.size(); ++p) {
      char c = m.body[p];
      if (c == '#' && p + 1 < m.body.size()) {
        char d = m.body[p + 1];
        if (d >= '1' && d <= '9' && static_cast<size_t>(d - '1') < args.size()) {
          expanded += args[d - '1'];
          ++p;
          continue;
        }
        if (d == '#') {
          expanded += '#';
          ++p;
          continue;
        }
      }
      expanded += c;
    }
    if (expanded.size() > (1u << 20)) {
      warn("a macro expanded to more than 1 MB; dropped");
      expanded.clear();
    }
    return true;
  }

  bool include(std::string_view s, size_t& i, std::string& content) {
    std::string_view arg;
    skip_space(s, i);
    if (i < s.size() && s[i] == '{') {
      read_arg(s, i, arg);
    } else {  // \input file (TeX's primitive form)
      size_t b = i;
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i])) && s[i] != '\\' && s[i] != '}') ++i;
      arg = s.substr(b, i - b);
    }
    std::string name(arg);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    if (name.empty()) return false;
    std::filesystem::path p(name);
    if (p.is_absolute() || name.find("..") != std::string::npos || name.front() == '~') {
      warn("include of '" + name + "' refused: only relative paths inside the source directory are followed");
      return false;
    }
    if (!p.has_extension()) name += ".tex";
    if (!resolver_) {
      warn("include of '" + name + "' not followed (no source directory)");
      return false;
    }
    auto got = resolver_(name);
    if (!got) {
      warn("included file '" + name + "' not found or not readable");
      return false;
    }
    result_.included.push_back(name);
    content = std::move(*got);
    return true;
  }

  // Math: copied as LaTeX, with user macros expanded and labels dropped.
  void math(std::string_view s, int depth, std::string& o) {
    if (depth > 64) {
      warn("macros nested more than 64 deep; stopped");
      return;
    }
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c != '\\') {
        o += (c == '\n' || c == kLine || c == kPara) ? ' ' : c;
        ++i;
        continue;
      }
      size_t start = i++;
      std::string_view name = read_name(s, i);
      std::string key(name);
      if (name == "label" || name == "nonumber" || name == "notag" || name == "tag") {
        std::string_view a;
        if (name == "label" || name == "tag") read_arg(s, i, a);
        continue;
      }
      if (macros_.count(key)) {
        std::string e;
        if (expand(key, s, i, e)) math(e, depth + 1, o);
        continue;
      }
      if (name == "ensuremath") continue;  // already math: only its brace group stays
      o.append(s.substr(start, i - start));
    }
  }

  void emit_math(std::string_view content, bool display, std::string_view aligned, int depth) {
    std::string m;
    math(content, depth, m);
    size_t b = m.find_first_not_of(" \t");
    size_t e = m.find_last_not_of(" \t");
    m = b == std::string::npos ? "" : m.substr(b, e - b + 1);
    if (m.empty()) return;
    if (!display) {
      out_ += "$" + m + "$";
      return;
    }
    out_ += kLine;
    if (!aligned.empty()) m = "\\begin{" + std::string(aligned) + "}" + m + "\\end{" + std::string(aligned) + "}";
    out_ += "$$" + m + "$$";
    out_ += kLine;
  }

  void verbatim(std::string_view content) {
    out_ += kVerbOpen;
    for (char c : content) out_ += (c == kVerbClose) ? ' ' : c;
    out_ += kVerbClose;
  }

  void environment(std::string_view s, size_t& i, int depth) {
    std::string_view name;
    if (!read_arg(s, i, name)) return;
    size_t after;
    size_t e = find_end(s, i, name, after);
    if (e == std::string_view::npos) {
      warn("\\begin{" + std::string(name) + "} without \\end");
      e = s.size();
    }
    std::string_view content = s.substr(i, e - i);
    i = after;
    size_t k = 0;
    std::string_view a;
    if (is_verbatim_env(name)) {
      if (name == "comment") return;
      if (name == "minted") read_arg(content, k, a);
      read_optional(content, k, a);
      verbatim(content.substr(k));
      return;
    }
    if (is_math_env(name)) {
      if (name.starts_with("alignat")) read_arg(content, k, a);
      number_equations(content.substr(k), name);
      emit_math(content.substr(k), name != "math", aligned_form(name), depth);
      return;
    }
    if (name == "tikzpicture" || name == "picture" || name == "pspicture" || name == "filecontents" ||
        name == "filecontents*") {
      return;
    }
    if (name == "itemize" || name == "enumerate" || name == "description") {
      lists_.push_back({name == "enumerate", 0});
      read_optional(content, k, a);
      out_ += kPara;
      text(content.substr(k), depth + 1);
      out_ += kPara;
      lists_.pop_back();
      return;
    }
    if (name.starts_with("figure") || name.starts_with("table") || name == "wrapfigure" || name == "SCfigure") {
      std::string saved_kind = float_kind_;
      float_kind_ = name.starts_with("table") ? "Table" : "Figure";
      if (name == "wrapfigure") {
        read_optional(content, k, a);
        read_arg(content, k, a);
        read_arg(content, k, a);
      }
      read_optional(content, k, a);
      // Only captions (and tables' cells) are text; graphics commands are dropped.
      out_ += kPara;
      text(content.substr(k), depth + 1);
      out_ += kPara;
      float_kind_ = saved_kind;
      return;
    }
    if (name == "tabular" || name == "tabular*" || name == "tabularx" || name == "longtable" || name == "array" ||
        name == "supertabular" || name == "tabulary") {
      if (name == "tabular*" || name == "tabularx" || name == "tabulary") read_arg(content, k, a);
      read_optional(content, k, a);
      read_arg(content, k, a);  // column specification
      ++tabular_;
      out_ += kPara;
      text(content.substr(k), depth + 1);
      out_ += kPara;
      --tabular_;
      return;
    }
    if (name == "minipage") {
      read_optional(content, k, a);
      read_optional(content, k, a);
      read_optional(content, k, a);
      read_arg(content, k, a);
    } else if (name == "multicols" || name == "multicols*") {
      read_arg(content, k, a);
    } else if (name == "thebibliography") {
      read_arg(content, k, a);
      out_ += kPara;
      out_ += "## References";
      out_ += kPara;
    } else if (name == "abstract") {
      out_ += kPara;
      out_ += "Abstract";
      out_ += kLine;
    } else if (name == "list") {
      read_arg(content, k, a);
      read_arg(content, k, a);
    }
    // Other environments (center, quote, theorem, Schunk, CodeChunk, ...): their content is text.
    text(content.substr(k), depth + 1);
    if (name == "abstract" || name == "quote" || name == "quotation" || name == "center" || name == "theorem" ||
        name == "proof")
      out_ += kPara;
  }

  // Text mode: the body of the document.
  void text(std::string_view s, int depth) {
    if (depth > 64) {
      warn("groups or macros nested more than 64 deep; the rest is dropped");
      return;
    }
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      switch (c) {
        case '\\':
          command(s, i, depth);
          continue;
        case '{': {
          std::string_view g;
          if (!read_arg(s, i, g)) warn("unbalanced '{'");
          text(g, depth + 1);
          continue;
        }
        case '}':
          ++i;
          continue;
        case '$': {
          bool display = i + 1 < s.size() && s[i + 1] == '$';
          size_t b = i + (display ? 2 : 1);
          size_t e = b;
          while (e < s.size()) {
            if (s[e] == '\\') {
              e += 2;
              continue;
            }
            if (s[e] == '$') break;
            ++e;
          }
          if (e >= s.size()) {
            warn("unclosed $ math");
            e = s.size();
          }
          emit_math(s.substr(b, std::min(e, s.size()) - b), display, {}, depth);
          i = std::min(s.size(), e + (display ? 2 : 1));
          continue;
        }
        case '~':
          out_ += ' ';
          ++i;
          continue;
        case '&':
          out_ += tabular_ ? " | " : " ";
          ++i;
          continue;
        case '`':
          if (i + 1 < s.size() && s[i + 1] == '`') {
            out_ += '"';
            i += 2;
          } else {
            out_ += '\'';
            ++i;
          }
          continue;
        case '\'':
          if (i + 1 < s.size() && s[i + 1] == '\'') {
            out_ += '"';
            i += 2;
          } else {
            out_ += '\'';
            ++i;
          }
          continue;
        case '-':
          if (s.substr(i).starts_with("---")) {
            out_ += "—";
            i += 3;
          } else if (s.substr(i).starts_with("--")) {
            out_ += "–";
            i += 2;
          } else {
            out_ += '-';
            ++i;
          }
          continue;
        case '#':  // a stray macro parameter: nothing to print
          ++i;
          continue;
        default:
          out_ += c;
          ++i;
      }
    }
  }

  void command(std::string_view s, size_t& i, int depth) {
    ++i;  // the backslash
    std::string_view name = read_name(s, i);
    std::string key(name);
    bool starred = i < s.size() && s[i] == '*' && !name.empty() && is_letter(name[0]);
    if (starred) ++i;  // \section*: same text, no number
    std::string_view a, o;
    if (name.empty()) return;
    if (macros_.count(key)) {
      std::string e;
      if (expand(key, s, i, e)) text(e, depth + 1);
      return;
    }
    if (name == "begin") return environment(s, i, depth);
    if (name == "end") {  // a stray \end: skip its name
      read_arg(s, i, a);
      return;
    }
    if (name == "\\") {  // line break, maybe with [skip]
      read_optional(s, i, o);
      out_ += kLine;
      return;
    }
    if (name == "(" || name == "[") {
      std::string_view close = name == "(" ? "\\)" : "\\]";
      size_t e = s.find(close, i);
      if (e == std::string_view::npos) {
        warn(std::string("unclosed \\") + std::string(name) + " math");
        e = s.size();
      }
      emit_math(s.substr(i, e - i), name == "[", {}, depth);
      i = std::min(s.size(), e + 2);
      return;
    }
    if (name == "verb" || name == "lstinline") {
      read_optional(s, i, o);
      if (i < s.size()) {
        char delim = s[i] == '{' ? '}' : s[i];
        size_t e = s.find(delim, i + 1);
        if (e == std::string_view::npos) e = s.size();
        out_ += s.substr(i + 1, e - i - 1);
        i = std::min(s.size(), e + 1);
      }
      return;
    }
    if (is_accent_command(name)) {
      read_arg(s, i, a);
      std::string letter = a.starts_with("\\") ? std::string(a) : plain(a, depth);
      out_ += accent(name, letter);
      return;
    }
    if (auto h = heading_commands().find(name); h != heading_commands().end()) {
      read_optional(s, i, o);
      read_arg(s, i, a);
      std::string title = plain(a, depth);
      if (!starred) number_heading(name);
      out_ += kPara;
      if (h->second.empty()) {  // \paragraph{Title} runs into its text
        out_ += title + (title.empty() || ends_with_punct(title) ? " " : ". ");
      } else {
        out_ += std::string(h->second) + title;
        out_ += kPara;
      }
      return;
    }
    if (name == "item") {
      bool labelled = read_optional(s, i, o);
      out_ += kLine;
      if (!lists_.empty() && lists_.back().numbered && !labelled) {
        out_ += std::to_string(++lists_.back().count) + ". ";
      } else {
        out_ += "- ";
      }
      if (labelled) out_ += plain(o, depth) + " ";
      return;
    }
    if (name == "caption") {
      read_optional(s, i, o);
      read_arg(s, i, a);
      std::string kind = float_kind_.empty() ? "Figure" : float_kind_;
      int n = kind == "Table" ? ++tables_ : ++figures_;
      current_label_ = std::to_string(n);
      out_ += kPara;
      out_ += kind + " " + std::to_string(n) + ": " + plain(a, depth);
      out_ += kPara;
      return;
    }
    if (name == "footnote") {
      read_optional(s, i, o);
      read_arg(s, i, a);
      out_ += " (" + plain(a, depth) + ")";
      return;
    }
    if (name.starts_with("cite") || name.starts_with("Cite") || name == "citealp" || name == "citealt" ||
        name == "parencite" || name == "textcite" || name == "autocite" || name == "footcite") {
      read_optional(s, i, o);
      read_optional(s, i, o);
      read_arg(s, i, a);
      out_ += "[cite]";
      return;
    }
    if (name == "ref" || name == "eqref" || name == "pageref" || name == "autoref" || name == "cref" ||
        name == "Cref" || name == "vref" || name == "nameref") {
      read_arg(s, i, a);
      // The number of a section, float or equation labelled in this document (resolved at the end:
      // labels may come later); "?" for page numbers, names and unknown labels, as LaTeX prints.
      std::string r = name == "pageref" || name == "nameref" ? "?" : kRefOpen + std::string(a) + kRefClose;
      out_ += name == "eqref" ? "(" + r + ")" : r;
      return;
    }
    if (name == "label") {
      read_arg(s, i, a);
      if (!current_label_.empty()) labels_.emplace(std::string(a), current_label_);
      if (i < s.size() && std::strchr(".,;:)", s[i]) && s[i] != '\0')
        while (!out_.empty() && out_.back() == ' ') out_.pop_back();
      return;
    }
    if (name == "appendix") {
      appendix_ = true;
      std::fill(std::begin(sections_), std::end(sections_), 0);
      return;
    }
    if (name == "href") {
      read_arg(s, i, a);
      read_arg(s, i, a);
      text(a, depth + 1);
      return;
    }
    if (name == "dQuote" || name == "enquote" || name == "sQuote" || name == "squote") {
      read_arg(s, i, a);
      std::string q = (name == "sQuote" || name == "squote") ? "'" : "\"";
      out_ += q;
      text(a, depth + 1);
      out_ += q;
      return;
    }
    if (name == "newcommand" || name == "renewcommand" || name == "providecommand" || name == "def" ||
        name == "gdef" || name == "edef" || name == "DeclareMathOperator" || name == "let" ||
        name == "DeclareRobustCommand") {
      define(s, i, name);
      return;
    }
    if (name == "title" || name == "author" || name == "Abstract" || name == "Keywords") {
      read_optional(s, i, o);
      read_arg(s, i, a);
      set_front_matter(name, a, depth);
      return;
    }
    if (name == "maketitle") {
      emit_title_block();
      return;
    }
    if (name == "input" || name == "include" || name == "subfile") {
      if (include_depth_ >= opt_.max_include_depth) {
        warn(cat("includes nested deeper than ", opt_.max_include_depth, "; not followed"));
        read_arg(s, i, a);
        return;
      }
      std::string content;
      if (include(s, i, content)) {
        std::string prepared = prepare(content);
        ++include_depth_;
        out_ += name == "include" ? std::string(1, kPara) : std::string();
        text(prepared, depth + 1);
        --include_depth_;
      }
      return;
    }
    if (name == "par") {
      out_ += kPara;
      return;
    }
    if (name == "newline") {
      out_ += kLine;
      return;
    }
    if (auto d = dropped_commands().find(name); d != dropped_commands().end()) {
      while (read_optional(s, i, o)) {
      }
      for (int k = 0; k < d->second; ++k) read_arg(s, i, a);
      // "value \Sexpr{x}." or "text \label{x}," : no space left before the punctuation.
      if (i < s.size() && std::strchr(".,;:)", s[i]) && s[i] != '\0')
        while (!out_.empty() && out_.back() == ' ') out_.pop_back();
      return;
    }
    if (unwrapped_commands().count(name)) {
      read_optional(s, i, o);
      read_arg(s, i, a);
      text(a, depth + 1);
      return;
    }
    if (auto sym = symbol_commands().find(name); sym != symbol_commands().end()) {
      // Layout commands take an optional argument: \linebreak[3], \newpage[...].
      if (sym->second.empty() && is_letter(name[0])) read_optional(s, i, o);
      out_ += sym->second;
      // A control word swallows the spaces after it ("\LaTeX\ is"); keep one when text follows.
      if (is_letter(name[0]) && !sym->second.empty() && i < s.size() && (s[i] == ' ' || s[i] == '\n')) out_ += ' ';
      return;
    }
    // Unknown commands: the name goes, brace arguments that follow stay as text (\textcolor-like
    // commands are listed above; most unknown ones are formatting with a text argument).
    if (!is_letter(name[0])) {
      out_ += name;  // \< \> \| and other symbols print themselves
    }
  }

  // Section numbers as LaTeX prints them: 2, 2.1, 2.1.3 (chapters first when the document has them);
  // after \appendix the top level counts A, B, ...
  void number_heading(std::string_view name) {
    int level = name == "chapter" ? 0 : name == "section" ? 1 : name == "subsection" ? 2 : name == "subsubsection" ? 3 : -1;
    if (level < 0) return;
    if (level == 0) has_chapters_ = true;
    ++sections_[level];
    for (int l = level + 1; l < 4; ++l) sections_[l] = 0;
    int top = has_chapters_ ? 0 : 1;
    std::string n;
    for (int l = top; l <= level; ++l) {
      if (!n.empty()) n += '.';
      if (l == top && appendix_ && sections_[l] >= 1 && sections_[l] <= 26)
        n += static_cast<char>('A' + sections_[l] - 1);
      else
        n += std::to_string(sections_[l]);
    }
    current_label_ = n;
  }

  // Equation numbers of a display environment: one for equation/multline, one per row (split at
  // top-level \\) for align, eqnarray, gather, ...; none for starred forms or rows with \nonumber,
  // \notag; \tag{x} prints x. Labels inside get those numbers.
  void number_equations(std::string_view content, std::string_view env) {
    if (env.ends_with("*") || env == "math" || env == "displaymath") return;
    bool rows = !aligned_form(env).empty();
    std::vector<std::string_view> parts;
    if (!rows) {
      parts.push_back(content);
    } else {
      int nest = 0;
      size_t b = 0;
      for (size_t p = 0; p < content.size(); ++p) {
        if (content[p] != '\\') continue;
        std::string_view rest = content.substr(p);
        if (rest.starts_with("\\begin{")) ++nest;
        else if (rest.starts_with("\\end{")) --nest;
        else if (rest.starts_with("\\\\") && nest == 0) {
          parts.push_back(content.substr(b, p - b));
          b = p + 2;
        }
        ++p;  // the escaped character
      }
      parts.push_back(content.substr(b));
      // A final row that holds nothing but spaces (after a closing \\) has no number.
      if (parts.size() > 1 && parts.back().find_first_not_of(" \t\n\r") == std::string_view::npos) parts.pop_back();
    }
    for (std::string_view row : parts) {
      std::string number;
      if (size_t t = row.find("\\tag"); t != std::string_view::npos) {
        size_t q = t + 4;
        if (q < row.size() && row[q] == '*') ++q;
        std::string_view tag;
        if (read_arg(row, q, tag)) number = std::string(tag);
      } else if (row.find("\\nonumber") == std::string_view::npos && row.find("\\notag") == std::string_view::npos) {
        number = std::to_string(++equations_);
      }
      for (size_t l = row.find("\\label"); l != std::string_view::npos; l = row.find("\\label", l + 1)) {
        size_t q = l + 6;
        std::string_view key;
        if (!number.empty() && read_arg(row, q, key)) labels_.emplace(std::string(key), number);
      }
    }
  }

  std::string resolve_refs(const std::string& t) const {
    std::string out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] != kRefOpen) {
        if (t[i] != kRefClose) out += t[i];
        continue;
      }
      size_t e = t.find(kRefClose, i + 1);
      if (e == std::string::npos) e = t.size();
      auto it = labels_.find(t.substr(i + 1, e - i - 1));
      out += it == labels_.end() ? "?" : it->second;
      i = e;
    }
    return out;
  }

  static bool ends_with_punct(const std::string& t) {
    char c = t.back();
    return c == '.' || c == ':' || c == '?' || c == '!';
  }

  struct Macro {
    int nargs = 0;
    std::optional<std::string> default_arg;
    std::string body;
  };
  struct List {
    bool numbered;
    int count;
  };

  const LatexOptions& opt_;
  const IncludeResolver& resolver_;
  LatexText& result_;
  std::string out_;
  std::unordered_map<std::string, Macro> macros_;
  std::vector<List> lists_;
  std::unordered_map<std::string, std::string> labels_;  // \label key -> the number it prints
  std::string current_label_;                             // what a \label here refers to
  int sections_[4] = {0, 0, 0, 0};                        // chapter, section, subsection, subsubsection
  int equations_ = 0;
  bool appendix_ = false, has_chapters_ = false;
  std::string float_kind_, abstract_, keywords_;
  size_t expansions_ = 0;
  int include_depth_ = 0, tabular_ = 0, figures_ = 0, tables_ = 0;
  bool title_emitted_ = false;
};

}  // namespace

LatexText latex_to_text(std::string_view source, const LatexOptions& options, const IncludeResolver& resolver) {
  LatexText result;
  Converter conv(options, resolver, result);
  conv.run(source);
  return result;
}

IncludeResolver directory_resolver(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path root = fs::weakly_canonical(dir.empty() ? fs::path(".") : fs::path(dir), ec);
  return [root](const std::string& name) -> std::optional<std::string> {
    std::error_code ec2;
    fs::path p = fs::weakly_canonical(root / name, ec2);
    if (ec2) return std::nullopt;
    // The real path (links resolved) must stay below the root.
    auto rel = p.lexically_relative(root);
    if (rel.empty() || rel.native().starts_with("..")) return std::nullopt;
    if (!fs::is_regular_file(p, ec2) || fs::file_size(p, ec2) > (64u << 20)) return std::nullopt;
    std::ifstream f(p, std::ios::binary);
    if (!f) return std::nullopt;
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
}

}  // namespace agpt::curate::extract
