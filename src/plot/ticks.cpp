#include "plot/ticks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace agpt::plot {
namespace {

constexpr double kEps = 1e-9;  // absorbs rounding in log10 and divisions of exact decimals

// Decimals that write every multiple of step exactly: 0.5 -> 1, 0.25 -> 2, 5 -> 0.
int decimals_for(double step) {
  int d = 0;
  for (double scaled = step; d < 9 && std::fabs(scaled - std::round(scaled)) > 1e-6 * scaled; scaled *= 10) ++d;
  return d;
}

std::string fixed(double v, int decimals, const char* suffix = "") {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, v, suffix);
  return buf;
}

}  // namespace

double nice_step(double span, int target) {
  if (!(span > 0) || !std::isfinite(span)) return 1;
  const double raw = span / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double m = norm <= 1 + kEps ? 1 : norm <= 2 + kEps ? 2 : norm <= 5 + kEps ? 5 : 10;
  return m * mag;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi >= lo)) return ticks;
  if (hi - lo <= 1e-12 * std::max(std::fabs(lo), std::fabs(hi))) return {lo};  // no room for steps
  // A coarse step can miss a short range between two multiples: refine until two ticks fit.
  for (int t = std::max(target, 1); t <= std::max(target, 1) + 20; ++t) {
    const double step = nice_step(hi - lo, t);
    // Multiples k·step rather than a running sum, so errors do not accumulate along the axis.
    const double k0 = std::ceil(lo / step - kEps), k1 = std::floor(hi / step + kEps);
    ticks.clear();
    for (double k = k0; k <= k1 && ticks.size() < 1000; ++k) ticks.push_back(k == 0 ? 0.0 : k * step);
    if (ticks.size() >= 2 || hi == lo) break;
  }
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi, int target, bool* linear) {
  std::vector<double> ticks;
  if (linear) *linear = false;
  if (!(lo > 0) || !(hi >= lo)) return ticks;
  const double a = std::log10(lo), b = std::log10(hi), decades = b - a;
  const int first = static_cast<int>(std::floor(a)), last = static_cast<int>(std::ceil(b));
  if (decades * 3 <= target) {
    for (int k = first; k <= last; ++k)
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10.0, k);
        if (v >= lo * (1 - kEps) && v <= hi * (1 + kEps)) ticks.push_back(v);
      }
  } else {
    const int every = std::max(1, static_cast<int>(std::ceil(decades / std::max(target, 1))));
    for (int k = first; k <= last; ++k) {
      const double v = std::pow(10.0, k);
      if (k % every == 0 && v >= lo * (1 - kEps) && v <= hi * (1 + kEps)) ticks.push_back(v);
    }
  }
  if (ticks.size() < 3) {  // less than a decade or so: evenly spaced values label it better
    std::vector<double> even = nice_ticks(lo, hi, target);
    if (even.size() > ticks.size()) {
      ticks = std::move(even);
      if (linear) *linear = true;
    }
  }
  return ticks;
}

std::string format_tick(double v, double step, double ref) {
  step = std::fabs(step), ref = std::fabs(ref);
  if (!(step > 0)) step = 1;
  if (std::fabs(v) < step * 1e-6) return "0";
  if (ref >= 1e4 && ref < 1e15) {
    const char* suffix = ref < 1e6 ? "k" : ref < 1e9 ? "M" : ref < 1e12 ? "G" : "T";
    const double unit = ref < 1e6 ? 1e3 : ref < 1e9 ? 1e6 : ref < 1e12 ? 1e9 : 1e12;
    return fixed(v / unit, decimals_for(step / unit), suffix);
  }
  if (ref < 1e-2 || ref >= 1e15) {
    const int e = static_cast<int>(std::floor(std::log10(std::fabs(v)) + kEps));
    const int decimals = std::clamp(e - static_cast<int>(std::floor(std::log10(step) + kEps)), 0, 4);
    std::string mantissa = fixed(v / std::pow(10.0, e), decimals);
    if (mantissa.find('.') != std::string::npos) {  // "1.0" -> "1", "2.50" -> "2.5"
      while (mantissa.back() == '0') mantissa.pop_back();
      if (mantissa.back() == '.') mantissa.pop_back();
    }
    return mantissa + "e" + std::to_string(e);
  }
  return fixed(v, decimals_for(step));
}

}  // namespace agpt::plot
