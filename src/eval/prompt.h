// From a document to what the model is asked: the few-shot context, the choices and the gold
// answer, with lm-evaluation-harness's layout:
//
//   context = description + shot_1 + fewshot_delimiter + ... + shot_k + fewshot_delimiter + doc_to_text(doc)
//   shot_i  = doc_to_text(shot) + target_delimiter + target text of the shot
//
// The target text of a multiple-choice shot is its gold choice. Shots are drawn from the few-shot
// split without replacement by a generator seeded from (seed, document index), so a document's
// shots do not depend on the order in which documents are evaluated, nor on the other documents;
// and a document's k-shot examples are the first k of its larger samples (nested shot sweeps).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eval/docs.h"
#include "eval/task.h"

namespace agpt::eval {

struct Instance {
  std::string context;               // what precedes the answer
  std::vector<std::string> choices;  // multiple_choice: the choices' text (without the delimiter)
  std::vector<int> gold;             // multiple_choice: indices of the correct choices
  std::vector<std::string> targets;  // generate_until: accepted answers; rolling: the document text
};

// The choices and gold indices (multiple_choice) or the accepted answers (generate_until) of doc,
// and its target text as a few-shot example shows it. Fails naming doc.where on a bad document.
struct Answer {
  std::vector<std::string> choices;
  std::vector<int> gold;
  std::vector<std::string> targets;
  std::string shot_text() const { return !gold.empty() ? choices[gold[0]] : targets.empty() ? "" : targets[0]; }
};
Answer read_answer(const Task& task, const Prompt& prompt, const Doc& doc);

// k indices of pool documents for the document with index doc_index; `exclude` (the document itself
// when the few-shot split is the evaluated split) is never chosen. Fails when the pool is too small.
std::vector<size_t> sample_shots(size_t pool_size, size_t k, uint64_t seed, size_t doc_index,
                                 std::optional<size_t> exclude);

Instance build_instance(const Task& task, const Prompt& prompt, const Doc& doc, const std::vector<const Doc*>& shots);

}  // namespace agpt::eval
