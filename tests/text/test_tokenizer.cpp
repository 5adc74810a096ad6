// Exactness of the tokenizers against tiktoken / Hugging Face outputs (cases.jsonl), round trips,
// a reference BPE on random text, pathological inputs, threads.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>
#include <unordered_map>

#include "base/error.h"
#include "text/pretokenizer.h"
#include "text/tokenizer.h"
#include "text_test_util.h"

namespace agpt::text {
namespace {

using testing::load_cases;
using testing::RandomText;
using testing::tokenizer_data_dir;

// Each tokenizer is loaded once for the whole test binary.
const Tokenizer& tok(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return *it->second;
  std::string dir = tokenizer_data_dir();
  std::string path = name == "gpt2_dir"     ? dir
                     : name == "hf_gpt2"    ? dir + "/gpt2-tokenizer.json"
                                            : dir + "/" + name + ".tiktoken";
  return *(cache[name] = load_tokenizer(path));
}

// A plain reference BPE (tiktoken's rule, written for clarity, not speed) over the ranks of t.
std::vector<uint32_t> reference_bpe(const std::unordered_map<std::string, uint32_t>& ranks, const std::string& piece) {
  if (auto it = ranks.find(piece); it != ranks.end()) return {it->second};
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  for (;;) {
    size_t best = 0;
    uint32_t best_rank = UINT32_MAX;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = ranks.find(parts[i] + parts[i + 1]);
      if (it != ranks.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank == UINT32_MAX) break;
    parts[best] += parts[best + 1];
    parts.erase(parts.begin() + best + 1);
  }
  std::vector<uint32_t> ids;
  for (auto& p : parts) ids.push_back(ranks.at(p));
  return ids;
}

std::unordered_map<std::string, uint32_t> ranks_of(const Tokenizer& t) {
  std::unordered_map<std::string, uint32_t> ranks;
  for (uint32_t id = 0; id < t.vocab_size(); ++id) {
    if (t.is_special(id)) continue;
    try {
      ranks.emplace(t.token_bytes(id), id);
    } catch (const Error&) {
    }
  }
  return ranks;
}

std::vector<uint32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<uint32_t>>(); }

TEST(Tokenizer, TiktokenCases) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  auto cases = load_cases();
  for (const char* name : {"r50k_base", "cl100k_base", "o200k_base"}) {
    const Tokenizer& t = tok(name);
    for (auto& c : cases) {
      std::vector<uint32_t> ids;
      t.encode_ordinary(c.text, ids);
      EXPECT_EQ(ids, ids_of(c.expected[name])) << name << " on " << ::testing::PrintToString(c.text);
      EXPECT_EQ(t.decode(ids), c.text) << name;
    }
  }
}

TEST(Tokenizer, Gpt2DirectoryMatchesR50k) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  const Tokenizer& t = tok("gpt2_dir");
  EXPECT_EQ(t.vocab_size(), 50257u);
  for (auto& c : load_cases()) {
    EXPECT_EQ(t.encode(c.text), ids_of(c.expected["r50k_base"])) << ::testing::PrintToString(c.text);
    EXPECT_EQ(t.encode(c.text, true), ids_of(c.expected["hf_gpt2_tokenizer_json"])) << ::testing::PrintToString(c.text);
  }
  EXPECT_EQ(t.eos_id(), 50256u);
}

TEST(Tokenizer, HfGpt2TokenizerJson) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  const Tokenizer& t = tok("hf_gpt2");
  EXPECT_EQ(t.vocab_size(), 50257u);
  for (auto& c : load_cases()) {
    auto expected = ids_of(c.expected["hf_gpt2_tokenizer_json"]);
    EXPECT_EQ(t.encode(c.text, true), expected) << ::testing::PrintToString(c.text);
    EXPECT_EQ(t.encode(c.text, false), ids_of(c.expected["r50k_base"])) << ::testing::PrintToString(c.text);
    EXPECT_EQ(t.decode(expected), c.text);
  }
  EXPECT_EQ(t.token_id("<|endoftext|>"), 50256u);
  EXPECT_TRUE(t.is_special(50256));
  EXPECT_EQ(t.eos_id(), 50256u);
  EXPECT_EQ(t.encode_with_template("Hello"), (std::vector<uint32_t>{15496}));  // ByteLevel post-processor: no ids
}

TEST(Tokenizer, SpecialTokens) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  EXPECT_EQ(tok("cl100k_base").encode("a<|endoftext|>b", true), (std::vector<uint32_t>{64, 100257, 65}));
  EXPECT_EQ(tok("r50k_base").encode("a<|endoftext|>b", true), (std::vector<uint32_t>{64, 50256, 65}));
  auto ordinary = tok("cl100k_base").encode("a<|endoftext|>b");
  EXPECT_EQ(std::count(ordinary.begin(), ordinary.end(), 100257u), 0);
  EXPECT_EQ(tok("cl100k_base").decode(ordinary), "a<|endoftext|>b");
  EXPECT_EQ(tok("o200k_base").encode("<|endoftext|><|endofprompt|>", true), (std::vector<uint32_t>{199999, 200018}));
  EXPECT_EQ(tok("cl100k_base").encode("<|fim_prefix|>x<|fim_suffix|>", true),
            (std::vector<uint32_t>{100258, 87, 100260}));
  EXPECT_EQ(tok("cl100k_base").decode(std::vector<uint32_t>{100276}), "<|endofprompt|>");
}

