// `agpt plot RUN_DIR`: training curves of a run (loss, learning rate, gradient norm, throughput
// and an overview of all four) as PNG and SVG, drawn without a plotting library (src/plot).
#include <cstdio>
#include <memory>

#include "base/error.h"
#include "base/log.h"
#include "cli/command.h"
#include "plot/run_plots.h"

namespace agpt::cli {
namespace {

void setup(CLI::App& root) {
  auto* cmd = root.add_subcommand("plot", "training curves of a run (loss, lr, gradient norm, throughput) as PNG and SVG");
  struct Args {
    std::string run, format = "both";
    std::vector<std::string> compare;
    plot::PlotOptions opt;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("run", a->run, "run directory of `agpt train` (train.out_dir), or its metrics.jsonl")->required();
  cmd->add_option("--out", a->opt.out_dir, "output directory (default: RUN/plots)");
  cmd->add_option("--format", a->format, "png, svg or both")
      ->check(CLI::IsMember({"png", "svg", "both"}))
      ->capture_default_str();
  cmd->add_option("--smooth", a->opt.smooth, "EMA weight in [0, 1) for the smoothed lines; 0: raw lines only")
      ->capture_default_str();
  cmd->add_option("--width", a->opt.width, "width of each chart in pixels (the overview is 2x2 charts)")->capture_default_str();
  cmd->add_option("--height", a->opt.height, "height of each chart in pixels")->capture_default_str();
  cmd->add_flag("--log-y", a->opt.log_y, "logarithmic loss axis");
  cmd->add_option("--compare", a->compare, "more run directories whose losses join the loss charts (legend: directory names)");
  cmd->footer(
      "Writes loss, lr, grad_norm, throughput and overview (.png and .svg) and prints their paths. The loss\n"
      "chart shows the raw training loss faintly, its EMA over it and the validation loss as markers; the\n"
      "gradient norm switches to a log scale when it spans more than two decades. Lines of metrics.jsonl\n"
      "that cannot be read are counted and skipped; null values (non-finite at training time) leave gaps.\n\n"
      "Examples:\n"
      "  agpt plot runs/tiny\n"
      "  agpt plot runs/tiny --format png --smooth 0.98 --log-y\n"
      "  agpt plot runs/lr3e-4 --compare runs/lr1e-3 runs/lr1e-4 --out plots/lr-sweep\n"
      "  agpt plot runs/tiny --width 1600 --height 900");
  set_action(cmd, [a] {
    a->opt.png = a->format != "svg";
    a->opt.svg = a->format != "png";
    std::vector<plot::Run> runs;
    std::vector<std::string> dirs{a->run};
    dirs.insert(dirs.end(), a->compare.begin(), a->compare.end());
    for (const std::string& dir : dirs) {
      plot::Run r{plot::run_label(dir), plot::read_metrics(dir)};
      if (std::string w = plot::metrics_warning(r.metrics); !w.empty()) log_warn(w);
      for (const plot::Run& other : runs)
        if (other.label == r.label) {  // two runs named alike stay apart in the legend
          r.label += cat(" (", runs.size() + 1, ")");
          break;
        }
      runs.push_back(std::move(r));
    }
    for (const std::string& path : plot::write_plots(runs, a->opt)) std::printf("%s\n", path.c_str());
  });
}

AGPT_COMMAND(72, setup);

}  // namespace
}  // namespace agpt::cli
