// Hugging Face tokenizer.json features: a Llama-3-style file built from the cl100k ranks (Split +
// ByteLevel pre-tokenizer, ignore_merges, added special tokens, TemplateProcessing), and
// ByteLevel(add_prefix_space).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <unordered_map>

#include "base/error.h"
#include "base/file.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/tokenizer.h"
#include "text_test_util.h"

namespace agpt::text {
namespace {

using nlohmann::json;
using testing::load_cases;
using testing::RandomText;
using testing::tokenizer_data_dir;

const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("agpt_tok_test_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::create_directories(dir);
  return dir;
}

// BPE of bytes with tiktoken's rule, using only ranks below max_rank: the parts it ends with.
std::vector<std::string> bpe_parts(const std::unordered_map<std::string, uint32_t>& ranks, const std::string& bytes,
                                   uint32_t max_rank) {
  std::vector<std::string> parts;
  for (char c : bytes) parts.emplace_back(1, c);
  for (;;) {
    size_t best = 0;
    uint32_t best_rank = UINT32_MAX;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = ranks.find(parts[i] + parts[i + 1]);
      if (it != ranks.end() && it->second < max_rank && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank == UINT32_MAX) break;
    parts[best] += parts[best + 1];
    parts.erase(parts.begin() + best + 1);
  }
  return parts;
}

// A Llama-3-style tokenizer.json over the cl100k vocabulary; merges derived from the ranks: each
// token of two or more bytes is the merge of the two parts BPE reaches with the lower ranks only.
json llama3_style_json(bool ignore_merges) {
  // (Sorting by rank first: each merge is listed after the merges that make its parts.)
  Tokenizer::Config ranks_cfg = parse_tiktoken_ranks(
      read_file(tokenizer_data_dir() + "/cl100k_base.tiktoken"), "cl100k_base.tiktoken");
  std::sort(ranks_cfg.vocab.begin(), ranks_cfg.vocab.end(), [](auto& a, auto& b) { return a.second < b.second; });
  std::unordered_map<std::string, uint32_t> ranks;
  for (auto& [bytes, id] : ranks_cfg.vocab) ranks.emplace(bytes, id);
  json vocab = json::object();
  json merges = json::array();
  for (auto& [bytes, rank] : ranks_cfg.vocab) {
    vocab[byte_level_encode(bytes)] = rank;
    if (bytes.size() < 2) continue;
    auto parts = bpe_parts(ranks, bytes, rank);
    if (parts.size() == 2) merges.push_back({byte_level_encode(parts[0]), byte_level_encode(parts[1])});
  }
  auto added = [](uint32_t id, const char* content) {
    return json{{"id", id},         {"content", content}, {"single_word", false}, {"lstrip", false},
                {"rstrip", false},  {"normalized", false}, {"special", true}};
  };
  json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", {added(100257, "<|begin_of_text|>"), added(100258, "<|end_of_text|>")}},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", kLlama3Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
      {"post_processor",
       {{"type", "Sequence"},
        {"processors",
         {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}},
          {{"type", "TemplateProcessing"},
           {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
           {"pair", json::array()},
           {"special_tokens",
            {{"<|begin_of_text|>",
              {{"id", "<|begin_of_text|>"}, {"ids", {100257}}, {"tokens", {"<|begin_of_text|>"}}}}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", ignore_merges},
        {"vocab", vocab},
        {"merges", merges}}}};
  return j;
}

std::unique_ptr<Tokenizer> load_json(const json& j, const std::string& name) {
  auto path = temp_dir() / name;
  write_file_atomic(path.string(), j.dump());
  auto t = load_tokenizer(path.string());
  std::filesystem::remove_all(path.parent_path());
  return t;
}

TEST(TokenizerJson, Llama3StyleFromCl100kRanks) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  auto cl100k = load_tokenizer(tokenizer_data_dir() + "/cl100k_base.tiktoken");
  json j = llama3_style_json(true);
  for (bool ignore_merges : {true, false}) {
    SCOPED_TRACE(ignore_merges ? "ignore_merges" : "merges only");
    j["model"]["ignore_merges"] = ignore_merges;
    auto t = load_json(j, "tokenizer.json");
    EXPECT_EQ(t->pattern(), kLlama3Pattern);
    EXPECT_NE(t->description().find("llama3"), std::string::npos) << t->description();
    EXPECT_EQ(t->bos_id(), 100257u);
    EXPECT_EQ(t->eos_id(), 100258u);
    EXPECT_EQ(t->vocab_size(), 100259u);
    for (auto& c : load_cases()) {
      auto expected = c.expected["cl100k_base"].get<std::vector<uint32_t>>();
      std::vector<uint32_t> ids;
      t->encode_ordinary(c.text, ids);
      EXPECT_EQ(ids, expected) << ::testing::PrintToString(c.text);
      auto with_bos = t->encode_with_template(c.text);
      ASSERT_FALSE(with_bos.empty());
      EXPECT_EQ(with_bos[0], 100257u);
      EXPECT_EQ(std::vector<uint32_t>(with_bos.begin() + 1, with_bos.end()), expected);
    }
    // Random text: the same ids as tiktoken's cl100k, except where the patterns differ (trailing
    // whitespace holding a newline followed by more whitespace), which random text avoids here.
    RandomText gen(21);
    int failures = 0;
    for (int i = 0; i < 1500 && failures < 3; ++i) {
      std::string text = gen.next(60) + "x";
      if (t->encode(text) != cl100k->encode(text)) {
        ++failures;
        ADD_FAILURE() << "differs from cl100k on " << ::testing::PrintToString(text);
      }
    }
    EXPECT_EQ(t->encode("a<|end_of_text|>b", true), (std::vector<uint32_t>{64, 100258, 65}));
    EXPECT_EQ(t->encode_with_template("<|begin_of_text|>", true), (std::vector<uint32_t>{100257, 100257}));
    auto hi = cl100k->encode("hi");
    hi.insert(hi.begin(), 100257u);
    EXPECT_EQ(t->encode_with_template("hi"), hi);
    EXPECT_EQ(t->token_id("<|end_of_text|>"), 100258u);
    EXPECT_EQ(t->decode(hi), "<|begin_of_text|>hi");
  }
}

TEST(TokenizerJson, ByteLevelAddPrefixSpace) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  json j = json::parse(read_file(tokenizer_data_dir() + "/gpt2-tokenizer.json"));
  j["pre_tokenizer"]["add_prefix_space"] = true;
  auto t = load_json(j, "prefix.json");
  auto r50k = load_tokenizer(tokenizer_data_dir() + "/r50k_base.tiktoken");
  EXPECT_EQ(t->encode("Hello world"), r50k->encode(" Hello world"));
  EXPECT_EQ(t->encode(" Hello"), r50k->encode(" Hello"));  // already starts with a space
  // Each segment between added tokens gets its prefix space (Hugging Face's behaviour).
  std::vector<uint32_t> expected = r50k->encode(" a");
  expected.push_back(50256);
  auto b = r50k->encode(" b");
  expected.insert(expected.end(), b.begin(), b.end());
  EXPECT_EQ(t->encode("a<|endoftext|>b", true), expected);
}

TEST(TokenizerJson, AddedTokenOptions) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  json j = json::parse(read_file(tokenizer_data_dir() + "/gpt2-tokenizer.json"));
  // A non-special added token (always matched), one with lstrip, and a single_word one.
  j["added_tokens"].push_back({{"id", 50257}, {"content", "<mask>"}, {"single_word", false}, {"lstrip", true},
                               {"rstrip", false}, {"normalized", false}, {"special", true}});
  j["added_tokens"].push_back({{"id", 50258}, {"content", "foo"}, {"single_word", true}, {"lstrip", false},
                               {"rstrip", false}, {"normalized", true}, {"special", false}});
  auto t = load_json(j, "added.json");
  auto r50k = load_tokenizer(tokenizer_data_dir() + "/r50k_base.tiktoken");
  EXPECT_EQ(t->vocab_size(), 50259u);
  EXPECT_FALSE(t->is_special(50258));
  // lstrip: the spaces before <mask> belong to the match.
  std::vector<uint32_t> expected = r50k->encode("a");
  expected.push_back(50257);
  EXPECT_EQ(t->encode("a   <mask>", true), expected);
  // Non-special added tokens are matched even by encode_ordinary; single_word: not inside a word.
  auto ids = t->encode("foo food");
  EXPECT_EQ(ids.front(), 50258u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50258u), 1);
  EXPECT_EQ(t->decode(ids), "foo food");
}

}  // namespace
}  // namespace agpt::text
