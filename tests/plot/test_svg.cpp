// The SVG output: real vector elements, one polyline point per data point, gaps split lines,
// long series decimated.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>

#include "plot/figure.h"
#include "plot/run_plots.h"

using namespace agpt::plot;

namespace {

// The number of points of each polyline stroked in colour `hex`, in document order.
std::vector<size_t> polylines(const std::string& svg, const std::string& hex) {
  std::vector<size_t> out;
  const std::string open = "<polyline points=\"";
  for (size_t at = svg.find(open); at != std::string::npos; at = svg.find(open, at + 1)) {
    const size_t begin = at + open.size(), end = svg.find('"', begin), close = svg.find("/>", end);
    if (svg.substr(end, close - end).find("stroke=\"" + hex + "\"") == std::string::npos) continue;
    out.push_back(static_cast<size_t>(std::count(svg.begin() + begin, svg.begin() + end, ',')));
  }
  return out;
}

Chart ten_points(bool gap) {
  Chart c;
  c.title = "ten <points> & more";
  c.y_label = "sqrt";
  Series s{"data", {}, {200, 30, 60}, Mark::kLine, 2};
  for (int i = 0; i < 10; ++i) s.data.x.push_back(i * 10), s.data.y.push_back(gap && i == 4 ? NAN : std::sqrt(i));
  c.series.push_back(s);
  return c;
}

}  // namespace

TEST(Svg, OnePolylinePointPerDataPoint) {
  const std::string svg = figure_svg(single_chart(ten_points(false), 800, 500));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"500\""), std::string::npos);
  EXPECT_EQ(polylines(svg, "#c81e3c"), (std::vector<size_t>{10, 2}));  // the data, then the legend swatch
  EXPECT_NE(svg.find(">ten &lt;points&gt; &amp; more</text>"), std::string::npos);  // escaped title
  EXPECT_NE(svg.find("rotate(-90)"), std::string::npos);  // the y-axis title
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
}

TEST(Svg, GapsSplitTheLine) {
  const std::string svg = figure_svg(single_chart(ten_points(true), 800, 500));
  EXPECT_EQ(polylines(svg, "#c81e3c"), (std::vector<size_t>{4, 5, 2}));
}

TEST(Svg, HugeRunsAreDecimated) {
  agpt::plot::Run run{"big", {}};
  run.metrics.path = "big/metrics.jsonl";
  for (int64_t i = 1; i <= 200000; ++i)
    run.metrics.steps.push_back({i, 3 + 5.0 / std::sqrt(static_cast<double>(i)) + 0.1 * std::sin(i * 0.37), 1e-4, 1, 1000, NAN, false});
  PlotOptions opt;
  const std::string svg = figure_svg(single_chart(loss_chart({run}, opt), opt.width, opt.height));
  const std::vector<size_t> raw = polylines(svg, "#a5c9e1"), smooth = polylines(svg, "#1f77b4");
  ASSERT_FALSE(raw.empty());
  ASSERT_FALSE(smooth.empty());
  EXPECT_LE(raw[0], 4000u);
  EXPECT_GE(raw[0], 2000u);
  EXPECT_LE(smooth[0], 4000u);
  EXPECT_LT(svg.size(), 200000u);
}
