// Byte-level BPE tokenizers, exact to the reference implementations: tiktoken rank files
// (r50k_base, cl100k_base, o200k_base), GPT-2 vocab+merges, and Hugging Face tokenizer.json with a
// BPE model over the ByteLevel alphabet (GPT-2, Llama 3 style).
//
// Encoding: text -> (added/special tokens matched, when asked) -> pre-tokenizer pieces (a hand-
// written scanner for the known patterns, PCRE2 otherwise) -> byte-level BPE per piece. Two merge
// rules exist and both are exact: tiktoken's (merge the adjacent pair whose concatenation has the
// lowest rank) and GPT-2/HF's (merge the adjacent pair that comes first in the merges list). Both are
// stored as one table: (left id, right id) -> (priority, merged id); ties go to the leftmost pair.
//
// Token strings (token_id, Config::vocab) are in GPT-2's byte-level alphabet ("Ġhello" is " hello"),
// as in vocab.json and tokenizer.json; added/special tokens are their plain content ("<|endoftext|>").
//
// Thread safety: a Tokenizer is immutable after construction; every const method may be called from
// many threads at once (each thread keeps its own small cache of recent pieces).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::text {

// A token matched in the text before pre-tokenization (Hugging Face "added_tokens", tiktoken
// special tokens).
struct AddedToken {
  std::string content;   // the text that is matched (and that decode gives back)
  uint32_t id = 0;
  bool special = true;   // special: matched only by encode(..., allow_special=true)
  bool lstrip = false;   // the match also takes the whitespace before it
  bool rstrip = false;   // the match also takes the whitespace after it
  bool single_word = false;  // only matched when not inside a word
};

class Tokenizer {
 public:
  // Everything a tokenizer is made of; the loaders fill it, and so can a trainer or a test.
  struct Config {
    // The mergeable vocabulary: raw token bytes and their ids. Ids need not be dense.
    std::vector<std::pair<std::string, uint32_t>> vocab;
    // kRanks: tiktoken rule, the priority of a merge is the id (rank) of the merged token, every pair
    //         whose concatenation is in the vocabulary may merge, and a piece that is itself in the
    //         vocabulary is emitted directly.
    // kMerges: GPT-2/HF rule, only the listed merges apply, in list order.
    enum class Rule { kRanks, kMerges } rule = Rule::kRanks;
    std::vector<std::pair<std::string, std::string>> merges;  // raw bytes of left and right (kMerges)
    bool ignore_merges = false;   // kMerges: a piece found in the vocabulary is emitted directly (Llama 3)
    std::vector<AddedToken> added_tokens;
    // Pre-tokenization: the regex splits applied one after the other (Hugging Face Split(Isolated)
    // or ByteLevel(use_regex)); empty means the whole text is one piece.
    std::vector<std::string> split_patterns;
    bool add_prefix_space = false;  // HF ByteLevel: a segment that does not start with ' ' gets one
    // encode_with_template: ids around the text (HF TemplateProcessing / Bert / Roberta post-processor).
    std::vector<uint32_t> template_prefix, template_suffix;
    std::optional<uint32_t> bos_id, eos_id, unk_id;
    std::string description;  // where it came from, for messages
  };

  explicit Tokenizer(Config config);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Appends ids of text; special-token text is encoded as ordinary text (tiktoken encode_ordinary).
  // Non-special added tokens (HF tokenizer.json "special": false) are matched, as Hugging Face does.
  // Invalid UTF-8 is accepted: each invalid byte becomes its own piece (its byte token).
  void encode_ordinary(std::string_view text, std::vector<uint32_t>& out) const;
  // allow_special: text equal to a special/added token is matched as that token (HF behaviour for
  // added tokens, tiktoken allowed_special="all"); leftmost match, the longest at one position.
  std::vector<uint32_t> encode(std::string_view text, bool allow_special = false) const;
  // Appending form of encode.
  void encode(std::string_view text, bool allow_special, std::vector<uint32_t>& out) const;

  // Raw bytes, byte-exact round trip; throws Error on an id that names no token.
  std::string decode(std::span<const uint32_t> ids) const;
  size_t vocab_size() const;  // max id + 1 (including special tokens)
  // By token string (byte-level alphabet for ordinary tokens, plain content for added tokens).
  std::optional<uint32_t> token_id(std::string_view token) const;
  std::string token_bytes(uint32_t id) const;  // raw bytes of one token; throws Error when out of range
  bool is_special(uint32_t id) const;           // an added token marked special
  std::optional<uint32_t> bos_id() const;
  std::optional<uint32_t> eos_id() const;
  // The HF post-processor's add_special_tokens behaviour (e.g. Llama 3 prepends <|begin_of_text|>),
  // around encode_ordinary(text) — text that looks like a special token stays ordinary text.
  std::vector<uint32_t> encode_with_template(std::string_view text) const;
  // The same around encode(text, allow_special): Hugging Face's encode(text) when allow_special.
  std::vector<uint32_t> encode_with_template(std::string_view text, bool allow_special) const;
  // The pre-tokenizer pattern (the first split; "" when the text is not split).
  const std::string& pattern() const;
  std::string description() const;
  const std::vector<AddedToken>& added_tokens() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// path: a tokenizer.json file (or a directory holding one); a tiktoken rank file (pattern chosen by
// the file name r50k_base / p50k_base / cl100k_base / o200k_base, or pattern_override); or a directory
// holding vocab.json|encoder.json + merges.txt|vocab.bpe (GPT-2). pattern_override replaces the
// pre-tokenizer pattern of any of them. Throws agpt::Error with a clear message otherwise.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, const std::string& pattern_override = "");

// The parts of the loaders, for callers that hold the data in memory (tests, trainers). `origin`
// names the source in error messages.
Tokenizer::Config parse_tiktoken_ranks(std::string_view data, const std::string& origin);
Tokenizer::Config parse_tokenizer_json(std::string_view json, const std::string& origin);
Tokenizer::Config parse_gpt2_vocab_merges(std::string_view vocab_json, std::string_view merges_txt,
                                          const std::string& origin);
// The tiktoken encoding settings for a name: pattern and special tokens. nullopt for unknown names.
struct TiktokenEncoding {
  std::string name, pattern;
  std::vector<AddedToken> special_tokens;
};
std::optional<TiktokenEncoding> tiktoken_encoding(std::string_view name);

}  // namespace agpt::text
