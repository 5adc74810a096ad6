// Requests in tokens: lm-evaluation-harness's context/continuation split, rolling windows that
// predict every token exactly once, and few-shot sampling.
#include "eval/requests.h"

#include <gtest/gtest.h>

#include <set>

#include "base/error.h"
#include "eval/prompt.h"
#include "eval_test_util.h"

namespace agpt::eval {
namespace {

TEST(Requests, PairSplitLikeLmEval) {
  auto tok = infer::testing::make_tokenizer();
  TokenRequest r = encode_pair(*tok, "the model learns", " from data");
  std::vector<int32_t> whole = r.context;
  whole.insert(whole.end(), r.continuation.begin(), r.continuation.end());
  EXPECT_EQ(whole, encode(*tok, "the model learns from data"));
  EXPECT_EQ(r.context, encode(*tok, "the model learns"));
  // Trailing whitespace of the context moves into the continuation.
  TokenRequest s = encode_pair(*tok, "the model learns ", "from data");
  EXPECT_EQ(s.context, r.context);
  EXPECT_EQ(s.continuation, r.continuation);
  // An empty context becomes the prefix token (EOS here: the tokenizer has no BOS).
  TokenRequest e = encode_pair(*tok, "", "data");
  EXPECT_EQ(e.context, std::vector<int32_t>{prefix_token(*tok)});
  EXPECT_EQ(prefix_token(*tok), static_cast<int32_t>(*tok->eos_id()));
}

TEST(Requests, RollingWindowsPredictEachTokenOnce) {
  std::vector<int32_t> tokens(23);
  for (int i = 0; i < 23; ++i) tokens[static_cast<size_t>(i)] = 100 + i;
  for (int64_t L : {1, 4, 8, 23, 50}) {
    std::vector<TokenRequest> w = rolling_windows(tokens, 7, L);
    std::vector<int32_t> predicted;
    for (size_t i = 0; i < w.size(); ++i) {
      predicted.insert(predicted.end(), w[i].continuation.begin(), w[i].continuation.end());
      // The model input (context + continuation minus its last token) fits the model.
      EXPECT_LE(w[i].context.size() + w[i].continuation.size() - 1, static_cast<size_t>(L)) << "L=" << L;
      EXPECT_FALSE(w[i].context.empty());
      if (i == 0) {
        EXPECT_EQ(w[i].context, std::vector<int32_t>{7});
      } else {
        // Later windows: the context is the text right before the continuation, as long as it fits.
        size_t start = predicted.size() - w[i].continuation.size();
        EXPECT_EQ(w[i].context.back(), tokens[start - 1]);
        EXPECT_EQ(w[i].context.size() + w[i].continuation.size() - 1, static_cast<size_t>(L));
      }
    }
    EXPECT_EQ(predicted, tokens) << "L=" << L;
  }
  EXPECT_TRUE(rolling_windows({}, 7, 4).empty());
  EXPECT_THROW(rolling_windows(tokens, 7, 0), Error);
}

TEST(Prompts, FewShotSamplingIsSeededAndExcludesTheDocument) {
  auto a = sample_shots(10, 4, 1, 3, std::nullopt);
  EXPECT_EQ(a, sample_shots(10, 4, 1, 3, std::nullopt));
  EXPECT_NE(a, sample_shots(10, 4, 2, 3, std::nullopt));
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), 4u);
  for (int doc = 0; doc < 5; ++doc) {
    auto b = sample_shots(5, 4, 9, static_cast<size_t>(doc), static_cast<size_t>(doc));
    EXPECT_EQ(std::count(b.begin(), b.end(), static_cast<size_t>(doc)), 0);
    EXPECT_EQ(std::set<size_t>(b.begin(), b.end()).size(), 4u);
  }
  EXPECT_THROW(sample_shots(5, 5, 1, 0, size_t{0}), Error);
  // Nested: the 2-shot examples are the first two of the 5-shot ones.
  auto five = sample_shots(10, 5, 7, 4, size_t{4});
  EXPECT_EQ(sample_shots(10, 2, 7, 4, size_t{4}), std::vector<size_t>(five.begin(), five.begin() + 2));
}

TEST(Prompts, ContextLayoutMatchesLmEval) {
  testing::TempDir d;
  d.write("test.jsonl", testing::mc_jsonl(2));
  d.write("dev.jsonl", testing::mc_jsonl(2, 5));
  Task t = load_task(d.write("t.yaml", testing::mc_yaml("x", "description: \"Answer {{answer}}.\\n\\n\"\n")));
  std::vector<Doc> dev = read_docs(t.data_files.at("dev"));
  std::vector<Doc> test = read_docs(t.data_files.at("test"));
  Instance in = build_instance(t, t.prompt, test[1], {&dev[1], &dev[0]});
  auto shot = [&](const Doc& doc) {
    const Json& v = doc.value;
    return "Q: " + v["question"].get<std::string>() + "\nA: " + v["choices"][v["answer"].get<int>()].get<std::string>();
  };
  // The description is a template too (lm-eval renders it per document).
  EXPECT_EQ(in.context, "Answer 1.\n\n" + shot(dev[1]) + "\n\n" + shot(dev[0]) + "\n\nQ: " +
                            test[1].value["question"].get<std::string>() + "\nA:");
  EXPECT_EQ(in.gold, std::vector<int>{1});
  EXPECT_EQ(in.choices.size(), 3u);
}

}  // namespace
}  // namespace agpt::eval
