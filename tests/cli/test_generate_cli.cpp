// `agpt generate` on a tiny random Llama saved with a tokenizer (nothing trained): greedy output is
// the same on every run, a run directory resolves to its latest checkpoint, --stop cuts the text,
// and bad input gives clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../infer/infer_test_util.h"
#include "ops/cpu/cpu_backend.h"
#include "run_agpt.h"
#include "text/tokenizer_json_writer.h"

namespace fs = std::filesystem;

namespace {
using agpt::testing::run_agpt;

// Single quotes for the shell that run_agpt goes through.
std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class GenerateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_generate_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    std::string tok_json = agpt::infer::testing::tokenizer_json();
    std::ofstream(dir_ / "model" / "tokenizer.json") << tok_json;
    auto be = agpt::ops::make_cpu_backend(1);
    agpt::model::Llama model(agpt::infer::testing::tiny_config(300, 32), *be);
    model.init_weights(5);
    model.save((dir_ / "model").string());
    // A run directory as the trainer leaves it: checkpoints/latest names the newest checkpoint.
    fs::create_directories(dir_ / "run" / "checkpoints");
    fs::copy(dir_ / "model", dir_ / "run" / "checkpoints" / "step_0000005");
    std::ofstream(dir_ / "run" / "checkpoints" / "latest") << "step_0000005\n";
    // A model directory without a tokenizer.
    fs::copy(dir_ / "model", dir_ / "bare");
    fs::remove(dir_ / "bare" / "tokenizer.json");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(GenerateCli, GreedyIsRepeatableAndRunDirsResolve) {
  const std::string args = " --prompt 'the model' --max-tokens 12 --temperature 0 --ignore-eos";
  auto first = run_agpt("-q generate --model " + p("model") + args);
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_FALSE(first.output.empty());
  auto second = run_agpt("-q generate --model " + p("model") + args);
  EXPECT_EQ(second.status, 0);
  EXPECT_EQ(second.output, first.output);
  auto from_run = run_agpt("-q generate --model " + p("run") + args);
  EXPECT_EQ(from_run.status, 0) << from_run.output;
  EXPECT_EQ(from_run.output, first.output);

  // Without -q a summary follows on stderr.
  auto summary = run_agpt("generate --model " + p("model") + args);
  EXPECT_EQ(summary.status, 0);
  EXPECT_NE(summary.output.find("prefill: 2 tokens"), std::string::npos) << summary.output;
  EXPECT_NE(summary.output.find("decode: 12 tokens, 11 steps"), std::string::npos) << summary.output;
  EXPECT_NE(summary.output.find("stopped: max_tokens"), std::string::npos) << summary.output;

  // A stop string from inside the greedy text cuts it there.
  const std::string& text = first.output;
  size_t at = 3;
  while (at + 2 < text.size() && (text[at] == '\0' || text[at + 1] == '\0')) ++at;
  ASSERT_LT(at + 2, text.size());
  std::string stop = text.substr(at, 2);
  auto cut = run_agpt("-q generate --model " + p("model") + args + " --stop " + shell_quoted(stop));
  EXPECT_EQ(cut.status, 0) << cut.output;
  EXPECT_EQ(cut.output, text.substr(0, text.find(stop)));

  // Sampling: a seed fixes the text.
  const std::string sampled = " --prompt 'data' --max-tokens 10 --temperature 1 --top-k 0 --top-p 1 --ignore-eos";
  auto s1 = run_agpt("-q generate --model " + p("model") + sampled + " --seed 9");
  auto s2 = run_agpt("-q generate --model " + p("model") + sampled + " --seed 9");
  EXPECT_EQ(s1.status, 0) << s1.output;
  EXPECT_EQ(s1.output, s2.output);
}

TEST_F(GenerateCli, ClearErrors) {
  auto expect_error = [](const std::string& args, const std::string& needle) {
    auto r = run_agpt(args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  };
  const std::string model = " --model " + p("model");
  expect_error("generate --model " + p("missing") + " --prompt x", "does not exist");
  expect_error("generate --model " + p("bare") + " --prompt x", "has no tokenizer.json; pass --tokenizer FILE");
  expect_error("generate --model " + dir_.string() + " --prompt x", "neither a model directory");
  expect_error("generate" + model + " --prompt x --top-p 1.5", "--top-p must be in (0, 1]");
  expect_error("generate" + model + " --prompt x --top-p 0", "--top-p must be in (0, 1]");
  expect_error("generate" + model + " --prompt x --temperature -1", "--temperature must be");
  expect_error("generate" + model + " --prompt x --max-tokens -2", "--max-tokens must be >= 0");
  expect_error("generate" + model + " --prompt x --top-k many", "top-k");
  expect_error("generate" + model, "exactly one of --prompt");
  expect_error("generate" + model + " --prompt x --prompt-file " + p("x.txt"), "exactly one of --prompt");
  expect_error("generate" + model + " --prompt-file " + p("missing.txt"), "missing.txt");
  expect_error("generate" + model + " --prompt x --stop ''", "stop string is empty");
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "graph ";
  expect_error("generate" + model + " --prompt '" + long_prompt + "'", "more than the model's context of 32");
  auto help = run_agpt("generate --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("Examples:"), std::string::npos) << help.output;
}

}  // namespace
