// Bad inputs give agpt::Error with a message that names the place and the problem; never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/file.h"
#include "text/byte_level.h"
#include "text/tokenizer.h"
#include "text_test_util.h"

namespace agpt::text {
namespace {

using nlohmann::json;
using testing::tokenizer_data_dir;

class TokenizerErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("agpt_tokerr_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string put(const std::string& name, const std::string& data) {
    auto p = dir_ / name;
    std::ofstream(p, std::ios::binary) << data;
    return p.string();
  }
  std::filesystem::path dir_;
};

// Expects load/parse to throw agpt::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected one mentioning " << *parts.begin();
  } catch (const Error& e) {
    std::string msg = e.what();
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nlacks: " << p;
  }
}

// A small valid tokenizer.json (all 256 bytes, two merges) to break in the tests.
json small_json() {
  json vocab = json::object();
  uint32_t id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_level_char(static_cast<unsigned char>(b))] = id++;
  vocab["ab"] = id++;
  vocab["abc"] = id++;
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab c"}}}}};
}

TEST_F(TokenizerErrors, SmallJsonWorks) {
  auto t = load_tokenizer(put("tok.json", small_json().dump()));
  EXPECT_EQ(t->encode("abc abd"), (std::vector<uint32_t>{257, 32, 256, 100}));  // "abc" + " ab d"
}

TEST_F(TokenizerErrors, Paths) {
  expect_error([&] { load_tokenizer((dir_ / "missing.json").string()); }, {"missing.json", "does not exist"});
  expect_error([&] { load_tokenizer(""); }, {"no tokenizer given"});
  expect_error([&] { load_tokenizer(dir_.string()); }, {"tokenizer.json", "merges.txt"});
  expect_error([&] { load_tokenizer(put("empty.tiktoken", "")); }, {"empty.tiktoken", "not a tokenizer"});
  expect_error([&] { load_tokenizer(put("junk.bin", "\x01\x02 hello\nworld")); }, {"junk.bin", "not a tokenizer"});
}

TEST_F(TokenizerErrors, TiktokenFiles) {
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", "IQ== 0\nIg== 1\n!!!! 2\n")); },
               {"cl100k_base.tiktoken:3", "not valid base64"});
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", "IQ== 0\nIg==\n")); },
               {"cl100k_base.tiktoken:2", "expected"});
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", "IQ== 0\nIg== 0\n")); },
               {"cl100k_base.tiktoken:2", "rank 0 was already given on line 1"});
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", "IQ== 0\nIQ== 1\n")); }, {"appears twice"});
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", "IQ== 0\nIg== -1\n")); },
               {"cl100k_base.tiktoken:2", "rank"});
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", "IQ== 0\nIg== 99999999999\n")); },
               {"cl100k_base.tiktoken:2"});
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", "IQ= 0\n")); }, {"not valid base64"});
  expect_error([&] { load_tokenizer(put("mine.tiktoken", "IQ== 0\nIg== 1\n")); }, {"mine.tiktoken", "--pattern"});
  auto t = load_tokenizer(put("mine.tiktoken", "IQ== 0\nIg== 1\n"), "cl100k");
  EXPECT_EQ(t->encode("!\"!"), (std::vector<uint32_t>{0, 1, 0}));
  expect_error([&] { load_tokenizer(put("mine2.tiktoken", "IQ== 0\n"), "(unclosed"); }, {"--pattern", "(unclosed"});
}

TEST_F(TokenizerErrors, TruncatedRealFiles) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  std::string cl = read_file(tokenizer_data_dir() + "/cl100k_base.tiktoken");
  expect_error([&] { load_tokenizer(put("cl100k_base.tiktoken", cl.substr(0, 100003))); }, {"cl100k_base.tiktoken:"});
  std::string js = read_file(tokenizer_data_dir() + "/gpt2-tokenizer.json");
  expect_error([&] { load_tokenizer(put("tokenizer.json", js.substr(0, js.size() / 2))); },
               {"tokenizer.json", "not valid JSON"});
  std::string garbled = js;
  for (size_t i = 1000; i < garbled.size(); i += 997) garbled[i] = '\x07';
  EXPECT_THROW(load_tokenizer(put("garbled.json", garbled)), Error);
  // A GPT-2 directory whose merges do not belong to the vocabulary.
  std::filesystem::create_directories(dir_ / "gpt2");
  put("gpt2/vocab.json", R"({"a": 0, "b": 1})");
  put("gpt2/merges.txt", "#version: 0.2\na b\n");
  expect_error([&] { load_tokenizer((dir_ / "gpt2").string()); }, {"merge #1", "not in the vocabulary"});
  put("gpt2/merges.txt", "#version: 0.2\na b c\n");
  expect_error([&] { load_tokenizer((dir_ / "gpt2").string()); }, {"merges", ":2"});
}

