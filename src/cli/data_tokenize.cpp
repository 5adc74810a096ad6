// `agpt data tokenize`: documents -> token ids -> a Megatron indexed dataset (PREFIX.bin/.idx).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/command.h"
#include "dataset/indexed_dataset.h"
#include "dataset/tokenize.h"

namespace agpt::cli {
namespace {

dataset::TokenDType parse_dtype(const std::string& s) {
  for (uint8_t code = 1; code <= 8; ++code) {
    auto d = static_cast<dataset::TokenDType>(code);
    if (s == dataset::dtype_name(d)) return d;
  }
  fail("--dtype ", s, ": unknown; use uint16 (vocabularies below 65,500), int32, or uint8, int8, int16, int64");
}

void setup_tokenize(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand("tokenize", "tokenize documents into a Megatron indexed dataset (PREFIX.bin + PREFIX.idx)");
  struct Args {
    dataset::TokenizeOptions opt;
    std::string on_error = "skip", dtype;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-t,--tokenizer", a->opt.tokenizer, "tokenizer.json, tiktoken rank file, or GPT-2 vocab+merges directory")
      ->required();
  cmd->add_option("-i,--input", a->opt.inputs, "JSONL (.gz/.zst) or text files, directories, glob patterns")
      ->required();
  cmd->add_option("-o,--output-prefix", a->opt.output_prefix, "writes PREFIX.bin and PREFIX.idx (directories are created)")
      ->required();
  cmd->add_flag("--append-eos,!--no-append-eos", a->opt.append_eos,
                "end each document with the EOS token (default on, like Megatron's --append-eod)");
  cmd->add_flag("--prepend-bos", a->opt.prepend_bos, "start each document with the BOS token");
  cmd->add_option("--eos-token", a->opt.eos_token, "text of the EOS token, when the tokenizer's is not the one wanted");
  cmd->add_option("--bos-token", a->opt.bos_token, "text of the BOS token");
  cmd->add_option("--dtype", a->dtype, "token type in .bin (default: uint16 below 65,500 ids, else int32)");
  cmd->add_option("--on-error", a->on_error, "bad input lines: skip (count them) or fail")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_option("--batch-docs", a->opt.batch_documents, "documents per encoding batch")->capture_default_str();
  add_threads_flag(*cmd, a->opt.threads);
  cmd->footer(
      "Documents with empty text are skipped (as Megatron's preprocess_data.py does). The output is\n"
      "byte-identical for any -j, and readable by Megatron-LM (MMIDIDX v1), one sequence per document.\n\n"
      "Examples:\n"
      "  agpt data tokenize -t tokenizer.json --input 'corpus/*.jsonl.zst' --output-prefix out/corpus\n"
      "  agpt data tokenize -t cl100k_base.tiktoken -i papers/ -o out/papers --no-append-eos -j 16\n"
      "  agpt data tokenize -t gpt2/ -i docs.jsonl -o out/docs --on-error fail");
  set_action(cmd, [a] {
    a->opt.on_error = a->on_error == "fail" ? corpus::OnError::kFail : corpus::OnError::kSkip;
    if (!a->dtype.empty()) a->opt.dtype = parse_dtype(a->dtype);
    auto report = dataset::tokenize_to_indexed_dataset(a->opt);
    std::cout << report.summary();
  });
}

AGPT_COMMAND(40, setup_tokenize);

}  // namespace
}  // namespace agpt::cli
