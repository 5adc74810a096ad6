#include "plot/metrics.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file.h"

namespace agpt::plot {
namespace {

using json = nlohmann::json;

// A number field, or NaN when absent, null or not a number.
double number(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : NAN;
}

// Why `line` cannot be used ("" when it can), filling *step_out.
std::string parse_step(const json& j, int64_t* step_out) {
  if (!j.is_object()) return "not a JSON object";
  auto it = j.find("step");
  if (it == j.end() || !it->is_number()) return "no numeric \"step\"";
  const double s = it->get<double>();
  if (!std::isfinite(s) || s != std::floor(s) || std::fabs(s) > 9e15) return "\"step\" is not an integer";
  *step_out = static_cast<int64_t>(s);
  return "";
}

}  // namespace

RunMetrics parse_metrics(std::string_view text, const std::string& path) {
  RunMetrics m;
  m.path = path;
  std::map<int64_t, StepRecord> steps;  // keyed by step: a repeated step keeps its last line
  std::map<int64_t, EvalRecord> evals;
  size_t line_no = 0;
  auto bad = [&m, &line_no](const std::string& reason) {
    if (m.bad_lines++ == 0) m.first_bad_line = line_no, m.first_bad_reason = reason;
  };
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      bad("not valid JSON");
      continue;
    }
    int64_t step = 0;
    if (std::string why = parse_step(j, &step); !why.empty()) {
      bad(why);
      continue;
    }
    if (j.contains("val_loss")) {
      m.repeated_steps += evals.count(step);
      evals[step] = {step, number(j, "val_loss")};
    } else if (j.contains("loss")) {
      m.repeated_steps += steps.count(step);
      steps[step] = {step, number(j, "loss"), number(j, "lr"), number(j, "grad_norm"), number(j, "tokens_per_s"),
                     number(j, "mfu"), j.contains("skipped")};
    } else {
      bad("neither \"loss\" nor \"val_loss\"");
    }
  }
  for (const auto& [s, r] : steps) m.steps.push_back(r);
  for (const auto& [s, r] : evals) m.evals.push_back(r);
  return m;
}

RunMetrics read_metrics(const std::string& run) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(run, ec)) fail(run, ": no such file or directory (give a run directory of `agpt train`)");
  std::string path = run;
  if (fs::is_directory(run, ec)) {
    path = (fs::path(run) / "metrics.jsonl").string();
    if (!fs::exists(path, ec))
      fail(run, ": no metrics.jsonl in this directory (give the train.out_dir of an `agpt train` run, or the metrics file)");
  }
  RunMetrics m = parse_metrics(read_file(path), path);
  if (m.steps.empty()) {
    if (m.bad_lines > 0)
      fail("no step lines in ", path, ": ", m.bad_lines, m.bad_lines == 1 ? " line" : " lines", " could not be read (line ", m.first_bad_line, ": ",
           m.first_bad_reason, ")");
    fail("no step lines in ", path, m.evals.empty() ? " (the file is empty: has training started?)" : " (only evaluation lines)");
  }
  return m;
}

std::string metrics_warning(const RunMetrics& m) {
  std::string out;
  if (m.bad_lines > 0)
    out = cat(m.path, ": skipped ", m.bad_lines, m.bad_lines == 1 ? " line" : " lines", " that could not be read (first: line ",
              m.first_bad_line, ", ", m.first_bad_reason, ")");
  if (m.repeated_steps > 0)
    out += cat(out.empty() ? m.path + ": " : "; ", m.repeated_steps, " repeated steps (a resumed run?): kept the last line of each");
  return out;
}

}  // namespace agpt::plot
