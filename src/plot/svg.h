// An SVG document that implements Surface: each primitive becomes one vector element (rect,
// polyline, circle, text), coordinates in the same pixels as the PNG of the same figure.
#pragma once
#include <string>

#include "plot/surface.h"

namespace agpt::plot {

class SvgSurface : public Surface {
 public:
  SvgSurface(int width, int height);

  // The complete document. Deterministic: fixed decimals, no ids or dates.
  std::string finish() const;

  void fill_rect(Rect r, Rgb c) override;
  void polyline(const std::vector<Point>& pts, double width, Rgb c) override;
  void disc(Point center, double radius, Rgb c) override;
  void text(double x, double y, std::string_view s, int scale, Anchor anchor, bool vertical, Rgb c) override;

 private:
  int width_, height_;
  std::string body_;
};

}  // namespace agpt::plot
