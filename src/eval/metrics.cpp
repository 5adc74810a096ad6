#include "eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "base/error.h"
#include "eval/regex.h"

namespace agpt::eval {

MeanStderr mean_stderr(const std::vector<double>& v) {
  MeanStderr r;
  if (v.empty()) return r;
  double sum = 0;
  for (double x : v) sum += x;
  r.mean = sum / static_cast<double>(v.size());
  if (v.size() >= 2) r.stderr_ = sample_std(v) / std::sqrt(static_cast<double>(v.size()));
  return r;
}

double sample_std(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    bool ok = i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    i += ok ? len : 1;
    ++n;
  }
  return n;
}

size_t count_words(std::string_view s) {
  // re.split(r"\s+") gives one more piece than there are whitespace runs (empty pieces included).
  size_t pieces = 1;
  bool in_space = false;
  for (char c : s) {
    bool sp = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (sp && !in_space) ++pieces;
    in_space = sp;
  }
  return pieces;
}

int argmax_normalized(const std::vector<double>& scores, const std::vector<double>& divisors) {
  int best = -1;
  double best_v = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    double d = divisors.empty() ? 1.0 : std::max(1.0, divisors[i]);
    double v = scores[i] / d;
    if (best < 0 || v > best_v) best = static_cast<int>(i), best_v = v;
  }
  return best;
}

int predicted_choice(const ChoiceScores& s) { return argmax_normalized(s.loglikelihoods, {}); }

double choice_metric(const std::string& metric, const ChoiceScores& s, const std::vector<std::string>& choices,
                     const std::vector<int>& gold) {
  auto is_gold = [&](int i) { return std::find(gold.begin(), gold.end(), i) != gold.end() ? 1.0 : 0.0; };
  if (metric == "acc") return is_gold(predicted_choice(s));
  if (metric == "acc_norm" || metric == "acc_bytes") {
    std::vector<double> len;
    for (const std::string& c : choices)
      len.push_back(static_cast<double>(metric == "acc_norm" ? count_chars(c) : c.size()));
    return is_gold(argmax_normalized(s.loglikelihoods, len));
  }
  if (metric == "is_greedy") return s.is_greedy.at(static_cast<size_t>(gold.at(0))) ? 1.0 : 0.0;
  fail("unknown multiple-choice metric '", metric, "'");
}

std::string normalize_answer(const MetricSpec& spec, std::string s) {
  for (const std::string& re : spec.regexes_to_ignore) s = Regex(re).replace_all(s, "");
  if (spec.ignore_case)
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  auto drop = [&](auto pred) { s.erase(std::remove_if(s.begin(), s.end(), [&](unsigned char c) { return pred(c); }), s.end()); };
  if (spec.ignore_punctuation) drop([](unsigned char c) { return std::ispunct(c) != 0; });
  if (spec.ignore_numbers) drop([](unsigned char c) { return std::isdigit(c) != 0; });
  if (spec.ignore_whitespace) {
    std::string out;
    bool space = false;
    for (unsigned char c : s) {
      if (std::isspace(c)) {
        space = true;
        continue;
      }
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(c);
    }
    s = out;
  }
  return s;
}

double exact_match(const MetricSpec& spec, const std::string& response, const std::vector<std::string>& targets) {
  std::string r = normalize_answer(spec, response);
  for (const std::string& t : targets)
    if (normalize_answer(spec, t) == r) return 1;
  return 0;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

Agreement agreement(const std::vector<std::vector<std::string>>& answers) {
  Agreement a;
  if (answers.size() < 2 || answers[0].empty()) return a;
  const size_t runs = answers.size(), docs = answers[0].size();
  for (const auto& r : answers)
    if (r.size() != docs) fail("agreement: runs cover different numbers of documents");
  size_t all = 0;
  for (size_t d = 0; d < docs; ++d) {
    bool same = true;
    for (size_t r = 1; r < runs && same; ++r) same = answers[r][d] == answers[0][d];
    all += same;
  }
  double pair_sum = 0;
  size_t pairs = 0;
  for (size_t r1 = 0; r1 < runs; ++r1)
    for (size_t r2 = r1 + 1; r2 < runs; ++r2, ++pairs) {
      size_t same = 0;
      for (size_t d = 0; d < docs; ++d) same += answers[r1][d] == answers[r2][d];
      pair_sum += static_cast<double>(same) / static_cast<double>(docs);
    }
  a.all = static_cast<double>(all) / static_cast<double>(docs);
  a.pairwise = pair_sum / static_cast<double>(pairs);
  return a;
}

}  // namespace agpt::eval