TEST(Tokenizer, VocabularyFacts) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  EXPECT_EQ(tok("r50k_base").vocab_size(), 50257u);
  EXPECT_EQ(tok("cl100k_base").vocab_size(), 100277u);
  EXPECT_EQ(tok("o200k_base").vocab_size(), 200019u);
  EXPECT_EQ(tok("cl100k_base").token_id("<|endoftext|>"), 100257u);
  EXPECT_EQ(tok("cl100k_base").eos_id(), 100257u);
  EXPECT_EQ(tok("cl100k_base").bos_id(), std::nullopt);
  EXPECT_EQ(tok("r50k_base").token_id("Ġthe"), 262u);  // byte-level spelling of " the"
  EXPECT_EQ(tok("r50k_base").token_bytes(262), " the");
  EXPECT_EQ(tok("r50k_base").token_id("no-such-token-xyz"), std::nullopt);
  EXPECT_EQ(tok("cl100k_base").pattern(), kCl100kPattern);
  EXPECT_EQ(tok("o200k_base").pattern(), kO200kPattern);
  EXPECT_EQ(tok("r50k_base").pattern(), kGpt2Pattern);
  EXPECT_NE(tok("o200k_base").description().find("o200k"), std::string::npos);
  EXPECT_THROW(tok("r50k_base").token_bytes(50257), Error);
}

TEST(Tokenizer, DecodeIsByteExact) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  for (const char* name : {"r50k_base", "cl100k_base", "o200k_base", "hf_gpt2"}) {
    const Tokenizer& t = tok(name);
    // Tokens that split a UTF-8 character: decoded one by one, the bytes still join exactly.
    std::string text = "🚀 日本語 é 👩\u200d🔬";
    auto ids = t.encode(text);
    std::string joined;
    for (uint32_t id : ids) joined += t.decode(std::vector<uint32_t>{id});
    EXPECT_EQ(joined, text) << name;
    // Random bytes, including invalid UTF-8: every byte comes back.
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
      std::string junk(rng() % 40, '\0');
      for (auto& ch : junk) ch = static_cast<char>(rng());
      EXPECT_EQ(t.decode(t.encode(junk)), junk) << name;
    }
  }
}

TEST(Tokenizer, DecodeRejectsBadIds) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  const Tokenizer& t = tok("cl100k_base");
  EXPECT_THROW(t.decode(std::vector<uint32_t>{1, 100277}), Error);
  EXPECT_THROW(t.decode(std::vector<uint32_t>{0xFFFFFFFFu}), Error);
  EXPECT_THROW(t.decode(std::vector<uint32_t>{100261}), Error);  // an unused id between specials
  try {
    t.decode(std::vector<uint32_t>{5000000});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("5000000"), std::string::npos);
  }
}

TEST(Tokenizer, RandomTextMatchesReferenceBpe) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  for (const char* name : {"r50k_base", "cl100k_base", "o200k_base"}) {
    const Tokenizer& t = tok(name);
    auto ranks = ranks_of(t);
    auto pre = make_regex_pretokenizer(t.pattern());
    RandomText gen(99);
    int failures = 0;
    for (int i = 0; i < 1500 && failures < 3; ++i) {
      std::string text = gen.next(64);
      if (i % 10 == 0) text += std::string(100 + i % 50, "ab1 .\n"[i % 6]);  // long pieces: the heap merge
      std::vector<std::string_view> pieces;
      pre->split(text, pieces);
      std::vector<uint32_t> expected;
      for (auto p : pieces) {
        auto ids = reference_bpe(ranks, std::string(p));
        expected.insert(expected.end(), ids.begin(), ids.end());
      }
      auto got = t.encode(text);
      if (got != expected) {
        ++failures;
        ADD_FAILURE() << name << " differs from the reference BPE on " << ::testing::PrintToString(text);
      }
      EXPECT_EQ(t.decode(got), text);
    }
  }
}