TEST_F(TokenizerErrors, UnsupportedComponentsAreNamed) {
  auto with = [&](const char* key, json value) {
    json j = small_json();
    j[key] = value;
    return put("tok.json", j.dump());
  };
  expect_error([&] { load_tokenizer(with("normalizer", {{"type", "NFC"}})); }, {"normalizer", "NFC"});
  expect_error([&] { load_tokenizer(with("pre_tokenizer", {{"type", "Metaspace"}})); }, {"Metaspace"});
  expect_error([&] { load_tokenizer(with("pre_tokenizer", nullptr)); }, {"pre_tokenizer"});
  expect_error([&] { load_tokenizer(with("post_processor", {{"type", "Weird"}})); }, {"post_processor", "Weird"});
  expect_error(
      [&] {
        load_tokenizer(with("pre_tokenizer", {{"type", "Sequence"},
                                              {"pretokenizers",
                                               {{{"type", "Split"},
                                                 {"pattern", {{"Regex", "\\s+"}}},
                                                 {"behavior", "Removed"}},
                                                {{"type", "ByteLevel"}, {"use_regex", false}}}}}));
      },
      {"Split", "Removed"});
  expect_error(
      [&] {
        load_tokenizer(with("pre_tokenizer", {{"type", "Sequence"},
                                              {"pretokenizers", {{{"type", "Digits"}}, {{"type", "ByteLevel"}}}}}));
      },
      {"Digits"});
  json wp = small_json();
  wp["model"]["type"] = "WordPiece";
  expect_error([&] { load_tokenizer(put("wp.json", wp.dump())); }, {"WordPiece"});
  json bf = small_json();
  bf["model"]["byte_fallback"] = true;
  expect_error([&] { load_tokenizer(put("bf.json", bf.dump())); }, {"byte_fallback"});
  json bad_id = small_json();
  bad_id["model"]["vocab"]["ab"] = "seven";
  expect_error([&] { load_tokenizer(put("bad_id.json", bad_id.dump())); }, {"token id", "seven"});
  json bad_merge = small_json();
  bad_merge["model"]["merges"].push_back("x zz");
  expect_error([&] { load_tokenizer(put("bad_merge.json", bad_merge.dump())); }, {"merge #3", "zz"});
  json dup = small_json();
  dup["model"]["vocab"]["abc"] = 5;
  expect_error([&] { load_tokenizer(put("dup.json", dup.dump())); }, {"id 5", "twice"});
  json huge = small_json();
  huge["model"]["vocab"]["abc"] = 4000000000u;
  expect_error([&] { load_tokenizer(put("huge.json", huge.dump())); }, {"too large"});
  json tmpl = small_json();
  tmpl["post_processor"] = {{"type", "TemplateProcessing"},
                            {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                            {"special_tokens", json::object()}};
  expect_error([&] { load_tokenizer(put("tmpl.json", tmpl.dump())); }, {"<s>"});
  expect_error([&] { load_tokenizer(put("notobj.json", "[1, 2, 3]")); }, {"notobj.json"});
  expect_error([&] { load_tokenizer(put("nomodel.json", "{}")); }, {"model"});
}

TEST_F(TokenizerErrors, MutatedFilesThrowOnlyAgptErrors) {
  // Random damage to a tokenizer.json and a rank file: each load either works or throws
  // agpt::Error; never another exception, never a crash.
  std::string js = small_json().dump();
  js.insert(js.find("\"model\""), R"("added_tokens": [{"id": 300, "content": "<s>", "special": true}], )"
                                    R"("post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": )"
                                    R"({"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], )"
                                    R"("special_tokens": {"<s>": {"id": "<s>", "ids": [300], "tokens": ["<s>"]}}}, )");
  js.erase(js.find("\"added_tokens\":[],"), 18);
  js.erase(js.find("\"post_processor\":null,"), 22);
  ASSERT_NO_THROW(parse_tokenizer_json(js, "base"));
  std::string ranks = "IQ== 0\nIg== 1\nIiE= 2\nISE= 3\n";
  std::mt19937 rng(5);
  const char alphabet[] = "{}[]\":, 0123456789-abcdefnulltrue\\\n=+/";
  for (int i = 0; i < 3000; ++i) {
    std::string m = i % 2 ? js : ranks;
    int edits = 1 + rng() % 3;
    for (int k = 0; k < edits && !m.empty(); ++k) {
      size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = alphabet[rng() % (sizeof alphabet - 1)]; break;
        case 1: m.erase(at, 1 + rng() % 8); break;
        default: m.insert(at, 1, alphabet[rng() % (sizeof alphabet - 1)]); break;
      }
    }
    try {
      auto c = i % 2 ? parse_tokenizer_json(m, "mutated.json") : parse_tiktoken_ranks(m, "mutated.tiktoken");
      if (c.split_patterns.empty()) c.split_patterns = {"\\S+|\\s+"};
      Tokenizer t(std::move(c));
      auto ids = t.encode("abc <s> !!", true);
      for (uint32_t id : ids) ASSERT_LT(id, t.vocab_size());
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-agpt exception " << e.what() << " for " << m.substr(0, 200);
    }
  }
}

TEST_F(TokenizerErrors, MissingBytesAreDroppedOrUnk) {
  // A vocabulary without some bytes still loads; those bytes encode as unk when there is one.
  json j = small_json();
  j["model"]["vocab"].erase(byte_level_char(0xFF));
  j["model"]["vocab"]["<unk>"] = 300;
  j["model"]["unk_token"] = "<unk>";
  auto t = load_tokenizer(put("tok.json", j.dump()));
  EXPECT_EQ(t->encode(std::string("a\xff")), (std::vector<uint32_t>{97, 300}));
  j["model"]["unk_token"] = nullptr;
  auto t2 = load_tokenizer(put("tok2.json", j.dump()));
  EXPECT_EQ(t2->encode(std::string("a\xff")), (std::vector<uint32_t>{97}));
}

}  // namespace
}  // namespace agpt::text
