// LaTeX and Sweave to text: preamble and comments dropped, macros unwrapped or dropped, math kept
// between dollar signs, headings and captions kept, includes followed only inside the directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "curate/extract/latex.h"
#include "curate/extract/latex_prepass.h"
#include "test_extract_util.h"

namespace agpt::curate::extract {
namespace {

namespace fs = std::filesystem;

std::string convert(const std::string& src, LatexOptions opt = {}) { return latex_to_text(src, opt).text; }

TEST(ExtractLatex, DropsPreambleAndCommentsKeepsTitle) {
  std::string src =
      "\\documentclass{article}\n\\usepackage{amsmath}\n\\title{A \\emph{Study}}\n\\author{Ann \\and Bob}\n"
      "\\begin{document}\n\\maketitle\nFirst % a comment\nline.\n\n% whole comment line\nSecond 50\\% paragraph.\n"
      "\\end{document}\nafter the end\n";
  LatexText t = latex_to_text(src, {});
  EXPECT_EQ(t.title, "A Study");
  EXPECT_EQ(t.author, "Ann, Bob");
  EXPECT_EQ(t.text, "# A Study\n\nAnn, Bob\n\nFirst line.\n\nSecond 50% paragraph.");
}

TEST(ExtractLatex, UnwrapsDropsAndReplacesMacros) {
  std::string t = convert(
      "See \\emph{this} and \\textbf{that}\\footnote{A note.} in \\cite{key} and Section~\\ref{sec:x}."
      "\\label{l} \\pkg{lme4} ``quoted'' --- a \\url{http://x.org} and caf\\'e na\\\"ive \\LaTeX\\ rocks.");
  EXPECT_EQ(t,
            "See this and that (A note.) in [cite] and Section ?. lme4 \"quoted\" — a http://x.org and café naïve "
            "LaTeX rocks.");
}

TEST(ExtractLatex, KeepsMathAsLatex) {
  std::string t = convert(
      "Inline $a^2 + b_i$ and \\(x\\) then\n\\begin{equation}\\label{eq:1}\nE = mc^2\n\\end{equation}\nand "
      "\\[ y = \\frac{1}{2} \\]\n\\begin{align*}\na &= b \\\\\nc &= d\n\\end{align*}\nend $$z$$ done.");
  EXPECT_EQ(t,
            "Inline $a^2 + b_i$ and $x$ then\n$$E = mc^2$$\nand\n$$y = \\frac{1}{2}$$\n"
            "$$\\begin{aligned}a &= b \\\\ c &= d\\end{aligned}$$\nend\n$$z$$\ndone.");
}

TEST(ExtractLatex, HeadingsListsCaptionsAndTables) {
  std::string t = convert(
      "\\section{Intro}\nText.\n\\subsection*{Sub \\emph{part}}\n\\begin{itemize}\n\\item one\n\\item two\n"
      "\\end{itemize}\n\\begin{enumerate}\\item a\\item b\\end{enumerate}\n"
      "\\begin{figure}[t]\\centering\\includegraphics[width=3in]{fig.pdf}\\caption{A plot.}\\label{f}\\end{figure}\n"
      "\\begin{table}\\caption{Values}\\begin{tabular}{lr}\\hline x & 1\\\\ y & 2\\\\ \\hline\\end{tabular}"
      "\\end{table}");
  EXPECT_EQ(t,
            "## Intro\n\nText.\n\n### Sub part\n\n- one\n- two\n\n1. a\n2. b\n\nFigure 1: A plot.\n\n"
            "Table 1: Values\n\nx | 1\ny | 2");
}

TEST(ExtractLatex, ExpandsUserMacrosWithinABudget) {
  std::string t = convert(
      "\\newcommand{\\R}{\\textsf{R}}\\newcommand{\\vect}[1]{\\mathbf{#1}}\\def\\twice#1{#1#1}"
      "\\begin{document}Use \\R{} with $\\vect{x}$ and \\twice{ab}.\\end{document}");
  EXPECT_EQ(t, "Use R with $\\mathbf{x}$ and abab.");
  // A macro that expands to itself stops at the budget with a warning, without crashing.
  LatexOptions opt;
  opt.max_expansions = 50;
  LatexText loop = latex_to_text("\\def\\a{x\\a}\\begin{document}\\a\\end{document}", opt);
  EXPECT_FALSE(loop.warnings.empty());
  EXPECT_LE(loop.text.size(), 100u);
}

TEST(ExtractLatex, VerbatimKeepsCommentsAndSpacing) {
  std::string t = convert("Code:\n\\begin{verbatim}\nx  <- 1 % not a comment\n  y\n\\end{verbatim}\nAfter \\verb|a%b|.");
  EXPECT_EQ(t, "Code:\nx  <- 1 % not a comment\n  y\nAfter a%b.");
}

TEST(ExtractLatex, SweaveChunksDroppedOrKept) {
  std::string src = "Text before.\n<<fit, echo=TRUE>>=\nfit <- lm(y ~ x)\n@\nText after \\Sexpr{round(pi, 2)}.\n";
  LatexOptions opt;
  opt.sweave = true;
  EXPECT_EQ(convert(src, opt), "Text before. Text after.");  // as in the PDF: the paragraph goes on
  opt.keep_code_chunks = true;
  EXPECT_EQ(convert(src, opt), "Text before.\nfit <- lm(y ~ x)\nText after.");
}

TEST(ExtractLatex, ResolvesReferencesToTheNumbersLatexPrints) {
  // Sections (also forward references), starred sections unnumbered, figures, equations by row,
  // \nonumber rows and \tag, the appendix's letters; unknown labels and \pageref stay "?".
  std::string t = convert(
      "See Section~\\ref{s:b}, Figure~\\ref{f}, \\eqref{e:two}, \\eqref{e:one}, \\ref{e:t}, \\ref{a:x}, "
      "\\ref{nope} and \\pageref{s:a}.\n"
      "\\section{A}\\label{s:a}\n\\section*{Unnumbered}\n\\section{B}\n\\subsection{B1}\\label{s:b}\n"
      "\\begin{equation}x\\label{e:one}\\end{equation}\n"
      "\\begin{align}a&=1\\nonumber\\\\ b&=2\\label{e:two}\\\\ c&=3\\tag{T}\\label{e:t}\\end{align}\n"
      "\\begin{figure}\\caption{One.}\\end{figure}\\begin{figure}\\caption{Two.}\\label{f}\\end{figure}\n"
      "\\appendix\n\\section{Extra}\\label{a:x}\n");
  EXPECT_NE(t.find("See Section 2.1, Figure 2, (2), (1), T, A, ? and ?."), std::string::npos) << t;
}

TEST(ExtractLatex, EnsuremathInsideMathIsDropped) {
  std::string t = convert("\\newcommand{\\Y}{\\ensuremath{\\mathcal{Y}}}\n\\begin{document}$\\Y\\sim N$ and \\Y.\\end{document}");
  EXPECT_EQ(t, "${\\mathcal{Y}}\\sim N$ and Y.");
}

TEST(ExtractLatex, IncludesStayInsideTheDirectory) {
  fs::path dir = fs::temp_directory_path() / ("agpt_latex_inc_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  agpt::testing::write_bytes(dir / "src" / "main.tex",
                             "\\begin{document}A \\input{chap} B \\input{../secret} C \\input{/etc/passwd} "
                             "D \\include{missing} E \\input{self}\\end{document}");
  agpt::testing::write_bytes(dir / "src" / "chap.tex", "chapter text % comment\n");
  agpt::testing::write_bytes(dir / "src" / "self.tex", "S\\input{self}");
  agpt::testing::write_bytes(dir / "secret.tex", "SECRET");
  LatexText t = latex_to_text(agpt::testing::read_bytes(dir / "src" / "main.tex"), {},
                              directory_resolver((dir / "src").string()));
  EXPECT_NE(t.text.find("A chapter text B"), std::string::npos) << t.text;
  EXPECT_EQ(t.text.find("SECRET"), std::string::npos);
  EXPECT_EQ(t.text.find("root"), std::string::npos);
  // self.tex includes itself: stopped by the depth limit (8), with a warning.
  EXPECT_NE(t.text.find("E SSSSSSSS"), std::string::npos) << t.text;
  EXPECT_EQ(t.text.find("SSSSSSSSS"), std::string::npos);
  std::string all;
  for (const auto& w : t.warnings) all += w + "\n";
  EXPECT_NE(all.find("'../secret' refused"), std::string::npos) << all;
  EXPECT_NE(all.find("'/etc/passwd' refused"), std::string::npos);
  EXPECT_NE(all.find("'missing.tex' not found"), std::string::npos);
  EXPECT_NE(all.find("nested deeper than 8"), std::string::npos);
  // A symbolic link that leaves the directory is refused by the resolver.
  fs::create_symlink(dir / "secret.tex", dir / "src" / "link.tex");
  EXPECT_FALSE(directory_resolver((dir / "src").string())("link.tex").has_value());
  fs::remove_all(dir);
}

TEST(ExtractLatex, MalformedInputNeverCrashes) {
  for (const std::string& src : std::vector<std::string>{"\\begin{document}{{{{", "}}}}\\end", "$$unclosed", "\\section", "\\begin{itemize}\\item",
                          "\\newcommand", "\\def\\x#1#2{#3}\\x", "\\verb", "\\\\\\", std::string(5000, '{'),
                          "\\begin{verbatim}never closed", "\\'", "\\caption"}) {
    LatexText t = latex_to_text(src, {});
    EXPECT_LE(t.text.size(), src.size() + 16) << src;  // no runaway output, and no crash
  }
}

TEST(LatexPrepass, CommentsEatLineEndsLikeTex) {
  EXPECT_EQ(latex::strip_comments("a%x\nb"), "ab");
  EXPECT_EQ(latex::strip_comments("a %x\n\nb"), "a \n\nb");  // the blank line still ends the paragraph
  EXPECT_EQ(latex::strip_comments("a\n  % only\nb"), "a\nb");
  EXPECT_EQ(latex::strip_comments("50\\% off"), "50\\% off");
}

}  // namespace
}  // namespace agpt::curate::extract
