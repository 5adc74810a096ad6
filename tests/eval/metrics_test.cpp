// Scoring arithmetic on hand-computed cases: acc / acc_norm / acc_bytes, standard errors,
// percentiles, agreement, exact-match normalisation and the filters.
#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "eval/filters.h"

namespace agpt::eval {
namespace {

FilterStep step(const std::string& function, const std::string& pattern = "", int group = 0, const std::string& fallback = "[invalid]") {
  FilterStep s;
  s.function = function;
  s.regex_pattern = pattern;
  s.group_select = group;
  s.fallback = fallback;
  return s;
}

TEST(Metrics, MultipleChoiceByLengthNormalisation) {
  // ll / chars: -4/1 = -4, -6/4 = -1.5, -9/9 = -1  -> acc picks 0, acc_norm picks 2.
  ChoiceScores s{{-4, -6, -9}, {true, false, false}};
  std::vector<std::string> choices = {"a", "bbbb", "ccccccccc"};
  EXPECT_EQ(choice_metric("acc", s, choices, {0}), 1);
  EXPECT_EQ(choice_metric("acc_norm", s, choices, {0}), 0);
  EXPECT_EQ(choice_metric("acc_norm", s, choices, {2}), 1);
  EXPECT_EQ(choice_metric("acc", s, choices, {1, 2}), 0);
  EXPECT_EQ(choice_metric("is_greedy", s, choices, {0}), 1);
  EXPECT_EQ(choice_metric("is_greedy", s, choices, {1}), 0);
  // Characters vs bytes: "éé" is 2 characters and 4 bytes.
  ChoiceScores t{{-3, -1.0}, {false, false}};
  std::vector<std::string> c2 = {"éé", "xx"};  // chars: -1.5 vs -0.5 -> 1; bytes: -0.75 vs -0.5 -> 1
  EXPECT_EQ(choice_metric("acc_norm", t, c2, {1}), 1);
  ChoiceScores u{{-3, -1.2}, {false, false}};
  std::vector<std::string> c3 = {"éé", "x"};  // chars: -1.5 vs -1.2 -> 1; bytes: -0.75 vs -1.2 -> 0
  EXPECT_EQ(choice_metric("acc_norm", u, c3, {1}), 1);
  EXPECT_EQ(choice_metric("acc_bytes", u, c3, {0}), 1);
  // Ties go to the first index (numpy argmax).
  EXPECT_EQ(predicted_choice({{-1, -1}, {false, false}}), 0);
  EXPECT_EQ(count_chars("aé€😀"), 4u);
  EXPECT_EQ(count_chars("\xff" "a"), 2u);
}

TEST(Metrics, MeanStderrPercentilesAgreement) {
  MeanStderr m = mean_stderr({1, 0, 1, 1});
  EXPECT_DOUBLE_EQ(m.mean, 0.75);
  ASSERT_TRUE(m.stderr_.has_value());
  EXPECT_DOUBLE_EQ(*m.stderr_, 0.25);  // sample std 0.5 / sqrt(4)
  EXPECT_FALSE(mean_stderr({1}).stderr_.has_value());
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_NEAR(percentile({4, 1, 3, 2}, 90), 3.7, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({5}, 99), 5);
  // Runs x docs: doc 0 all agree, doc 1 one run differs, doc 2 all agree.
  Agreement a = agreement({{"A", "B", "C"}, {"A", "B", "C"}, {"A", "X", "C"}});
  EXPECT_DOUBLE_EQ(a.all, 2.0 / 3);
  EXPECT_DOUBLE_EQ(a.pairwise, (1.0 + 2.0 / 3 + 2.0 / 3) / 3);
  EXPECT_EQ(count_words("a  b\nc"), 3u);
  EXPECT_EQ(count_words(" a"), 2u);  // re.split gives ['', 'a']
}

TEST(Metrics, ExactMatchNormalisation) {
  MetricSpec plain;
  plain.name = "exact_match";
  EXPECT_EQ(exact_match(plain, "Paris", {"Paris"}), 1);
  EXPECT_EQ(exact_match(plain, " Paris", {"Paris"}), 0);
  MetricSpec norm{"exact_match", true, true, false, true, {"^the "}};
  EXPECT_EQ(normalize_answer(norm, "the  Mitochondria!\n"), "mitochondria");
  EXPECT_EQ(exact_match(norm, "  MITOCHONDRIA.", {"x", "mitochondria"}), 1);
  MetricSpec nums;
  nums.name = "exact_match";
  nums.ignore_numbers = true;
  EXPECT_EQ(exact_match(nums, "abc123", {"abc"}), 1);
}

TEST(Filters, RegexMajorityVoteAndFallback) {
  FilterChain chain{"maj", {step("regex", "answer is (-?\\d+)"), step("majority_vote"), step("take_first")}};
  Filter f(chain);
  EXPECT_EQ(f.apply({"the answer is 4.", "so the answer is 5", "answer is 4"}), "4");
  EXPECT_EQ(f.apply({"no idea", "none"}), "[invalid]");
  FilterStep last = step("regex", "(\\d+)", -1, "?");
  EXPECT_EQ(Filter({"last", {last}}).apply({"1 then 22 then 333"}), "333");
  EXPECT_EQ(Filter({"last", {last}}).apply({"none"}), "?");
  EXPECT_EQ(Filter({"s", {step("strip"), step("lowercase")}}).apply({"  ABC \n"}), "abc");
  EXPECT_EQ(Filter({"w", {step("remove_whitespace")}}).apply({"  x"}), " x");
  // Whole matches without groups; empty matches do not loop forever.
  EXPECT_EQ(Regex("[A-D]").find_all("B or C"), (std::vector<std::string>{"B", "C"}));
  EXPECT_EQ(Regex("x*").find_all("ab").size(), 3u);
  EXPECT_THROW(Regex("(unclosed"), Error);
}

}  // namespace
}  // namespace agpt::eval
