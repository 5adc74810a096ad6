// The documents of a task split: one JSON object per line of a local JSONL file.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "eval/template.h"

namespace agpt::eval {

struct Doc {
  Json value;         // the object
  std::string where;  // "file:line", for messages
};

// s with every byte that is not part of well-formed UTF-8 replaced by U+FFFD (generated text may
// stop inside a character; JSON output needs valid UTF-8).
std::string valid_utf8(std::string_view s);

// Every object of the file, in order; blank lines are skipped. Fails (agpt::Error) naming
// file:line on a line that is not a JSON object, and on a file without documents.
std::vector<Doc> read_docs(const std::string& path);

}  // namespace agpt::eval
