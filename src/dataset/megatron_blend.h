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
//  2. Classes, sorted by weight, sit in blocks of kBlock. A block evaluated exactly at x_b with
//     maximum M_b cannot exceed  M_b + W_b*(x - x_b) + margin  later (W_b its largest weight; picks
//     only lower lines; the margin covers every rounding of the evaluations and of the bound).
//     After a pick the block's maximum becomes its runner-up (or the picked line less one), still
//     a bound. Blocks sit in groups of kGroup with a bound of the same kind over their blocks' bounds.
//     Each sample evaluates exactly the block with the highest bound, then every block whose bound
//     reaches the best exact error so far (opening only the groups whose bound does); all other
//     blocks provably lose. Ties (equal errors) go to the lowest dataset index, as in Megatron.
// With equal weights (one class) a sample costs O(1). With 2,419 distinct weights about 20 group
// bounds, one or two groups opened and one to three blocks of kBlock lines evaluated per sample:
// 1.4 blocks for token-proportional weights, 2.7 for lognormal(0, 2) weights (~10x fewer operations
// than Megatron's loop). Pathological weights that differ only in their last bits make many blocks
// tie within the margin: still exact, then about as slow as Megatron's loop.
#pragma once
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
  static constexpr uint32_t kBlock = 16;  // classes per block
  static constexpr uint32_t kGroup = 8;   // blocks per group

  // weights: finite (Megatron passes the normalised weights); at most 65,535 datasets.
  // size: the number of samples that will be drawn (bounds the rounding margin).
  MegatronBlender(const std::vector<double>& weights, uint64_t size);

  // The dataset of the next sample; its count goes up by one.
  uint32_t next();
  uint64_t position() const { return step_; }
  uint64_t count(uint32_t dataset) const;
  // Lines evaluated exactly so far (Megatron's loop evaluates size * datasets).
  uint64_t evaluations() const { return evaluations_; }
  uint32_t classes() const { return static_cast<uint32_t>(turn_.size()); }

 private:
  void evaluate(uint32_t block, double x);  // exact maximum of a block's lines at x
  bool advance(uint32_t k);                 // class k's next member takes its turn; true: a round ended

  // Classes (datasets of one weight), by weight descending; class k's members (ascending indices)
  // are members_[class_start_[k] .. class_start_[k + 1]); members_[start + turn_[k]] is next, and
  // the members before it have one sample more than the class's base (slot_base_[k]).
  std::vector<uint32_t> class_start_, members_, turn_;
  std::vector<uint32_t> class_of_;   // dataset -> class
  std::vector<uint32_t> position_;   // dataset -> index in its class's members
  // Per class slot (block b holds slots [b * kBlock, (b + 1) * kBlock), padded with lines that never win).
  std::vector<double> slot_weight_, slot_base_;
  std::vector<int32_t> slot_index_;  // the class's representative dataset
  // Per block: the exact maximum at x_b, its dataset, the block's largest weight, the bound at x.
  std::vector<double> max_, second_, at_, top_weight_, bound_;
  std::vector<int32_t> best_;
  // Per group of kGroup blocks: an upper bound of its blocks' bounds, group_max_ at group_at_, rising
  // with the group's largest weight.
  std::vector<double> group_max_, group_at_, group_weight_, group_bound_;
  std::vector<uint32_t> opened_;  // groups opened at this step
  uint64_t size_ = 0, step_ = 0, evaluations_ = 0;
  double margin_ = 0;
};

// The whole blend: dataset_index[i] for i < size (and, optionally, the per-dataset counts).
std::vector<uint16_t> megatron_blend(const std::vector<double>& weights, uint64_t size,
                                     std::vector<uint64_t>* counts = nullptr);

}  // namespace agpt::dataset
