// Log-likelihoods: equal to a direct log-softmax of the model's own full forward and of PyTorch's
// logits (llama-ref models), independent of batch size and thread count, and cut like lm-eval
// when the input is longer than the model's context.
#include "eval/scorer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "model/safetensors.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::eval {
namespace {

std::string ref_dir(const std::string& name) { return std::string(AGPT_TESTDATA) + "/llama-ref/" + name; }

// Σ log softmax(logits[pos])[target] over positions predicting `targets`, in double.
double direct_logprob(const std::vector<float>& logits, int64_t V, int64_t first_pos, const std::vector<int32_t>& targets) {
  double sum = 0;
  for (size_t j = 0; j < targets.size(); ++j) {
    const float* l = logits.data() + (first_pos + static_cast<int64_t>(j)) * V;
    double mx = l[0], s = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(l[v]));
    for (int64_t v = 0; v < V; ++v) s += std::exp(l[v] - mx);
    sum += l[targets[j]] - mx - std::log(s);
  }
  return sum;
}

// Requests cut from the reference batch's rows: varied context and continuation lengths.
std::vector<TokenRequest> requests_from(const std::vector<int64_t>& ids, int64_t B, int64_t T) {
  std::vector<TokenRequest> out;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t ctx = 1; ctx < T; ctx += 3)
      for (int64_t cont : {1, 2, 5}) {
        if (ctx + cont > T) continue;
        TokenRequest r;
        for (int64_t t = 0; t < ctx + cont; ++t)
          (t < ctx ? r.context : r.continuation).push_back(static_cast<int32_t>(ids[static_cast<size_t>(b * T + t)]));
        out.push_back(std::move(r));
      }
  return out;
}

class ScorerRef : public ::testing::TestWithParam<std::string> {};

TEST_P(ScorerRef, EqualsTheFullForwardAndPyTorchLogits) {
  const std::string dir = ref_dir(GetParam());
  if (!std::filesystem::exists(dir + "/reference.safetensors")) GTEST_SKIP() << "no " << dir;
  auto be = ops::make_cpu_backend(1);
  model::Llama model = model::Llama::load(dir + "/model", *be);
  const int64_t V = model.config().vocab_size;
  model::SafetensorsFile ref(dir + "/reference.safetensors");
  std::vector<int64_t> ids = ref.read_i64("input_ids");
  const auto& shape = ref.at("input_ids").shape;
  const int64_t B = shape[0], T = shape[1];
  std::vector<float> torch_logits = ref.read_f32("logits");
  std::vector<TokenRequest> reqs = requests_from(ids, B, T);
  ASSERT_GT(reqs.size(), 10u);
  Scorer scorer(model, {4, 0});
  std::vector<ScoreResult> got = scorer.score(reqs);
  double max_vs_torch = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const TokenRequest& r = reqs[i];
    std::vector<int32_t> input(r.context);
    input.insert(input.end(), r.continuation.begin(), r.continuation.end() - 1);
    const int64_t n = static_cast<int64_t>(input.size());
    const int64_t first = n - static_cast<int64_t>(r.continuation.size());
    model.forward(input, 1, n);
    std::vector<float> logits = be->to_host_f32(model.logits());
    // The request alone: equal up to float rounding (BLAS rounds differently for few rows).
    EXPECT_NEAR(got[i].logprob, direct_logprob(logits, V, first, r.continuation), 1e-5) << "request " << i;
    // The scorer's own shape (at least 4096 / 32 = 128 positions for these models' narrowest
    // product, the key/value projections; padding rows of token 0): the same bits.
    ASSERT_EQ(std::min(model.config().kv_size(), model.config().hidden_size), 32);
    const int64_t rows = (128 + n - 1) / n;
    std::vector<int32_t> padded(static_cast<size_t>(rows * n), 0);
    std::copy(input.begin(), input.end(), padded.begin());
    model.forward(padded, rows, n);
    logits = be->to_host_f32(model.logits());
    EXPECT_NEAR(got[i].logprob, direct_logprob(logits, V, first, r.continuation), 1e-12) << "request " << i;
    EXPECT_EQ(got[i].tokens, static_cast<int64_t>(r.continuation.size()));
    bool greedy = true;
    for (size_t j = 0; j < r.continuation.size(); ++j) {
      const float* l = logits.data() + (first + static_cast<int64_t>(j)) * V;
      greedy &= std::max_element(l, l + V) - l == r.continuation[j];
    }
    EXPECT_EQ(got[i].is_greedy, greedy);
    // PyTorch saw the whole row; its logits at these positions are the same (causal attention).
    size_t row = 0;
    for (; row < static_cast<size_t>(B); ++row)
      if (std::equal(input.begin(), input.end(), ids.begin() + static_cast<std::ptrdiff_t>(row * T),
                     [](int32_t a, int64_t b) { return a == b; }))
        break;
    ASSERT_LT(row, static_cast<size_t>(B));
    std::vector<float> torch_row(torch_logits.begin() + static_cast<std::ptrdiff_t>(row * T * V),
                                 torch_logits.begin() + static_cast<std::ptrdiff_t>((row + 1) * T * V));
    max_vs_torch = std::max(max_vs_torch, std::abs(got[i].logprob - direct_logprob(torch_row, V, first, r.continuation)));
  }
  EXPECT_LT(max_vs_torch, 1e-5);  // measured: 1.4e-7 (llama-tiny), 3.4e-7 (llama-tiny-tied)
}

