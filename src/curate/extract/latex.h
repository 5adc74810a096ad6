// LaTeX sources (and Sweave .Rnw files) to plain text with the math kept as LaTeX: the preamble,
// comments, layout commands and code chunks dropped, text macros unwrapped, section titles and
// captions kept, \input/\include followed inside the source directory.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate::extract {

struct LatexOptions {
  bool sweave = false;            // drop <<...>>= ... @ code chunks and \Sexpr{}
  bool keep_code_chunks = false;  // with sweave: keep chunk code as verbatim text instead
  int max_include_depth = 8;
  size_t max_expansions = 100000;  // user macro expansions per document (stops runaway \def loops)
};

struct LatexText {
  std::string text;   // paragraphs separated by blank lines; headings as "# ", "## ", ... lines
  std::string title;  // \title{...} as text, if any
  std::string author;
  std::vector<std::string> warnings;  // missing includes, unbalanced braces, expansion limit, ...
  std::vector<std::string> included;  // files read through \input/\include, in order
};

// Returns the content of an included file, or nullopt when it cannot be read (a warning says so).
// The name is what the source wrote (".tex" already appended when it had no extension), checked to
// be a relative path without "..": the resolver must still refuse symbolic links out of the tree.
using IncludeResolver = std::function<std::optional<std::string>(const std::string& name)>;

// Converts one LaTeX document. Never throws for bad input: odd sources give odd text and warnings.
LatexText latex_to_text(std::string_view source, const LatexOptions& options, const IncludeResolver& resolver = {});

// A resolver that reads name under dir (the including file's directory), refusing absolute paths,
// "..", and anything whose real path leaves dir.
IncludeResolver directory_resolver(const std::string& dir);

}  // namespace agpt::curate::extract
