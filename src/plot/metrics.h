// Reading a training run's metrics.jsonl (written by train/trainer.cpp) into per-step series.
// Lenient by design: a run that crashed or resumed may leave torn or repeated lines, and a plot
// of the rest is still wanted, so bad lines are counted, never fatal.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::plot {

// One training step. Absent or null values (non-finite at write time) are NaN.
struct StepRecord {
  int64_t step = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, mfu = 0;
  bool skipped = false;  // a guard skipped the update ("skipped": reason)
};

struct EvalRecord {
  int64_t step = 0;
  double val_loss = 0;
};

struct RunMetrics {
  std::string path;                // the file read (for messages)
  std::vector<StepRecord> steps;   // ascending step, one record per step
  std::vector<EvalRecord> evals;   // ascending step, one record per step
  size_t bad_lines = 0;            // lines that were not a step or evaluation object
  size_t first_bad_line = 0;       // 1-based line number of the first of them
  std::string first_bad_reason;
  size_t repeated_steps = 0;       // lines whose step came again later; the later line wins (a resumed run's)
};

// Parses the text of a metrics file; `path` only names it in messages. Never throws for bad lines.
RunMetrics parse_metrics(std::string_view text, const std::string& path);

// The metrics file of `run` (a run directory holding metrics.jsonl, or the file itself). Throws
// Error when it is missing or holds no step lines.
RunMetrics read_metrics(const std::string& run);

// One line for the user about bad and repeated lines ("" when there were none).
std::string metrics_warning(const RunMetrics& m);

}  // namespace agpt::plot
