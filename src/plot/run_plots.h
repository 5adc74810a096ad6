// The plots of training runs: loss (with EMA and validation, or several runs compared), learning
// rate, gradient norm, throughput, and an overview of all four. `agpt plot` is a thin shell
// around write_plots.
#pragma once
#include <string>
#include <vector>

#include "plot/figure.h"
#include "plot/metrics.h"

namespace agpt::plot {

struct PlotOptions {
  std::string out_dir;           // "" : plots/ beside the first run's metrics.jsonl
  bool png = true, svg = true;
  double smooth = 0.9;           // EMA weight in [0, 1); 0 draws the raw lines only
  int width = 1000, height = 600;  // of each single chart; the overview is 2x2 of them
  bool log_y = false;            // log scale on loss
  size_t max_points = 4000;      // per drawn series (min/max-preserving decimation)
};

struct Run {
  std::string label;  // legend text: the run directory's name
  RunMetrics metrics;
};

// The name of a run for legends: the directory's name ("runs/a/" -> "a"; "runs/a/metrics.jsonl" -> "a").
std::string run_label(const std::string& run);

// The first run is the one plotted; the others (--compare) join it on the loss charts.
Chart loss_chart(const std::vector<Run>& runs, const PlotOptions& opt);
Chart lr_chart(const Run& run, const PlotOptions& opt);
Chart grad_norm_chart(const Run& run, const PlotOptions& opt);
Chart throughput_chart(const Run& run, const PlotOptions& opt);
Figure overview_figure(const std::vector<Run>& runs, const PlotOptions& opt);

// Writes loss, lr, grad_norm, throughput and overview (.png and/or .svg) into the output
// directory (created if needed) and returns the paths written, in that order.
std::vector<std::string> write_plots(const std::vector<Run>& runs, const PlotOptions& opt);

}  // namespace agpt::plot
