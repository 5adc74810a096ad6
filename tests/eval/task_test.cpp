// Task files: a valid file loads with lm-evaluation-harness defaults, every bad field gives an error
// naming the file, the field and what to write, `include:` works, and --tasks names resolve.
#include "eval/task.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "eval/sha256.h"
#include "eval_test_util.h"

namespace agpt::eval {
namespace {

using testing::mc_jsonl;
using testing::mc_yaml;
using testing::TempDir;

std::string load_error(const TempDir& d, const std::string& yaml) {
  std::string path = d.write("t.yaml", yaml);
  try {
    load_task(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // 56 bytes: the length no longer fits the first padding block.
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(TaskFile, LoadsWithDefaults) {
  TempDir d;
  d.write("test.jsonl", mc_jsonl(4));
  d.write("dev.jsonl", mc_jsonl(3, 10));
  Task t = load_task(d.write("t.yaml", mc_yaml("demo_mc", "num_fewshot: 2\nprompts:\n  - name: terse\n    doc_to_text: \"{{question}}?\"\n")));
  EXPECT_EQ(t.name, "demo_mc");
  EXPECT_EQ(t.output_type, OutputType::kMultipleChoice);
  EXPECT_EQ(t.eval_split, "test");
  EXPECT_EQ(t.fewshot_split, "dev");
  EXPECT_EQ(t.num_fewshot, 2);
  EXPECT_EQ(t.prompt.target_delimiter, " ");
  EXPECT_EQ(t.prompt.fewshot_delimiter, "\n\n");
  ASSERT_EQ(t.metrics.size(), 2u);
  EXPECT_EQ(t.metrics[1].name, "acc_norm");
  ASSERT_EQ(t.extra_prompts.size(), 1u);
  EXPECT_EQ(t.extra_prompts[0].name, "terse");
  EXPECT_EQ(t.extra_prompts[0].choice_expr.source(), "{{choices}}");  // inherited
  EXPECT_EQ(t.sha256.size(), 64u);
  EXPECT_EQ(t.filters.size(), 1u);
}

TEST(TaskFile, GenerationFieldsAndInclude) {
  TempDir d;
  // The base lives in another folder with its data: its data path stays relative to it.
  d.write("base/test.jsonl", "{\"q\": \"1+1\", \"a\": \"2\"}\n");
  d.write("base/base.yaml",
          "dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: test.jsonl\ntest_split: test\n"
          "output_type: generate_until\ndoc_to_text: \"{{q}} =\"\ndoc_to_target: \"{{a}}\"\n"
          "generation_kwargs:\n  until: [\"\\n\", \".\"]\n  max_gen_toks: 8\n  do_sample: true\n  temperature: 0.7\n"
          "repeats: 4\nfilter_list:\n  - name: maj\n    filter:\n      - function: regex\n        regex_pattern: \"(\\\\d+)\"\n"
          "      - function: majority_vote\n      - function: take_first\n");
  Task t = load_task(d.write("t.yaml", "include: base/base.yaml\ntask: add\nmetric_list:\n  - metric: exact_match\n    ignore_case: true\n"));
  EXPECT_EQ(t.name, "add");
  EXPECT_EQ(t.data_files.at("test"), d.path() + "/base/test.jsonl");
  EXPECT_EQ(t.output_type, OutputType::kGenerateUntil);
  EXPECT_EQ(t.generation.until, (std::vector<std::string>{"\n", "."}));
  EXPECT_EQ(t.generation.max_gen_toks, 8);
  EXPECT_TRUE(t.generation.do_sample);
  EXPECT_DOUBLE_EQ(t.generation.temperature, 0.7);
  EXPECT_EQ(t.repeats, 4);
  ASSERT_EQ(t.filters.size(), 1u);
  EXPECT_EQ(t.filters[0].steps.size(), 3u);
  EXPECT_EQ(t.filters[0].steps[0].regex_pattern, "(\\d+)");
  EXPECT_TRUE(t.metrics[0].ignore_case);
}

TEST(TaskFile, BadFieldsSayWhatToDo) {
  TempDir d;
  d.write("test.jsonl", mc_jsonl(2));
  d.write("dev.jsonl", mc_jsonl(2));
  struct Case {
    std::string yaml, expect;
  };
  const std::string ok = mc_yaml("x");
  std::vector<Case> cases = {
      {ok + "num_fewshots: 3\n", "unknown field"},
      {mc_yaml("x").replace(mc_yaml("x").find("multiple_choice"), 15, "ranking"), "use multiple_choice, generate_until or loglikelihood_rolling"},
      {ok + "num_fewshot: many\n", "expected an integer"},
      {ok + "num_fewshot: -1\n", "outside"},
      {mc_yaml("x", "").replace(mc_yaml("x").find("metric_list"), std::string::npos, "metric_list:\n  - metric: bleu\n"),
       "not a metric of multiple_choice"},
      {"task: x\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: missing.jsonl\ntest_split: test\n"
       "doc_to_text: a\ndoc_to_target: b\ndoc_to_choice: [a, b]\n",
       "does not exist"},
      {"task: x\ndataset_path: hellaswag\ntest_split: test\ndoc_to_text: a\ndoc_to_target: b\n", "Hugging Face hub"},
      {"task: x\n  bad: [\n", "YAML syntax error"},
      {"- a\n- b\n", "must be a YAML mapping"},
      {"dataset_path: json\n", "add `task: NAME`"},
      {"task: x\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: test.jsonl\ntest_split: test\n"
       "doc_to_target: b\ndoc_to_choice: [a, b]\n",
       "doc_to_text"},
      {"task: x\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: test.jsonl\ntest_split: test\n"
       "doc_to_text: a\ndoc_to_target: b\n",
       "needs `doc_to_choice:`"},
      {"task: x\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: test.jsonl\n"
       "doc_to_text: a\ndoc_to_target: b\ndoc_to_choice: [a, b]\n",
       "test_split"},
      {ok.substr(0, ok.find("doc_to_text")) + "doc_to_text: !function utils.doc_to_text\ndoc_to_choice: [a, b]\ndoc_to_target: 0\n",
       "!function"},
      {ok + "process_docs: x\n", "Python hooks"},
      {ok + "repeats: 3\n", "repeats are for generate_until"},
      {ok + "prompts:\n  - name: default\n", "used twice"},
      {ok + "prompts: [1, 2]\n", "expected a mapping"},
      {ok.substr(0, ok.find("metric_list")) + "metric_list:\n  - metric: acc\n    regexes_to_ignore: [\"(a\"]\n",
       "regexes_to_ignore"},
      {ok + "generation_kwargs: [1]\n", "expected a mapping"},
      {ok + "metadata: 3\nrepeats: [1]\n", "expected a single value"},
      {ok.substr(0, ok.find("dataset_kwargs")) + "dataset_kwargs: 5\ntest_split: test\ndoc_to_text: a\n", "data_files"},
      {ok.substr(0, ok.find("metric_list")) + "metric_list: 3\n", "non-empty list"},
      {ok.substr(0, ok.find("metric_list")) + "metric_list: [acc]\n", "expected a mapping"},
      {ok.substr(0, ok.find("doc_to_text")) + "doc_to_text: \"{% if a %}x{% endif %}\"\ndoc_to_choice: [a, b]\ndoc_to_target: 0\n",
       "Jinja statements"},
  };
  for (const Case& c : cases) {
    std::string m = load_error(d, c.yaml);
    EXPECT_NE(m.find(c.expect), std::string::npos) << "yaml:\n" << c.yaml << "\nerror: " << m;
    if (m != "no error" && c.expect != "does not exist") {
      EXPECT_NE(m.find("t.yaml"), std::string::npos) << m;
    }
  }
}

TEST(TaskFile, ResolvesNamesFilesAndDirectories) {
  TempDir d;
  d.write("tasks/a/test.jsonl", mc_jsonl(2));
  d.write("tasks/a/dev.jsonl", mc_jsonl(2));
  std::string a = d.write("tasks/a/first.yaml", mc_yaml("alpha"));
  std::string b = d.write("tasks/a/second.yaml", mc_yaml("beta"));
  std::vector<std::string> dirs = {d.path() + "/tasks"};
  EXPECT_EQ(resolve_task_files("beta,alpha", dirs), (std::vector<std::string>{b, a}));
  EXPECT_EQ(resolve_task_files(d.path() + "/tasks/a", dirs), (std::vector<std::string>{a, b}));
  EXPECT_EQ(resolve_task_files(a, {}), (std::vector<std::string>{a}));
  try {
    resolve_task_files("gamma", dirs);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("known tasks: alpha, beta"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace agpt::eval
