#include "dataset/blend.h"

#include <algorithm>
#include <cmath>
#include <queue>

#include "base/error.h"

namespace agpt::dataset {
namespace {
constexpr double kWeightUnits = 281474976710656.0;  // 2^48
}

BlendTree::BlendTree(const std::vector<double>& weights, const std::vector<std::vector<uint32_t>>& groups) {
  if (weights.empty()) fail("a mixture needs at least one source");
  double total = 0;
  for (size_t s = 0; s < weights.size(); ++s) {
    if (!(weights[s] > 0) || !std::isfinite(weights[s]))
      fail("source ", s, " has weight ", weights[s], "; weights must be positive finite numbers");
    total += weights[s];
  }
  leaf_node_.assign(weights.size(), -1);
  for (size_t s = 0; s < weights.size(); ++s) {
    Node leaf;
    leaf.weight = static_cast<uint64_t>(std::llround(weights[s] / total * kWeightUnits));
    if (leaf.weight == 0) fail("source ", s, " has a share below 2^-48 of the mixture; raise its weight or drop it");
    leaf.source = static_cast<int32_t>(s);
    leaf_node_[s] = static_cast<int32_t>(nodes_.size());
    nodes_.push_back(leaf);
  }
  std::vector<bool> seen(weights.size(), false);
  std::vector<int32_t> group_roots;
  for (const auto& g : groups) {
    if (g.empty()) continue;
    std::vector<int32_t> items;
    for (uint32_t s : g) {
      if (s >= weights.size() || seen[s]) fail("internal: blend group lists source ", s, " twice or out of range");
      seen[s] = true;
      items.push_back(leaf_node_[s]);
    }
    group_roots.push_back(build_huffman(items));
  }
  for (size_t s = 0; s < seen.size(); ++s)
    if (!seen[s]) fail("internal: source ", s, " is in no blend group");
  root_ = build_huffman(group_roots);
}

// Combines the two lightest items until one is left; ties go to the earlier-created node so the
// shape depends only on the inputs.
int32_t BlendTree::build_huffman(std::vector<int32_t> items) {
  using Item = std::pair<uint64_t, int32_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  for (int32_t n : items) heap.emplace(nodes_[n].weight, n);
  while (heap.size() > 1) {
    auto [wa, a] = heap.top();
    heap.pop();
    auto [wb, b] = heap.top();
    heap.pop();
    Node inner;
    inner.weight = wa + wb;
    inner.left = std::min(a, b);  // stable child order
    inner.right = std::max(a, b);
    int32_t id = static_cast<int32_t>(nodes_.size());
    nodes_.push_back(inner);
    nodes_[a].parent = id;
    nodes_[b].parent = id;
    heap.emplace(inner.weight, id);
  }
  return heap.top().second;
}

uint64_t BlendTree::left_count(uint64_t k, uint64_t w_left, uint64_t w_node) {
  using u128 = unsigned __int128;
  return static_cast<uint64_t>((u128(2) * k * w_left + w_node) / (u128(2) * w_node));
}

BlendTree::Pick BlendTree::pick(uint64_t i) const {
  int32_t v = root_;
  uint64_t k = i;
  while (nodes_[v].source < 0) {
    const Node& n = nodes_[v];
    uint64_t wl = nodes_[n.left].weight;
    uint64_t before = left_count(k, wl, n.weight);
    uint64_t after = left_count(k + 1, wl, n.weight);
    if (after > before) {
      v = n.left;
      k = before;
    } else {
      v = n.right;
      k = k - before;
    }
  }
  return {static_cast<uint32_t>(nodes_[v].source), k};
}

std::vector<uint64_t> BlendTree::node_counts(uint64_t n) const {
  std::vector<uint64_t> node_count(nodes_.size(), 0);
  // Nodes are created children-first, so walking from the root down means walking ids downwards.
  node_count[root_] = n;
  for (int32_t v = static_cast<int32_t>(nodes_.size()) - 1; v >= 0; --v) {
    const Node& nd = nodes_[v];
    if (nd.source < 0) {
      uint64_t l = left_count(node_count[v], nodes_[nd.left].weight, nd.weight);
      node_count[nd.left] = l;
      node_count[nd.right] = node_count[v] - l;
    }
  }
  return node_count;
}

std::vector<uint64_t> BlendTree::counts(uint64_t n) const {
  auto node_count = node_counts(n);
  std::vector<uint64_t> out(leaf_node_.size(), 0);
  for (size_t s = 0; s < leaf_node_.size(); ++s) out[s] = node_count[leaf_node_[s]];
  return out;
}

BlendTree::Cursor::Cursor(const BlendTree& tree, uint64_t start) {
  using u128 = unsigned __int128;
  auto count = tree.node_counts(start);
  // Renumber the inner nodes densely; leaves become ~source.
  std::vector<int32_t> step_of(tree.nodes_.size(), -1);
  for (size_t v = 0; v < tree.nodes_.size(); ++v)
    if (tree.nodes_[v].source < 0) step_of[v] = static_cast<int32_t>(steps_.size()), steps_.push_back({});
  auto ref = [&](int32_t v) { return tree.nodes_[v].source >= 0 ? ~tree.nodes_[v].source : step_of[v]; };
  for (size_t v = 0; v < tree.nodes_.size(); ++v) {
    const Node& nd = tree.nodes_[v];
    if (nd.source >= 0) continue;
    Step& s = steps_[step_of[v]];
    s.two_w = 2 * nd.weight;
    s.two_w_left = 2 * tree.nodes_[nd.left].weight;
    s.remainder = static_cast<uint64_t>((u128(2) * count[v] * tree.nodes_[nd.left].weight + nd.weight) % (u128(2) * nd.weight));
    s.left = ref(nd.left);
    s.right = ref(nd.right);
  }
  root_ = ref(tree.root_);
  leaf_count_.resize(tree.leaf_node_.size());
  for (size_t src = 0; src < leaf_count_.size(); ++src) leaf_count_[src] = count[tree.leaf_node_[src]];
}

BlendTree::Pick BlendTree::Cursor::next() {
  int32_t v = root_;
  while (v >= 0) {
    Step& s = steps_[v];
    const uint64_t r = s.remainder + s.two_w_left;  // numerator step of L(k+1)
    // L(k+1) = L(k) + 1 (this sample goes left) iff the numerator wraps; written without a branch
    // since the direction is unpredictable.
    const bool left = r >= s.two_w;
    s.remainder = r - (left ? s.two_w : 0);
    v = left ? s.left : s.right;
  }
  const uint32_t source = static_cast<uint32_t>(~v);
  return {source, leaf_count_[source]++};
}

std::vector<double> BlendTree::prefix_bounds() const {
  std::vector<double> out(leaf_node_.size());
  for (size_t s = 0; s < leaf_node_.size(); ++s) {
    // Walk up collecting the fractions, then fold from the root down: dev = 1/2 + a * dev_parent.
    std::vector<double> fractions;
    for (int32_t v = leaf_node_[s]; nodes_[v].parent >= 0; v = nodes_[v].parent)
      fractions.push_back(static_cast<double>(nodes_[v].weight) / static_cast<double>(nodes_[nodes_[v].parent].weight));
    double dev = 0;
    for (auto it = fractions.rbegin(); it != fractions.rend(); ++it) dev = 0.5 + *it * dev;
    out[s] = dev;
  }
  return out;
}

std::vector<double> BlendTree::shares() const {
  std::vector<double> out(leaf_node_.size());
  for (size_t s = 0; s < leaf_node_.size(); ++s)
    out[s] = static_cast<double>(nodes_[leaf_node_[s]].weight) / static_cast<double>(nodes_[root_].weight);
  return out;
}

int BlendTree::depth(uint32_t source) const {
  int d = 0;
  for (int32_t v = leaf_node_.at(source); nodes_[v].parent >= 0; v = nodes_[v].parent) ++d;
  return d;
}

}  // namespace agpt::dataset
