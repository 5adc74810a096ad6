// `agpt data tokenize` as a library: documents (JSONL / text files, plain or compressed) -> token ids
// -> a Megatron indexed dataset (PREFIX.bin + PREFIX.idx), one document per sequence.
//
// Documents are read in order by one thread, encoded in batches by many, and written in input
// order, so the output files are byte-identical for any thread count. As Megatron's
// preprocess_data.py does with --append-eod, an EOS token ends each document by default; documents
// with empty text are skipped (and counted under "empty text").
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "corpus/document.h"
#include "dataset/indexed_dataset.h"

namespace agpt::text {
class Tokenizer;
}

namespace agpt::dataset {

struct TokenizeOptions {
  std::vector<std::string> inputs;  // files, directories, globs (see corpus::expand_input_files)
  std::string output_prefix;        // writes output_prefix.bin and output_prefix.idx
  std::string tokenizer;            // path for text::load_tokenizer (unused by the overload taking one)
  bool append_eos = true;           // Megatron's --append-eod
  bool prepend_bos = false;
  std::string eos_token;            // token text that overrides the tokenizer's EOS (e.g. "<|endoftext|>")
  std::string bos_token;            // the same for BOS
  int threads = 0;                  // 0 = all cores
  size_t batch_documents = 4096;    // a batch closes at this many documents ...
  size_t batch_bytes = 16u << 20;   // ... or this many bytes of text, whichever comes first
  corpus::OnError on_error = corpus::OnError::kSkip;
  std::optional<TokenDType> dtype;  // default: dtype_for_vocab(tokenizer vocab size)
  bool progress = true;             // a progress bar on input bytes
};

struct TokenizeReport {
  uint64_t documents = 0;      // written (one sequence each)
  uint64_t tokens = 0;         // written, including EOS/BOS
  uint64_t text_bytes = 0;     // UTF-8 bytes of the texts encoded
  uint64_t input_bytes = 0;    // decompressed input bytes read
  uint64_t input_files = 0;
  double seconds = 0;
  uint64_t skipped = 0;        // documents or lines not written, all reasons
  std::map<std::string, uint64_t> skipped_by_reason;  // the reader's reasons and "empty text"
  std::vector<std::string> examples;                  // first problems, "path:line: reason (...)"
  TokenDType dtype = TokenDType::kUInt16;
  std::optional<uint32_t> eos_id, bos_id;             // the ids added (when enabled)
  std::string output_prefix;

  double mb_per_second() const { return seconds > 0 ? text_bytes / 1e6 / seconds : 0; }
  double tokens_per_second() const { return seconds > 0 ? tokens / seconds : 0; }
  // Human-readable, several lines.
  std::string summary() const;
};

// The skip reason for documents with empty text.
inline constexpr const char* kEmptyTextReason = "empty text";

// Loads options.tokenizer and tokenizes.
TokenizeReport tokenize_to_indexed_dataset(const TokenizeOptions& options);
// With a tokenizer already loaded (options.tokenizer is ignored).
TokenizeReport tokenize_to_indexed_dataset(const TokenizeOptions& options, const text::Tokenizer& tokenizer);

// The special ids a run adds: the override text's id, else the tokenizer's own; an Error that says
// which flag to use when one is needed and none is known.
std::optional<uint32_t> resolve_special_token(const text::Tokenizer& tokenizer, bool wanted,
                                              const std::string& override_text, bool eos);

}  // namespace agpt::dataset
