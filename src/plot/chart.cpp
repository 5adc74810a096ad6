#include "plot/chart.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "plot/font.h"
#include "plot/ticks.h"

namespace agpt::plot {
namespace {

constexpr Rgb kText{40, 40, 40}, kFrame{110, 110, 110}, kGrid{228, 228, 228}, kLegendFrame{200, 200, 200};
constexpr Rgb kWhite{255, 255, 255};

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  bool empty() const { return !(lo <= hi); }
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
};

// The centre of a line of integer width w near v, so it covers whole pixels (crisp, no blur).
double crisp(double v, double w) { return std::round(v - w / 2) + w / 2; }

Range y_range(const Chart& c, bool log) {
  Range r;
  for (const Series& s : c.series)
    for (double v : s.data.y)
      if (std::isfinite(v) && (!log || v > 0)) r.add(v);
  return r;
}

Range x_range(const Chart& c) {
  Range r;
  for (const Series& s : c.series)
    for (size_t i = 0; i < s.data.size(); ++i)
      if (std::isfinite(s.data.x[i]) && std::isfinite(s.data.y[i])) r.add(s.data.x[i]);
  return r;
}

// Widens r so a single value or an empty series still gets an axis, then pads it by `pad` of
// its span (on a log axis, of its span in decades) so lines do not run along the frame.
void widen(Range& r, bool log, bool integer, double pad) {
  if (r.empty()) r = log ? Range{1, 10} : Range{0, 1};
  // Equal up to rounding counts as constant: a span of 1e-16 would give ticks at rounding noise.
  if (r.hi - r.lo <= 1e-9 * std::max(std::fabs(r.lo), std::fabs(r.hi))) {
    const double v = (r.lo + r.hi) / 2;
    if (log) r = {v / 2, v * 2};
    else {
      const double d = std::max(v == 0 ? 1.0 : std::fabs(v) * 0.1, integer ? 1.0 : 0.0);
      r = {v - d, v + d};
    }
    return;
  }
  if (log) {
    const double f = std::pow(r.hi / r.lo, pad);
    r = {r.lo / f, r.hi * f};
  } else {
    const double d = (r.hi - r.lo) * pad;
    r = {r.lo - d, r.hi + d};
  }
}

// Ticks and labels for ax (its range and pixels already set) with about `target` ticks.
void set_ticks(Axis& ax, int target, bool integer) {
  bool linear = !ax.log;
  if (ax.log) ax.ticks = log_ticks(ax.lo, ax.hi, target, &linear);
  else {
    if (integer) target = std::min(target, std::max(1, static_cast<int>(std::floor(ax.hi - ax.lo))));
    ax.ticks = nice_ticks(ax.lo, ax.hi, target);
  }
  ax.labels.clear();
  const double step = ax.ticks.size() > 1 ? ax.ticks[1] - ax.ticks[0] : 1;
  double ref = 0;
  for (double t : ax.ticks) ref = std::max(ref, std::fabs(t));
  for (double t : ax.ticks) ax.labels.push_back(linear ? format_tick(t, step, ref) : format_tick(t, t, t));
}

int widest(const std::vector<std::string>& labels, int scale) {
  int w = 0;
  for (const std::string& l : labels) w = std::max(w, text_width(l, scale));
  return w;
}

std::vector<const Series*> legend_entries(const Chart& c) {
  std::vector<const Series*> out;
  for (const Series& s : c.series)
    if (!s.label.empty()) out.push_back(&s);
  return out;
}

// The legend box in the plot corner that hides the fewest data points (top right on a tie).
Rect place_legend(const Chart& c, const ChartLayout& L) {
  const auto entries = legend_entries(c);
  if (entries.empty()) return {};
  const int s = L.scale;
  int text = 0;
  for (const Series* e : entries) text = std::max(text, text_width(e->label, s));
  const double w = 6 * s + 16 * s + 5 * s + text + 6 * s, h = 5 * s + entries.size() * 13.0 * s + 3 * s;
  const double inset = 6 * s, left = L.plot.x + inset, right = L.plot.x + L.plot.w - inset - w;
  const double top = L.plot.y + inset, bottom = L.plot.y + L.plot.h - inset - h;
  const Rect corners[] = {{right, top, w, h}, {left, top, w, h}, {right, bottom, w, h}, {left, bottom, w, h}};
  Rect best = corners[0];
  size_t best_hidden = SIZE_MAX;
  for (const Rect& r : corners) {
    size_t hidden = 0;
    for (const Series& se : c.series)
      for (size_t i = 0; i < se.data.size(); ++i) {
        const double px = L.x.to_pixel(se.data.x[i]), py = L.y.to_pixel(se.data.y[i]);
        hidden += px >= r.x && px <= r.x + r.w && py >= r.y && py <= r.y + r.h;
      }
    if (hidden < best_hidden) best = r, best_hidden = hidden;
  }
  return best;
}

void draw_series(const Series& se, const ChartLayout& L, Surface& out) {
  const double width = se.width * L.scale, radius = se.radius * L.scale;
  std::vector<Point> run;
  auto flush = [&] {
    if (se.mark != Mark::kMarkers && run.size() == 1) out.disc(run[0], width, se.color);  // isolated: a visible dot
    if (se.mark != Mark::kMarkers && run.size() > 1) out.polyline(run, width, se.color);
    run.clear();
  };
  for (size_t i = 0; i < se.data.size(); ++i) {
    const double px = L.x.to_pixel(se.data.x[i]), py = L.y.to_pixel(se.data.y[i]);
    if (std::isfinite(px) && std::isfinite(py)) run.push_back({px, py});
    else flush();
  }
  flush();
  if (se.mark == Mark::kLine) return;
  for (size_t i = 0; i < se.data.size(); ++i) {
    const double px = L.x.to_pixel(se.data.x[i]), py = L.y.to_pixel(se.data.y[i]);
    if (std::isfinite(px) && std::isfinite(py)) out.disc({px, py}, radius, se.color);
  }
}

void draw_legend(const Chart& c, const ChartLayout& L, Surface& out) {
  const Rect& r = L.legend;
  const int s = L.scale;
  out.fill_rect(r, kLegendFrame);
  out.fill_rect({r.x + 1, r.y + 1, r.w - 2, r.h - 2}, kWhite);
  double y = r.y + 5 * s;
  for (const Series* e : legend_entries(c)) {
    const double mid = y + 3.5 * s, x0 = r.x + 6 * s, x1 = x0 + 16 * s;
    if (e->mark != Mark::kMarkers) out.polyline({{x0, mid}, {x1, mid}}, std::max(e->width * s, 2.0 * s), e->color);
    if (e->mark != Mark::kLine) out.disc({(x0 + x1) / 2, mid}, e->radius * s, e->color);
    out.text(x1 + 5 * s, y, e->label, s, Anchor::kStart, false, kText);
    y += 13 * s;
  }
}

}  // namespace

