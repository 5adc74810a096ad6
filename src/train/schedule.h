// Learning-rate schedules: linear warmup, then cosine, linear or WSD (warmup-stable-decay) decay.
//
// Steps are counted from 1 (k = 1 is the first optimizer update), S = total steps, W = warmup:
//   k <= W:           lr · k / W
//   cosine:           min + (lr − min) · ½(1 + cos(π·p)),  p = (k − W) / (S − W)
//   linear:           lr − (lr − min) · p
//   wsd:              lr until the decay starts at k0 = S − D (D = round(decay_fraction · S),
//                     at least 1 step), then lr − (lr − min) · (k − k0) / D
// so the last step (k = S) always runs at min_lr (unless it is still warming up).
#pragma once
#include <cstdint>
#include <string>

namespace agpt::train {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine, linear, wsd
  double lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup = 0;
  int64_t steps = 1;
  double decay_fraction = 0.2;  // wsd
};

// The learning rate of step k (1-based). Steps past S stay at min_lr.
double learning_rate(const ScheduleConfig& s, int64_t k);

}  // namespace agpt::train
