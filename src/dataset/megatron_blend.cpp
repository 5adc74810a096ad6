#include "dataset/megatron_blend.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "base/error.h"

namespace agpt::dataset {

void megatron_blend_naive(const std::vector<double>& weights, uint64_t size, uint16_t* dataset_index,
                          int64_t* dataset_sample_index) {
  const size_t n = weights.size();
  if (n == 0 || n > 65535) fail("megatron blend: ", n, " datasets (1 to 65,535 supported)");
  std::vector<int64_t> current(n, 0);
  for (uint64_t i = 0; i < size; ++i) {
    const double x = std::max(static_cast<double>(i), 1.0);
    size_t best = 0;
    double best_error = megatron_blend_error(weights[0], x, static_cast<double>(current[0]));
    for (size_t d = 1; d < n; ++d) {
      const double e = megatron_blend_error(weights[d], x, static_cast<double>(current[d]));
      if (e > best_error) {
        best_error = e;
        best = d;
      }
    }
    dataset_index[i] = static_cast<uint16_t>(best);
    if (dataset_sample_index) dataset_sample_index[i] = current[best];
    ++current[best];
  }
}

namespace {

// The largest w[j]*x - b[j] over j < n (products and differences rounded apart, as Megatron's
// baseline-x86-64 build does) and, among the entries at it, the lowest r[j] (returned). Entries n ..
// n rounded up to 8 are padding that never wins. Built for AVX2 where the CPU has it.
using v4d = double __attribute__((vector_size(32)));
using v4d_unaligned = double __attribute__((vector_size(32), aligned(8)));  // loads from double arrays

__attribute__((target_clones("avx2", "default"))) double scan_active(const double* w, const double* b,
                                                                     const double* r, size_t n, double x,
                                                                     double& best) {
  const size_t n4 = ((n + 7) & ~size_t(7)) / 4;
  const auto* W = reinterpret_cast<const v4d_unaligned*>(w);
  const auto* B = reinterpret_cast<const v4d_unaligned*>(b);
  const auto* R = reinterpret_cast<const v4d_unaligned*>(r);
  const double inf = std::numeric_limits<double>::infinity();
  const v4d xv = {x, x, x, x};
  v4d m0 = {-inf, -inf, -inf, -inf}, m1 = m0;  // per lane: the largest error and its lowest r
  v4d r0 = {inf, inf, inf, inf}, r1 = r0;
  for (size_t j = 0; j < n4; j += 2) {
    v4d p0 = W[j] * xv, p1 = W[j + 1] * xv;
    asm("" : "+m"(p0), "+m"(p1));  // the products are rounded before the subtraction (never fused)
    const v4d e0 = p0 - B[j], e1 = p1 - B[j + 1];
    const v4d q0 = R[j], q1 = R[j + 1];
    r0 = ((e0 > m0) | ((e0 == m0) & (q0 < r0))) ? q0 : r0;
    r1 = ((e1 > m1) | ((e1 == m1) & (q1 < r1))) ? q1 : r1;
    m0 = e0 > m0 ? e0 : m0;
    m1 = e1 > m1 ? e1 : m1;
  }
  // Lanes pairwise, with the same rule, without branches.
  r0 = ((m1 > m0) | ((m1 == m0) & (r1 < r0))) ? r1 : r0;
  m0 = m1 > m0 ? m1 : m0;
  double top = m0[0], low = r0[0];
  for (int l = 1; l < 4; ++l) {
    const bool better = m0[l] > top || (m0[l] == top && r0[l] < low);
    low = better ? r0[l] : low;
    top = better ? m0[l] : top;
  }
  best = top;
  return low;
}

}  // namespace

MegatronBlender::MegatronBlender(const std::vector<double>& weights, uint64_t size) : size_(size) {
  const size_t S = weights.size();
  if (S == 0 || S > 65535) fail("megatron blend: ", S, " datasets (1 to 65,535 supported)");
  double wmax = 1.0;
  for (double w : weights) {
    if (!std::isfinite(w)) fail("megatron blend: weight ", w, " is not finite");
    wmax = std::max(wmax, std::fabs(w));
  }
  // Class turns rely on |w*x - c| < 2^50 (then counts 1 apart never round to the same error).
  if (wmax * static_cast<double>(size) + static_cast<double>(size) >= std::ldexp(1.0, 50))
    fail("megatron blend: ", size, " samples at weights up to ", wmax, " are beyond exact double arithmetic");
  // One error w*x - c (x, c <= size) is off its exact value by at most u*(2|w|x + c)*(1 + 2u), u = 2^-53,
  // below 4u*wmax*size; a due step's quotient (L - margin + c) / w is off by a relative 3u, i.e. by
  // under 3u*(|L| + margin + size) in error units. The margin is many times both.
  margin_ = std::ldexp(64.0, -53) * wmax * (static_cast<double>(size) + 16.0);

  std::map<double, uint32_t, std::greater<double>> by_weight;  // -0.0 and 0.0 are one class
  for (size_t d = 0; d < S; ++d) ++by_weight[weights[d]];
  const size_t K = by_weight.size();
  class_start_.assign(K + 1, 0);
  weight_.assign(K, 0.0);
  {
    size_t k = 0;
    for (auto& [w, n] : by_weight) {  // n: members, then the class number
      weight_[k] = w;
      class_start_[k + 1] = class_start_[k] + n;
      n = static_cast<uint32_t>(k++);
    }
  }
  turn_.assign(K, 0);
  members_.resize(S);
  class_of_.resize(S);
  position_.resize(S);
  std::vector<uint32_t> filled(K, 0);
  for (size_t d = 0; d < S; ++d) {  // ascending d: members in index order
    const uint32_t k = by_weight.at(weights[d]);
    class_of_[d] = k;
    position_[d] = filled[k]++;
    members_[class_start_[k] + position_[d]] = static_cast<uint32_t>(d);
  }
  base_.assign(K, 0.0);
  inv_weight_.resize(K);
  for (size_t k = 0; k < K; ++k) inv_weight_[k] = weight_[k] > 0 ? 1.0 / weight_[k] : 0.0;
  rep_.resize(K);
  for (size_t k = 0; k < K; ++k) rep_[k] = static_cast<int32_t>(members_[class_start_[k]]);
  if (K <= kFewClasses) return;  // every sample evaluates every class
  uint64_t ring = 1024;
  while (ring < 2 * uint64_t(K)) ring *= 2;
  ring_.assign(ring, -1);
  ring_mask_ = ring - 1;
  link_.assign(K, -1);
  due_.assign(K, 0);
  // Every class is active for the first samples; then the level follows the winning errors.
  level_ = -std::numeric_limits<double>::infinity();
  window_min_ = std::numeric_limits<double>::infinity();
  window_max_ = -std::numeric_limits<double>::infinity();
  next_reset_ = 64;
  const size_t cap = K + 8;  // padding after the last active class: lines that never win
  act_k_.assign(cap, 0);
  act_w_.assign(cap, 0.0);
  act_b_.assign(cap, std::ldexp(1.0, 60));
  act_r_.assign(cap, std::numeric_limits<double>::infinity());
  act_pos_.assign(K, 0);
  rebuild(1.0);
}

uint64_t MegatronBlender::count(uint32_t d) const {
  const uint32_t k = class_of_[d];
  return static_cast<uint64_t>(base_[k]) + (position_[d] < turn_[k] ? 1 : 0);
}

void MegatronBlender::activate(uint32_t k) {
  const size_t j = active_n_++;
  act_k_[j] = k;
  act_w_[j] = weight_[k];
  act_b_[j] = base_[k];
  act_r_[j] = rep_[k];
  act_pos_[k] = static_cast<uint32_t>(j);
}

// Removes the active class at j: the last one takes its place, padding the last place.
void MegatronBlender::deactivate(size_t j) {
  const size_t last = --active_n_;
  act_k_[j] = act_k_[last];
  act_w_[j] = act_w_[last];
  act_b_[j] = act_b_[last];
  act_r_[j] = act_r_[last];
  act_pos_[act_k_[j]] = static_cast<uint32_t>(j);
  act_w_[last] = 0.0;
  act_b_[last] = std::ldexp(1.0, 60);
  act_r_[last] = std::numeric_limits<double>::infinity();
}

// The class's next member takes the following turn; returns true when the class completed a round
// (then its line is one lower).
inline bool MegatronBlender::advance(uint32_t k) {
  const uint32_t size = class_start_[k + 1] - class_start_[k];
  bool round = false;
  if (++turn_[k] == size) {
    turn_[k] = 0;
    base_[k] += 1.0;
    round = true;
  }
  rep_[k] = static_cast<int32_t>(members_[class_start_[k] + turn_[k]]);
  return round;
}

// x: the x of the next sample; slots up to popped_ (>= x - 1) have been emptied into the active set.
void MegatronBlender::schedule(uint32_t k, double x) {
  const double w = weight_[k], threshold = level_ - margin_;
  if (!(w > 0)) {  // a line that never rises: active now or never
    if (error(k, x) >= threshold) activate(k);
    return;
  }
  // The first x with w*x - base >= threshold, rounded down: early, never late (the product by the
  // rounded reciprocal is within a few ulps of the quotient, so its floor is at most the ceiling of
  // the exact quotient).
  const double q = (threshold + base_[k]) * inv_weight_[k];
  if (!(q > x)) {
    activate(k);
    return;
  }
  const uint64_t due = q < 0x1p62 ? static_cast<uint64_t>(q) : (uint64_t(1) << 62);
  if (due <= static_cast<uint64_t>(x)) {
    activate(k);
  } else if (due - popped_ <= ring_mask_) {
    const size_t slot = due & ring_mask_;
    link_[k] = ring_[slot];
    ring_[slot] = static_cast<int32_t>(k);
  } else {
    due_[k] = due;
    far_.push_back(k);
  }
}

void MegatronBlender::rebuild(double x) {
  std::fill(ring_.begin(), ring_.end(), -1);
  while (active_n_ > 0) deactivate(active_n_ - 1);
  far_.clear();
  popped_ = static_cast<uint64_t>(x);  // slot x holds nothing: classes due by x are active
  far_check_ = popped_ + (ring_mask_ + 1) / 2;
  for (uint32_t k = 0; k < turn_.size(); ++k) schedule(k, x);
}

uint32_t MegatronBlender::full_scan(double x, double& best_error) {
  uint32_t best = 0;
  double best_e = error(0, x);
  int32_t best_rep = rep_[0];
  const uint32_t K = static_cast<uint32_t>(turn_.size());
  for (uint32_t k = 1; k < K; ++k) {
    const double e = error(k, x);
    if (e > best_e || (e == best_e && rep_[k] < best_rep)) {
      best_e = e;
      best_rep = rep_[k];
      best = k;
    }
  }
  evaluations_ += K;
  best_error = best_e;
  return best;
}

uint32_t MegatronBlender::next_general() {
  if (step_ >= size_) fail("megatron blend: more than the ", size_, " samples it was built for");
  const uint32_t K = static_cast<uint32_t>(turn_.size());  // more than one (next() takes turns within one)
  const double x = std::max(static_cast<double>(step_), 1.0);
  double best_e;
  if (K <= kFewClasses) {
    const uint32_t k = full_scan(x, best_e);
    const uint32_t d = static_cast<uint32_t>(rep_[k]);
    advance(k);
    ++step_;
    return d;
  }
  const uint64_t xi = static_cast<uint64_t>(x);
  if (xi > popped_) {  // x moved on by one: the classes due now join the active set
    popped_ = xi;
    // A class's due step may be for an earlier, lower level: it joins only if at the level now.
    const double threshold = level_ - margin_;
    int32_t k = ring_[xi & ring_mask_];
    ring_[xi & ring_mask_] = -1;
    while (k >= 0) {
      const int32_t following = link_[k];
      if (error(static_cast<uint32_t>(k), x) >= threshold) activate(static_cast<uint32_t>(k));
      else schedule(static_cast<uint32_t>(k), x);
      k = following;
    }
    if (xi >= far_check_) {  // every half turn: the far classes due within a turn join the ring
      far_check_ = xi + (ring_mask_ + 1) / 2;
      size_t kept = 0;
      pending_.clear();
      for (uint32_t f : far_) {
        if (due_[f] - xi <= ring_mask_ || due_[f] <= xi) pending_.push_back(f);
        else far_[kept++] = f;
      }
      far_.resize(kept);
      for (uint32_t f : pending_) schedule(f, x);
    }
  }
  // The active classes: the largest error, ties to the lowest dataset index.
  const size_t n = active_n_;
  size_t best_at = 0;
  if (n > 0) {  // each active class has its own representative: the lowest one names the class
    const double low = scan_active(act_w_.data(), act_b_.data(), act_r_.data(), n, x, best_e);
    best_at = act_pos_[class_of_[static_cast<uint32_t>(low)]];
  }
  evaluations_ += n;
  // Every waiting class is below level_ (in double arithmetic): a pick at or above it is Megatron's.
  const bool miss = n == 0 || !(best_e >= level_);
  const uint32_t k = miss ? full_scan(x, best_e) : act_k_[best_at];
  window_min_ = std::min(window_min_, best_e);
  window_max_ = std::max(window_max_, best_e);
  const uint32_t d = static_cast<uint32_t>(rep_[k]);
  const bool round = advance(k);
  ++step_;
  const double x_next = std::max(static_cast<double>(step_), 1.0);
  if (miss) {
    ++misses_;
    level_ = best_e - std::max(kMinGap, window_max_ - window_min_);
    rebuild(x_next);
  } else if (round) {  // the class's line is one lower: it waits again unless still at the level
    deactivate(best_at);
    schedule(k, x_next);
  } else {  // the class's next member, at the same error
    act_r_[best_at] = rep_[k];
  }
  if (step_ >= next_reset_) {  // the level just below the last window's winning errors
    const double level = window_min_ - std::max(kMinGap, kGapFraction * (window_max_ - window_min_));
    window_min_ = std::numeric_limits<double>::infinity();
    window_max_ = -std::numeric_limits<double>::infinity();
    next_reset_ = step_ + kWindow;
    if (level >= level_) {  // raised: waiting classes are due early (harmless); active ones below it wait
      level_ = level;
      const double threshold = level_ - margin_;
      for (size_t j = active_n_; j-- > 0;) {
        const uint32_t c = act_k_[j];
        if (error(c, x_next) < threshold) {
          deactivate(j);
          schedule(c, x_next);
        }
      }
    } else {  // lowered: every due step is recomputed
      level_ = level;
      rebuild(x_next);
    }
  }
  return d;
}

std::vector<uint16_t> megatron_blend(const std::vector<double>& weights, uint64_t size, std::vector<uint64_t>* counts) {
  MegatronBlender blender(weights, size);
  std::vector<uint16_t> out(size);
  for (uint64_t i = 0; i < size; ++i) out[i] = static_cast<uint16_t>(blender.next());
  if (counts) {
    counts->resize(weights.size());
    for (uint32_t d = 0; d < weights.size(); ++d) (*counts)[d] = blender.count(d);
  }
  return out;
}

}  // namespace agpt::dataset
