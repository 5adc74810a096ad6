#include "infer/sampler.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace agpt::infer {

void validate(const SamplerOptions& o) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    fail("temperature must be a finite number >= 0 (0 = greedy), got ", o.temperature);
  if (o.top_k < 0) fail("top-k must be >= 0 (0 = no limit), got ", o.top_k);
  if (!(o.top_p > 0 && o.top_p <= 1)) fail("top-p must be in (0, 1] (1 = no nucleus cut), got ", o.top_p);
}

namespace {
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) fail("argmax: no logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) { validate(options); }

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) fail("sampler: no logits");
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isnan(logits[i]) || logits[i] == INFINITY)
      fail("sampler: the logit of token ", i, " is ", logits[i], " (did the model's weights diverge?)");
  candidates_.clear();
  if (options_.temperature == 0) {
    candidates_.push_back({argmax(logits), 1.0});
    return candidates_.front().id;
  }
  order_.clear();
  for (size_t i = 0; i < logits.size(); ++i)
    if (logits[i] != -INFINITY) order_.push_back(static_cast<int32_t>(i));
  if (order_.empty()) fail("sampler: every logit is -inf");
  // A strict total order (ties broken by id), so the kept set and its order are unique.
  auto more_likely = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  size_t k = options_.top_k > 0 ? std::min(order_.size(), static_cast<size_t>(options_.top_k)) : order_.size();
  std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(k), order_.end(), more_likely);
  order_.resize(k);

  // Unnormalized softmax at the temperature, in double, largest first.
  const double top = logits[order_.front()];
  double total = 0;
  for (int32_t id : order_) {
    double w = std::exp((static_cast<double>(logits[id]) - top) / options_.temperature);
    candidates_.push_back({id, w});
    total += w;
  }
  // Nucleus: the shortest prefix whose mass reaches top_p (at least one token).
  double kept = 0;
  size_t n = 0;
  while (n < candidates_.size()) {
    kept += candidates_[n++].probability;
    if (kept >= options_.top_p * total) break;
  }
  candidates_.resize(n);
  for (Candidate& c : candidates_) c.probability /= kept;

  double u = rng_.uniform(), acc = 0;
  for (const Candidate& c : candidates_) {
    acc += c.probability;
    if (u < acc) return c.id;
  }
  return candidates_.back().id;  // u within rounding of 1
}

}  // namespace agpt::infer
