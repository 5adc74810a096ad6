// What a chart draws on: a small set of primitives that both the raster canvas (PNG) and the SVG
// writer implement, so the two outputs share one layout by construction.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace agpt::plot {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// `c` moved a fraction t of the way to white: the faint version of a line colour. Opaque, so
// overlapping strokes do not darken the way alpha blending would.
inline Rgb lighten(Rgb c, double t) {
  auto mix = [t](uint8_t v) { return static_cast<uint8_t>(v + (255 - v) * t + 0.5); };
  return {mix(c.r), mix(c.g), mix(c.b)};
}

struct Point {
  double x = 0, y = 0;
};

struct Rect {
  double x = 0, y = 0, w = 0, h = 0;
};

enum class Anchor { kStart, kMiddle, kEnd };

// Pixel coordinates, origin top-left; a pixel (i, j) covers [i, i+1) x [j, j+1).
class Surface {
 public:
  virtual ~Surface() = default;
  virtual void fill_rect(Rect r, Rgb c) = 0;
  // An open line through pts (at least 2 points; no NaN) with round joins and caps.
  virtual void polyline(const std::vector<Point>& pts, double width, Rgb c) = 0;
  virtual void disc(Point center, double radius, Rgb c) = 0;
  // Text in the bitmap font (font.h) at `scale`. Horizontal: x is the anchor point along the
  // line, y the top of the cell. Vertical (reads bottom to top): x is the cell's left edge (its
  // top before rotation), y the anchor point along the column.
  virtual void text(double x, double y, std::string_view s, int scale, Anchor anchor, bool vertical, Rgb c) = 0;
};

}  // namespace agpt::plot
