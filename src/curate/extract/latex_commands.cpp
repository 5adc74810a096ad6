#include "curate/extract/latex_commands.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

namespace agpt::curate::extract::latex {

// Commands whose arguments are dropped with them: name -> number of mandatory arguments
// (optional [..] arguments before them are dropped too).
const std::unordered_map<std::string_view, int>& dropped_commands() {
  static const std::unordered_map<std::string_view, int> m = {
      {"label", 1}, {"index", 1}, {"vspace", 1}, {"hspace", 1}, {"bibliographystyle", 1}, {"bibliography", 1},
      {"pagestyle", 1}, {"thispagestyle", 1}, {"includegraphics", 1}, {"SweaveOpts", 1}, {"setkeys", 2},
      {"setlength", 2}, {"addtolength", 2}, {"setcounter", 2}, {"addtocounter", 2}, {"stepcounter", 1},
      {"addcontentsline", 3}, {"usepackage", 1}, {"RequirePackage", 1}, {"documentclass", 1}, {"hypersetup", 1},
      {"graphicspath", 1}, {"color", 1}, {"definecolor", 3}, {"nocite", 1}, {"newenvironment", 3},
      {"renewenvironment", 3}, {"newtheorem", 2}, {"fontsize", 2}, {"Plainkeywords", 1}, {"Plaintitle", 1},
      {"Shorttitle", 1}, {"Plainauthor", 1}, {"Address", 1}, {"Sexpr", 1}, {"VignetteIndexEntry", 1},
      {"VignetteEngine", 1}, {"VignetteDepends", 1}, {"VignetteKeyword", 1}, {"VignettePackage", 1},
      {"cline", 1}, {"cmidrule", 1}, {"newcounter", 1}, {"numberwithin", 2}, {"captionsetup", 1},
      {"lstset", 1}, {"fvset", 1}, {"DefineVerbatimEnvironment", 3}, {"bibpunct", 6}, {"setcitestyle", 1},
      {"hyphenation", 1}, {"geometry", 1}, {"rule", 2}, {"raisebox", 1}, {"phantom", 1}, {"vphantom", 1},
      {"hphantom", 1}, {"pagenumbering", 1}, {"enlargethispage", 1}, {"input@path", 1}, {"newlength", 1},
      {"settowidth", 2}, {"multicolumn", 2}, {"multirow", 2}, {"resizebox", 2}, {"scalebox", 1},
      {"textcolor", 1}, {"colorbox", 1}, {"SweaveInput", 1}, {"date", 1}, {"thanks", 1}};
  return m;
}

// Commands that are replaced by their (first) argument's text.
const std::unordered_set<std::string_view>& unwrapped_commands() {
  static const std::unordered_set<std::string_view> s = {
      "emph", "textbf", "textit", "texttt", "textrm", "textsf", "textsc", "textup", "textnormal", "textsl",
      "textmd", "underline", "uline", "mbox", "hbox", "fbox", "makebox", "framebox", "text", "pkg", "proglang",
      "code", "samp", "file", "fct", "class", "url", "nolinkurl", "path", "email", "strong", "textsuperscript",
      "textsubscript", "fbox", "mathrm", "ensuremath", "Rpackage", "Rfunction", "Robject", "Rclass", "Rcode",
      "software", "acronym", "small", "normalfont", "bm", "boldsymbol", "parbox", "shortstack", "textls",
      "cvar", "verb@", "Verb", "dfn", "var", "kbd", "env", "command", "option", "Biocpkg", "CRANpkg"};
  return s;
}

// Commands without arguments that become a fixed text ("" = dropped).
const std::unordered_map<std::string_view, std::string_view>& symbol_commands() {
  static const std::unordered_map<std::string_view, std::string_view> m = {
      {"LaTeX", "LaTeX"}, {"TeX", "TeX"}, {"LaTeXe", "LaTeX2e"}, {"ldots", "..."}, {"dots", "..."},
      {"textbackslash", "\\"}, {"S", "§"}, {"P", "¶"}, {"copyright", "©"}, {"textdegree", "°"}, {"ss", "ß"},
      {"o", "ø"}, {"O", "Ø"}, {"ae", "æ"}, {"AE", "Æ"}, {"aa", "å"}, {"AA", "Å"}, {"l", "ł"}, {"L", "Ł"},
      {"oe", "œ"}, {"OE", "Œ"}, {"i", "ı"}, {"textasciitilde", "~"}, {"textasciicircum", "^"}, {"textbar", "|"},
      {"textless", "<"}, {"textgreater", ">"}, {"textendash", "–"}, {"textemdash", "—"}, {"textquoteleft", "'"},
      {"textquoteright", "'"}, {"lq", "'"}, {"rq", "'"}, {"textunderscore", "_"}, {"textregistered", "®"},
      {"texttrademark", "™"}, {"pounds", "£"}, {"euro", "€"}, {"dag", "†"}, {"ddag", "‡"}, {"textbullet", "•"},
      {"today", ""}, {"noindent", ""}, {"indent", ""}, {"centering", ""}, {"raggedright", ""}, {"raggedleft", ""},
      {"newpage", ""}, {"clearpage", ""}, {"cleardoublepage", ""}, {"pagebreak", ""}, {"linebreak", ""},
      {"nolinebreak", ""}, {"nopagebreak", ""}, {"smallskip", ""}, {"medskip", ""}, {"bigskip", ""}, {"hfill", " "},
      {"vfill", ""}, {"hline", ""}, {"toprule", ""}, {"midrule", ""}, {"bottomrule", ""}, {"protect", ""},
      {"relax", ""}, {"tableofcontents", ""}, {"listoffigures", ""}, {"listoftables", ""}, {"appendix", ""},
      {"footnotesize", ""}, {"scriptsize", ""}, {"tiny", ""}, {"large", ""}, {"Large", ""}, {"LARGE", ""},
      {"huge", ""}, {"Huge", ""}, {"normalsize", ""}, {"bf", ""}, {"it", ""}, {"tt", ""}, {"rm", ""}, {"sf", ""},
      {"em", ""}, {"sc", ""}, {"sl", ""}, {"itshape", ""}, {"bfseries", ""}, {"ttfamily", ""}, {"rmfamily", ""},
      {"sffamily", ""}, {"scshape", ""}, {"upshape", ""}, {"mdseries", ""}, {"selectfont", ""}, {"frenchspacing", ""},
      {"nonfrenchspacing", ""}, {"sloppy", ""}, {"fussy", ""}, {"onehalfspacing", ""}, {"doublespacing", ""},
      {"singlespacing", ""}, {"makeatletter", ""}, {"makeatother", ""}, {"null", ""}, {"strut", ""},
      {"quad", " "}, {"qquad", " "}, {"enspace", " "}, {"space", " "}, {"nobreakspace", " "}, {"xspace", ""},
      {"@", ""}, {"/", ""}, {",", " "}, {";", " "}, {":", " "}, {"!", ""}, {" ", " "}, {"-", ""}, {"\n", " "},
      {"\t", " "}, {"%", "%"}, {"&", "&"}, {"$", "$"}, {"#", "#"}, {"_", "_"}, {"{", "{"}, {"}", "}"},
      {"maketitle", ""}, {"bibitem", ""}, {"printbibliography", ""}, {"and", ", "}, {"And", ", "}, {"AND", ", "},
      {"item", ""}, {"R", "R"}, {"Rlogo", "R"}};
  return m;
}

const std::unordered_map<std::string_view, std::string_view>& heading_commands() {
  static const std::unordered_map<std::string_view, std::string_view> m = {
      {"part", "# "},          {"chapter", "# "},        {"section", "## "}, {"subsection", "### "},
      {"subsubsection", "#### "}, {"paragraph", ""},     {"subparagraph", ""}};
  return m;
}

bool is_math_env(std::string_view n) {
  static constexpr std::string_view k[] = {"equation", "equation*", "displaymath", "math", "align", "align*",
                                           "alignat", "alignat*", "flalign", "flalign*", "gather", "gather*",
                                           "multline", "multline*", "eqnarray", "eqnarray*", "dmath", "dmath*"};
  return std::find(std::begin(k), std::end(k), n) != std::end(k);
}

// Display environments whose lines are aligned: kept as \begin{aligned} (or gathered) inside $$.
std::string_view aligned_form(std::string_view n) {
  if (n.starts_with("align") || n.starts_with("flalign") || n.starts_with("eqnarray")) return "aligned";
  if (n.starts_with("gather")) return "gathered";
  return {};
}

// Combines a letter with a TeX accent: \'e -> é, by Unicode composition (NFC).
std::string accent(std::string_view cmd, std::string_view letter) {
  static const std::unordered_map<std::string_view, std::string_view> marks = {
      {"'", "\u0301"}, {"`", "\u0300"}, {"^", "\u0302"}, {"\"", "\u0308"}, {"~", "\u0303"}, {"=", "\u0304"},
      {".", "\u0307"}, {"u", "\u0306"}, {"v", "\u030C"}, {"H", "\u030B"}, {"c", "\u0327"}, {"k", "\u0328"},
      {"r", "\u030A"}, {"d", "\u0323"}, {"b", "\u0331"}};
  std::string base(letter);
  if (base == "\\i") base = "i";
  if (base == "\\j") base = "j";
  auto it = marks.find(cmd);
  if (it == marks.end() || base.empty()) return base;
  std::string s = base + std::string(it->second);
  utf8proc_uint8_t* nfc = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  if (!nfc) return base;
  std::string out(reinterpret_cast<char*>(nfc));
  free(nfc);
  return out;
}

bool is_accent_command(std::string_view n) {
  return n == "'" || n == "`" || n == "^" || n == "\"" || n == "~" || n == "=" || n == "." || n == "u" ||
         n == "v" || n == "H" || n == "c" || n == "k" || n == "r" || n == "d" || n == "b";
}

}  // namespace agpt::curate::extract::latex
