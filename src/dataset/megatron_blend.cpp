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
  // One error w*x - c (x, c <= size) is off its exact value by at most u*(2|w|x + c)*(1 + 2u), u = 2^-53
  // (so a comparison of two is decided up to 6u*wmax*size); a block bound rounds three more
  // operations of that magnitude, a group bound three more: all together below 20u*wmax*size. The
  // margin is three times that.
  margin_ = std::ldexp(64.0, -53) * wmax * (static_cast<double>(size) + 16.0);

  std::map<double, uint32_t, std::greater<double>> by_weight;  // -0.0 and 0.0 are one class
  for (size_t d = 0; d < S; ++d) ++by_weight[weights[d]];
  const size_t K = by_weight.size();
  class_start_.assign(K + 1, 0);
  std::vector<double> class_weight(K);
  {
    size_t k = 0;
    for (auto& [w, n] : by_weight) {  // n: members, then the class number
      class_weight[k] = w;
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
  const size_t blocks = (K + kBlock - 1) / kBlock;
  // Padding: weight 0, base 2^60 (an error of about -2^60, below any real line).
  slot_weight_.assign(blocks * kBlock, 0.0);
  slot_base_.assign(blocks * kBlock, std::ldexp(1.0, 60));
  slot_index_.assign(blocks * kBlock, std::numeric_limits<int32_t>::max());
  for (size_t k = 0; k < K; ++k) {
    slot_weight_[k] = class_weight[k];
    slot_base_[k] = 0.0;
    slot_index_[k] = static_cast<int32_t>(members_[class_start_[k]]);
  }
  max_.assign(blocks, 0.0);
  second_.assign(blocks, 0.0);
  at_.assign(blocks, 0.0);
  bound_.assign(blocks, 0.0);
  best_.assign(blocks, 0);
  top_weight_.assign(blocks, 0.0);
  for (size_t b = 0; b < blocks; ++b) {
    top_weight_[b] = slot_weight_[b * kBlock];  // sorted: the first class is the heaviest
    evaluate(static_cast<uint32_t>(b), 1.0);
  }
  // Groups of kGroup blocks: max over their blocks' bounds at group_at_, slope the heaviest weight.
  // A block's bound, once evaluated, never rises above its group's (the block's new maximum is at
  // most its old bound), so a group's bound stays valid until it is tightened again.
  const size_t groups = (blocks + kGroup - 1) / kGroup;
  group_max_.assign(groups, -std::numeric_limits<double>::infinity());
  group_at_.assign(groups, 1.0);
  group_weight_.assign(groups, 0.0);
  group_bound_.assign(groups, 0.0);
  for (size_t b = 0; b < blocks; ++b) {
    group_max_[b / kGroup] = std::max(group_max_[b / kGroup], max_[b] + margin_);
    group_weight_[b / kGroup] = std::max(group_weight_[b / kGroup], top_weight_[b]);
  }
}

uint64_t MegatronBlender::count(uint32_t d) const {
  const uint32_t k = class_of_[d];
  return static_cast<uint64_t>(slot_base_[k]) + (position_[d] < turn_[k] ? 1 : 0);
}

// The class's next member takes the following turn; returns true when the class completed a round
// (then its line is one lower).
inline bool MegatronBlender::advance(uint32_t k) {
  const uint32_t size = class_start_[k + 1] - class_start_[k];
  bool round = false;
  if (++turn_[k] == size) {
    turn_[k] = 0;
    slot_base_[k] += 1.0;
    round = true;
  }
  slot_index_[k] = static_cast<int32_t>(members_[class_start_[k] + turn_[k]]);
  return round;
}

void MegatronBlender::evaluate(uint32_t b, double x) {
  const double* w = slot_weight_.data() + size_t(b) * kBlock;
  const double* c = slot_base_.data() + size_t(b) * kBlock;
  const int32_t* idx = slot_index_.data() + size_t(b) * kBlock;
  static_assert(kBlock % 4 == 0);
  // w * x - c rounded twice, as in Megatron: the products go through memory the compiler must
  // assume changed, so they cannot be fused into FMAs whatever -march says. Both loops vectorise.
  double e[kBlock];
  for (uint32_t j = 0; j < kBlock; ++j) e[j] = w[j] * x;
#if defined(__GNUC__)
  asm volatile("" : : "r"(e) : "memory");
#else
  volatile double sink = e[0];
  (void)sink;
#endif
  for (uint32_t j = 0; j < kBlock; ++j) e[j] -= c[j];
  double m4[4] = {e[0], e[1], e[2], e[3]};  // four independent chains
  for (uint32_t j = 4; j < kBlock; j += 4)
    for (uint32_t l = 0; l < 4; ++l) m4[l] = e[j + l] > m4[l] ? e[j + l] : m4[l];
  const double a = m4[0] > m4[1] ? m4[0] : m4[1], b2 = m4[2] > m4[3] ? m4[2] : m4[3];
  const double m = a > b2 ? a : b2;
  int32_t best = std::numeric_limits<int32_t>::max();
  uint32_t slot = 0;
  for (uint32_t j = 0; j < kBlock; ++j) {
    const bool better = e[j] == m && idx[j] < best;
    best = better ? idx[j] : best;
    slot = better ? j : slot;
  }
  double second = -std::numeric_limits<double>::infinity();  // the runner-up line's error
  for (uint32_t j = 0; j < kBlock; ++j) second = (j != slot && e[j] > second) ? e[j] : second;
  max_[b] = m;
  second_[b] = second;
  at_[b] = x;
  best_[b] = best;
  evaluations_ += kBlock;
}

uint32_t MegatronBlender::next() {
  if (step_ >= size_) fail("megatron blend: more than the ", size_, " samples it was built for");
  if (turn_.size() == 1) {  // equal weights: the datasets take turns in index order
    const uint32_t d = static_cast<uint32_t>(slot_index_[0]);
    advance(0);
    ++step_;
    return d;
  }
  const double x = std::max(static_cast<double>(step_), 1.0);
  const size_t blocks = max_.size(), groups = group_max_.size();
  // Group bounds first (a group's bound covers all its blocks' bounds), then the most promising
  // group's blocks; its best block is evaluated exactly first.
  for (size_t g = 0; g < groups; ++g) group_bound_[g] = group_max_[g] + group_weight_[g] * (x - group_at_[g]);
  size_t first_group = 0;
  double first_bound = group_bound_[0];
  for (size_t g = 1; g < groups; ++g) {
    const bool higher = group_bound_[g] > first_bound;
    first_group = higher ? g : first_group;
    first_bound = higher ? group_bound_[g] : first_bound;
  }
  opened_.clear();
  auto open_group = [&](size_t g) -> size_t {  // block bounds of group g at x; tightens the group's bound
    opened_.push_back(static_cast<uint32_t>(g));
    const size_t b0 = g * kGroup, b1 = std::min(blocks, b0 + kGroup);
    for (size_t b = b0; b < b1; ++b) bound_[b] = max_[b] + top_weight_[b] * (x - at_[b]) + margin_;
    size_t top = b0;
    double m = bound_[b0];
    for (size_t b = b0 + 1; b < b1; ++b) {
      const bool higher = bound_[b] > m;
      top = higher ? b : top;
      m = higher ? bound_[b] : m;
    }
    group_max_[g] = m;
    group_at_[g] = x;
    group_bound_[g] = m;
    return top;
  };
  // Evaluating a block of an open group: its new maximum is below its old bound, yet its new bound
  // (maximum + margin) may exceed that by the margin, so the group's bound takes it in.
  auto exact = [&](size_t b) {
    evaluate(static_cast<uint32_t>(b), x);
    group_max_[b / kGroup] = std::max(group_max_[b / kGroup], max_[b] + margin_);
  };
  const size_t first = open_group(first_group);
  exact(first);
  double best_error = max_[first];
  int32_t best = best_[first];
  // Every other group, then block, that could reach the best error so far (ties included: the
  // lower index wins).
  for (size_t g = 0; g < groups; ++g) {
    if (g != first_group) {
      if (group_bound_[g] < best_error) continue;
      open_group(g);
    }
    const size_t b0 = g * kGroup, b1 = std::min(blocks, b0 + kGroup);
    for (size_t b = b0; b < b1; ++b) {
      if (b == first || bound_[b] < best_error) continue;
      exact(b);
      if (max_[b] > best_error || (max_[b] == best_error && best_[b] < best)) {
        best_error = max_[b];
        best = best_[b];
      }
    }
  }
  // The pick: the class's next member takes the following turn.
  const uint32_t d = static_cast<uint32_t>(best);
  const uint32_t k = class_of_[d];
  const bool round = advance(k);
  // d's block was evaluated at this x with d on top. When d's class has completed a round (always,
  // for a class of one), its line is one lower: the block's lines are now at most the runner-up or
  // that. Otherwise the class's next member has d's error and the maximum stays. Either way a
  // bound, not an exact maximum: the block is evaluated again before its maximum is used as one.
  if (round) {
    const size_t b = k / kBlock;
    max_[b] = std::max(second_[b], max_[b] - 1.0);
  }
  // Tighten the bounds of the groups opened at this step to their blocks' bounds now (evaluations
  // and the pick have lowered them).
  for (uint32_t g : opened_) {
    const size_t b0 = size_t(g) * kGroup, b1 = std::min(blocks, b0 + kGroup);
    double m = -std::numeric_limits<double>::infinity();
    for (size_t b = b0; b < b1; ++b) {
      const double bound = max_[b] + top_weight_[b] * (x - at_[b]) + margin_;
      m = bound > m ? bound : m;
    }
    group_max_[g] = m;
    group_at_[g] = x;
  }
  ++step_;
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
