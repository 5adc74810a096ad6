// `agpt tokenizer encode/decode` end to end (skipped when the agpt binary has not been built).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "text_test_util.h"

namespace agpt::text {
namespace {

using nlohmann::json;
using testing::load_cases;
using testing::tokenizer_data_dir;

class TokenizerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(AGPT_BINARY)) GTEST_SKIP() << "agpt binary not built: " << AGPT_BINARY;
    if (!testing::have_tokenizer_data()) GTEST_SKIP() << "no tokenizer test data";
    dir_ = std::filesystem::temp_directory_path() / ("agpt_tokcli_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  int run(const std::string& args) {
    std::string cmd = std::string(AGPT_BINARY) + " -q " + args + " 2>" + (dir_ / "stderr.txt").string();
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
  std::vector<std::string> lines(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }
  std::string stderr_text() {
    std::ifstream in(dir_ / "stderr.txt");
    return {std::istreambuf_iterator<char>(in), {}};
  }
  std::filesystem::path dir_;
};

TEST_F(TokenizerCli, EncodeMatchesCasesAndKeepsLinesAligned) {
  auto cases = load_cases();
  {
    std::ofstream in(dir_ / "in.jsonl");
    for (size_t i = 0; i < cases.size(); ++i) {
      in << json{{"text", cases[i].text}, {"id", i}}.dump() << "\n";
      if (i == 3) in << "{not json\n";
      if (i == 5) in << "{\"other\": 1}\n";
    }
  }
  std::string tok = tokenizer_data_dir() + "/o200k_base.tiktoken";
  std::string in = (dir_ / "in.jsonl").string(), out = (dir_ / "out.jsonl").string();
  EXPECT_EQ(run("tokenizer encode -t " + tok + " -i " + in + " -o " + out + " -j 3 --on-error fail"), 1);
  EXPECT_NE(stderr_text().find("in.jsonl:5"), std::string::npos) << stderr_text();
  EXPECT_FALSE(std::filesystem::exists(out));  // no partial output on failure
  ASSERT_EQ(run("tokenizer encode -t " + tok + " -i " + in + " -o " + out + " -j 3"), 0)  // skip is the default
      << stderr_text();
  auto got = lines("out.jsonl");
  ASSERT_EQ(got.size(), cases.size() + 2);
  size_t k = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(json::parse(got[k++]), cases[i].expected["o200k_base"]) << cases[i].text;
    if (i == 3 || i == 5) {
      EXPECT_EQ(got[k++], "[]");
    }
  }
  // decode gives the texts back.
  std::string dec = (dir_ / "dec.jsonl").string();
  ASSERT_EQ(run("tokenizer decode -t " + tok + " -i " + out + " -o " + dec), 0) << stderr_text();
  auto texts = lines("dec.jsonl");
  ASSERT_EQ(texts.size(), got.size());
  EXPECT_EQ(json::parse(texts[0])["text"], cases[0].text);
  EXPECT_EQ(json::parse(texts[4])["text"], "");
}

}  // namespace
}  // namespace agpt::text
