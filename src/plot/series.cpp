#include "plot/series.h"

#include <algorithm>
#include <cmath>

namespace agpt::plot {

std::vector<double> ema(const std::vector<double>& y, double weight) {
  std::vector<double> out(y.size(), NAN);
  // The debiased average m_n = avg_n / (1 - w^n), updated as m += a_n (v - m) with
  // a_n = (1 - w) / (1 - w^n): a constant input then stays exactly constant (no rounding drift
  // that would make a flat line look like noise on a zoomed axis).
  double m = 0, decay = 1;  // decay = w^n after n finite values
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) continue;
    decay *= weight;
    m += (1 - weight) / (1 - decay) * (y[i] - m);
    out[i] = m;
  }
  return out;
}

XY decimate(const XY& s, size_t max_points) {
  const size_t n = s.size();
  if (n <= max_points) return s;
  const size_t buckets = std::max<size_t>(1, max_points / 5);
  XY out;
  std::vector<size_t> keep;
  for (size_t b = 0; b < buckets; ++b) {
    const size_t begin = b * n / buckets, end = (b + 1) * n / buckets;
    size_t first = end, last = end, lo = end, hi = end, gap = end;
    for (size_t i = begin; i < end; ++i) {
      const double v = s.y[i];
      if (!std::isfinite(v)) {
        if (gap == end) gap = i;
        continue;
      }
      if (first == end) first = i;
      last = i;
      if (lo == end || v < s.y[lo]) lo = i;
      if (hi == end || v > s.y[hi]) hi = i;
    }
    keep.clear();
    for (size_t i : {first, last, lo, hi, gap})
      if (i != end) keep.push_back(i);
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    for (size_t i : keep) out.x.push_back(s.x[i]), out.y.push_back(s.y[i]);
  }
  return out;
}

}  // namespace agpt::plot
