// Byte-level BPE training: count the pre-tokenized pieces of a corpus, then learn merges until the
// vocabulary reaches its target size. The result (BpeModel) is written as a Hugging Face
// tokenizer.json by text/tokenizer_json_writer.h.
//
// Conventions (chosen to match Hugging Face's BpeTrainer with a ByteLevel pre-tokenizer):
//   * ids: the special tokens first (0..k-1, in the order given), then the 256 byte tokens ordered by
//     the code point of their byte-level character (which is GPT-2's order: '!'..'~', '¡'..'¬',
//     '®'..'ÿ', then the 68 remapped bytes 0x00..0x20, 0x7F..0xA0, 0xAD in byte order), then one id
//     per learned token in the order it was learned. With special_tokens_last the special tokens
//     take the last ids instead (Llama-3 / GPT-2 style).
//   * vocab_size counts everything: special tokens + 256 bytes + learned tokens.
//   * merge order: the pair with the highest count; ties go to the pair with the smallest
//     (left id, right id) — Hugging Face's rule, so that the merges and ids are the same as those of
//     HF tokenizers' BpeTrainer on the same text (checked: identical tokenizer.json vocab and merges
//     on 52 MB, 32k vocab, against tokenizers 0.23.2). BpeTieBreak::kSmallestBytes orders ties by
//     the lexicographically smallest (left bytes, right bytes) instead. Either way the result does
//     not depend on the thread count, the order texts are added in or how they are chunked.
//     (Same-as-HF also needs: no special-token text in the training text — HF learns from it,
//     agpt cuts it out — and no piece over max_piece_bytes.)
//   * training stops when the vocabulary is full, or when the best pair occurs fewer than
//     min_frequency times (a warning says so).
//   * a merge whose result already exists as a token (e.g. "ab"+"c" after "a"+"bc") is recorded
//     and reuses that token's id, as Hugging Face does; it does not grow the vocabulary.
//   * a pair is never merged when its result would be longer than max_token_bytes, or would have
//     the same text as a special token (plain text must never turn into a special token id).
//   * occurrences of the special tokens in training text are cut out before pre-tokenization, so
//     they teach no merges.
//   * pieces longer than max_piece_bytes (runs of thousands of letters or symbols: base64, ASCII
//     art) are not counted; they would cost time in every merge and teach nothing useful.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agpt::text {

// The pre-tokenization pattern used when none is given: Llama-3's (cl100k_base without the
// possessive quantifiers and the end-of-text rule), exactly as Llama-3's tokenizer.json spells it,
// which HF's Oniguruma and our PCRE2 / fast scanner read the same way.
extern const char* const kDefaultBpeTrainPattern;

// How merges of equal count are ordered (see above).
enum class BpeTieBreak {
  kSmallestIds,    // the smallest (left id, right id), as Hugging Face tokenizers (the default)
  kSmallestBytes,  // the lexicographically smallest (left bytes, right bytes)
};

struct BpeTrainerOptions {
  size_t vocab_size = 32000;      // total ids: special tokens + 256 bytes + learned tokens
  uint64_t min_frequency = 2;     // stop when the best pair occurs fewer times than this
  std::string pattern;            // pre-tokenization regex; empty = kDefaultBpeTrainPattern
  std::vector<std::string> special_tokens;  // non-empty, distinct, valid UTF-8
  bool special_tokens_last = false;         // false: ids 0..k-1 (Hugging Face); true: the last ids
  int threads = 0;                // 0 = all cores; the result is identical for any value
  size_t max_token_bytes = 0;     // longest learned token in bytes; 0 = unlimited
  size_t max_piece_bytes = 4096;  // longer pre-tokenized pieces are not counted; 0 = no limit
  BpeTieBreak tie_break = BpeTieBreak::kSmallestIds;
  bool show_progress = true;      // a Progress bar over the merges
};

// A trained byte-level BPE model.
struct BpeModel {
  // id -> raw bytes of the token; for a special token, its text.
  std::vector<std::string> tokens;
  // Ids of the special tokens, in the order they were given.
  std::vector<uint32_t> special_ids;
  // Merges in rank order (rank 0 first): (left id, right id). The result is the token whose bytes
  // are tokens[left] + tokens[right].
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  // The pre-tokenization pattern the model was trained with.
  std::string pattern;

  bool is_special(uint32_t id) const;
};

// What training saw and did (for summaries and tests).
struct BpeTrainerStats {
  uint64_t texts = 0;                  // add_text/add_texts inputs
  uint64_t bytes = 0;                  // their total size
  uint64_t invalid_utf8_texts = 0;     // texts with invalid UTF-8 (bad bytes became U+FFFD)
  uint64_t special_occurrences = 0;    // special token occurrences cut out of the text
  uint64_t pieces = 0;                 // pre-tokenized pieces counted (with multiplicity)
  uint64_t long_pieces = 0;            // pieces not counted for being over max_piece_bytes
  uint64_t distinct_words = 0;         // distinct pieces (set by train())
  uint64_t merges = 0;                 // merges learned (set by train())
  uint64_t duplicate_merges = 0;       // of those, merges whose result already existed
  uint64_t vocab_size = 0;             // ids in the trained model (set by train())
  double count_seconds = 0;            // time spent in add_text/add_texts/add_word
  double train_seconds = 0;            // time spent in train()
};

class BpeTrainer {
 public:
  // Throws Error for invalid options (bad pattern, bad special tokens, vocab_size too small).
  explicit BpeTrainer(BpeTrainerOptions options);
  ~BpeTrainer();
  BpeTrainer(const BpeTrainer&) = delete;
  BpeTrainer& operator=(const BpeTrainer&) = delete;

  // Counts the pieces of one text. Thread-safe. Invalid UTF-8 is replaced (U+FFFD) and counted.
  // For many small texts add_texts (batches of megabytes) is much faster.
  void add_text(std::string_view text);
  // Counts the pieces of many texts on options.threads threads. With a known pattern (GPT-2,
  // cl100k, Llama-3, o200k) texts over 2 MB are cut where a line starts with an ASCII letter or
  // digit, which no piece of those patterns spans; custom patterns see each text whole. Thread-safe.
  void add_texts(const std::vector<std::string_view>& texts);
  // Adds count occurrences of an already pre-tokenized piece (raw bytes, used as is). Thread-safe.
  void add_word(std::string_view piece, uint64_t count);

  // Learns the merges. May be called once; throws Error on a second call.
  BpeModel train();

  const BpeTrainerStats& stats() const;
  const BpeTrainerOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agpt::text
