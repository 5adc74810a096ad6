// The evaluator on a tiny random Llama: multiple-choice metrics equal the scorer's numbers reduced
// by hand, shot sweeps and reliability runs are reported, results do not depend on batch size,
// rolling-window perplexity equals the full forward, and generation tasks run filters and maj@k.
#include "eval/evaluator.h"

#include <gtest/gtest.h>

#include <cmath>

#include "eval/docs.h"
#include "eval/prompt.h"
#include "infer/generator.h"
#include "eval_test_util.h"

namespace agpt::eval {
namespace {

class EvaluatorTest : public ::testing::Test {
 protected:
  std::unique_ptr<ops::Backend> be = ops::make_cpu_backend(1);
  std::unique_ptr<text::Tokenizer> tok = infer::testing::make_tokenizer();
  model::Llama model{infer::testing::tiny_config(static_cast<int64_t>(tok->vocab_size()), 48), *be};
  testing::TempDir dir;
  void SetUp() override {
    model.init_weights(11);
    dir.write("test.jsonl", testing::mc_jsonl(9));
    dir.write("dev.jsonl", testing::mc_jsonl(6, 20));
  }
  EvalOptions options(std::vector<int> shots, int64_t batch = 4) {
    EvalOptions o;
    o.shots = std::move(shots);
    o.scorer.batch_size = batch;
    o.show_progress = false;
    return o;
  }
};

TEST_F(EvaluatorTest, MultipleChoiceMetricsAreTheScoresReducedByHand) {
  Task t = load_task(dir.write("t.yaml", testing::mc_yaml("mc")));
  TaskResult r = Evaluator(model, *tok, options({0})).evaluate(t);
  ASSERT_EQ(r.shots.size(), 1u);
  EXPECT_EQ(r.docs, 9u);
  EXPECT_EQ(r.primary_metric, "acc");
  EXPECT_FALSE(r.shots[0].reliability.has_value());
  // By hand: score each choice with the scorer, then argmax.
  Scorer scorer(model, {1, 0});
  std::vector<Doc> docs = read_docs(t.data_files.at("test"));
  std::vector<double> acc, acc_norm;
  for (const Doc& d : docs) {
    Instance in = build_instance(t, t.prompt, d, {});
    std::vector<double> ll, norm;
    for (const std::string& c : in.choices) {
      ll.push_back(scorer.score({encode_pair(*tok, in.context, " " + c)})[0].logprob);
      norm.push_back(ll.back() / static_cast<double>(c.size()));
    }
    acc.push_back(std::max_element(ll.begin(), ll.end()) - ll.begin() == in.gold[0]);
    acc_norm.push_back(std::max_element(norm.begin(), norm.end()) - norm.begin() == in.gold[0]);
  }
  MeanStderr a = mean_stderr(acc), n = mean_stderr(acc_norm);
  EXPECT_DOUBLE_EQ(r.metric(0, "acc")->value, a.mean);
  EXPECT_DOUBLE_EQ(*r.metric(0, "acc")->stderr_, *a.stderr_);
  EXPECT_DOUBLE_EQ(r.metric(0, "acc_norm")->value, n.mean);
  EXPECT_EQ(r.speed.requests, 27);
  EXPECT_EQ(r.speed.latencies.size(), 27u);
  EXPECT_GT(r.speed.input_tokens, 0);
}

TEST_F(EvaluatorTest, ShotsSweepReliabilityAndBatchIndependence) {
  Task t = load_task(dir.write(
      "t.yaml", testing::mc_yaml("mc", "prompts:\n  - name: plain\n    doc_to_text: \"{{question}}\"\n    target_delimiter: \": \"\n")));
  EvalOptions o = options({0, 2}, 1);
  o.fewshot_samples = 2;
  o.log_samples = true;
  TaskResult one = Evaluator(model, *tok, o).evaluate(t);
  o.scorer.batch_size = 8;
  TaskResult eight = Evaluator(model, *tok, o).evaluate(t);
  ASSERT_EQ(one.shots.size(), 2u);
  // 0 shots: 2 prompts x 1 sample; 2 shots: 2 prompts x 2 samples.
  ASSERT_TRUE(one.shots[0].reliability && one.shots[1].reliability);
  EXPECT_EQ(one.shots[0].reliability->runs.size(), 2u);
  EXPECT_EQ(one.shots[1].reliability->runs.size(), 4u);
  EXPECT_EQ(one.shots[1].reliability->runs[0].value, one.shots[1].metrics[0].value);  // the first run is reported
  const Reliability& rel = *one.shots[1].reliability;
  EXPECT_GE(rel.agreement.pairwise, rel.agreement.all);
  EXPECT_LE(rel.min, rel.mean);
  EXPECT_GE(rel.max, rel.mean);
  EXPECT_EQ(one.samples.size(), 9u * (2 + 4));
  for (size_t k = 0; k < 2; ++k) {
    for (size_t m = 0; m < one.shots[k].metrics.size(); ++m)
      EXPECT_EQ(one.shots[k].metrics[m].value, eight.shots[k].metrics[m].value);
    for (size_t i = 0; i < one.shots[k].reliability->runs.size(); ++i)
      EXPECT_EQ(one.shots[k].reliability->runs[i].value, eight.shots[k].reliability->runs[i].value);
  }
  for (size_t i = 0; i < one.samples.size(); ++i) EXPECT_EQ(one.samples[i], eight.samples[i]);
  // Few-shot prompts are longer than zero-shot ones.
  EXPECT_GT(one.samples[9 * 2]["context"].get<std::string>().size(), one.samples[0]["context"].get<std::string>().size() + 10);
}

TEST_F(EvaluatorTest, RollingPerplexityEqualsTheFullForward) {
  dir.write("docs.jsonl",
            "{\"text\": \"the model learns from data and energy of a graph cell\"}\n{\"text\": \"data and the cell\"}\n");
  Task t = load_task(dir.write("p.yaml",
                               "task: ppl\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: docs.jsonl\n"
                               "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_target: \"{{text}}\"\n"
                               "metric_list:\n  - metric: bits_per_byte\n  - metric: word_perplexity\n  - metric: token_perplexity\n"));
  // Direct: one forward over [EOS] + tokens (the documents fit the 48 positions).
  double ll = 0, bytes = 0, words = 0, tokens = 0;
  for (const Doc& d : read_docs(t.data_files.at("test"))) {
    std::string text = d.value["text"];
    std::vector<int32_t> ids = encode(*tok, text);
    ASSERT_LT(ids.size(), 48u);
    std::vector<int32_t> input = {prefix_token(*tok)};
    input.insert(input.end(), ids.begin(), ids.end() - 1);
    model.forward(input, 1, static_cast<int64_t>(input.size()));
    std::vector<float> logits = be->to_host_f32(model.logits());
    const int64_t V = model.config().vocab_size;
    for (size_t p = 0; p < ids.size(); ++p) {
      const float* l = logits.data() + static_cast<int64_t>(p) * V;
      double mx = *std::max_element(l, l + V), s = 0;
      for (int64_t v = 0; v < V; ++v) s += std::exp(l[v] - mx);
      ll += l[ids[p]] - mx - std::log(s);
    }
    bytes += static_cast<double>(text.size());
    words += static_cast<double>(count_words(text));
    tokens += static_cast<double>(ids.size());
  }
  TaskResult r = Evaluator(model, *tok, options({})).evaluate(t);
  // Up to float rounding: the scorer's forward has padding rows (scorer.h), this one does not.
  const double want_ppl = std::exp(-ll / words), want_tok = std::exp(-ll / tokens);
  EXPECT_NEAR(r.metric(0, "bits_per_byte")->value, -ll / bytes / std::log(2.0), 1e-6);
  EXPECT_NEAR(r.metric(0, "word_perplexity")->value, want_ppl, 1e-6 * want_ppl);
  EXPECT_NEAR(r.metric(0, "token_perplexity")->value, want_tok, 1e-6 * want_tok);
  // Short windows: every token is still scored once, the numbers change (less context), stay finite.
  EvalOptions shortw = options({});
  shortw.scorer.max_length = 4;
  TaskResult s = Evaluator(model, *tok, shortw).evaluate(t);
  EXPECT_TRUE(std::isfinite(s.metric(0, "bits_per_byte")->value));
  EXPECT_NE(s.metric(0, "bits_per_byte")->value, r.metric(0, "bits_per_byte")->value);
}

TEST_F(EvaluatorTest, GenerationExactMatchFiltersAndMajority) {
  // Targets are what the model says greedily after "the model", found first with the generator.
  infer::Generator gen(model, *tok);
  infer::GenerateOptions go;
  go.max_tokens = 6;
  go.sampling.temperature = 0;
  go.stop_at_eos = false;
  // Responses are made valid UTF-8 (invalid bytes become U+FFFD) before they are matched.
  const std::string q = "the model";
  const std::string said = valid_utf8(gen.generate_ids(encode(*tok, "Q: " + q + "\nA:"), go).text);
  ASSERT_FALSE(said.empty());
  Json doc1 = {{"q", q}, {"a", said}};
  Json doc2 = {{"q", q}, {"a", said + "x"}};
  dir.write("gen.jsonl", doc1.dump() + "\n" + doc2.dump() + "\n");
  const std::string base =
      "task: gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: gen.jsonl\ntest_split: test\n"
      "output_type: generate_until\ndoc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_target: \"{{a}}\"\n";
  Task t = load_task(dir.write("g.yaml", base + "generation_kwargs:\n  until: [\"<never>\"]\n  max_gen_toks: 6\n"));
  TaskResult r = Evaluator(model, *tok, options({0})).evaluate(t);
  EXPECT_DOUBLE_EQ(r.metric(0, "exact_match")->value, 0.5);
  EXPECT_EQ(r.speed.requests, 2);
  EXPECT_GT(r.speed.generated_tokens, 0);
  // Sampled repeats with a majority vote over a filter that maps everything to one answer.
  Task m = load_task(dir.write(
      "m.yaml", base + "repeats: 3\nfilter_list:\n  - name: maj\n    filter:\n      - function: regex\n"
                       "        regex_pattern: \"^\"\n        fallback: none\n      - function: majority_vote\n"
                       "generation_kwargs:\n  until: [\"<never>\"]\n  max_gen_toks: 3\n  do_sample: true\n"));
  EvalOptions o = options({0});
  o.log_samples = true;
  TaskResult mr = Evaluator(model, *tok, o).evaluate(m);
  EXPECT_EQ(mr.primary_metric, "exact_match,maj");
  EXPECT_EQ(mr.speed.requests, 6);
  ASSERT_EQ(mr.samples.size(), 2u);
  EXPECT_EQ(mr.samples[0]["responses"].size(), 3u);
  EXPECT_EQ(mr.samples[0]["filtered"]["maj"], "");
  // Sampling is seeded: the same seed gives the same responses.
  TaskResult again = Evaluator(model, *tok, o).evaluate(m);
  EXPECT_EQ(again.samples[0]["responses"], mr.samples[0]["responses"]);
}

}  // namespace
}  // namespace agpt::eval
