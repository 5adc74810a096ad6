// `agpt eval` end to end on a tiny random model directory: the summary, results.json with hashes
// and settings, the report and its plots, --dump-requests, and clear errors for bad input.
#include <gtest/gtest.h>

#include <filesystem>

#include "../cli/run_agpt.h"
#include "base/file.h"
#include "eval/sha256.h"
#include "eval/template.h"
#include "eval_test_util.h"

namespace agpt::eval {
namespace {

namespace fs = std::filesystem;
using agpt::testing::run_agpt;

class EvalCli : public ::testing::Test {
 protected:
  testing::TempDir dir;
  void SetUp() override {
    dir.write("model/tokenizer.json", infer::testing::tokenizer_json());
    auto be = ops::make_cpu_backend(1);
    model::Llama model(infer::testing::tiny_config(300, 64), *be);
    model.init_weights(5);
    model.save(dir.path() + "/model");
    dir.write("tasks/mc/test.jsonl", testing::mc_jsonl(6));
    dir.write("tasks/mc/dev.jsonl", testing::mc_jsonl(4, 30));
    dir.write("tasks/mc/mc.yaml", testing::mc_yaml("tiny_mc", "prompts:\n  - name: bare\n    doc_to_text: \"{{question}}\"\n"));
  }
  std::string p(const std::string& rel) const { return dir.path() + "/" + rel; }
};

TEST_F(EvalCli, WritesResultsReportAndPlots) {
  auto r = run_agpt("eval --model " + p("model") + " --tasks tiny_mc --task-dir " + p("tasks") +
                    " --shots 0,2 --fewshot-samples 2 --batch-size 3 --threads 1 --out " + p("out") +
                    " --dump-requests " + p("req.jsonl") + " --log-samples");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("tiny_mc"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("acc_norm"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tokens/s"), std::string::npos) << r.output;
  Json j = Json::parse(read_file(p("out/results.json")));
  const Json& t = j["tasks"]["tiny_mc"];
  EXPECT_EQ(t["sha256"], sha256_hex(read_file(p("tasks/mc/mc.yaml"))));
  EXPECT_EQ(t["data_sha256"].size(), 2u);
  EXPECT_EQ(t["docs"], 6);
  for (const char* k : {"0", "2"}) {
    double acc = t["results"][k]["metrics"]["acc"]["value"];
    EXPECT_GE(acc, 0);
    EXPECT_LE(acc, 1);
  }
  EXPECT_EQ(t["results"]["2"]["reliability"]["runs"].size(), 4u);
  EXPECT_EQ(j["settings"]["batch_size"], 3);
  EXPECT_GT(j["speed"]["tokens_per_second"].get<double>(), 0);
  for (const char* f : {"report.md", "report.html", "accuracy_vs_shots.png", "reliability.png", "samples_tiny_mc.jsonl"})
    EXPECT_TRUE(fs::exists(p("out/") + f)) << f;
  EXPECT_EQ(read_file(p("out/accuracy_vs_shots.png")).substr(1, 3), "PNG");
  // 6 docs x 3 choices x (2 prompts at 0 shots + 4 runs at 2 shots).
  std::string dump = read_file(p("req.jsonl"));
  EXPECT_EQ(std::count(dump.begin(), dump.end(), '\n'), 6 * 3 * 6);
  Json first = Json::parse(dump.substr(0, dump.find('\n')));
  EXPECT_TRUE(first.contains("context_ids") && first.contains("logprob"));

  // The same numbers with another batch size and thread count.
  auto again = run_agpt("-q eval --model " + p("model") + " --tasks " + p("tasks/mc/mc.yaml") +
                        " --shots 0,2 --fewshot-samples 2 --batch-size 1 --threads 2 --out " + p("out2"));
  ASSERT_EQ(again.status, 0) << again.output;
  Json j2 = Json::parse(read_file(p("out2/results.json")));
  EXPECT_EQ(j2["tasks"]["tiny_mc"]["results"], t["results"]);
}

TEST_F(EvalCli, BadInputGivesClearErrors) {
  auto r = run_agpt("eval --model " + p("model") + " --tasks nosuch --task-dir " + p("tasks"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("known tasks: tiny_mc"), std::string::npos) << r.output;
  r = run_agpt("eval --model " + p("model") + " --tasks tiny_mc --task-dir " + p("tasks") + " --shots 0,x");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--shots"), std::string::npos) << r.output;
  r = run_agpt("eval --model " + p("model") + " --tasks tiny_mc --task-dir " + p("tasks") + " --shots 9");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("lower --shots"), std::string::npos) << r.output;
  dir.write("tasks/bad/bad.yaml", "task: bad\noutput_type: essay\n");
  r = run_agpt("eval --model " + p("model") + " --tasks " + p("tasks/bad/bad.yaml"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("bad.yaml"), std::string::npos) << r.output;
  // Data are checked before a model is loaded (this model path does not exist).
  dir.write("tasks/mc/test.jsonl", "{\"question\": \"x\"}\nnot json\n");
  r = run_agpt("eval --model " + p("no-model") + " --tasks tiny_mc --task-dir " + p("tasks"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("test.jsonl:2: not valid JSON"), std::string::npos) << r.output;
  r = run_agpt("eval --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("Examples"), std::string::npos);
}

}  // namespace
}  // namespace agpt::eval