TEST_P(ScorerRef, IndependentOfBatchSizeAndThreads) {
  const std::string dir = ref_dir(GetParam());
  if (!std::filesystem::exists(dir + "/reference.safetensors")) GTEST_SKIP() << "no " << dir;
  model::SafetensorsFile ref(dir + "/reference.safetensors");
  const auto& shape = ref.at("input_ids").shape;
  std::vector<TokenRequest> reqs = requests_from(ref.read_i64("input_ids"), shape[0], shape[1]);
  std::vector<std::vector<ScoreResult>> runs;
  for (int threads : {1, 2})
    for (int64_t batch : {1, 3, 8}) {
      auto be = ops::make_cpu_backend(threads);
      model::Llama model = model::Llama::load(dir + "/model", *be);
      runs.push_back(Scorer(model, {batch, 0}).score(reqs));
    }
  for (size_t r = 1; r < runs.size(); ++r)
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(runs[r][i].logprob, runs[0][i].logprob) << "run " << r << " request " << i;
      EXPECT_EQ(runs[r][i].is_greedy, runs[0][i].is_greedy);
    }
}

INSTANTIATE_TEST_SUITE_P(LlamaRef, ScorerRef, ::testing::Values("llama-tiny", "llama-tiny-tied"));

TEST(Scorer, RequestsWithTheSameInputShareARowAndGetTheirOwnNumbers) {
  const std::string dir = ref_dir("llama-tiny");
  if (!std::filesystem::exists(dir + "/model")) GTEST_SKIP() << "no " << dir;
  auto be = ops::make_cpu_backend(1);
  model::Llama model = model::Llama::load(dir + "/model", *be);
  std::vector<int32_t> ctx = {5, 9, 2, 7, 30, 11};
  // Three one-token choices share the input `ctx`; the two-token one shares nothing.
  std::vector<TokenRequest> reqs = {{ctx, {20}}, {ctx, {21}}, {ctx, {22}}, {ctx, {23, 24}}, {ctx, {20}}};
  Scorer scorer(model, {8, 0});
  std::vector<ScoreResult> together = scorer.score(reqs);
  std::set<double> distinct;
  for (size_t i = 0; i < reqs.size(); ++i) {
    ScoreResult alone = scorer.score({reqs[i]})[0];
    EXPECT_EQ(together[i].logprob, alone.logprob) << i;
    EXPECT_EQ(together[i].is_greedy, alone.is_greedy) << i;
    EXPECT_EQ(together[i].tokens, static_cast<int64_t>(reqs[i].continuation.size()));
    distinct.insert(together[i].logprob);
  }
  EXPECT_EQ(distinct.size(), 4u);  // requests 0 and 4 are the same; the others differ
  ScoreTiming timing;
  scorer.score(reqs, &timing);
  EXPECT_EQ(timing.input_tokens, 6 + 7);  // two distinct rows
}

TEST(Scorer, LongInputsKeepTheirEnd) {
  const std::string dir = ref_dir("llama-tiny");
  if (!std::filesystem::exists(dir + "/model")) GTEST_SKIP() << "no " << dir;
  auto be = ops::make_cpu_backend(1);
  model::Llama model = model::Llama::load(dir + "/model", *be);
  // max_length 6: (context + continuation) keeps its last 7 tokens, the input its first 6 of those.
  TokenRequest r{{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10}};
  TokenRequest cut{{4, 5, 6, 7, 8}, {9, 10}};
  Scorer six(model, {2, 6});
  EXPECT_EQ(six.max_length(), 6);
  EXPECT_EQ(six.score({r})[0].logprob, six.score({cut})[0].logprob);
  EXPECT_NE(Scorer(model, {2, 0}).score({r})[0].logprob, six.score({cut})[0].logprob);
  EXPECT_THROW(six.score({TokenRequest{{}, {1}}}), Error);
  EXPECT_THROW(six.score({TokenRequest{{1}, {100000}}}), Error);
  EXPECT_THROW(Scorer(model, {0, 0}), Error);
}

}  // namespace
}  // namespace agpt::eval
