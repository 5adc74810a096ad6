#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "base/error.h"

namespace agpt::train {

double learning_rate(const ScheduleConfig& s, int64_t k) {
  if (k < 1) fail("learning_rate: steps count from 1, got ", k);
  if (s.warmup > 0 && k <= s.warmup) return s.lr * static_cast<double>(k) / static_cast<double>(s.warmup);
  if (k >= s.steps) return s.warmup >= s.steps ? s.lr : s.min_lr;
  if (s.kind == "wsd") {
    int64_t decay = std::max<int64_t>(1, std::llround(s.decay_fraction * static_cast<double>(s.steps)));
    int64_t k0 = std::max(s.warmup, s.steps - decay);
    if (k <= k0) return s.lr;
    double p = static_cast<double>(k - k0) / static_cast<double>(s.steps - k0);
    return s.lr - (s.lr - s.min_lr) * p;
  }
  double p = static_cast<double>(k - s.warmup) / static_cast<double>(s.steps - s.warmup);
  if (s.kind == "linear") return s.lr - (s.lr - s.min_lr) * p;
  if (s.kind == "cosine") return s.min_lr + (s.lr - s.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  fail("unknown learning-rate schedule '", s.kind, "' (cosine, linear or wsd)");
}

}  // namespace agpt::train
