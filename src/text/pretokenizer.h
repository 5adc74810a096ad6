// Pre-tokenization: splitting text into pieces before BPE, as a regular expression would.
// Known patterns (GPT-2/r50k, cl100k/Llama-3, o200k) get hand-written scanners (fast); any other
// pattern runs through PCRE2 (JIT, Unicode), which is also the reference the fast scanners are
// tested against.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::text {

// The patterns of the reference tokenizers (tiktoken_ext.openai_public, Hugging Face tokenizer.json).
extern const char* const kGpt2Pattern;    // GPT-2, r50k_base, HF ByteLevel(use_regex=true)
extern const char* const kCl100kPattern;  // cl100k_base
extern const char* const kO200kPattern;   // o200k_base

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Appends the pieces of text, in order, to out (pieces concatenate back to the matched text;
  // text the pattern cannot match is emitted as its own piece so no byte is ever lost).
  // Input must be valid UTF-8.
  virtual void split(std::string_view text, std::vector<std::string_view>& out) const = 0;
  // The regular expression this pre-tokenizer implements.
  virtual const std::string& pattern() const = 0;
};

// The pattern families that have a hand-written scanner. kCl100kNoEndRule is the Llama 3 (and older
// tiktoken) spelling of cl100k, without `\s++$`: it splits trailing whitespace that holds a newline
// followed by more whitespace differently ("x\n  " at the very end: "\n", "  " instead of "\n  ").
enum class PatternKind { kOther, kGpt2, kCl100k, kCl100kNoEndRule, kO200k };

// Which scanner implements pattern: the tiktoken 0.14 spellings above and the older, equivalent
// spellings (original GPT-2, Hugging Face ByteLevel, Llama 3 tokenizer.json, tiktoken < 0.8).
// kOther for any other text, even a regex that happens to be equivalent.
PatternKind known_pattern_kind(std::string_view pattern);

// A short name for a pattern: "gpt2", "cl100k", "llama3", "o200k" or "custom regex".
const char* pattern_kind_name(PatternKind kind);

// A pre-tokenizer for pattern: a hand-written scanner when the pattern is a known one (or an
// equivalent spelling of it), otherwise PCRE2. Throws Error for a pattern PCRE2 cannot compile.
std::unique_ptr<PreTokenizer> make_pretokenizer(const std::string& pattern);

// Always the PCRE2 implementation (reference for tests, and the fallback).
std::unique_ptr<PreTokenizer> make_regex_pretokenizer(const std::string& pattern);

}  // namespace agpt::text