double Axis::to_pixel(double v) const {
  if (!std::isfinite(v)) return NAN;
  if (log) {
    if (v <= 0) return NAN;
    return p0 + (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) * (p1 - p0);
  }
  return p0 + (v - lo) / (hi - lo) * (p1 - p0);
}

int text_scale(Rect area) { return std::clamp(static_cast<int>(std::min(area.w / 480, area.h / 290)), 1, 8); }

ChartLayout layout_chart(const Chart& chart, Rect area) {
  ChartLayout L;
  const int s = L.scale = text_scale(area);
  Range yr = y_range(chart, chart.log_y);
  L.y.log = chart.log_y && !yr.empty();  // nothing positive to show: a linear axis instead
  if (chart.log_y && yr.empty()) yr = y_range(chart, false);
  Range xr = x_range(chart);
  widen(yr, L.y.log, false, 0.05);
  widen(xr, false, chart.x_integer, 0);

  const double top = std::round(area.y + (chart.title.empty() ? 8 : 18) * s);
  const double bottom = std::round(area.y + area.h - (chart.x_label.empty() ? 22 : 36) * s);
  L.y.lo = yr.lo, L.y.hi = yr.hi, L.y.p0 = bottom, L.y.p1 = top;
  if (bottom - top < 20) fail("a chart of ", area.w, "x", area.h, " pixels is too small to draw (use a larger --height)");
  set_ticks(L.y, std::max(2, static_cast<int>((bottom - top) / (32 * s))), false);

  const double left = std::round(area.x + 4 * s + (chart.y_label.empty() ? 0 : 14 * s) + widest(L.y.labels, s) + 8 * s);
  const double right = std::round(area.x + area.w - 20 * s);
  if (right - left < 20) fail("a chart of ", area.w, "x", area.h, " pixels is too small to draw (use a larger --width)");
  L.plot = {left, top, right - left, bottom - top};
  L.x.lo = xr.lo, L.x.hi = xr.hi, L.x.p0 = left, L.x.p1 = right;
  // Fewer x ticks until their labels fit side by side with a gap.
  for (int target = std::max(2, static_cast<int>(L.plot.w / (60 * s))); target >= 1; --target) {
    set_ticks(L.x, target, chart.x_integer);
    if (L.x.ticks.size() < 2) break;
    const double spacing = std::fabs(L.x.to_pixel(L.x.ticks[1]) - L.x.to_pixel(L.x.ticks[0]));
    if (widest(L.x.labels, s) + 8 * s <= spacing) break;
  }
  L.legend = place_legend(chart, L);
  return L;
}

