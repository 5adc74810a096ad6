// Choosing the next token from logits: greedy (temperature 0) or sampling with temperature, top-k
// and top-p (nucleus). Deterministic for a seed on every platform: the random numbers come from
// the sampler's own generator (xoshiro256**, seeded by splitmix64), not from <random>'s
// distributions, whose results differ between standard libraries.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace agpt::infer {

struct SamplerOptions {
  double temperature = 0.8;  // 0: greedy (argmax, the lowest id on ties); must be >= 0
  int64_t top_k = 40;        // keep the k most likely tokens; 0: no limit
  double top_p = 0.95;       // keep the fewest most likely tokens whose probability sum reaches p; in (0, 1]
  uint64_t seed = 1;
};

// Fails (agpt::Error) with the option's name when a value is outside its range.
void validate(const SamplerOptions& options);

// xoshiro256** (Blackman and Vigna), state filled from the seed by splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1), 53 random bits

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options);

  // The next token id, in [0, logits.size()). Candidates are ordered by logit (ties: lower id
  // first), cut to top_k, then to the top_p nucleus of their softmax at the temperature; one is
  // drawn in proportion to its probability. Non-finite logits are errors; -inf means "never".
  int32_t sample(std::span<const float> logits);

  // The candidates and their probabilities the last sample() drew from (for tests and tools).
  struct Candidate {
    int32_t id;
    double probability;
  };
  const std::vector<Candidate>& last_candidates() const { return candidates_; }

 private:
  SamplerOptions options_;
  Rng rng_;
  std::vector<Candidate> candidates_;
  std::vector<int32_t> order_;
};

// The first index of the largest value (greedy decoding).
int32_t argmax(std::span<const float> logits);

}  // namespace agpt::infer
