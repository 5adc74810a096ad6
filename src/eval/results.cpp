#include "eval/results.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"
#include "plot/figure.h"

namespace agpt::eval {
namespace {

std::string fmt(double v, int digits = 4) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

Json metric_json(const MetricResult& m) {
  Json j = {{"value", m.value}};
  j["stderr"] = m.stderr_ ? Json(*m.stderr_) : Json(nullptr);
  return j;
}

Json speed_json(const Speed& s) {
  return {{"requests", s.requests},
          {"input_tokens", s.input_tokens},
          {"padding_tokens", s.padded_tokens},
          {"prompt_tokens", s.prompt_tokens},
          {"generated_tokens", s.generated_tokens},
          {"seconds", s.seconds},
          {"tokens_per_second", s.tokens_per_second()},
          {"requests_per_second", s.requests_per_second()},
          {"latency_ms",
           {{"p50", 1000 * percentile(s.latencies, 50)},
            {"p90", 1000 * percentile(s.latencies, 90)},
            {"p99", 1000 * percentile(s.latencies, 99)}}}};
}

// A table rendered as Markdown and as HTML from the same cells.
struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;
  std::string markdown() const {
    auto line = [](const std::vector<std::string>& cells) {
      std::string s = "|";
      for (const auto& c : cells) s += " " + c + " |";
      return s + "\n";
    };
    std::string out = line(head) + "|";
    for (size_t i = 0; i < head.size(); ++i) out += " --- |";
    out += "\n";
    for (const auto& r : rows) out += line(r);
    return out;
  }
  std::string html() const {
    auto esc = [](const std::string& s) {
      std::string o;
      for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
      return o;
    };
    std::string out = "<table>\n<tr>";
    for (const auto& h : head) out += "<th>" + esc(h) + "</th>";
    out += "</tr>\n";
    for (const auto& r : rows) {
      out += "<tr>";
      for (const auto& c : r) out += "<td>" + esc(c) + "</td>";
      out += "</tr>\n";
    }
    return out + "</table>\n";
  }
  // Fixed-width text for the terminal.
  std::string text() const {
    std::vector<size_t> w(head.size());
    auto widen = [&](const std::vector<std::string>& r) {
      for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
    };
    widen(head);
    for (const auto& r : rows) widen(r);
    auto line = [&](const std::vector<std::string>& r) {
      std::string s;
      for (size_t i = 0; i < r.size(); ++i) s += r[i] + std::string(w[i] - r[i].size() + 2, ' ');
      while (!s.empty() && s.back() == ' ') s.pop_back();
      return s + "\n";
    };
    std::string out = line(head);
    size_t total = 0;
    for (size_t x : w) total += x + 2;
    out += std::string(total > 2 ? total - 2 : 0, '-') + "\n";
    for (const auto& r : rows) out += line(r);
    return out;
  }
};

Table summary(const std::vector<TaskResult>& tasks) {
  Table t{{"task", "type", "docs", "shots", "metric", "value", "stderr", "runs", "mean", "std", "agreement"}, {}};
  for (const TaskResult& r : tasks)
    for (const ShotResult& s : r.shots)
      for (size_t m = 0; m < s.metrics.size(); ++m) {
        const MetricResult& mr = s.metrics[m];
        std::vector<std::string> row = {r.name, output_type_name(r.output_type), std::to_string(r.docs), std::to_string(s.shots),
                                        mr.name, fmt(mr.value), mr.stderr_ ? fmt(*mr.stderr_) : "-"};
        if (m == 0 && s.reliability) {
          const Reliability& rel = *s.reliability;
          row.insert(row.end(), {std::to_string(rel.runs.size()), fmt(rel.mean), fmt(rel.std), fmt(rel.agreement.all, 3)});
        } else {
          row.insert(row.end(), {"1", "", "", ""});
        }
        t.rows.push_back(std::move(row));
      }
  return t;
}

Table speed_table(const std::vector<TaskResult>& tasks) {
  Table t{{"task", "requests", "tokens", "seconds", "tokens/s", "requests/s", "p50 ms", "p90 ms", "p99 ms"}, {}};
  Speed all;
  auto row = [&](const std::string& name, const Speed& s) {
    t.rows.push_back({name, std::to_string(s.requests),
                      std::to_string(s.input_tokens + s.prompt_tokens + s.generated_tokens), fmt(s.seconds, 2),
                      fmt(s.tokens_per_second(), 0), fmt(s.requests_per_second(), 1), fmt(1000 * percentile(s.latencies, 50), 1),
                      fmt(1000 * percentile(s.latencies, 90), 1), fmt(1000 * percentile(s.latencies, 99), 1)});
  };
  for (const TaskResult& r : tasks) {
    row(r.name, r.speed);
    all.add(r.speed);
  }
  if (tasks.size() > 1) row("all", all);
  return t;
}

// The tasks whose primary metric is a score in [0, 1] (not perplexities).
bool scored(const TaskResult& r) { return r.output_type != OutputType::kLoglikelihoodRolling; }

constexpr plot::Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                                  {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

plot::Chart shots_chart(const std::vector<TaskResult>& tasks) {
  plot::Chart c;
  c.title = "Accuracy vs number of shots";
  c.x_label = "shots";
  c.y_label = "primary metric";
  size_t i = 0;
  for (const TaskResult& r : tasks) {
    if (!scored(r)) continue;
    plot::Series s;
    s.label = r.name + " (" + r.primary_metric + ")";
    s.color = kPalette[i++ % std::size(kPalette)];
    s.mark = plot::Mark::kLineAndMarkers;
    for (const ShotResult& sr : r.shots) {
      s.data.x.push_back(sr.shots);
      s.data.y.push_back(sr.metrics.at(0).value);
    }
    c.series.push_back(std::move(s));
  }
  return c;
}

// For each task with several runs: every run's value (small markers) and their mean (large), at
// the largest shot count that has several runs; x is the task's number in the report's table.
plot::Chart reliability_chart(const std::vector<TaskResult>& tasks, std::vector<std::string>& legend) {
  plot::Chart c;
  c.title = "Reliability: primary metric of each prompt and few-shot sample";
  c.x_label = "task (numbered in the list below the plot)";
  c.y_label = "primary metric";
  plot::Series runs{"runs", {}, {127, 127, 127}, plot::Mark::kMarkers, 1.5, 2.5};
  plot::Series means{"mean", {}, kPalette[0], plot::Mark::kMarkers, 1.5, 4.5};
  int x = 0;
  for (const TaskResult& r : tasks) {
    const ShotResult* best = nullptr;
    for (const ShotResult& s : r.shots)
      if (s.reliability) best = &s;
    if (!best || !scored(r)) continue;
    ++x;
    legend.push_back(cat("x = ", x, ": ", r.name, " (", best->shots, " shots)"));
    for (const RunValue& v : best->reliability->runs) {
      runs.data.x.push_back(x);
      runs.data.y.push_back(v.value);
    }
    means.data.x.push_back(x);
    means.data.y.push_back(best->reliability->mean);
  }
  if (x > 0) c.series = {runs, means};
  return c;
}

}  // namespace

Json results_json(const RunInfo& info, const std::vector<TaskResult>& tasks) {
  const EvalOptions& o = info.options;
  Json j;
  j["agpt_version"] = info.agpt_version;
  j["created"] = info.started;
  j["command"] = info.command_line;
  j["model"] = {{"path", info.model_path}, {"dir", info.model_dir}, {"tokenizer", info.tokenizer_path},
                {"parameters", info.parameters}, {"max_length", info.max_length}};
  j["settings"] = {{"shots", o.shots},
                   {"limit", o.limit},
                   {"seed", o.seed},
                   {"fewshot_samples", o.fewshot_samples},
                   {"prompts", o.only_default_prompt ? "default" : "all"},
                   {"batch_size", o.scorer.batch_size},
                   {"device", info.device},
                   {"threads", info.threads}};
  j["wall_seconds"] = info.wall_seconds;
  Json jt = Json::object();
  Speed all;
  for (const TaskResult& r : tasks) {
    Json t;
    t["file"] = r.file;
    t["sha256"] = r.sha256;
    t["data_sha256"] = r.data_sha256;
    if (!r.version.empty()) t["version"] = r.version;
    t["output_type"] = output_type_name(r.output_type);
    t["docs"] = r.docs;
    t["primary_metric"] = r.primary_metric;
    t["prompts"] = r.prompts;
    Json shots = Json::object();
    for (const ShotResult& s : r.shots) {
      Json js;
      Json metrics = Json::object();
      for (const MetricResult& m : s.metrics) metrics[m.name] = metric_json(m);
      js["metrics"] = metrics;
      if (s.reliability) {
        const Reliability& rel = *s.reliability;
        Json runs = Json::array();
        for (const RunValue& v : rel.runs) runs.push_back({{"prompt", v.prompt}, {"seed", v.seed}, {"value", v.value}});
        js["reliability"] = {{"metric", rel.metric}, {"runs", runs}, {"mean", rel.mean}, {"std", rel.std},
                             {"min", rel.min}, {"max", rel.max}, {"agreement", rel.agreement.all},
                             {"pairwise_agreement", rel.agreement.pairwise}};
      }
      shots[std::to_string(s.shots)] = js;
    }
    t["results"] = shots;
    t["speed"] = speed_json(r.speed);
    all.add(r.speed);
    jt[r.name] = t;
  }
  j["tasks"] = jt;
  j["speed"] = speed_json(all);
  return j;
}

std::string json_text(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string summary_table(const std::vector<TaskResult>& tasks) {
  return summary(tasks).text() + "\n" + speed_table(tasks).text();
}

std::vector<std::string> write_report(const std::string& dir, const RunInfo& info, const std::vector<TaskResult>& tasks) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::vector<std::string> written;
  auto put = [&](const std::string& name, const std::string& data) {
    std::string p = (fs::path(dir) / name).string();
    write_file_atomic(p, data);
    written.push_back(p);
  };
  bool any_scored = false;
  for (const TaskResult& r : tasks) any_scored |= scored(r);
  std::vector<std::string> legend;
  plot::Chart rel = reliability_chart(tasks, legend);
  if (any_scored) {
    plot::Figure f = plot::single_chart(shots_chart(tasks), 900, 540);
    put("accuracy_vs_shots.png", plot::figure_png(f));
    put("accuracy_vs_shots.svg", plot::figure_svg(f));
  }
  if (!legend.empty()) {
    plot::Figure f = plot::single_chart(rel, 900, 540);
    put("reliability.png", plot::figure_png(f));
    put("reliability.svg", plot::figure_svg(f));
  }

  Table rel_table{{"task", "shots", "metric", "runs", "mean", "std", "min", "max", "agreement (all runs)", "agreement (pairs)"}, {}};
  for (const TaskResult& r : tasks)
    for (const ShotResult& s : r.shots)
      if (s.reliability) {
        const Reliability& x = *s.reliability;
        rel_table.rows.push_back({r.name, std::to_string(s.shots), x.metric, std::to_string(x.runs.size()),
                                  fmt(x.mean), fmt(x.std), fmt(x.min), fmt(x.max), fmt(x.agreement.all, 3),
                                  fmt(x.agreement.pairwise, 3)});
      }
  Table files{{"task", "file", "sha256"}, {}};
  for (const TaskResult& r : tasks) {
    files.rows.push_back({r.name, r.file, r.sha256});
    for (const auto& [f, h] : r.data_sha256) files.rows.push_back({"", f, h});
  }
  const std::string settings =
      cat("model `", info.model_dir, "` (", info.parameters, " parameters, max length ", info.max_length, "); device ",
          info.device, "; batch size ", info.options.scorer.batch_size, "; seed ", info.options.seed, "; few-shot samples ",
          info.options.fewshot_samples, "; prompts ", info.options.only_default_prompt ? "default" : "all",
          info.options.limit > 0 ? cat("; first ", info.options.limit, " documents per task") : std::string(),
          "; agpt ", info.agpt_version, "; ", info.started, "; ", fmt(info.wall_seconds, 1), " s");

  std::string md = "# Evaluation report\n\n" + settings + "\n\n## Results\n\n" + summary(tasks).markdown() +
                   "\nvalue: the first run (default prompt, seed " + std::to_string(info.options.seed) +
                   "), as lm-evaluation-harness reports it; stderr: of the mean over documents. runs, mean, std, agreement: "
                   "over every prompt and few-shot sample of that shot count (agreement: the share of documents on which "
                   "all runs give the same answer).\n";
  std::string html = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>agpt eval report</title>\n"
                     "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
                     "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}</style></head><body>\n"
                     "<h1>Evaluation report</h1>\n<p>" + settings + "</p>\n<h2>Results</h2>\n" + summary(tasks).html();
  if (any_scored) {
    md += "\n## Accuracy vs shots\n\n![accuracy vs shots](accuracy_vs_shots.png)\n";
    html += "<h2>Accuracy vs shots</h2>\n<img src=\"accuracy_vs_shots.png\" alt=\"accuracy vs shots\">\n";
  }
  if (!rel_table.rows.empty()) {
    md += "\n## Reliability\n\n" + rel_table.markdown();
    html += "<h2>Reliability</h2>\n" + rel_table.html();
    if (!legend.empty()) {
      md += "\n![reliability](reliability.png)\n\n";
      html += "<img src=\"reliability.png\" alt=\"reliability\">\n<p>";
      for (const std::string& l : legend) {
        md += "- " + l + "\n";
        html += l + "<br>\n";
      }
      html += "</p>\n";
    }
  }
  md += "\n## Speed\n\n" + speed_table(tasks).markdown() +
        "\ntokens: run through the model (log-likelihood inputs, generation prompts and generated tokens); latency: "
        "per request (a log-likelihood request's batch, or one generation).\n\n## Files\n\n" + files.markdown();
  html += "<h2>Speed</h2>\n" + speed_table(tasks).html() + "<h2>Files</h2>\n" + files.html() + "</body></html>\n";
  put("report.md", md);
  put("report.html", html);
  return written;
}

}  // namespace agpt::eval
