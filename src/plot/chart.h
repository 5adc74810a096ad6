// One chart: series over a step axis with nice ticks, gridlines, axis titles and a legend, laid
// out inside a rectangle of a Surface. The same code draws the PNG and the SVG.
#pragma once
#include <string>
#include <vector>

#include "plot/series.h"
#include "plot/surface.h"

namespace agpt::plot {

enum class Mark { kLine, kMarkers, kLineAndMarkers };

struct Series {
  std::string label;  // legend text; "" keeps the series out of the legend
  XY data;            // drawn as given (decimate long series first); NaN y breaks the line
  Rgb color;
  Mark mark = Mark::kLine;
  double width = 1.5;   // line width, in pixels at text scale 1
  double radius = 2.5;  // marker radius, likewise
};

struct Chart {
  std::string title, x_label = "step", y_label;
  std::vector<Series> series;
  bool log_y = false;      // values <= 0 are not drawn; falls back to linear when none is > 0
  bool x_integer = true;   // x ticks at whole numbers (steps)
};

// Data values to pixels along one axis, with its ticks.
struct Axis {
  double lo = 0, hi = 1;  // data range shown
  bool log = false;
  double p0 = 0, p1 = 1;  // pixel positions of lo and hi
  std::vector<double> ticks;
  std::vector<std::string> labels;
  double to_pixel(double v) const;  // NaN where a log axis cannot show v
};

struct ChartLayout {
  int scale = 1;  // text scale (font pixels per bitmap pixel)
  Rect plot;      // the data area
  Axis x, y;
  Rect legend;    // w == 0 when there is no legend
};

// The text scale for a chart of this size: 1 up to about 480x290 pixels, 2 up to twice that, ...
int text_scale(Rect area);

ChartLayout layout_chart(const Chart& chart, Rect area);
void draw_chart(const Chart& chart, Rect area, Surface& out);

}  // namespace agpt::plot
