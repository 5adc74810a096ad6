// Turning what the user typed (files, directories, glob patterns) into the list of input files, in
// a deterministic order.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::corpus {

enum class InputKind {
  kJsonl,  // .jsonl .json .ndjson: one JSON document per line
  kText,   // .txt .md .rst .text .markdown: the whole file is one document
};

// The kind of an input by its name (case-insensitive, after an optional .gz/.zst/.zstd), or
// nullopt for other names.
std::optional<InputKind> input_kind(std::string_view path);

struct InputFile {
  std::string path;  // to open
  std::string name;  // for ids: the path relative to the directory given, else the path itself
  InputKind kind;
};

// Expands input specs, in the order given; each spec is one of
//  - a file: taken if its name has a known kind (else an Error that lists the known ones);
//  - a directory: every file below it (recursively) with a known kind, sorted by path (bytewise);
//    other files are ignored (an info line says how many);
//  - a glob(3) pattern (*, ?, [...], ~): its matches sorted bytewise; directories among them
//    expand as above, files of unknown kind are ignored.
// A spec that matches nothing readable is an Error naming it. A file reached twice is kept once
// (a warning says so). Compressions agpt cannot read (.bz2, .xz, .lz4, .zip, ...) are an Error.
std::vector<InputFile> expand_input_files(const std::vector<std::string>& specs);

// Only the paths of expand_input_files(specs).
std::vector<std::string> expand_inputs(const std::vector<std::string>& specs);

}  // namespace agpt::corpus
