#include "plot/run_plots.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "base/file.h"

namespace agpt::plot {
namespace {

namespace fs = std::filesystem;

// Ten distinct colours, dark enough on white; runs beyond ten reuse them.
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                            {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
constexpr Rgb kTrain = kPalette[0], kValid = kPalette[1], kLr = kPalette[2], kSkipped = kPalette[3],
              kGradNorm = kPalette[4], kThroughput{0, 128, 128};
constexpr double kFaint = 0.6;  // how far raw lines are lightened when an EMA is drawn over them

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

XY steps_of(const RunMetrics& m, double StepRecord::*field) {
  XY xy;
  for (const StepRecord& r : m.steps) xy.x.push_back(static_cast<double>(r.step)), xy.y.push_back(r.*field);
  return xy;
}

double last_finite(const std::vector<double>& v) {
  for (size_t i = v.size(); i-- > 0;)
    if (std::isfinite(v[i])) return v[i];
  return NAN;
}

// A number for the header: k/M/G from 10^4 with three or four digits ("51.8k", "1.02M", "1000k").
std::string short_number(double v) {
  const double a = std::fabs(v);
  const double unit = a >= 1e10 ? 1e9 : a >= 1e7 ? 1e6 : a >= 1e4 ? 1e3 : 1;
  const char* suffix = a >= 1e10 ? "G" : a >= 1e7 ? "M" : a >= 1e4 ? "k" : "";
  if (unit == 1) return fmt("%.4g", v);
  const double scaled = v / unit;
  return fmt(std::fabs(scaled) >= 100 ? "%.0f" : std::fabs(scaled) >= 10 ? "%.1f" : "%.2f", scaled) + suffix;
}

double mean_finite(const std::vector<double>& v) {
  double sum = 0;
  size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) sum += x, ++n;
  return n > 0 ? sum / static_cast<double>(n) : NAN;
}

std::string ema_name(double w) { return "EMA " + fmt("%g", w); }

// A raw series drawn faint with its EMA over it (or the raw line alone when smoothing is off).
void add_smoothed(Chart& c, const XY& raw, Rgb color, const std::string& raw_label, const std::string& ema_label,
                  const PlotOptions& opt) {
  if (opt.smooth <= 0) {
    c.series.push_back({ema_label, decimate(raw, opt.max_points), color, Mark::kLine, 1.5});
    return;
  }
  XY smooth{raw.x, ema(raw.y, opt.smooth)};
  c.series.push_back({raw_label, decimate(raw, opt.max_points), lighten(color, kFaint), Mark::kLine, 1.0});
  c.series.push_back({ema_label, decimate(smooth, opt.max_points), color, Mark::kLine, 2.0});
}

XY evals_of(const RunMetrics& m) {
  XY xy;
  for (const EvalRecord& e : m.evals) xy.x.push_back(static_cast<double>(e.step)), xy.y.push_back(e.val_loss);
  return xy;
}

void validate(const PlotOptions& opt) {
  if (!(opt.smooth >= 0 && opt.smooth < 1)) fail("--smooth must be in [0, 1) (0.9 is a good start; 0 turns it off)");
  if (opt.width < 200 || opt.height < 150 || opt.width > 8000 || opt.height > 8000)
    fail("--width/--height ", opt.width, "x", opt.height, " out of range (200..8000 x 150..8000)");
  if (!opt.png && !opt.svg) fail("no output format chosen (--format png|svg|both)");
  if (opt.max_points < 5) fail("max_points must be at least 5");
}

}  // namespace

std::string run_label(const std::string& run) {
  fs::path p = fs::path(run).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "runs/a/" -> "runs/a"
  if (p.filename() == "metrics.jsonl") p = p.parent_path();
  std::string name = p.filename().string();
  if (name.empty() || name == ".") name = fs::absolute(p).lexically_normal().filename().string();
  return name.empty() ? run : name;
}

Chart loss_chart(const std::vector<Run>& runs, const PlotOptions& opt) {
  Chart c;
  c.log_y = opt.log_y;
  c.y_label = opt.log_y ? "loss (log)" : "loss";
  if (runs.size() == 1) {
    const RunMetrics& m = runs[0].metrics;
    c.title = "loss";
    add_smoothed(c, steps_of(m, &StepRecord::loss), kTrain, "train", opt.smooth > 0 ? "train " + ema_name(opt.smooth) : "train",
                 opt);
    if (!m.evals.empty()) c.series.push_back({"validation", decimate(evals_of(m), opt.max_points), kValid, Mark::kLineAndMarkers, 1.5, 3});
    XY skipped;
    size_t n = 0;
    for (const StepRecord& r : m.steps)
      if (r.skipped) ++n, skipped.x.push_back(static_cast<double>(r.step)), skipped.y.push_back(r.loss);
    if (n > 0) c.series.push_back({cat("skipped steps (", n, ")"), decimate(skipped, opt.max_points), kSkipped, Mark::kMarkers, 1, 3});
    return c;
  }
  c.title = cat("loss: ", runs.size(), " runs");
  for (size_t i = 0; i < runs.size(); ++i) {
    const Rgb color = kPalette[i % std::size(kPalette)];
    const RunMetrics& m = runs[i].metrics;
    add_smoothed(c, steps_of(m, &StepRecord::loss), color, "", runs[i].label, opt);
    if (!m.evals.empty())
      c.series.push_back({runs[i].label + " val", decimate(evals_of(m), opt.max_points), color, Mark::kLineAndMarkers, 1.0, 3});
  }
  return c;
}

Chart lr_chart(const Run& run, const PlotOptions& opt) {
  Chart c;
  c.title = c.y_label = "learning rate";
  c.series.push_back({"", decimate(steps_of(run.metrics, &StepRecord::lr), opt.max_points), kLr, Mark::kLine, 2.0});
  return c;
}

Chart grad_norm_chart(const Run& run, const PlotOptions& opt) {
  Chart c;
  const XY raw = steps_of(run.metrics, &StepRecord::grad_norm);
  double lo = INFINITY, hi = 0;
  for (double v : raw.y)
    if (std::isfinite(v) && v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  c.log_y = hi > 0 && hi / lo > 100;  // spans more than two decades: spikes would flatten the rest
  c.title = c.log_y ? "gradient norm (log scale)" : "gradient norm";
  c.y_label = "grad norm";
  add_smoothed(c, raw, kGradNorm, "raw", ema_name(opt.smooth), opt);
  return c;
}

Chart throughput_chart(const Run& run, const PlotOptions& opt) {
  Chart c;
  const double mfu = mean_finite(steps_of(run.metrics, &StepRecord::mfu).y);
  c.title = std::isfinite(mfu) ? "throughput (mean MFU " + fmt("%.1f", 100 * mfu) + "%)" : "throughput";
  c.y_label = "tokens/s";
  add_smoothed(c, steps_of(run.metrics, &StepRecord::tokens_per_s), kThroughput, "raw", ema_name(opt.smooth), opt);
  return c;
}

Figure overview_figure(const std::vector<Run>& runs, const PlotOptions& opt) {
  const double W = opt.width, H = opt.height;
  const int s = text_scale({0, 0, W, H});
  Figure f;
  f.header_height = 16.0 * s;
  f.width = 2 * opt.width, f.height = 2 * opt.height + static_cast<int>(f.header_height);
  const RunMetrics& m = runs[0].metrics;
  const std::vector<double> loss = steps_of(m, &StepRecord::loss).y;
  f.header = cat(runs[0].label, ": step ", m.steps.back().step, ", loss ", fmt("%.4g", last_finite(loss)));
  if (opt.smooth > 0) f.header += " (" + ema_name(opt.smooth) + " " + fmt("%.4g", last_finite(ema(loss, opt.smooth))) + ")";
  if (!m.evals.empty()) f.header += cat(", val ", fmt("%.4g", m.evals.back().val_loss), " at step ", m.evals.back().step);
  f.header += ", " + short_number(mean_finite(steps_of(m, &StepRecord::tokens_per_s).y)) + " tokens/s (mean)";
  if (runs.size() > 1) f.header += cat(" (+", runs.size() - 1, " compared on loss)");
  const double top = f.header_height;
  f.panels.push_back({loss_chart(runs, opt), {0, top, W, H}});
  f.panels.push_back({lr_chart(runs[0], opt), {W, top, W, H}});
  f.panels.push_back({grad_norm_chart(runs[0], opt), {0, top + H, W, H}});
  f.panels.push_back({throughput_chart(runs[0], opt), {W, top + H, W, H}});
  return f;
}

std::vector<std::string> write_plots(const std::vector<Run>& runs, const PlotOptions& opt) {
  if (runs.empty()) fail("no run to plot");
  validate(opt);
  const fs::path out = opt.out_dir.empty() ? fs::path(runs[0].metrics.path).parent_path() / "plots" : fs::path(opt.out_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) fail(out.string(), ": cannot create the output directory (", ec.message(), ")");
  const std::pair<const char*, Figure> figures[] = {
      {"loss", single_chart(loss_chart(runs, opt), opt.width, opt.height)},
      {"lr", single_chart(lr_chart(runs[0], opt), opt.width, opt.height)},
      {"grad_norm", single_chart(grad_norm_chart(runs[0], opt), opt.width, opt.height)},
      {"throughput", single_chart(throughput_chart(runs[0], opt), opt.width, opt.height)},
      {"overview", overview_figure(runs, opt)},
  };
  std::vector<std::string> written;
  for (const auto& [name, figure] : figures) {
    if (opt.png) {
      written.push_back((out / (std::string(name) + ".png")).string());
      write_file_atomic(written.back(), figure_png(figure));
    }
    if (opt.svg) {
      written.push_back((out / (std::string(name) + ".svg")).string());
      write_file_atomic(written.back(), figure_svg(figure));
    }
  }
  return written;
}

}  // namespace agpt::plot
