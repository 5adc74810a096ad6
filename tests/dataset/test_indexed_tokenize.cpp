// The tokenize pipeline: documents -> indexed dataset, identical for any thread count, ids equal to
// the tokenizer's, EOS/BOS handling, skips and their counts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "dataset/indexed_dataset.h"
#include "dataset/tokenize.h"
#include "text/tokenizer.h"

namespace fs = std::filesystem;
using namespace agpt::dataset;

namespace {

std::string tokenizer_path() { return std::string(AGPT_TESTDATA) + "/tokenizers/gpt2-tokenizer.json"; }

class TokenizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(tokenizer_path())) GTEST_SKIP() << "missing " << tokenizer_path();
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("agpt_test_tokenize_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(dir_ / "in");
    tok_ = agpt::text::load_tokenizer(tokenizer_path());
    // A corpus with varied documents: ASCII, Unicode, whitespace, long ones, empty text, a bad line.
    std::mt19937 rng(7);
    const char* words[] = {"the", "quantum", "Ångström", "électron", "数据", "🙂", "  ", "\n", "x=1;", "GPT-2", "'s"};
    std::ofstream a(dir_ / "in" / "a.jsonl");
    for (int i = 0; i < 60; ++i) {
      std::string text;
      size_t n = i == 5 ? 3000 : rng() % 40;
      for (size_t k = 0; k < n; ++k) text += std::string(words[rng() % 11]) + (rng() % 3 ? " " : "");
      if (i % 17 == 3) text.clear();  // empty: skipped
      texts_.push_back(text);
      a << R"({"id": ")" << i << R"(", "text": ")" << json_escape(text) << "\"}\n";
      if (i == 30) a << "{not json\n";  // skipped: invalid JSON
    }
    a.close();
    std::ofstream b(dir_ / "in" / "b.txt");
    b << "A plain text file is one document.\nWith two lines.";
    b.close();
    texts_.push_back("A plain text file is one document.\nWith two lines.");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  static std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\', o += c;
      else if (c == '\n') o += "\\n";
      else o += c;
    }
    return o;
  }
  TokenizeOptions options(const std::string& name, int threads) const {
    TokenizeOptions o;
    o.inputs = {(dir_ / "in").string()};
    o.output_prefix = (dir_ / "out" / name).string();
    o.threads = threads;
    o.batch_documents = 7;  // many batches
    o.progress = false;
    return o;
  }
  std::vector<std::string> nonempty_texts() const {
    std::vector<std::string> out;
    for (auto& t : texts_)
      if (!t.empty()) out.push_back(t);
    return out;
  }

  fs::path dir_;
  std::unique_ptr<agpt::text::Tokenizer> tok_;
  std::vector<std::string> texts_;  // in input order (a.jsonl, then b.txt)
};

}  // namespace

TEST_F(TokenizeTest, IdenticalOutputForAnyThreadCount) {
  std::string bin1, idx1;
  for (int threads : {1, 2, 4, 8}) {
    SCOPED_TRACE(threads);
    auto opt = options("t" + std::to_string(threads), threads);
    if (threads == 4) opt.batch_bytes = 100;  // batches closed by size too
    if (threads == 8) opt.batch_documents = 1;  // one document per batch: most batches in flight at once
    auto report = tokenize_to_indexed_dataset(opt, *tok_);
    std::string bin = agpt::read_file(opt.output_prefix + ".bin");
    std::string idx = agpt::read_file(opt.output_prefix + ".idx");
    if (threads == 1) {
      bin1 = bin;
      idx1 = idx;
    } else {
      EXPECT_TRUE(bin == bin1) << ".bin differs from the 1-thread output";
      EXPECT_TRUE(idx == idx1) << ".idx differs from the 1-thread output";
    }
  }
  // The loader path (reads the tokenizer file itself) gives the same bytes.
  auto opt = options("by_path", 3);
  opt.tokenizer = tokenizer_path();
  tokenize_to_indexed_dataset(opt);
  EXPECT_TRUE(agpt::read_file(opt.output_prefix + ".bin") == bin1);
}

