// Series transforms before drawing: EMA smoothing and decimation of long runs.
#pragma once
#include <cstddef>
#include <vector>

namespace agpt::plot {

// Points in x order; a NaN y is a gap (a step whose value was not finite).
struct XY {
  std::vector<double> x, y;
  size_t size() const { return x.size(); }
};

// Exponential moving average with weight w in [0, 1) (0: none), bias-corrected like TensorBoard's
// smoothing so the curve starts at the data instead of at 0. NaN inputs give NaN and leave the
// average as it was, so a gap in the data stays a gap in the smoothed line.
std::vector<double> ema(const std::vector<double>& y, double weight);

// At most max_points points (max_points >= 5): the points split into equal buckets of consecutive
// indices, and each keeps its first, last, lowest and highest finite point plus its first NaN, in
// order. Extremes and spikes survive, so the drawn shape matches the full series.
XY decimate(const XY& s, size_t max_points);

}  // namespace agpt::plot
