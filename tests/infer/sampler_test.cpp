// The sampler: greedy is argmax, a seed fixes the draws, top-k and top-p restrict the support, and
// sampled frequencies follow the softmax at the temperature.
#include "infer/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "base/error.h"

namespace agpt::infer {
namespace {

std::vector<float> random_logits(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform() * 8 - 4);
  return v;
}

// Logits whose softmax (temperature 1) is exactly probs.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> v;
  for (double p : probs) v.push_back(static_cast<float>(std::log(p)));
  return v;
}

SamplerOptions options(double temperature, int64_t top_k, double top_p, uint64_t seed = 1) {
  SamplerOptions o;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  o.seed = seed;
  return o;
}

TEST(Rng, Xoshiro256StarStarSeededBySplitmix64) {
  // Reference values from an independent implementation of the published algorithms (seed 42).
  Rng rng(42);
  EXPECT_EQ(rng.next(), 0x15780b2e0c2ec716ull);
  EXPECT_EQ(rng.next(), 0x6104d9866d113a7eull);
  EXPECT_EQ(rng.next(), 0xae17533239e499a1ull);
}

TEST(Sampler, GreedyIsArgmaxWithTheLowestIdOnTies) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto logits = random_logits(97, seed);
    int32_t want = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    Sampler greedy(options(0, 40, 0.95, seed));
    EXPECT_EQ(greedy.sample(logits), want);
  }
  Sampler greedy(options(0, 0, 1));
  EXPECT_EQ(greedy.sample(std::vector<float>{1, 3, 0, 3, 2}), 1);
}

TEST(Sampler, SameSeedSameDrawsOtherSeedOtherDraws) {
  auto draws = [](uint64_t seed) {
    Sampler s(options(1.0, 0, 1.0, seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.sample(random_logits(50, 1000 + i)));
    return out;
  };
  EXPECT_EQ(draws(7), draws(7));
  EXPECT_NE(draws(7), draws(8));
}

TEST(Sampler, TopKKeepsTheKMostLikely) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.5f, 1.9f, 0.0f};
  Sampler s(options(5.0, 3, 1.0));  // a high temperature: every kept token is drawn often
  std::set<int32_t> seen;
  for (int i = 0; i < 300; ++i) seen.insert(s.sample(logits));
  EXPECT_EQ(seen, (std::set<int32_t>{1, 4, 3}));
  ASSERT_EQ(s.last_candidates().size(), 3u);
  EXPECT_EQ(s.last_candidates()[0].id, 1);
  EXPECT_EQ(s.last_candidates()[1].id, 4);
  EXPECT_EQ(s.last_candidates()[2].id, 3);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  auto logits = logits_of({0.05, 0.5, 0.15, 0.3});
  auto support = [&](double top_p) {
    Sampler s(options(1.0, 0, top_p));
    std::set<int32_t> seen;
    for (int i = 0; i < 400; ++i) seen.insert(s.sample(logits));
    return seen;
  };
  EXPECT_EQ(support(0.4), (std::set<int32_t>{1}));           // 0.5 reaches 0.4
  EXPECT_EQ(support(0.75), (std::set<int32_t>{1, 3}));       // 0.5 + 0.3
  EXPECT_EQ(support(0.9), (std::set<int32_t>{1, 3, 2}));     // + 0.15
  EXPECT_EQ(support(1.0), (std::set<int32_t>{0, 1, 2, 3}));
  // The kept probabilities are renormalized.
  Sampler s(options(1.0, 0, 0.75));
  s.sample(logits);
  ASSERT_EQ(s.last_candidates().size(), 2u);
  EXPECT_NEAR(s.last_candidates()[0].probability, 0.5 / 0.8, 1e-6);
  EXPECT_NEAR(s.last_candidates()[1].probability, 0.3 / 0.8, 1e-6);
}

TEST(Sampler, FrequenciesFollowTheTemperedSoftmax) {
  std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  auto logits = logits_of(p);
  const double T = 2.0;
  std::vector<double> want;
  double z = 0;
  for (double q : p) z += std::pow(q, 1 / T);
  for (double q : p) want.push_back(std::pow(q, 1 / T) / z);
  Sampler s(options(T, 0, 1.0, 3));
  std::vector<int> counts(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(s.sample(logits))];
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(counts[i] / double(n), want[i], 0.01) << i;
}

TEST(Sampler, MaskedAndBadLogits) {
  Sampler s(options(1.0, 0, 1.0));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(std::vector<float>{-INFINITY, 0.0f, -INFINITY}), 1);
  EXPECT_THROW(s.sample(std::vector<float>{0.0f, NAN}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{-INFINITY, -INFINITY}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{}), Error);
}

TEST(Sampler, OptionsAreValidated) {
  auto message = [](const SamplerOptions& o) {
    try {
      validate(o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(options(-0.5, 40, 0.9)).find("temperature"), std::string::npos);
  EXPECT_NE(message(options(NAN, 40, 0.9)).find("temperature"), std::string::npos);
  EXPECT_NE(message(options(1, -1, 0.9)).find("top-k"), std::string::npos);
  EXPECT_NE(message(options(1, 40, 0)).find("top-p must be in (0, 1]"), std::string::npos);
  EXPECT_NE(message(options(1, 40, 1.5)).find("top-p"), std::string::npos);
  EXPECT_EQ(message(options(0, 0, 1)), "");
  EXPECT_THROW(Sampler(options(1, 40, 2)), Error);
}

}  // namespace
}  // namespace agpt::infer
