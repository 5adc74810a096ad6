#include "plot/canvas.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "plot/font.h"

namespace agpt::plot {
namespace {

// Distance from p to the segment ab.
double segment_distance(Point p, Point a, Point b) {
  const double dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2 : 0;
  t = std::clamp(t, 0.0, 1.0);
  return std::hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
}

// Fraction of a pixel inside a shape whose edge lies at `distance` from the pixel centre, for a
// shape extending `half` from its centre line (a one-pixel linear ramp: cheap, smooth enough).
double coverage(double half, double distance) { return std::clamp(half + 0.5 - distance, 0.0, 1.0); }

}  // namespace

Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
  if (width <= 0 || height <= 0 || width > 20000 || height > 20000)
    fail("image size ", width, "x", height, " is out of range (1..20000 pixels a side)");
  rgb_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) rgb_[i] = background.r, rgb_[i + 1] = background.g, rgb_[i + 2] = background.b;
}

Rgb Canvas::pixel(int x, int y) const {
  const size_t i = (static_cast<size_t>(y) * width_ + x) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Canvas::blend(int x, int y, Rgb c, double a) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_ || a <= 0) return;
  uint8_t* p = &rgb_[(static_cast<size_t>(y) * width_ + x) * 3];
  auto mix = [a](uint8_t dst, uint8_t src) { return static_cast<uint8_t>(std::lround(src * a + dst * (1 - a))); };
  p[0] = mix(p[0], c.r), p[1] = mix(p[1], c.g), p[2] = mix(p[2], c.b);
}

void Canvas::fill_rect(Rect r, Rgb c) {
  const int x0 = std::max(0, static_cast<int>(std::lround(r.x))), x1 = std::min(width_, static_cast<int>(std::lround(r.x + r.w)));
  const int y0 = std::max(0, static_cast<int>(std::lround(r.y))), y1 = std::min(height_, static_cast<int>(std::lround(r.y + r.h)));
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) blend(x, y, c, 1.0);
}

void Canvas::polyline(const std::vector<Point>& pts, double width, Rgb c) {
  if (pts.empty()) return;
  if (mask_.empty()) mask_.assign(static_cast<size_t>(width_) * height_, 0.0f);
  const double half = width / 2, reach = half + 1;
  int bx0 = width_, by0 = height_, bx1 = -1, by1 = -1;  // bounding box of the touched mask
  const size_t n = pts.size(), segments = n == 1 ? 1 : n - 1;  // a single point is drawn as a dot
  for (size_t i = 0; i < segments; ++i) {
    const Point a = pts[i], b = pts[std::min(i + 1, n - 1)];
    const int x0 = std::max(0, static_cast<int>(std::floor(std::min(a.x, b.x) - reach)));
    const int x1 = std::min(width_ - 1, static_cast<int>(std::ceil(std::max(a.x, b.x) + reach)));
    const int y0 = std::max(0, static_cast<int>(std::floor(std::min(a.y, b.y) - reach)));
    const int y1 = std::min(height_ - 1, static_cast<int>(std::ceil(std::max(a.y, b.y) + reach)));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const double cov = coverage(half, segment_distance({x + 0.5, y + 0.5}, a, b));
        float& m = mask_[static_cast<size_t>(y) * width_ + x];
        if (cov > m) m = static_cast<float>(cov);
      }
    bx0 = std::min(bx0, x0), by0 = std::min(by0, y0), bx1 = std::max(bx1, x1), by1 = std::max(by1, y1);
  }
  for (int y = by0; y <= by1; ++y)
    for (int x = bx0; x <= bx1; ++x) {
      float& m = mask_[static_cast<size_t>(y) * width_ + x];
      blend(x, y, c, m);
      m = 0;
    }
}

void Canvas::disc(Point center, double radius, Rgb c) {
  const int x0 = static_cast<int>(std::floor(center.x - radius - 1)), x1 = static_cast<int>(std::ceil(center.x + radius + 1));
  const int y0 = static_cast<int>(std::floor(center.y - radius - 1)), y1 = static_cast<int>(std::ceil(center.y + radius + 1));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) blend(x, y, c, coverage(radius, std::hypot(x + 0.5 - center.x, y + 0.5 - center.y)));
}

void Canvas::text(double x, double y, std::string_view s, int scale, Anchor anchor, bool vertical, Rgb c) {
  const std::string chars = font_text(s);
  const int len = text_width(s, scale);
  const double shift = anchor == Anchor::kStart ? 0 : anchor == Anchor::kMiddle ? len / 2.0 : len;
  // Start of the text along its direction, and the top of its cell across it, in whole pixels.
  const int along = static_cast<int>(std::lround(vertical ? y + shift : x - shift));
  const int across = static_cast<int>(std::lround(vertical ? x : y));
  for (size_t i = 0; i < chars.size(); ++i) {
    const auto& rows = glyph(chars[i]);
    for (int row = 0; row < kGlyphRows; ++row)
      for (int col = 0; col < kGlyphWidth; ++col) {
        if (!(rows[row] >> (kGlyphWidth - 1 - col) & 1)) continue;
        const int u = (static_cast<int>(i) * kAdvance + col) * scale, v = row * scale;
        const int px = vertical ? across + v : along + u;
        const int py = vertical ? along - u - scale : across + v;
        for (int dy = 0; dy < scale; ++dy)
          for (int dx = 0; dx < scale; ++dx) blend(px + dx, py + dy, c, 1.0);
      }
  }
}

}  // namespace agpt::plot
