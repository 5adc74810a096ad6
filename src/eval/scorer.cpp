#include "eval/scorer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include "base/error.h"

namespace agpt::eval {
namespace {
// Matrix products with few output elements take other code paths in OpenBLAS, which round
// differently: measured with OpenBLAS 0.3.21, sgemm's rows differ in the last bits whenever
// M x N <= about 1,200 (M rows, N outputs; K does not matter), and the CPU backend has a one-row
// path of its own. Every forward gets at least this many positions (B*T), 3.4 times over that
// bound for the model's narrowest product (the key/value projections), at least 64, so a request's
// numbers do not depend on which requests share its batch.
int64_t min_positions(const model::LlamaConfig& c) {
  const int64_t narrowest = std::max<int64_t>(1, std::min({c.kv_size(), c.q_size(), c.hidden_size, c.intermediate_size}));
  return std::max<int64_t>(64, (4096 + narrowest - 1) / narrowest);
}
}  // namespace

Scorer::Scorer(model::Llama& model, ScorerOptions options) : model_(model), options_(options) {
  if (options_.batch_size < 1) fail("the batch size must be >= 1, got ", options_.batch_size);
  const int64_t model_max = model.config().max_position_embeddings;
  if (options_.max_length < 0) fail("the max length must be >= 0, got ", options_.max_length);
  max_length_ = options_.max_length == 0 ? model_max : std::min(options_.max_length, model_max);
}

std::vector<ScoreResult> Scorer::score(const std::vector<TokenRequest>& requests, ScoreTiming* timing,
                                       const std::function<void(size_t)>& on_batch) {
  using Clock = std::chrono::steady_clock;
  const int64_t V = model_.config().vocab_size;
  const size_t n = requests.size();
  std::vector<ScoreResult> out(n);
  if (timing) timing->latencies.assign(n, 0.0);

  // Each request's model input and where its continuation is scored.
  struct Row {
    std::vector<int32_t> input;  // (context + continuation)[-(L+1):][:-1]
    std::vector<int32_t> targets;  // the continuation tokens scored (the last ones when cut)
  };
  std::vector<Row> rows(n);
  for (size_t i = 0; i < n; ++i) {
    const TokenRequest& r = requests[i];
    if (r.context.empty()) fail("a log-likelihood request has no context token (use the prefix token)");
    for (const auto* part : {&r.context, &r.continuation})
      for (int32_t id : *part)
        if (id < 0 || id >= V)
          fail("token ", id, " is outside the model's vocabulary of ", V, " (does the tokenizer belong to this model?)");
    std::vector<int32_t> whole(r.context);
    whole.insert(whole.end(), r.continuation.begin(), r.continuation.end());
    size_t keep = std::min<size_t>(whole.size(), static_cast<size_t>(max_length_) + 1);
    rows[i].input.assign(whole.end() - static_cast<std::ptrdiff_t>(keep), whole.end() - 1);
    size_t scored = std::min(r.continuation.size(), rows[i].input.size());
    rows[i].targets.assign(whole.end() - static_cast<std::ptrdiff_t>(scored), whole.end());
  }
  // Requests with the same input (e.g. one-token choices after the same context) share one row:
  // a position's logits depend only on the tokens up to it, so each reads its own targets there.
  std::map<std::vector<int32_t>, size_t> unique_of;
  std::vector<std::vector<size_t>> members;  // unique row -> request indices
  for (size_t i = 0; i < n; ++i) {
    auto [it, fresh] = unique_of.try_emplace(rows[i].input, members.size());
    if (fresh) members.emplace_back();
    members[it->second].push_back(i);
  }
  const size_t u = members.size();
  auto input_of = [&](size_t k) -> const std::vector<int32_t>& { return rows[members[k][0]].input; };
  std::vector<size_t> order(u);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return input_of(a).size() > input_of(b).size(); });

  ops::Backend& be = model_.backend();
  const size_t B = static_cast<size_t>(options_.batch_size);
  std::vector<int32_t> ids;
  const int64_t min_rows = min_positions(model_.config());
  size_t done = 0;
  for (size_t start = 0; start < u; start += B) {
    const size_t count = std::min(B, u - start);
    // The longest row (the first), rounded up to a multiple of 16 positions: fewer distinct shapes,
    // so the model reallocates its activations less often (each new shape does).
    const int64_t longest = static_cast<int64_t>(input_of(order[start]).size());
    const int64_t T = std::min((longest + 15) / 16 * 16, std::max(longest, max_length_));
    // Rows of padding (token 0) so that the forward has at least min_positions() rows of B*T.
    const int64_t rows_run = std::max<int64_t>(static_cast<int64_t>(count), (min_rows + T - 1) / T);
    ids.assign(static_cast<size_t>(rows_run * T), 0);
    int64_t real = 0;
    for (size_t b = 0; b < count; ++b) {
      const std::vector<int32_t>& input = input_of(order[start + b]);
      std::copy(input.begin(), input.end(), ids.begin() + static_cast<std::ptrdiff_t>(b * T));
      real += static_cast<int64_t>(input.size());
    }
    Clock::time_point t0 = Clock::now();
    model_.forward(ids, rows_run, T);
    for (size_t b = 0; b < count; ++b) {
      const std::vector<size_t>& reqs = members[order[start + b]];
      const int64_t len = static_cast<int64_t>(input_of(order[start + b]).size());
      int64_t kmax = 0;
      for (size_t idx : reqs) kmax = std::max<int64_t>(kmax, static_cast<int64_t>(rows[idx].targets.size()));
      if (kmax == 0) continue;
      // The logits of positions len-kmax .. len-1 of row b; a request with k targets reads the last k.
      std::vector<float> logits = be.to_host_f32(model_.logits().narrow(static_cast<int64_t>(b) * T + len - kmax, kmax));
      for (size_t idx : reqs) {
        const Row& row = rows[idx];
        const int64_t k = static_cast<int64_t>(row.targets.size());
        ScoreResult& res = out[idx];
        res.tokens = k;
        for (int64_t j = 0; j < k; ++j) {
          const float* l = logits.data() + (kmax - k + j) * V;
          const int32_t target = row.targets[static_cast<size_t>(j)];
          int64_t best = 0;
          for (int64_t v = 1; v < V; ++v)
            if (l[v] > l[best]) best = v;
          double sum = 0;
          for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(l[v]) - l[best]);
          const double lp = static_cast<double>(l[target]) - l[best] - std::log(sum);
          if (!std::isfinite(lp)) fail("the model gave a non-finite log-probability (are its weights finite?)");
          res.logprob += lp;
          if (best != target) res.is_greedy = false;
        }
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    for (size_t b = 0; b < count; ++b) done += members[order[start + b]].size();
    if (timing) {
      timing->input_tokens += real;
      timing->padded_tokens += rows_run * T - real;
      timing->seconds += secs;
      for (size_t b = 0; b < count; ++b)
        for (size_t idx : members[order[start + b]]) timing->latencies[idx] = secs;
    }
    if (on_batch) on_batch(done);
  }
  return out;
}

}  // namespace agpt::eval
