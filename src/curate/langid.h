// Language identification: a multinomial naive Bayes classifier over hashed character n-grams,
// trained by agpt (`agpt data langid train`) and used by `agpt data filter --languages`.
//
// Why naive Bayes: it trains in one counting pass (deterministic, no learning rate, no epochs),
// needs only a few megabytes of text per language, and at a few thousand characters per document it
// is as accurate as the linear classifiers (fastText, langid.py) on the languages that matter
// here. Its posteriors are over-confident on long texts; they are scores to threshold, not
// calibrated probabilities.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate {

struct LangIdOptions {
  int min_n = 1;          // shortest character n-gram
  int max_n = 3;          // longest character n-gram (at most 5)
  int log2_buckets = 18;  // features are hashed into 2^log2_buckets buckets (12..24)
  double alpha = 0.5;     // additive smoothing of the n-gram counts
  // Only the first max_chars characters of a text are looked at (speed; 0: all).
  uint32_t max_chars = 2000;
};

// The feature buckets of text: characters are lowercased (Unicode simple lowercase), every run of
// characters that are not letters or marks becomes one space, the text is padded with a space on
// both sides, and every n-gram of n = min_n..max_n consecutive characters (except a lone space)
// is hashed into a bucket. Invalid UTF-8 bytes are separators. out is replaced.
void langid_features(std::string_view text, const LangIdOptions& opt, std::vector<uint32_t>& out);

// A trained model: per bucket and language, the log-probability of the n-gram under the language.
class LangIdModel {
 public:
  LangIdModel() = default;

  const std::vector<std::string>& languages() const { return languages_; }
  const LangIdOptions& options() const { return opt_; }
  // Index of a language, or -1.
  int language_index(std::string_view lang) const;

  // Posterior probability of each language (order of languages()), with uniform priors; they sum
  // to 1. A text without a feature gets 1/L everywhere.
  void scores(std::string_view text, std::vector<double>& out) const;
  // The most probable language's index and its posterior.
  std::pair<int, double> best(std::string_view text) const;

  // The model file: see langid_model.cpp for the layout. save() is atomic.
  std::string serialize() const;
  void save(const std::string& path) const;
  // Throws agpt::Error naming label for anything that is not a complete, undamaged model.
  static LangIdModel deserialize(std::string_view bytes, const std::string& label);
  static LangIdModel load(const std::string& path);

 private:
  friend class LangIdTrainer;
  void scores_of(const std::vector<uint32_t>& features, std::vector<double>& out) const;

  LangIdOptions opt_;
  std::vector<std::string> languages_;
  std::vector<float> logp_;  // [bucket][language]: one cache line per feature
};

// Counts features per language, then turns them into a model.
class LangIdTrainer {
 public:
  // languages: short codes ("en", "ja", "zh"): 1..32 bytes of [a-z0-9_-], distinct, 2..255 of them.
  LangIdTrainer(const LangIdOptions& opt, std::vector<std::string> languages);

  // Adds features (from langid_features with the same options) of a text of language lang.
  void add(int lang, const std::vector<uint32_t>& features);
  void add_text(int lang, std::string_view text);
  uint64_t features_of(int lang) const { return totals_[lang]; }
  uint64_t texts_of(int lang) const { return texts_[lang]; }

  // The model. Throws when a language got no training text.
  LangIdModel finish() const;

 private:
  LangIdOptions opt_;
  std::vector<std::string> languages_;
  std::vector<uint32_t> counts_;  // [bucket][language]
  std::vector<uint64_t> totals_, texts_;
};

// Checks a language code (see LangIdTrainer); throws agpt::Error naming where.
void check_language_code(std::string_view code, const std::string& where);

// Pieces of text for evaluation: consecutive lines joined until a piece has at least
// min_chars characters; the rest at the end is a last piece when it has at least min_chars / 2.
// A line longer than 4 * min_chars is cut at the character after 2 * min_chars. min_chars = 0: the
// whole text is one piece.
std::vector<std::string_view> langid_snippets(std::string_view text, uint32_t min_chars);

// Per-language precision and recall on labelled texts.
struct LangIdEvaluation {
  std::vector<std::string> languages;
  std::vector<std::vector<uint64_t>> confusion;  // [true][predicted]
  uint64_t total() const;
  uint64_t correct() const;
  double precision(size_t lang) const;
  double recall(size_t lang) const;
  std::string table() const;    // readable
  std::string to_json() const;  // pretty JSON
};

}  // namespace agpt::curate
