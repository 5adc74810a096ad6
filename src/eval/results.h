// What `agpt eval` writes: results.json (every number, with the model, the task and data file
// hashes and the settings, so a result can be traced and repeated), report.md and report.html with
// tables and PNG plots drawn by src/plot (accuracy vs shots; reliability per task).
#pragma once
#include <string>
#include <vector>

#include "eval/evaluator.h"

namespace agpt::eval {

struct RunInfo {
  std::string agpt_version;
  std::string model_path;      // as given
  std::string model_dir;       // resolved checkpoint directory
  std::string tokenizer_path;
  int64_t parameters = 0;
  int64_t max_length = 0;
  std::string device;
  int threads = 0;
  std::string command_line;
  std::string started;         // UTC, ISO 8601
  double wall_seconds = 0;
  EvalOptions options;
};

Json results_json(const RunInfo& info, const std::vector<TaskResult>& tasks);

// JSON text; any invalid UTF-8 (e.g. from a task file) becomes U+FFFD instead of an exception.
std::string json_text(const Json& j, int indent = -1);

// The summary table printed at the end of a run (and at the top of report.md): one line per task and
// shot count with the primary metric ± stderr, the reliability spread and agreement, and speed.
std::string summary_table(const std::vector<TaskResult>& tasks);

// report.md, report.html, accuracy_vs_shots.png/.svg and reliability.png/.svg in dir.
// Returns the paths written.
std::vector<std::string> write_report(const std::string& dir, const RunInfo& info, const std::vector<TaskResult>& tasks);

}  // namespace agpt::eval