TEST_F(TokenizeTest, IdsMatchTokenizerWithEos) {
  auto opt = options("ids", 2);
  auto report = tokenize_to_indexed_dataset(opt, *tok_);
  auto expected = nonempty_texts();
  IndexedDataset ds(opt.output_prefix);
  EXPECT_EQ(ds.dtype(), TokenDType::kUInt16);  // 50,257 < 65,500
  ASSERT_EQ(ds.num_documents(), expected.size());
  uint64_t tokens = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    std::vector<uint32_t> want;
    tok_->encode_ordinary(expected[i], want);
    want.push_back(50256);  // <|endoftext|>
    ASSERT_EQ(ds.document(i), want) << "document " << i;
    tokens += want.size();
  }
  EXPECT_EQ(report.documents, expected.size());
  EXPECT_EQ(report.tokens, tokens);
  EXPECT_EQ(ds.num_tokens(), tokens);
  ASSERT_TRUE(report.eos_id.has_value());
  EXPECT_EQ(*report.eos_id, 50256u);
  EXPECT_FALSE(report.bos_id.has_value());
  // Skips: the empty texts and the bad JSON line.
  const uint64_t empties = texts_.size() - expected.size();
  EXPECT_GT(empties, 0u);
  EXPECT_EQ(report.skipped_by_reason[kEmptyTextReason], empties);
  EXPECT_EQ(report.skipped_by_reason["invalid JSON"], 1u);
  EXPECT_EQ(report.skipped, empties + 1);
  EXPECT_EQ(report.input_files, 2u);
  uint64_t text_bytes = 0;
  for (auto& t : expected) text_bytes += t.size();
  EXPECT_EQ(report.text_bytes, text_bytes);
  std::string s = report.summary();
  EXPECT_NE(s.find("empty text"), std::string::npos) << s;
  EXPECT_NE(s.find("EOS 50256"), std::string::npos) << s;
}

TEST_F(TokenizeTest, NoEosAndBosOverride) {
  auto opt = options("bos", 2);
  opt.append_eos = false;
  opt.prepend_bos = true;
  opt.bos_token = "<|endoftext|>";
  auto report = tokenize_to_indexed_dataset(opt, *tok_);
  IndexedDataset ds(opt.output_prefix);
  auto expected = nonempty_texts();
  ASSERT_EQ(ds.num_documents(), expected.size());
  std::vector<uint32_t> want = {50256};
  tok_->encode_ordinary(expected[0], want);
  EXPECT_EQ(ds.document(0), want);
  EXPECT_FALSE(report.eos_id.has_value());
  EXPECT_EQ(report.bos_id, std::optional<uint32_t>(50256));
}

TEST_F(TokenizeTest, Errors) {
  auto opt = options("bad", 1);
  opt.eos_token = "<|nope|>";
  try {
    tokenize_to_indexed_dataset(opt, *tok_);
    ADD_FAILURE() << "expected an error";
  } catch (const agpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--eos-token"), std::string::npos) << e.what();
  }
  // kFail: the bad JSON line stops the run, and no output appears.
  opt = options("fail", 2);
  opt.on_error = agpt::corpus::OnError::kFail;
  EXPECT_THROW(tokenize_to_indexed_dataset(opt, *tok_), agpt::Error);
  EXPECT_FALSE(fs::exists(opt.output_prefix + ".bin"));
  EXPECT_FALSE(fs::exists(opt.output_prefix + ".idx"));
  if (fs::exists(dir_ / "out")) {
    for (auto& e : fs::directory_iterator(dir_ / "out")) ADD_FAILURE() << "left behind: " << e.path();
  }
  // A dtype too narrow for the vocabulary fails on the first large id.
  opt = options("narrow", 2);
  opt.dtype = TokenDType::kUInt8;
  EXPECT_THROW(tokenize_to_indexed_dataset(opt, *tok_), agpt::Error);
  EXPECT_FALSE(fs::exists(opt.output_prefix + ".idx"));
  // Inputs that do not exist.
  opt = options("none", 1);
  opt.inputs = {(dir_ / "missing.jsonl").string()};
  EXPECT_THROW(tokenize_to_indexed_dataset(opt, *tok_), agpt::Error);
}
