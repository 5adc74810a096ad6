// Filter chains of generate_until tasks (lm-evaluation-harness's filter_list): each step maps a
// document's list of responses (one per repeat) to a new list; the chain's answer is the first
// element at the end. maj@k is `regex` then `majority_vote` over `repeats: k` sampled responses.
//   regex          each response -> its group_select-th match (negative: from the end), stripped;
//                  `fallback` when there is none
//   take_first     [r1, r2, ...] -> [r1]
//   majority_vote  -> [the most frequent response]; ties go to the one seen first
//   lowercase, uppercase; strip (both ends); remove_whitespace (one leading space, as lm-eval)
#pragma once
#include <string>
#include <vector>

#include "eval/regex.h"
#include "eval/task.h"

namespace agpt::eval {

class Filter {
 public:
  explicit Filter(const FilterChain& chain);  // compiles the regexes; fails on a bad one
  const std::string& name() const { return name_; }
  std::string apply(std::vector<std::string> responses) const;  // "" for no responses

 private:
  std::string name_;
  std::vector<FilterStep> steps_;
  std::vector<Regex> regexes_;  // one per regex step, in order
};

}  // namespace agpt::eval
