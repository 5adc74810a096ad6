// Axis ticks at "nice" values (1, 2 or 5 times a power of ten) and their labels.
#pragma once
#include <string>
#include <vector>

namespace agpt::plot {

// The smallest step of the form {1, 2, 5} x 10^k that cuts `span` into at most `target` parts.
double nice_step(double span, int target);

// Every multiple of nice_step(hi - lo, target) inside [lo, hi] (ends included), ascending; a
// finer nice step when that one leaves fewer than two ticks in the range.
std::vector<double> nice_ticks(double lo, double hi, int target);

// Ticks for a logarithmic axis over [lo, hi] (both > 0): 1, 2, 5 x 10^k when few decades are
// shown, every decade (or every n-th) when many; the linear nice_ticks when the range is too
// narrow to hold three of those and they are more (then *linear is set, if given).
std::vector<double> log_ticks(double lo, double hi, int target, bool* linear = nullptr);

// A short label for tick v on an axis with tick spacing `step` whose largest |tick| is `ref`:
// fixed decimals just fine enough for the step ("2.5"), k/M/G/T suffixes from 10^4 ("12.5k"), and
// mantissa-exponent form for small ticks ("3e-4", "2.5e-4"). Ticks of one axis share one style.
std::string format_tick(double v, double step, double ref);

}  // namespace agpt::plot
