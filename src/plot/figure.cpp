#include "plot/figure.h"

#include "plot/canvas.h"
#include "plot/png.h"
#include "plot/svg.h"

namespace agpt::plot {

Figure single_chart(Chart chart, int width, int height) {
  Figure f;
  f.width = width, f.height = height;
  f.panels.push_back({std::move(chart), {0, 0, static_cast<double>(width), static_cast<double>(height)}});
  return f;
}

void draw_figure(const Figure& figure, Surface& out) {
  out.fill_rect({0, 0, static_cast<double>(figure.width), static_cast<double>(figure.height)}, {255, 255, 255});
  if (!figure.header.empty() && !figure.panels.empty()) {
    const int s = text_scale(figure.panels[0].area);
    out.text(10.0 * s, (figure.header_height - 7.0 * s) / 2, figure.header, s, Anchor::kStart, false, {20, 20, 20});
  }
  for (const Panel& p : figure.panels) draw_chart(p.chart, p.area, out);
}

std::string figure_png(const Figure& figure) {
  Canvas canvas(figure.width, figure.height);
  draw_figure(figure, canvas);
  return encode_png(canvas);
}

std::string figure_svg(const Figure& figure) {
  SvgSurface svg(figure.width, figure.height);
  draw_figure(figure, svg);
  return svg.finish();
}

}  // namespace agpt::plot
