// An RGB raster that implements Surface: anti-aliased strokes and discs (coverage from the exact
// distance to each segment), bitmap-font text. The pixels go to the PNG encoder.
#pragma once
#include <cstdint>
#include <vector>

#include "plot/surface.h"

namespace agpt::plot {

class Canvas : public Surface {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});

  int width() const { return width_; }
  int height() const { return height_; }
  Rgb pixel(int x, int y) const;
  // Row-major, 3 bytes per pixel, no padding.
  const std::vector<uint8_t>& rgb() const { return rgb_; }

  void fill_rect(Rect r, Rgb c) override;
  void polyline(const std::vector<Point>& pts, double width, Rgb c) override;
  void disc(Point center, double radius, Rgb c) override;
  void text(double x, double y, std::string_view s, int scale, Anchor anchor, bool vertical, Rgb c) override;

 private:
  void blend(int x, int y, Rgb c, double coverage);

  int width_, height_;
  std::vector<uint8_t> rgb_;
  // Coverage of the polyline being drawn: the maximum over its segments, so joints where segments
  // overlap are painted once and do not come out darker or thicker.
  std::vector<float> mask_;
};

}  // namespace agpt::plot
