// Runs tasks on a model: builds every prompt (per shot count, prompt variant and few-shot sample),
// scores the log-likelihood requests in batches (Scorer), generates answers for generate_until
// tasks, and reduces the per-document scores to metrics, reliability and speed.
//
// Runs of a task: for each shot count k, for each prompt (the default, then the file's `prompts`
// unless only_default_prompt), for each few-shot sample s < fewshot_samples (one when k = 0; shots
// drawn with seed + s). The reported metrics of k are those of the first run (default prompt,
// seed), the numbers lm-evaluation-harness would give; the reliability block summarises all runs of k.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "eval/metrics.h"
#include "eval/scorer.h"
#include "eval/task.h"
#include "model/llama.h"
#include "text/tokenizer.h"

namespace agpt::eval {

struct EvalOptions {
  std::vector<int> shots;   // empty: each task's num_fewshot (0 when it has none)
  int64_t limit = 0;        // evaluate the first `limit` documents only (0: all)
  uint64_t seed = 1234;     // few-shot sampling and sampled generation
  int fewshot_samples = 1;  // few-shot draws per shot count, for reliability (>= 1)
  bool only_default_prompt = false;
  ScorerOptions scorer;
  bool log_samples = false;    // keep one record per document and run
  bool dump_requests = false;  // keep one record per log-likelihood request
  bool show_progress = true;
};

struct MetricResult {
  std::string name;  // "acc", or "exact_match,FILTER" for a named filter chain
  double value = 0;
  std::optional<double> stderr_;
};

struct RunValue {
  std::string prompt;
  uint64_t seed = 0;
  double value = 0;  // the primary metric
};

struct Reliability {
  std::string metric;
  std::vector<RunValue> runs;
  double mean = 0, std = 0, min = 0, max = 0;
  Agreement agreement;
};

struct ShotResult {
  int shots = 0;
  std::vector<MetricResult> metrics;
  std::optional<Reliability> reliability;  // when there were 2 runs or more
};

struct Speed {
  int64_t requests = 0;          // log-likelihood requests plus generations
  int64_t input_tokens = 0;      // tokens run through the model in log-likelihood forwards
  int64_t padded_tokens = 0;     // padding in those forwards
  int64_t prompt_tokens = 0;     // generation prompts (prefill)
  int64_t generated_tokens = 0;  // tokens generated
  double seconds = 0;            // model time (forwards and generation)
  std::vector<double> latencies;  // per request, seconds
  void add(const Speed& o);
  double tokens_per_second() const;    // (input + prompt + generated tokens) / seconds
  double requests_per_second() const;
};

struct TaskResult {
  std::string name, file, sha256, version;
  std::map<std::string, std::string> data_sha256;  // data file -> its SHA-256
  OutputType output_type = OutputType::kMultipleChoice;
  size_t docs = 0;
  std::string primary_metric;
  std::vector<std::string> prompts;  // the prompts run
  std::vector<ShotResult> shots;
  Speed speed;
  std::vector<Json> samples;   // EvalOptions::log_samples
  std::vector<Json> requests;  // EvalOptions::dump_requests
  const ShotResult* at_shots(int k) const;
  const MetricResult* metric(int k, const std::string& name) const;
};

// Reads a task's documents and builds every prompt the evaluation would (all prompts and shot
// counts, one few-shot sample), without a model: bad data is reported before a model is loaded.
void check_task_data(const Task& task, const EvalOptions& options);

class Evaluator {
 public:
  Evaluator(model::Llama& model, const text::Tokenizer& tokenizer, EvalOptions options);
  TaskResult evaluate(const Task& task);
  const Scorer& scorer() const { return scorer_; }

 private:
  model::Llama& model_;
  const text::Tokenizer& tokenizer_;
  EvalOptions options_;
  Scorer scorer_;
};

}  // namespace agpt::eval
