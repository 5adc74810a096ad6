// A figure: one image holding one or more charts (panels) and an optional header line, rendered
// to PNG or SVG bytes.
#pragma once
#include <string>
#include <vector>

#include "plot/chart.h"

namespace agpt::plot {

struct Panel {
  Chart chart;
  Rect area;
};

struct Figure {
  int width = 0, height = 0;
  std::string header;  // a line of text across the top (its band is left free by the panels' areas)
  double header_height = 0;
  std::vector<Panel> panels;
};

// A figure of one chart filling width x height.
Figure single_chart(Chart chart, int width, int height);

void draw_figure(const Figure& figure, Surface& out);
std::string figure_png(const Figure& figure);
std::string figure_svg(const Figure& figure);

}  // namespace agpt::plot
