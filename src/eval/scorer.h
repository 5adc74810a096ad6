// Log-likelihoods of continuations under a Llama, many requests at a time through the model's
// batched forward.
//
// A request's input is (context + continuation) cut to its last max_length + 1 tokens, minus the
// last token; the continuation's tokens are scored at the input's last positions (as
// lm-evaluation-harness does). Requests are sorted by input length (longest first, ties by
// position in the list) and cut into batches of batch_size rows, each row padded on the right to
// the batch's longest input. Padding sits after a row's real tokens, so causal attention never lets
// it change them; the log-softmax is computed in double on the host. Requests with the same input
// (one-token continuations of one context, as lm-eval's letter choices) share one row. Results come back in the
// order of the requests, and tests check they do not depend on the batch size or thread count:
// besides the padding to the longest row, every forward gets rows of padding up to a minimum number of
// positions in all (B*T; 64 for most models), because BLAS libraries pick other kernels, with other
// rounding, for small products (scorer.cpp has the measurements).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "eval/requests.h"
#include "model/llama.h"

namespace agpt::eval {

struct ScoreResult {
  double logprob = 0;     // Σ log p(continuation token | everything before it)
  bool is_greedy = true;  // every continuation token is the argmax of its position
  int64_t tokens = 0;     // continuation tokens scored
};

struct ScorerOptions {
  int64_t batch_size = 8;  // rows per forward (>= 1)
  int64_t max_length = 0;  // positions the model sees; 0: the model's max_position_embeddings
};

// Time spent in forwards: for the speed report.
struct ScoreTiming {
  int64_t input_tokens = 0;  // real (not padding) tokens run through the model (shared rows once)
  int64_t padded_tokens = 0;
  double seconds = 0;
  std::vector<double> latencies;  // per request, in request order: its batch's seconds
};

class Scorer {
 public:
  Scorer(model::Llama& model, ScorerOptions options);
  int64_t max_length() const { return max_length_; }

  // on_batch(done) after each batch with the number of requests finished so far.
  std::vector<ScoreResult> score(const std::vector<TokenRequest>& requests, ScoreTiming* timing = nullptr,
                                 const std::function<void(size_t)>& on_batch = {});

 private:
  model::Llama& model_;
  ScorerOptions options_;
  int64_t max_length_;
};

}  // namespace agpt::eval
