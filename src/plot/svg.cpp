#include "plot/svg.h"

#include <cstdio>

#include "plot/font.h"

namespace agpt::plot {
namespace {

// One decimal is a tenth of a pixel: plenty, and keeps files small. "12.0" prints as "12".
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

std::string colour(Rgb c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

}  // namespace

SvgSurface::SvgSurface(int width, int height) : width_(width), height_(height) {}

std::string SvgSurface::finish() const {
  const std::string w = std::to_string(width_), h = std::to_string(height_);
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w +
         "\" height=\"" + h + "\" viewBox=\"0 0 " + w + " " + h +
         "\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" xml:space=\"preserve\">\n" + body_ + "</svg>\n";
}

void SvgSurface::fill_rect(Rect r, Rgb c) {
  body_ += "<rect x=\"" + num(r.x) + "\" y=\"" + num(r.y) + "\" width=\"" + num(r.w) + "\" height=\"" + num(r.h) +
           "\" fill=\"" + colour(c) + "\"/>\n";
}

void SvgSurface::polyline(const std::vector<Point>& pts, double width, Rgb c) {
  if (pts.empty()) return;
  if (pts.size() == 1) return disc(pts[0], width / 2, c);  // a one-point polyline would draw nothing
  std::string points;
  for (const Point& p : pts) points += (points.empty() ? "" : " ") + num(p.x) + "," + num(p.y);
  body_ += "<polyline points=\"" + points + "\" fill=\"none\" stroke=\"" + colour(c) + "\" stroke-width=\"" + num(width) +
           "\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n";
}

void SvgSurface::disc(Point center, double radius, Rgb c) {
  body_ += "<circle cx=\"" + num(center.x) + "\" cy=\"" + num(center.y) + "\" r=\"" + num(radius) + "\" fill=\"" +
           colour(c) + "\"/>\n";
}

void SvgSurface::text(double x, double y, std::string_view s, int scale, Anchor anchor, bool vertical, Rgb c) {
  // A monospace font at size 10·scale advances about 6·scale per character with capitals about
  // 7·scale tall: the metrics of the bitmap font, so the layout holds in both outputs.
  const char* a = anchor == Anchor::kStart ? "start" : anchor == Anchor::kMiddle ? "middle" : "end";
  const double baseline = kBaselineRow * scale;
  std::string pos = vertical ? "transform=\"translate(" + num(x + baseline) + "," + num(y) + ") rotate(-90)\""
                             : "x=\"" + num(x) + "\" y=\"" + num(y + baseline) + "\"";
  body_ += "<text " + pos + " font-size=\"" + num(kLineHeight * scale) + "\" text-anchor=\"" + a + "\" fill=\"" +
           colour(c) + "\">" + escape(font_text(s)) + "</text>\n";
}

}  // namespace agpt::plot
