// The arithmetic of scores, with the definitions of lm-evaluation-harness where it has one
// (docs/eval.md writes each out):
//  - multiple choice, for log-likelihoods ll_i of the choices c_i (each scored as target_delimiter + c_i):
//      acc       = [argmax_i ll_i is gold]
//      acc_norm  = [argmax_i ll_i / len(c_i) in characters (Unicode code points) is gold]
//      acc_bytes = [argmax_i ll_i / len(c_i) in UTF-8 bytes is gold]
//      is_greedy = [the gold choice's tokens are each the model's argmax]
//    argmax takes the first of equal values; a length of 0 counts as 1.
//  - mean and its standard error: sample standard deviation (n - 1) / sqrt(n).
//  - documents: word_perplexity = exp(-Σll / Σwords), byte_perplexity = exp(-Σll / Σbytes),
//    bits_per_byte = -Σll / (Σbytes · ln 2), token_perplexity = exp(-Σll / Σtokens).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/task.h"

namespace agpt::eval {

struct MeanStderr {
  double mean = 0;
  std::optional<double> stderr_;  // none for fewer than 2 values
};
MeanStderr mean_stderr(const std::vector<double>& values);

// Sample standard deviation (n - 1); 0 for fewer than 2 values.
double sample_std(const std::vector<double>& values);

// Unicode code points of UTF-8 text (as Python's len of a str); invalid bytes count one each.
size_t count_chars(std::string_view s);
// Words as lm-evaluation-harness counts them: len(re.split(r"\s+", text)).
size_t count_words(std::string_view s);

// The index with the largest score / divisor (divisor < 1 counts as 1); the first on ties.
int argmax_normalized(const std::vector<double>& scores, const std::vector<double>& divisors);

struct ChoiceScores {
  std::vector<double> loglikelihoods;
  std::vector<bool> is_greedy;
};
// The metric's value (0 or 1) for one document, and the predicted choice (for agreement).
double choice_metric(const std::string& metric, const ChoiceScores& s, const std::vector<std::string>& choices,
                     const std::vector<int>& gold);
int predicted_choice(const ChoiceScores& s);

// exact_match of one response against the accepted answers (1 if it equals any after the
// normalisation the metric's options ask for, in lm-eval's order: regexes removed, case, punctuation,
// numbers; then agpt's ignore_whitespace).
double exact_match(const MetricSpec& spec, const std::string& response, const std::vector<std::string>& targets);
std::string normalize_answer(const MetricSpec& spec, std::string s);

// Linear interpolation between closest ranks (numpy's default); q in [0, 100]; 0 for no values.
double percentile(std::vector<double> values, double q);

// Over runs × documents (answers[r][d]): the fraction of documents on which every run gave the same
// answer, and the mean over pairs of runs of the fraction of documents on which the pair agrees.
struct Agreement {
  double all = 1, pairwise = 1;
};
Agreement agreement(const std::vector<std::vector<std::string>>& answers);

}  // namespace agpt::eval