TEST(Tokenizer, LongPiecesMatchReferenceBpe) {
  // Pieces longer than 256 bytes take the heap merge; it must agree with the plain algorithm.
  AGPT_REQUIRE_TOKENIZER_DATA();
  std::mt19937 rng(17);
  std::vector<std::string> texts;
  for (int i = 0; i < 12; ++i) {
    size_t len = 257 + rng() % 500;
    std::string letters, digits, mixed;
    for (size_t k = 0; k < len; ++k) {
      letters += static_cast<char>('a' + rng() % (i % 3 == 0 ? 2 : 26));
      digits += static_cast<char>('0' + rng() % 10);
      mixed += "=-_*#"[rng() % (i % 2 ? 1 : 5)];
    }
    texts.push_back(letters);
    texts.push_back(digits);
    texts.push_back(mixed);
  }
  texts.push_back(std::string(1000, 'a'));
  texts.push_back(std::string(700, ' ') + "x");
  for (const char* name : {"r50k_base", "cl100k_base", "o200k_base"}) {
    const Tokenizer& t = tok(name);
    auto ranks = ranks_of(t);
    auto pre = make_regex_pretokenizer(t.pattern());
    for (auto& text : texts) {
      std::vector<std::string_view> pieces;
      pre->split(text, pieces);
      std::vector<uint32_t> expected;
      for (auto p : pieces) {
        auto ids = reference_bpe(ranks, std::string(p));
        expected.insert(expected.end(), ids.begin(), ids.end());
      }
      EXPECT_EQ(t.encode(text), expected) << name << " on " << text.substr(0, 40) << "... (" << text.size() << " bytes)";
    }
  }
}

TEST(Tokenizer, RealTextRoundTripsAndMatchesReference) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  auto texts = testing::real_texts(400u << 10);
  if (texts.empty()) GTEST_SKIP() << "no python3.11 docs";
  const Tokenizer& t = tok("cl100k_base");
  auto ranks = ranks_of(t);
  auto pre = make_regex_pretokenizer(t.pattern());
  for (auto& text : texts) {
    std::vector<std::string_view> pieces;
    pre->split(text, pieces);
    std::vector<uint32_t> expected;
    for (auto p : pieces) {
      auto ids = reference_bpe(ranks, std::string(p));
      expected.insert(expected.end(), ids.begin(), ids.end());
    }
    ASSERT_EQ(t.encode(text), expected);
    ASSERT_EQ(t.decode(expected), text);
  }
}

TEST(Tokenizer, CustomPatternUsesPcre2AndSurvivesInvalidUtf8) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  auto t = load_tokenizer(tokenizer_data_dir() + "/r50k_base.tiktoken", R"(\p{L}+|\p{N}+|[^\p{L}\p{N}]+)");
  EXPECT_NE(t->description().find("PCRE2"), std::string::npos) << t->description();
  EXPECT_EQ(t->decode(t->encode("Hello, world!")), "Hello, world!");
  std::mt19937 rng(9);
  for (int i = 0; i < 300; ++i) {
    std::string junk(rng() % 50, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng() % 3 ? 'a' + rng() % 26 : rng());
    EXPECT_EQ(t->decode(t->encode(junk)), junk);
  }
  // Invalid bytes are pieces of their own, for scanners and PCRE2 alike.
  auto fast = load_tokenizer(tokenizer_data_dir() + "/r50k_base.tiktoken", "gpt2");
  std::string s = "ab\xff" "cd";
  EXPECT_EQ(fast->encode(s), t->encode(s));
}

TEST(Tokenizer, PathologicalInputsAreFast) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  std::string as(1 << 20, 'a');
  std::mt19937 rng(3);
  RandomText gen(5);
  std::string random_utf8;
  while (random_utf8.size() < (1u << 20)) {
    uint32_t cp = gen.pick(0x21, 0x2FFFF);
    if (cp >= 0xD800 && cp < 0xE000) continue;
    append_utf8(cp, random_utf8);
  }
  std::string random_bytes(1 << 20, '\0');
  for (auto& ch : random_bytes) ch = static_cast<char>(rng());
  std::string spaces(1 << 20, ' ');
  std::string digits;
  while (digits.size() < (1u << 20)) digits += std::to_string(rng());
  // One piece of a million bytes merges with a heap, O(n log n): about a second per MiB on a busy
  // machine at worst (GPT-2's pattern keeps a run of digits whole). A quadratic merge would take
  // hours; the limit only has to tell the two apart.
  for (const char* name : {"r50k_base", "o200k_base"}) {
    const Tokenizer& t = tok(name);
    for (const std::string* text : {&as, &random_utf8, &random_bytes, &spaces, &digits}) {
      auto start = std::chrono::steady_clock::now();
      auto ids = t.encode(*text);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_LT(s, 20.0) << name << ": 1 MiB took " << s << " s";
      EXPECT_EQ(t.decode(ids), *text) << name;
    }
  }
}

TEST(Tokenizer, ThreadsGiveTheSameIds) {
  AGPT_REQUIRE_TOKENIZER_DATA();
  const Tokenizer& t = tok("o200k_base");
  RandomText gen(11);
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) texts.push_back(gen.next(200));
  std::vector<std::vector<uint32_t>> expected;
  for (auto& s : texts) expected.push_back(t.encode(s));
  const Tokenizer& cl = tok("cl100k_base");
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) {
          size_t j = (i * (k + 1) + rep) % texts.size();
          if (t.encode(texts[j]) != expected[j]) ++mismatches;
          // Another tokenizer on the same thread must not disturb the caches.
          if (cl.decode(cl.encode(texts[j])) != texts[j]) ++mismatches;
        }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace agpt::text
