// The passes over LaTeX source that run before conversion (latex.cpp): Sweave code chunks and
// comments, which must go before any brace is matched (a '%' may hide one).
#pragma once
#include <string>
#include <string_view>

namespace agpt::curate::extract::latex {

// Environments whose content is kept character for character (code, program output).
bool is_verbatim_env(std::string_view name);

// Removes Sweave/knitr-Rnw code chunks: a line "<<...>>=" starts one, a line starting with "@" ends
// it. With keep, the chunk's code stays, wrapped in \begin{Scode}...\end{Scode}.
std::string strip_sweave_chunks(std::string_view s, bool keep);

// Removes TeX comments ('%' to the end of the line, and the line end itself, as TeX does) except
// inside verbatim environments and \verb; "\%" is a percent sign, not a comment. A comment-only
// line disappears without merging the paragraphs around it.
std::string strip_comments(std::string_view s);

}  // namespace agpt::curate::extract::latex
