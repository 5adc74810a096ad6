// Evaluation task files: a YAML subset close to lm-evaluation-harness task configs, with the data
// in local JSONL files. docs/eval.md lists every field; load_task() checks each one and says what
// is wrong and what to write instead.
//
//   task: physics_mc
//   dataset_path: json                     # local JSONL, one file per split:
//   dataset_kwargs: {data_files: {test: physics/test.jsonl, validation: physics/dev.jsonl}}
//   test_split: test
//   fewshot_split: validation
//   output_type: multiple_choice
//   doc_to_text: "Question: {{question}}\nAnswer:"
//   doc_to_choice: "{{choices}}"
//   doc_to_target: "{{answer}}"
//   metric_list: [{metric: acc}, {metric: acc_norm}]
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/template.h"

namespace agpt::eval {

enum class OutputType { kMultipleChoice, kGenerateUntil, kLoglikelihoodRolling };
const char* output_type_name(OutputType t);  // the YAML spelling

// One metric of metric_list, with the options exact_match takes (lm-evaluation-harness's names).
struct MetricSpec {
  std::string name;
  bool ignore_case = false;
  bool ignore_punctuation = false;
  bool ignore_numbers = false;
  bool ignore_whitespace = false;  // agpt: trim and collapse runs of whitespace before comparing
  std::vector<std::string> regexes_to_ignore;
};

// One step of a filter chain (filter_list), applied to a document's generated responses.
struct FilterStep {
  std::string function;  // regex | take_first | majority_vote | lowercase | uppercase | remove_whitespace | strip
  std::string regex_pattern;
  int group_select = 0;  // which match of the regex (negative: from the end)
  std::string fallback = "[invalid]";
};
struct FilterChain {
  std::string name;  // "none" when the task gives no filter_list
  std::vector<FilterStep> steps;
};

struct GenerationSettings {
  std::vector<std::string> until;  // stop strings; default: the few-shot delimiter
  int64_t max_gen_toks = 256;
  bool do_sample = false;
  double temperature = 0;  // used when do_sample (0 there means 1.0, as transformers' default)
  double top_p = 1.0;
  int64_t top_k = 0;
};

// How a document becomes a prompt: the task's own fields, or one of its extra `prompts` (for the
// reliability runs), which override any of these.
struct Prompt {
  std::string name = "default";
  Template description;             // text before the few-shot examples ({{field}} holes filled from the document)
  Template doc_to_text, doc_to_target;
  std::vector<Template> choice_list;  // doc_to_choice given as a YAML list of templates, or
  Template choice_expr;               // one template whose value is the list (e.g. "{{choices}}")
  std::string target_delimiter = " ";
  std::string fewshot_delimiter = "\n\n";
  bool has_choices() const { return !choice_list.empty() || !choice_expr.empty(); }
};

struct Task {
  std::string name;
  std::string file;    // the YAML file
  std::string sha256;  // of its bytes
  OutputType output_type = OutputType::kMultipleChoice;
  std::map<std::string, std::string> data_files;  // split -> JSONL path (resolved)
  std::string eval_split;                          // test_split, else validation_split
  std::string fewshot_split;                       // may be empty (then no few-shot is possible)
  std::optional<int> num_fewshot;                  // the file's default when --shots is not given
  Prompt prompt;                                   // the default prompt
  std::vector<Prompt> extra_prompts;               // `prompts:` for reliability runs
  std::vector<MetricSpec> metrics;                 // never empty after loading (defaults by type)
  std::vector<FilterChain> filters;                // never empty (a "none" chain of take_first)
  GenerationSettings generation;
  int repeats = 1;
  std::string version;  // metadata.version, when given
};

// Reads and checks one task file. Relative data paths are relative to the file. `include:` (a
// base file whose fields this one overrides) is followed, as lm-evaluation-harness does.
Task load_task(const std::string& path);

// --tasks: a comma-separated list of YAML files, directories (every *.yaml / *.yml below them,
// sorted), folders of a search dir ("science": every task file below DIR/science), and task names
// (looked up by their `task:` field, or file stem, in the YAML files below each search dir).
// Fails naming what was not found and the names that exist.
std::vector<std::string> resolve_task_files(const std::string& spec, const std::vector<std::string>& search_dirs);

}  // namespace agpt::eval
