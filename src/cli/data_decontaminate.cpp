// `agpt data decontaminate`: remove benchmark text (GPT-3-style word 13-gram overlaps) from a corpus.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "cli/command.h"
#include "curate/decontam.h"

namespace agpt::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_commas(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t c = v.find(',', start);
      if (c == std::string::npos) c = v.size();
      if (c > start) out.push_back(v.substr(start, c - start));
      start = c + 1;
    }
  }
  return out;
}

void setup_decontaminate(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand("decontaminate",
                                  "remove benchmark text from a corpus (word n-gram overlaps, GPT-3's rule)");
  struct Args {
    curate::DecontamOptions opt;
    std::vector<std::string> benchmarks, fields;
    std::string output, report, removed, mode = "cut", on_error = "skip";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-i,--input", a->opt.inputs, "JSONL (.gz/.zst) or text files, directories, glob patterns")->required();
  cmd->add_option("-o,--output", a->output,
                  "clean documents and fragments, Dolma JSONL; a directory gets decontaminated.jsonl.zst")
      ->required();
  cmd->add_option("-b,--benchmarks", a->benchmarks, "benchmark JSONL files (comma-separated or repeated)")->required();
  cmd->add_option("--fields", a->fields, "the fields of an item that hold its text")->default_str("question,choices,answer");
  cmd->add_option("--id-field", a->opt.id_field, "the field with an item's id (missing: file:line)")
      ->capture_default_str();
  cmd->add_option("--ngram", a->opt.ngram, "n-gram size in normalised words")->capture_default_str();
  cmd->add_option("--min-words", a->opt.min_words, "items with fewer words are not indexed")->capture_default_str();
  cmd->add_option("--mode", a->mode, "drop: remove contaminated documents; cut: remove the overlaps with a margin")
      ->check(CLI::IsMember({"drop", "cut"}))
      ->capture_default_str();
  cmd->add_option("--margin", a->opt.margin, "cut: bytes removed on each side of an overlap")->capture_default_str();
  cmd->add_option("--min-fragment", a->opt.min_fragment, "cut: shorter fragments (bytes) are dropped")
      ->capture_default_str();
  cmd->add_option("--max-pieces", a->opt.max_pieces, "cut: documents cut into more pieces are dropped")
      ->capture_default_str();
  cmd->add_option("--max-ngram-docs", a->opt.max_ngram_docs,
                  "ignore n-grams found in more documents than this (common phrases; 0: no limit, one pass)")
      ->capture_default_str();
  cmd->add_option("--attributes", a->opt.attributes_dir,
                  "write agpt_decontam__overlap spans per document (Dolma attributes, one JSONL per input file)");
  cmd->add_option("--report", a->report, "write the counts, per benchmark and per item, as JSON");
  cmd->add_option("--removed", a->removed, "write every removed document as JSONL: id, reason, items, origin, text");
  cmd->add_option("--on-error", a->on_error, "bad input lines: skip (count them) or fail")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_option("--batch-docs", a->opt.batch_documents, "documents per parallel batch")->capture_default_str();
  cmd->add_flag("--resume", a->opt.resume,
                "continue an interrupted run (OUTPUT.progress): skip the input files it finished (and the first "
                "pass, when it was done), cut the outputs (OUTPUT.partial) after the last one");
  cmd->add_option("--stop-after", a->opt.stop_after_files, "stop after N input files, as if interrupted (for tests)")
      ->group("");
  add_threads_flag(*cmd, a->opt.threads);
  cmd->footer(
      "Words are normalised as in dedup (ASCII lowercase, ASCII punctuation deleted); each Chinese, Japanese or\n"
      "Korean character is a word of its own. Items shorter than --ngram words match as a whole. Cut mode (default, GPT-3): 200 bytes go on each side of every overlap, fragments\n"
      "under 200 bytes are dropped, documents cut into more than 10 pieces are dropped; fragments are written\n"
      "as documents \"<id>#<k>\".\n"
      "Resumable per input file: the outputs are written as OUTPUT.partial (one gzip member or zstd frame per\n"
      "input file) with OUTPUT.progress beside them; after an interruption, the same command with --resume\n"
      "skips what was done and gives the same bytes (outputs, attributes, report) as an uninterrupted run, for\n"
      "any -j. A resume with other settings, benchmarks or inputs is refused. See docs/curation.md.\n\n"
      "Examples:\n"
      "  agpt data decontaminate -b mmlu.jsonl,arc.jsonl -i 'corpus/*.jsonl.zst' -o out/clean/ --report out/decontam.json\n"
      "  agpt data decontaminate -b gsm8k.jsonl --fields question,answer --mode drop -i corpus/ -o out/clean.jsonl.zst\n"
      "  agpt data decontaminate -b mmlu.jsonl -i 'corpus/*.jsonl.zst' -o out/clean/ --resume   # after an interruption");
  set_action(cmd, [a] {
    auto& opt = a->opt;
    opt.on_error = a->on_error == "fail" ? corpus::OnError::kFail : corpus::OnError::kSkip;
    opt.mode = a->mode == "drop" ? curate::DecontamOptions::Mode::kDrop : curate::DecontamOptions::Mode::kCut;
    opt.benchmarks = split_commas(a->benchmarks);
    if (!a->fields.empty()) opt.fields = split_commas(a->fields);
    for (const auto& b : opt.benchmarks)
      if (!file_exists(b)) fail("--benchmarks ", b, ": no such file");
    opt.output = output_file(a->output, "decontaminated.jsonl.zst");
    if (!a->removed.empty()) opt.removed_output = output_file(a->removed, "removed.jsonl.zst");
    auto report = curate::run_decontaminate(opt, {});
    if (!a->report.empty()) write_file_atomic(a->report, report.to_json());
    std::cerr << report.read.summary() << report.table();
    std::cerr << "wrote " << report.documents_out << " documents and fragments to " << opt.output << "\n";
  });
}

AGPT_COMMAND(50, setup_decontaminate);

}  // namespace
}  // namespace agpt::cli
