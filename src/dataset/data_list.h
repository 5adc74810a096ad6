// The ALCF data file list that AuroraGPT's Megatron-DeepSpeed runs use: one source per line,
//     weight  prefix  corpus
// '#' starts a comment; blank lines are ignored; a trailing .bin or .idx on the prefix is dropped;
// a relative prefix is relative to the list file's directory. The corpus column may be omitted
// (the source is then a corpus of its own, named after the file).
#pragma once
#include <string>
#include <vector>

namespace agpt::dataset {

struct DataListEntry {
  double weight = 0;
  std::string prefix;  // resolved path without extension
  std::string corpus;
  int line = 0;        // line in the list file (1-based)
};

// Parses and checks the list: weights must be positive finite numbers, prefixes unique.
// Errors name the file and line.
std::vector<DataListEntry> parse_data_list(const std::string& path);
std::vector<DataListEntry> parse_data_list_text(const std::string& text, const std::string& name,
                                                const std::string& base_dir);

}  // namespace agpt::dataset