void draw_chart(const Chart& chart, Rect area, Surface& out) {
  const ChartLayout L = layout_chart(chart, area);
  const int s = L.scale;
  const Rect& p = L.plot;
  const double bottom = p.y + p.h, right = p.x + p.w;
  for (double t : L.y.ticks) {
    const double y = crisp(L.y.to_pixel(t), 1);
    out.polyline({{p.x, y}, {right, y}}, 1, kGrid);
  }
  for (double t : L.x.ticks) {
    const double x = crisp(L.x.to_pixel(t), 1);
    out.polyline({{x, p.y}, {x, bottom}}, 1, kGrid);
  }
  for (const Series& se : chart.series) draw_series(se, L, out);
  if (x_range(chart).empty())  // say so rather than leave a blank frame that looks like a bug
    out.text(p.x + p.w / 2, p.y + p.h / 2 - 3.5 * s, "no finite values", s, Anchor::kMiddle, false, kFrame);

  const double fw = s;  // frame and tick width
  const double fl = crisp(p.x, fw), fr = crisp(right, fw), ft = crisp(p.y, fw), fb = crisp(bottom, fw);
  out.polyline({{fl, ft}, {fr, ft}, {fr, fb}, {fl, fb}, {fl, ft}}, fw, kFrame);
  for (size_t i = 0; i < L.y.ticks.size(); ++i) {
    const double y = crisp(L.y.to_pixel(L.y.ticks[i]), fw);
    out.polyline({{fl - 3 * s, y}, {fl, y}}, fw, kFrame);
    out.text(fl - 5 * s, std::round(y - 3.5 * s), L.y.labels[i], s, Anchor::kEnd, false, kText);
  }
  for (size_t i = 0; i < L.x.ticks.size(); ++i) {
    const double x = crisp(L.x.to_pixel(L.x.ticks[i]), fw);
    out.polyline({{x, fb}, {x, fb + 3 * s}}, fw, kFrame);
    out.text(x, fb + 6 * s, L.x.labels[i], s, Anchor::kMiddle, false, kText);
  }
  if (!chart.x_label.empty()) out.text(p.x + p.w / 2, fb + 20 * s, chart.x_label, s, Anchor::kMiddle, false, kText);
  if (!chart.y_label.empty()) out.text(area.x + 4 * s, p.y + p.h / 2, chart.y_label, s, Anchor::kMiddle, true, kText);
  if (!chart.title.empty()) out.text(p.x + p.w / 2, area.y + 5 * s, chart.title, s, Anchor::kMiddle, false, kText);
  if (L.legend.w > 0) draw_legend(chart, L, out);
}

}  // namespace agpt::plot
