// Megatron-LM's blend order (helpers.cpp build_blending_indices), exactly, without its O(S) scan
// per sample.
//
// Megatron's rule: for sample i, with x = max(i, 1) as a double, pick the dataset d with the largest
// error  weight[d] * x - count[d]  (evaluated in double precision, a product then a difference;
// strict '>' so ties go to the lowest index), then count[d] += 1. Megatron scans every dataset for
// every sample: O(N * S), 68% of its index build time at 2e11 tokens over 2,419 files.
//
// MegatronBlender makes the very same choices (the same doubles, the same tie-breaking) faster:
//  1. Datasets of exactly equal weight form a class. Within a class fl(w*x) is common, so the order
//     of the errors is the order of the counts (rounding is monotonic, and two counts differ by at
//     least 1, far above the rounding step while |w*x - c| < 2^50): the class always picks its
//     lowest-count, lowest-index member, i.e. its members take turns in index order. A class is one
//     line, weight*x - base, whose representative index rotates.
//  2. A level L: a class whose error is below L cannot win while some class is at L or above. An
//     unpicked line only rises, so each class below the level has a due step, the first x at which
//     w*x - base could reach L - margin (floor((L - margin + base) / w), early, never late); it waits
//     in a ring of buckets by due step (or, when due a ring's length ahead or more, in a far list
//     moved into the ring every half turn) and joins the active set then. Each sample evaluates only
//     the active classes (those at the level or above, packed for a vectorised scan) and picks the
//     largest error, ties to the lowest dataset index, as in Megatron. That is provably Megatron's
//     pick when it is at least L: every waiting class is below L in double arithmetic (the margin
//     covers every rounding). Otherwise (a miss) every class is evaluated, the level is lowered
//     below the pick and every due step is recomputed. Every kWindow samples the level is raised (or
//     lowered) to just below the lowest winning error of the window: raising it leaves waiting
//     classes due early (they are checked against the level when they come due) and returns active
//     classes now below it to the ring.
// With equal weights (one class) a sample costs O(1). With 2,419 token-proportional weights about 38
// classes are active (Megatron's loop evaluates 2,419), misses are about 1 in 2,400 samples, and a
// sample costs ~90 ns on this machine (~190 ns for the block-and-group bounds used before, ~2.6 us
// for Megatron's loop). Weights a few ulps apart, which the bounds could not separate, cost ~17 ns.
// Adversarial weights only make the active set larger or misses more frequent: still exact.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace agpt::dataset {

// The error Megatron compares, w * x - c, with a product and a difference rounded separately (never
// fused into an FMA, whatever the compiler flags: Megatron's helpers.cpp is built for baseline
// x86-64, which has no FMA).
inline double megatron_blend_error(double w, double x, double c) {
  double p = w * x;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(p));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(p));
#else
  volatile double vp = p;
  p = vp;
#endif
  return p - c;
}

// The reference: Megatron's O(N * S) loop. dataset_sample_index may be null.
void megatron_blend_naive(const std::vector<double>& weights, uint64_t size, uint16_t* dataset_index,
                          int64_t* dataset_sample_index);

class MegatronBlender {
 public:
  static constexpr uint32_t kWindow = 1024;     // samples between level resets
  static constexpr uint32_t kFewClasses = 8;    // up to this many classes every sample evaluates them all
  static constexpr double kMinGap = 1.0 / 1024;  // the level sits at least this far below the winners
  static constexpr double kGapFraction = 0.1;    // ... and this fraction of their spread

  // weights: finite (Megatron passes the normalised weights); at most 65,535 datasets.
  // size: the number of samples that will be drawn (bounds the rounding margin).
  MegatronBlender(const std::vector<double>& weights, uint64_t size);

  // The dataset of the next sample; its count goes up by one.
  uint32_t next() {
    if (turn_.size() == 1 && step_ < size_) {  // equal weights: the datasets take turns in index order
      const uint32_t d = static_cast<uint32_t>(rep_[0]);
      if (++turn_[0] == members_.size()) {
        turn_[0] = 0;
        base_[0] += 1.0;
      }
      rep_[0] = static_cast<int32_t>(members_[turn_[0]]);
      ++step_;
      return d;
    }
    return next_general();
  }
  uint64_t position() const { return step_; }
  uint64_t count(uint32_t dataset) const;
  // Lines evaluated exactly so far (Megatron's loop evaluates size * datasets).
  uint64_t evaluations() const { return evaluations_; }
  uint64_t misses() const { return misses_; }  // samples that needed every class evaluated
  uint32_t classes() const { return static_cast<uint32_t>(turn_.size()); }

 private:
  uint32_t next_general();
  bool advance(uint32_t k);  // class k's next member takes its turn; true: a round ended
  double error(uint32_t k, double x) const { return megatron_blend_error(weight_[k], x, base_[k]); }
  // Puts class k into the active set or the bucket of its due step, for samples at x and later.
  void schedule(uint32_t k, double x);
  // Recomputes every class's place for samples at x and later against level_.
  void rebuild(double x);
  void activate(uint32_t k);
  void deactivate(size_t j);
  uint32_t full_scan(double x, double& best_error);  // the class of the exact winner

  // Classes (datasets of one weight), by weight descending; class k's members (ascending indices)
  // are members_[class_start_[k] .. class_start_[k + 1]); members_[start + turn_[k]] is next, and
  // the members before it have one sample more than the class's base (base_[k]).
  std::vector<uint32_t> class_start_, members_, turn_;
  std::vector<uint32_t> class_of_;   // dataset -> class
  std::vector<uint32_t> position_;   // dataset -> index in its class's members
  std::vector<double> weight_, inv_weight_, base_;
  std::vector<int32_t> rep_;         // the class's next member (its dataset index)
  // Level and waiting classes: ring_[due & mask] heads a list through link_; far_ holds classes due
  // ring_.size() or more steps ahead (moved into the ring every half turn). A class of weight <= 0
  // below the level is in none of them (it cannot rise); rebuild() looks at it again.
  double level_ = 0;
  // The active classes, packed: class, weight, base, representative (as a double), then padding.
  size_t active_n_ = 0;
  std::vector<uint32_t> act_k_, act_pos_;  // act_pos_: class -> its place while active
  std::vector<double> act_w_, act_b_, act_r_;
  std::vector<int32_t> ring_, link_;
  std::vector<uint64_t> due_;
  std::vector<uint32_t> far_, pending_;
  uint64_t ring_mask_ = 0, popped_ = 0, far_check_ = 0;
  double window_min_ = 0, window_max_ = 0;
  uint64_t next_reset_ = 0;
  uint64_t size_ = 0, step_ = 0, evaluations_ = 0, misses_ = 0;
  double margin_ = 0;
};

// The whole blend: dataset_index[i] for i < size (and, optionally, the per-dataset counts).
std::vector<uint16_t> megatron_blend(const std::vector<double>& weights, uint64_t size,
                                     std::vector<uint64_t>* counts = nullptr);

}  // namespace agpt::dataset
