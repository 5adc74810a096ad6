// Blending many sources into one sample stream by fixed weights, with O(depth) random access and
// no stored index.
//
// The sources are leaves of a binary tree (Huffman-shaped, so heavy sources sit near the root).
// Every inner node v splits its own stream between its children with the rule
//     left count among the node's first k samples  L(k) = floor(k * a + 1/2),   a = W_left / W_v
// (sample k goes left iff L(k+1) > L(k)). This is the most even 2-way split there is: every prefix
// of the node's stream gives the left child within 1/2 of its exact share. Down the tree the errors
// add up damped by the weights, so source s's count after any prefix of i samples stays within
//     bound(s) = 1/2 + a_s * (1/2 + a_parent * (1/2 + ...))   <  depth(s) / 2
// of w_s * i. Megatron's greedy rule keeps about 1 sample; this stays within about 1 for every source
// whose weight is small and is computed per source in the plan. All arithmetic is integer (weights
// in units of 2^-48 of the total, 128-bit products), so every machine computes the same stream.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace agpt::dataset {

class BlendTree {
 public:
  // groups[g] lists the (leaf) source indices of group g; weights[s] > 0 for every source.
  // Sources are blended within each group by their weights, and groups by their summed weights.
  // A single group with every source gives a flat blend. Throws Error for empty or invalid input.
  BlendTree(const std::vector<double>& weights, const std::vector<std::vector<uint32_t>>& groups);

  struct Pick {
    uint32_t source;
    uint64_t local;  // index of this sample among the source's own samples
  };
  // Which source serves sample i of the stream, and which of its samples it is.
  Pick pick(uint64_t i) const;
  // How many of the first n samples each source serves (exact; sums to n).
  std::vector<uint64_t> counts(uint64_t n) const;
  // The proven bound on |count_s(i) - share_s * i| over all prefixes i, per source.
  std::vector<double> prefix_bounds() const;
  // Each source's exact share of the stream (its integer weight over the total).
  std::vector<double> shares() const;
  size_t num_sources() const { return leaf_node_.size(); }

  // Sequential walk from any start index: the same picks as pick(i), pick(i+1), ... but with one
  // addition per tree level and no division (tens of millions of picks per second per core).
  class Cursor {
   public:
    Cursor(const BlendTree& tree, uint64_t start);
    Pick next();

   private:
    // One inner node's stepping state, packed so a level costs one cache access.
    struct Step {
      uint64_t remainder;  // (2 * count * w_left + w) mod 2w: the rounding state
      uint64_t two_w, two_w_left;
      int32_t left, right;  // inner node ids; a leaf is ~source
    };
    std::vector<Step> steps_;
    int32_t root_;                       // root step, or ~source for a single source
    std::vector<uint64_t> leaf_count_;   // samples each source has served so far
  };
  int depth(uint32_t source) const;

 private:
  struct Node {
    uint64_t weight = 0;  // integer weight (sum of the leaves below)
    int32_t left = -1, right = -1, parent = -1;
    int32_t source = -1;  // leaf: source index
  };
  int32_t build_huffman(std::vector<int32_t> items);
  static uint64_t left_count(uint64_t k, uint64_t w_left, uint64_t w_node);

  std::vector<uint64_t> node_counts(uint64_t n) const;

  std::vector<Node> nodes_;
  std::vector<int32_t> leaf_node_;
  int32_t root_ = -1;
};

}  // namespace agpt::dataset
