// The pipeline through the `agpt` binary, as a user runs it: train a tokenizer, tokenize, inspect,
// plan a mixture, look at samples, train a few steps, resume. Small inputs, a few seconds.
#include <gtest/gtest.h>

#include "run_agpt.h"
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {
using Result = agpt::testing::CliResult;
Result run(const std::string& args) { return agpt::testing::run_agpt(args); }

class PipelineCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_pipeline_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // A small corpus: 60 documents of varied English-like text, one malformed line.
    std::ofstream docs(dir_ / "docs.jsonl");
    const char* words[] = {"the", "model", "learns", "from", "data", "science", "energy", "protein", "climate",
                           "tokens", "physics", "of", "and", "a", "graph", "neural", "network", "cell"};
    for (int d = 0; d < 60; ++d) {
      std::string text;
      for (int w = 0; w < 200 + 7 * d; ++w) text += std::string(words[(w * 7 + d * 3) % 18]) + (w % 13 == 12 ? ".\\n" : " ");
      docs << "{\"id\": \"doc" << d << "\", \"text\": \"" << text << "\"}\n";
      if (d == 30) docs << "{\"id\": \"broken\", \"text\": 42}\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};
}  // namespace

TEST_F(PipelineCli, TokenizerDatasetMixtureTrainingAndResume) {
  Result r = run("tokenizer train --input " + p("docs.jsonl") + " --vocab-size 300 --special-tokens '<|endoftext|>' --output " +
                 p("tok.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("skipped"), std::string::npos) << "the malformed line is reported: " << r.output;

  r = run("data tokenize -t " + p("tok.json") + " --input " + p("docs.jsonl") + " --output-prefix " + p("corpus"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(p("corpus.bin")) && fs::exists(p("corpus.idx")));

  r = run("data inspect " + p("corpus") + " -t " + p("tok.json") + " --docs 1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("60"), std::string::npos) << r.output;  // 60 documents written

  std::ofstream(p("list.txt")) << "1.0 corpus web\n";
  r = run("data mix --list " + p("list.txt") + " --seq-len 32 --samples 400 --valid-samples 16 --split 90,10,0 --out " + p("mix"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(p("mix/mixture.json")));

  r = run("data sample " + p("mix") + " --index 7 --count 2 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"index\":7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"index\":8"), std::string::npos) << r.output;

  const std::string train = "train " + std::string(AGPT_SOURCE_DIR) + "/examples/tiny.toml --data.mixture " + p("mix") +
                            " --data.tokenizer " + p("tok.json") + " --train.out_dir " + p("run") +
                            " --model.hidden_size 32 --model.intermediate_size 64 --model.num_hidden_layers 1" +
                            " --model.num_attention_heads 2 --model.num_key_value_heads 2 --train.micro_batch 4" +
                            " --train.grad_accum 1 --train.steps 4 --train.warmup 1 --train.eval_every 2" +
                            " --train.checkpoint_every 2 --train.log_every 1";
  r = run(train + " --stop-after 2");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run(train + " --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(p("run/metrics.jsonl")));
  std::ifstream metrics(p("run/metrics.jsonl"));
  int steps = 0;
  for (std::string line; std::getline(metrics, line);) steps += line.find("\"loss\"") != std::string::npos;
  EXPECT_GE(steps, 4) << "4 training steps logged across the stop and the resume";
}

TEST_F(PipelineCli, BadInputsFailWithClearMessages) {
  Result r = run("data mix --list " + p("missing.txt") + " --seq-len 32 --samples 10 --out " + p("mix"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("missing.txt"), std::string::npos) << r.output;
  std::ofstream(p("bad.txt")) << "-1 corpus web\n";
  r = run("data mix --list " + p("bad.txt") + " --seq-len 32 --samples 10 --out " + p("mix"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("bad.txt:1"), std::string::npos) << r.output;
  r = run("data inspect " + p("nothing"));
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
}
