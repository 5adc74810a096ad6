// BPE training and tokenizer.json writing: hand-computed merges, agreement with a brute-force
// reference trainer, determinism over threads and input order, options, and the JSON layout.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "text/bpe_trainer.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/tokenizer_json_writer.h"

#if __has_include("text/tokenizer.h")
#include "text/tokenizer.h"
#define AGPT_HAVE_TOKENIZER_LOADER 1
#endif

namespace agpt::text {
namespace {

using json = nlohmann::ordered_json;

BpeTrainerOptions quiet_options(size_t vocab_size, uint64_t min_frequency = 2) {
  BpeTrainerOptions o;
  o.vocab_size = vocab_size;
  o.min_frequency = min_frequency;
  o.show_progress = false;
  o.threads = 1;
  o.tie_break = BpeTieBreak::kSmallestBytes;  // the hand-computed expectations below use it
  return o;
}

// The id of a byte's token when the special tokens come first: GPT-2's order.
uint32_t byte_rank(unsigned char b) {
  // printable '!'..'~', '¡'..'¬', '®'..'ÿ' first (in order), then the other 68 bytes in order.
  auto printable = [](int x) { return (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE); };
  uint32_t rank = 0;
  for (int x = 0; x < 256; ++x)
    if (printable(x) && x < b && printable(b)) ++rank;
  if (printable(b)) return rank;
  rank = 188;
  for (int x = 0; x < b; ++x)
    if (!printable(x)) ++rank;
  return rank;
}

std::vector<std::pair<std::string, std::string>> merge_strings(const BpeModel& m) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto [a, b] : m.merges) out.emplace_back(m.tokens[a], m.tokens[b]);
  return out;
}

TEST(BpeTrainer, ByteOrderMatchesGpt2) {
  BpeTrainer trainer(quiet_options(256));
  BpeModel m = trainer.train();
  ASSERT_EQ(m.tokens.size(), 256u);
  EXPECT_EQ(m.tokens[0], "!");
  EXPECT_EQ(m.tokens[64], "a");     // GPT-2: "a" is 64
  EXPECT_EQ(m.tokens[188], std::string(1, '\0'));  // GPT-2: "Ā" (byte 0) is 188
  EXPECT_EQ(m.tokens[220], " ");    // GPT-2: "Ġ" is 220
  for (int b = 0; b < 256; ++b) EXPECT_EQ(m.tokens[byte_rank(b)], std::string(1, static_cast<char>(b)));
  EXPECT_TRUE(m.merges.empty());
}

TEST(BpeTrainer, ClassicExampleMergesAndIds) {
  // "aaabdaaabac" is one piece. Pairs: aa 4, ab 2, ... -> merge aa; then (aa,a) 2 and (a,b) 2 tie and
  // ("a","b") is lexicographically smaller -> ab; then (aa,ab) 2 -> aaab; then every pair occurs once.
  auto o = quiet_options(300, 2);
  o.special_tokens = {"<|endoftext|>"};
  BpeTrainer trainer(o);
  trainer.add_text("aaabdaaabac");
  BpeModel m = trainer.train();
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(merge_strings(m), (std::vector<P>{{"a", "a"}, {"a", "b"}, {"aa", "ab"}}));
  ASSERT_EQ(m.tokens.size(), 1u + 256 + 3);
  EXPECT_EQ(m.special_ids, std::vector<uint32_t>{0});
  EXPECT_EQ(m.tokens[0], "<|endoftext|>");
  EXPECT_EQ(m.tokens[1 + 64], "a");
  EXPECT_EQ(m.tokens[257], "aa");
  EXPECT_EQ(m.tokens[258], "ab");
  EXPECT_EQ(m.tokens[259], "aaab");
  EXPECT_EQ(m.merges[0], (std::pair<uint32_t, uint32_t>{65, 65}));
  EXPECT_EQ(m.merges[2], (std::pair<uint32_t, uint32_t>{257, 258}));
  EXPECT_EQ(trainer.stats().distinct_words, 1u);
  EXPECT_EQ(trainer.stats().merges, 3u);

  // With min_frequency 1 the ties at count 1 go to the smallest (left, right) bytes, until the
  // whole word is one token.
  BpeTrainer t1(quiet_options(1000, 1));
  t1.add_text("aaabdaaabac");
  BpeModel m1 = t1.train();
  EXPECT_EQ(merge_strings(m1), (std::vector<P>{{"a", "a"},
                                               {"a", "b"},
                                               {"aa", "ab"},
                                               {"a", "c"},
                                               {"aaab", "ac"},
                                               {"aaab", "d"},
                                               {"aaabd", "aaabac"}}));
  EXPECT_EQ(m1.tokens.size(), 256u + 7);  // fewer than asked: nothing is left to merge
}

TEST(BpeTrainer, TieBreakByIdsIsTheDefault) {
  EXPECT_EQ(BpeTrainerOptions{}.tie_break, BpeTieBreak::kSmallestIds);
}

TEST(BpeTrainer, TieBreakByIds) {
  // Hugging Face's rule. The first three merges are as in ClassicExampleMergesAndIds; then
  // [aaab] d [aaab] a c has four pairs of count 1 and the smallest ids win: (a=64, c=66), then
  // (d=67, aaab=258), then (aaab=258, daaab=260), where the bytes rule picks differently.
  auto o = quiet_options(1000, 1);
  o.tie_break = BpeTieBreak::kSmallestIds;
  BpeTrainer t(o);
  t.add_text("aaabdaaabac");
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(merge_strings(t.train()), (std::vector<P>{{"a", "a"},
                                                      {"a", "b"},
                                                      {"aa", "ab"},
                                                      {"a", "c"},
                                                      {"d", "aaab"},
                                                      {"aaab", "daaab"},
                                                      {"aaabdaaab", "ac"}}));
}

TEST(BpeTrainer, SpecialTokensLast) {
  auto o = quiet_options(262, 1);
  o.special_tokens = {"<s>", "</s>"};
  o.special_tokens_last = true;
  BpeTrainer trainer(o);
  trainer.add_text("hello hello hello");
  BpeModel m = trainer.train();
  ASSERT_EQ(m.tokens.size(), 262u);
  EXPECT_EQ(m.tokens[64], "a");
  EXPECT_EQ(m.special_ids, (std::vector<uint32_t>{260, 261}));
  EXPECT_EQ(m.tokens[260], "<s>");
  EXPECT_EQ(m.tokens[261], "</s>");
  EXPECT_EQ(m.merges.size(), 4u);
}

TEST(BpeTrainer, VocabSizeIsExact) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i * 7919) + "\n";
  for (size_t vocab : {256u, 257u, 300u, 350u}) {
    auto o = quiet_options(vocab, 2);
    o.special_tokens = {"<|endoftext|>"};
    if (vocab < 257) continue;
    BpeTrainer trainer(o);
    trainer.add_text(text);
    BpeModel m = trainer.train();
    EXPECT_EQ(m.tokens.size(), vocab);
    EXPECT_EQ(m.merges.size() - trainer.stats().duplicate_merges, vocab - 257);
  }
}

TEST(BpeTrainer, MinFrequencyStopsTraining) {
  BpeTrainer t(quiet_options(1000, 3));
  t.add_text("ab ab ab cd cd");  // "ab" x1, " ab" x2, " cd" x2: (a,b) 3, ( ,a) 2, ...
  BpeModel m = t.train();
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(merge_strings(m), (std::vector<P>{{"a", "b"}}));
  BpeTrainer t2(quiet_options(1000, 2));
  t2.add_text("ab ab ab cd cd");
  EXPECT_EQ(merge_strings(t2.train()), (std::vector<P>{{"a", "b"}, {" ", "ab"}, {" ", "c"}, {" c", "d"}}));
}

TEST(BpeTrainer, SpecialTokensAreCutOutOfTrainingText) {
  auto o = quiet_options(400, 2);
  o.special_tokens = {"<|endoftext|>"};
  BpeTrainer t(o);
  for (int i = 0; i < 50; ++i) t.add_text("x<|endoftext|>y<|endoftext|><|endoftext|>");
  BpeModel m = t.train();
  EXPECT_EQ(t.stats().special_occurrences, 150u);
  EXPECT_TRUE(m.merges.empty());  // only "x" and "y" were seen, each alone
}

TEST(BpeTrainer, NeverLearnsTheTextOfASpecialToken) {
  auto o = quiet_options(400, 2);
  o.special_tokens = {"<s>"};
  BpeTrainer t(o);
  for (int i = 0; i < 20; ++i) t.add_word("<s>", 5);  // as if pre-tokenized elsewhere
  BpeModel m = t.train();
  for (size_t id = 0; id < m.tokens.size(); ++id)
    if (!m.is_special(static_cast<uint32_t>(id))) {
      EXPECT_NE(m.tokens[id], "<s>");
    }
  EXPECT_EQ(merge_strings(m).size(), 1u);  // "<s" (or "s>"), never "<s>"
  EXPECT_NO_THROW(to_tokenizer_json(m));
}

TEST(BpeTrainer, MaxTokenBytes) {
  auto o = quiet_options(1000, 1);
  o.max_token_bytes = 3;
  BpeTrainer t(o);
  t.add_text("abcdefgh abcdefgh abcdefgh");
  BpeModel m = t.train();
  EXPECT_FALSE(m.merges.empty());
  for (auto& tok : m.tokens) EXPECT_LE(tok.size(), 3u);
}

TEST(BpeTrainer, LongPiecesAreNotCounted) {
  auto o = quiet_options(1000, 1);
  o.max_piece_bytes = 8;
  BpeTrainer t(o);
  t.add_text("abcdefghijklmnop xy xy");
  EXPECT_EQ(t.stats().long_pieces, 1u);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(merge_strings(t.train()), (std::vector<P>{{" ", "x"}, {" x", "y"}}));
}

TEST(BpeTrainer, RejectsBadOptions) {
  EXPECT_THROW(BpeTrainer{quiet_options(255)}, Error);
  auto o = quiet_options(300);
  o.special_tokens = {"<a>", "<a>"};
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.special_tokens = {""};
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.special_tokens = {"\xff\xfe"};
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.special_tokens = {"a"};  // the same text as the byte token "a"
  EXPECT_THROW(BpeTrainer{o}, Error);
  o.special_tokens = {"<1>", "<2>"};
  o.vocab_size = 257;
  EXPECT_THROW(BpeTrainer{o}, Error);
  o = quiet_options(300);
  o.pattern = "(unclosed";
  EXPECT_THROW(BpeTrainer{o}, Error);
  BpeTrainer t(quiet_options(300));
  t.train();
  EXPECT_THROW(t.train(), Error);
  EXPECT_THROW(t.add_text("x"), Error);
}

TEST(BpeTrainer, InvalidUtf8IsRepairedNotFatal) {
  BpeTrainer t(quiet_options(300, 1));
  std::string bad = "abc\xff\xfe def \xc3(\xed\xa0\x80 \xf4\x90\x80\x80 ok";
  t.add_text(bad);
  std::string big;
  while (big.size() < (3u << 20)) big += "Lorem ipsum\n";
  t.add_text(big + "\xc0\x80");  // a large text (the chunked path)
  t.add_text("fine");
  EXPECT_EQ(t.stats().invalid_utf8_texts, 2u);
  BpeModel m = t.train();
  EXPECT_NO_THROW(to_tokenizer_json(m));
}

TEST(BpeTrainer, EmptyInput) {
  BpeTrainer t(quiet_options(1000));
  t.add_text("");
  t.add_texts({});
  BpeModel m = t.train();
  EXPECT_EQ(m.tokens.size(), 256u);
  EXPECT_NO_THROW(json::parse(to_tokenizer_json(m)));
}

// ---- a brute-force reference trainer (same rules, recounts everything each step) --------------

struct Reference {
  std::vector<std::pair<std::string, std::string>> merges;
  size_t vocab = 0;
};

Reference reference_train(const std::map<std::string, uint64_t>& word_counts, size_t vocab_size, uint64_t min_freq,
                          size_t max_bytes, bool ties_by_ids = false) {
  std::vector<std::pair<std::vector<std::string>, uint64_t>> words;
  for (auto& [w, c] : word_counts) {
    std::vector<std::string> s;
    for (char ch : w) s.emplace_back(1, ch);
    words.emplace_back(s, c);
  }
  std::set<std::string> vocab;
  std::map<std::string, uint32_t> id;
  for (int b = 0; b < 256; ++b) {
    vocab.insert(std::string(1, static_cast<char>(b)));
    id[std::string(1, static_cast<char>(b))] = byte_rank(static_cast<unsigned char>(b));
  }
  std::set<std::pair<std::string, std::string>> merged, blocked;
  Reference r;
  while (vocab.size() < vocab_size) {
    std::map<std::pair<std::string, std::string>, uint64_t> counts;
    for (auto& [s, c] : words)
      for (size_t i = 0; i + 1 < s.size(); ++i) counts[{s[i], s[i + 1]}] += c;
    const std::pair<std::string, std::string>* best = nullptr;
    uint64_t best_count = 0;
    for (auto& [p, c] : counts) {  // map order: lexicographic (left, right); keep the first max
      if (blocked.count(p)) continue;
      bool better = c > best_count;
      if (ties_by_ids && best && c == best_count)
        better = std::make_pair(id[p.first], id[p.second]) < std::make_pair(id[best->first], id[best->second]);
      if (better) {
        best = &p;
        best_count = c;
      }
    }
    if (!best || best_count < min_freq) break;
    auto pair = *best;
    std::string t = pair.first + pair.second;
    if (max_bytes && t.size() > max_bytes) {
      blocked.insert(pair);
      continue;
    }
    if (!merged.count(pair)) {
      r.merges.push_back(pair);
      merged.insert(pair);
    }
    if (vocab.insert(t).second) id[t] = static_cast<uint32_t>(id.size());
    for (auto& [s, c] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == pair.first && s[i + 1] == pair.second) {
          out.push_back(t);
          i += 2;
        } else {
          out.push_back(s[i++]);
        }
      }
      s = std::move(out);
    }
  }
  r.vocab = vocab.size();
  return r;
}

TEST(BpeTrainer, AgreesWithBruteForceReference) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 60; ++round) {
    std::map<std::string, uint64_t> words;
    int alphabet = 2 + round % 4;
    int n_words = 5 + rng() % 40;
    for (int i = 0; i < n_words; ++i) {
      std::string w;
      int len = 1 + rng() % 12;
      for (int j = 0; j < len; ++j) w += static_cast<char>((round % 2 ? 'a' : 0xE0) + rng() % alphabet);
      words[w] += 1 + rng() % 20;
    }
    uint64_t min_freq = 1 + round % 3;
    size_t max_bytes = round % 5 == 4 ? 4 : 0;
    size_t vocab = 256 + 5 + rng() % 60;
    bool ties_by_ids = round % 3 == 1;
    auto o = quiet_options(vocab, min_freq);
    o.max_token_bytes = max_bytes;
    if (ties_by_ids) o.tie_break = BpeTieBreak::kSmallestIds;
    BpeTrainer t(o);
    for (auto& [w, c] : words) t.add_word(w, c);
    BpeModel m = t.train();
    Reference ref = reference_train(words, vocab, min_freq, max_bytes, ties_by_ids);
    ASSERT_EQ(merge_strings(m), ref.merges) << "round " << round;
    ASSERT_EQ(m.tokens.size(), ref.vocab) << "round " << round;
    ASSERT_NO_THROW(to_tokenizer_json(m));
  }
}

// ---- parity with Hugging Face tokenizers' BpeTrainer ---------------------------------------------

// Text written for this test; each line is one document.
const char* const kParityText = R"TXT(The tokenizer learns merges from counted pieces. Each piece is split into bytes, and the most frequent adjacent pair becomes a new token.
Then the counts are updated, and the next pair is chosen. When two pairs are equally frequent, a rule decides which one comes first.
Der Tokenizer lernt aus gezählten Stücken; die häufigsten Paare werden zusammengefügt. Größere Wörter brauchen mehr Schritte.
Le modèle apprend des paires fréquentes : « les », « des », « pré-tokenisation » et ainsi de suite, dès que le texte est lu.
東京の天気は晴れです。明日の天気も晴れでしょう。
Numbers like 12345, 2024-06-01 and 3.14159 are split in groups of up to three digits; 1000000 has seven.
    indented code: for (int i = 0; i < n; ++i) { total += counts[i]; }
    indented code: for (int j = 0; j < m; ++j) { total -= counts[j]; }
Emoji 🙂🙂 and symbols —— ... !!! ??? are pieces too. don't, won't, we'll, they're, I'M, You've.
the the the then there these those, tokenizer tokenizers tokenized tokenizing token tokens.
)TXT";

// What HF tokenizers 0.23.2 learned from the lines of kParityText (on the GPU machine), one JSON
// object per configuration. To regenerate, for (vocab, min_frequency) in (337, 2), (657, 1):
//   tok = Tokenizer(models.BPE())
//   tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN),
//       behavior="isolated", invert=False), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
//   tok.train_from_iterator(kParityText.split("\n"), trainers.BpeTrainer(vocab_size=vocab,
//       min_frequency=min_frequency, special_tokens=["<|endoftext|>"],
//       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
// and take model.merges of the saved tokenizer.json.
const char* const kHfMerges = R"HF({"vocab":337,"min_frequency":2,"size":337,"merges":[["e","n"],["Ġ","t"],["e","s"],["Ġ","a"],["e","r"],["Ġt","o"],["k","en"],["Ġt","h"],["r","e"],["c","o"],["i","n"],["ã","ģ"],["Ġ","d"],["Ġ","p"],["Ġto","ken"],["t","e"],["Ġ","f"],["Ġ","co"],["i","z"],["Ġ","l"],["Ġ","Â"],["Ġth","e"],["c","h"],["i","r"],["q","u"],["Ġ","m"],["Ġ","s"],["Ġtoken","iz"],["a","ir"],["e","c"],["i","t"],["n","d"],["n","t"],["o","n"],["ã","Ĥ"],["Ġ","i"],["Ġ","w"],["Ġ","Ġ"],["Ġ","in"],["en","t"],["Ġa","re"],["Ġa","nd"],["Ġp","air"],["te","d"],["Ġco","u"],["0","0"],["a","l"],["d","en"],["i","ec"],["o","s"],["r","Ã"],["u","p"],["Ġ","+"],["Ġ","b"],["Ġ","n"],["Ġp","iec"],["ĠÂ","«"],["ĠÂ","»"],["qu","ent"],["Ġtokeniz","er"],["nt","s"],["Ġcou","nts"],["!","!"],["'","t"],[".","."],["?","?"],["T","h"],["]",";"],["d","e"],["e","x"],["g","e"],["i","g"],["l","e"],["l","it"],["m","b"],["m","es"],["o","r"],["o","ken"],["p","lit"],["r","o"]]}
{"vocab":657,"min_frequency":1,"size":657,"merges":[["e","n"],["Ġ","t"],["e","s"],["Ġ","a"],["e","r"],["Ġt","o"],["k","en"],["Ġt","h"],["r","e"],["c","o"],["i","n"],["ã","ģ"],["Ġ","d"],["Ġ","p"],["Ġto","ken"],["t","e"],["Ġ","f"],["Ġ","co"],["i","z"],["Ġ","l"],["Ġ","Â"],["Ġth","e"],["c","h"],["i","r"],["q","u"],["Ġ","m"],["Ġ","s"],["Ġtoken","iz"],["a","ir"],["e","c"],["i","t"],["n","d"],["n","t"],["o","n"],["ã","Ĥ"],["Ġ","i"],["Ġ","w"],["Ġ","Ġ"],["Ġ","in"],["en","t"],["Ġa","re"],["Ġa","nd"],["Ġp","air"],["te","d"],["Ġco","u"],["0","0"],["a","l"],["d","en"],["i","ec"],["o","s"],["r","Ã"],["u","p"],["Ġ","+"],["Ġ","b"],["Ġ","n"],["Ġp","iec"],["ĠÂ","«"],["ĠÂ","»"],["qu","ent"],["Ġtokeniz","er"],["nt","s"],["Ġcou","nts"],["!","!"],["'","t"],[".","."],["?","?"],["T","h"],["]",";"],["d","e"],["e","x"],["g","e"],["i","g"],["l","e"],["l","it"],["m","b"],["m","es"],["o","r"],["o","ken"],["p","lit"],["r","o"],["s","a"],["s","t"],["t","al"],["¤","©"],["§","ãģ"],["®","å"],["°","Ĺ"],["´","ãĤ"],["Ã","¤"],["Ã","¨"],["Ã","¼"],["â","Ģ"],["ã","Ģ"],["æ","Ļ"],["æ","°Ĺ"],["ð","Ł"],["Ġ","("],["Ġ","<"],["Ġ","="],["Ġ","S"],["Ġ","W"],["Ġ","e"],["Ġ","h"],["Ġ","j"],["Ġ","{"],["Ġ","}"],["Ġ","up"],["Į","ãģ"],["Ļ","Ĥ"],["er","e"],["Ġto","tal"],["re","quent"],["in","t"],["ãģ","®å"],["Ġd","es"],["Ġf","or"],["Ġf","requent"],["Ġco","de"],["Ġl","e"],["Ġs","plit"],["Ġi","s"],["ĠĠ","Ġ"],["Ġin","den"],["rÃ","©"],["Ġ+","+"],["Ġpiec","es"],["ĠÂ»",","],["¤©","æ°Ĺ"],["´ãĤ","Įãģ"],["âĢ","Ķ"],["ãĢ","Ĥ"],["æĻ","´ãĤĮãģ"],["ðŁ","ĻĤ"],["ãģ®å","¤©æ°Ĺ"],["Ġinden","ted"],["æĻ´ãĤĮãģ","§ãģ"],["'","M"],["'","l"],["'","v"],["'","re"],["-","="],["-","t"],["0","1"],["0","2"],["0","6"],["1","2"],["1","4"],["1","00"],["2","02"],["4","5"],["5","9"],["D","er"],["E","a"],["E","m"],["G","rÃ"],["L","e"],["N","u"],["P","a"],["T","oken"],["Y","o"],["[","i"],["[","j"],["a","c"],["a","r"],["a","s"],["a","u"],["a","re"],["a","ted"],["c","ken"],["d","j"],["d","es"],["d","Ã¨"],["d","ated"],["e","d"],["e","h"],["e","v"],["e","w"],["e","co"],["f","ig"],["f","Ã¼"],["g","t"],["g","es"],["g","ro"],["h","e"],["h","i"],["h","l"],["h","en"],["i","e"],["i","k"],["i","te"],["i","on"],["i","sa"],["i","des"],["j","i"],["l","s"],["l","y"],["m","m"],["n","s"],["n","ted"],["o","f"],["o","dÃ¨"],["o","ji"],["o","ls"],["p","p"],["r","t"],["r","u"],["r","en"],["r","it"],["r","au"],["s","i"],["t","o"],["t","en"],["t","es"],["t","Ã¼"],["t","he"],["t","ion"],["u","s"],["u","sa"],["u","fig"],["u","ite"],["w","o"],["y","mb"],["y","tes"],["z","Ã¤"],["z","usa"],["¥","ãģ®å¤©æ°Ĺ"],["¬","ãģ®å¤©æ°Ĺ"],["¯","æĻ´ãĤĮãģ§ãģ"],["±","ä"],["¶","Ã"],["¶","rt"],["º","¬ãģ®å¤©æ°Ĺ"],["Ã","¶rt"],["æ","Ĺ"],["æ","ĺ"],["æ","Ŀ"],["Ġ",":"],["Ġ","I"],["Ġ","es"],["Ġ","ch"],["Ġ","qu"],["Ġ","on"],["Ġ","!!"],["Ġ",".."],["Ġ","??"],["Ġ","ge"],["Ġ","âĢĶ"],["Ġ","ðŁĻĤ"],["Ġ","-="],["Ġ","Ea"],["Ġ","GrÃ"],["Ġ","Pa"],["Ġ","Token"],["Ġ","Yo"],["Ġ","gro"],["Ġ","of"],["Ġ","ru"],["Ġ","zusa"],["Ĥ","æĻ´ãĤĮãģ§ãģ"],["ĩ","ãģ"],["İ","æĹ"],["Ĺ","ãĤ"],["Ł","ere"],["en","ge"],["Ġt","ex"],["Ġt","wo"],["es","e"],["Ġa","in"],["Ġa","dj"],["Ġa","pp"],["Ġa","us"],["er","s"],["er","nt"],["er","den"],["er","ges"],["Ġto","o"],["Ġth","en"],["Ġth","re"],["Ġth","os"],["Ġth","ere"],["Ġth","ese"],["in","g"],["ãģ","¯æĻ´ãĤĮãģ§ãģ"],["Ġd","e"],["Ġd","ec"],["Ġd","on"],["Ġd","ig"],["Ġd","Ã¨"],["Ġd","ie"],["Ġp","rÃ©"],["Ġtoken","s"],["Ġf","ir"],["Ġf","ro"],["Ġf","rÃ©"],["Ġco","mes"],["iz","er"],["Ġl","u"],["Ġl","es"],["Ġl","ik"],["Ġl","ernt"],["Ġthe","y"],["ch","en"],["ch","rit"],["qu","al"],["Ġm","os"],["Ġm","eh"],["Ġm","odÃ¨"],["Ġm","erges"],["Ġs","ev"],["Ġs","uite"],["Ġs","ymb"],["Ġtokeniz","ed"],["Ġtokeniz","ing"],["it","s"],["ãĤ","ĤæĻ´ãĤĮãģ§ãģ"],["Ġw","e"],["Ġw","on"],["Ġw","hi"],["Ġw","erden"],["Ġin","to"],["Ġpair","s"],["Ġpair","es"],["Ġcou","nted"],["00","0"],["os","en"],["up","s"],["Ġ+","="],["Ġb","eco"],["Ġb","rau"],["Ġb","ytes"],["Ġn","ex"],["Ġn","ew"],["Ġpiec","e"],["quent","es"],["Ġtokenizer","s"],["Th","e"],["Th","en"],["mb","ers"],["oken","isa"],["st","en"],["Ã¤","ufig"],["ĠS","tÃ¼"],["ĠS","chrit"],["ĠW","hen"],["ĠW","Ã¶rt"],["Ġe","t"],["Ġe","qual"],["Ġh","as"],["Ġh","Ã¤ufig"],["Ġup","dated"],["Ġle","ar"],["ãĢĤ","æĺ"],["'l","l"],["'v","e"],["-t","okenisa"],["12","3"],["14","1"],["Em","oji"],["Nu","mbers"],["ac","ent"],["fÃ¼","gt"],["hl","ten"],["mm","enge"],["ren","d"],["zÃ¤","hlten"],["¥ãģ®å¤©æ°Ĺ","ãĤĤæĻ´ãĤĮãģ§ãģ"],["±ä","º¬ãģ®å¤©æ°Ĺ"],["¶Ã","Łere"],["æĿ","±äº¬ãģ®å¤©æ°Ĺ"],["Ġes","t"],["Ġch","osen"],["Ġqu","e"],["Ġon","e"],["Ġ!!","!"],["Ġ..","."],["Ġ??","?"],["Ġge","zÃ¤hlten"],["ĠâĢĶ","âĢĶ"],["ĠðŁĻĤ","ðŁĻĤ"],["ĠEa","ch"],["ĠGrÃ","¶ÃŁere"],["ĠPa","are"],["ĠToken","izer"],["ĠYo","u"],["Ġgro","ups"],["Ġru","le"],["Ġzusa","mmenge"],["ĩãģ","Ĩ"],["İæĹ","¥ãģ®å¤©æ°ĹãĤĤæĻ´ãĤĮãģ§ãģ"],["ĹãĤ","ĩãģĨ"],["Ġtex","te"],["Ġain","si"],["Ġadj","acent"],["Ġapp","rend"],["Ġthre","e"],["Ġthos","e"],["ãģ¯æĻ´ãĤĮãģ§ãģ","Ļ"],["Ġdec","ides"],["Ġdig","its"],["ĠdÃ¨","s"]]})HF";

TEST(BpeTrainer, SameMergesAsHuggingFaceTrainer) {
  std::vector<std::string> lines;
  std::string_view rest = kParityText;
  for (size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1))
    lines.emplace_back(rest.substr(0, nl));
  lines.emplace_back(rest);
  std::string_view rows = kHfMerges;
  for (size_t nl; !rows.empty(); rows.remove_prefix(nl == std::string_view::npos ? rows.size() : nl + 1)) {
    nl = rows.find('\n');
    json expected = json::parse(rows.substr(0, nl));
    BpeTrainerOptions o;  // defaults: Hugging Face's tie-break
    o.vocab_size = expected["vocab"].get<size_t>();
    o.min_frequency = expected["min_frequency"].get<uint64_t>();
    o.special_tokens = {"<|endoftext|>"};
    o.show_progress = false;
    BpeTrainer t(o);
    for (auto& l : lines) t.add_text(l);
    BpeModel m = t.train();
    json got = json::parse(to_tokenizer_json(m))["model"];
    EXPECT_EQ(got["vocab"].size(), expected["size"].get<size_t>());
    ASSERT_EQ(got["merges"].size(), expected["merges"].size());
    for (size_t r = 0; r < got["merges"].size(); ++r)
      ASSERT_EQ(got["merges"][r], expected["merges"][r]) << "merge " << r << " (vocab " << o.vocab_size << ")";
  }
}

// ---- determinism ------------------------------------------------------------------------------

std::vector<std::string> sample_documents() {
  std::mt19937 rng(7);
  const char* words[] = {"the", "model", "tokenizer", "données", "Größe", "東京", "🙂", "naïve", "x86_64",
                         "3.14159", "don't", "we'll", "  ", "\n", "\t", "CamelCase", "snake_case", "—", "ok!"};
  std::vector<std::string> docs;
  for (int d = 0; d < 300; ++d) {
    std::string doc;
    int n = 5 + rng() % 60;
    for (int i = 0; i < n; ++i) {
      doc += words[rng() % (sizeof words / sizeof *words)];
      doc += rng() % 4 ? " " : ", ";
    }
    docs.push_back(doc);
  }
  return docs;
}

std::string train_json(const std::vector<std::string>& docs, int threads, bool batched, bool reversed,
                       BpeTieBreak tie = BpeTieBreak::kSmallestBytes) {
  auto o = quiet_options(700, 2);
  o.tie_break = tie;
  o.threads = threads;
  o.special_tokens = {"<|endoftext|>", "<|pad|>"};
  BpeTrainer t(o);
  std::vector<std::string_view> views(docs.begin(), docs.end());
  if (reversed) std::reverse(views.begin(), views.end());
  if (batched) {
    for (size_t i = 0; i < views.size(); i += 37)
      t.add_texts(std::vector<std::string_view>(views.begin() + i, views.begin() + std::min(views.size(), i + 37)));
  } else {
    for (auto v : views) t.add_text(v);
  }
  return to_tokenizer_json(t.train());
}

TEST(BpeTrainer, IdenticalForAnyThreadCountAndOrder) {
  auto docs = sample_documents();
  std::string reference = train_json(docs, 1, false, false);
  EXPECT_EQ(train_json(docs, 2, true, false), reference);
  EXPECT_EQ(train_json(docs, 4, true, true), reference);
  EXPECT_EQ(train_json(docs, 4, false, true), reference);
  std::string by_ids = train_json(docs, 1, false, false, BpeTieBreak::kSmallestIds);
  EXPECT_EQ(train_json(docs, 4, true, true, BpeTieBreak::kSmallestIds), by_ids);
  EXPECT_NE(by_ids, reference);  // the sample has ties that the two rules order differently
  // One large text (cut into chunks internally) counts the same as its lines added one by one:
  // every line starts with a letter, so no piece spans a line break.
  std::string big;
  std::vector<std::string> lines;
  for (int i = 0; big.size() < (5u << 20); ++i) {
    lines.push_back("Doc " + docs[i % docs.size()] + "\n");
    big += lines.back();
  }
  auto o = quiet_options(600, 2);
  o.threads = 4;
  BpeTrainer whole(o), by_line(o);
  whole.add_text(big);
  by_line.add_texts(std::vector<std::string_view>(lines.begin(), lines.end()));
  EXPECT_EQ(whole.stats().bytes, by_line.stats().bytes);
  EXPECT_EQ(whole.stats().pieces, by_line.stats().pieces);
  EXPECT_EQ(to_tokenizer_json(whole.train()), to_tokenizer_json(by_line.train()));
}

// ---- tokenizer.json ---------------------------------------------------------------------------

TEST(TokenizerJsonWriter, HasTheHuggingFaceLayout) {
  auto o = quiet_options(300, 2);
  o.special_tokens = {"<|begin_of_text|>", "<|endoftext|>"};
  BpeTrainer t(o);
  t.add_text("hello world, hello there. hello world!\n");
  BpeModel m = t.train();
  json j = json::parse(to_tokenizer_json(m));
  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"version", "truncation", "padding", "added_tokens", "normalizer",
                                            "pre_tokenizer", "post_processor", "decoder", "model"}));
  EXPECT_EQ(j["version"], "1.0");
  EXPECT_TRUE(j["truncation"].is_null());
  EXPECT_TRUE(j["normalizer"].is_null());
  ASSERT_EQ(j["added_tokens"].size(), 2u);
  EXPECT_EQ(j["added_tokens"][1],
            json::parse(R"({"id":1,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,)"
                        R"("normalized":false,"special":true})"));
  auto& pre = j["pre_tokenizer"];
  EXPECT_EQ(pre["type"], "Sequence");
  EXPECT_EQ(pre["pretokenizers"][0]["type"], "Split");
  EXPECT_EQ(pre["pretokenizers"][0]["pattern"]["Regex"], kDefaultBpeTrainPattern);
  EXPECT_EQ(pre["pretokenizers"][0]["behavior"], "Isolated");
  EXPECT_EQ(pre["pretokenizers"][0]["invert"], false);
  EXPECT_EQ(pre["pretokenizers"][1]["type"], "ByteLevel");
  EXPECT_EQ(pre["pretokenizers"][1]["add_prefix_space"], false);
  EXPECT_EQ(pre["pretokenizers"][1]["use_regex"], false);
  EXPECT_EQ(j["post_processor"]["type"], "ByteLevel");
  EXPECT_EQ(j["decoder"]["type"], "ByteLevel");
  auto& model = j["model"];
  EXPECT_EQ(model["type"], "BPE");
  EXPECT_TRUE(model["dropout"].is_null());
  EXPECT_TRUE(model["unk_token"].is_null());
  EXPECT_EQ(model["byte_fallback"], false);
  EXPECT_EQ(model["ignore_merges"], false);
  ASSERT_EQ(model["vocab"].size(), m.tokens.size());
  uint32_t expect = 0;
  for (auto& [k, v] : model["vocab"].items()) EXPECT_EQ(v.get<uint32_t>(), expect++) << k;  // id order
  EXPECT_EQ(model["vocab"]["<|endoftext|>"], 1);
  EXPECT_EQ(model["vocab"]["Ġ"], 2 + 220);
  EXPECT_EQ(model["vocab"]["Ā"], 2 + 188);
  ASSERT_EQ(model["merges"].size(), m.merges.size());
  for (size_t r = 0; r < m.merges.size(); ++r) {
    auto& pair = model["merges"][r];
    ASSERT_TRUE(pair.is_array());
    ASSERT_EQ(pair.size(), 2u);
    EXPECT_EQ(pair[0], byte_level_encode(m.tokens[m.merges[r].first]));
    std::string merged = pair[0].get<std::string>() + pair[1].get<std::string>();
    EXPECT_TRUE(model["vocab"].contains(merged)) << merged;
  }
  EXPECT_EQ(model["merges"][0], json::array({"h", "e"}));  // 4 times: "hello" x3, " there"
}

TEST(TokenizerJsonWriter, BosTemplate) {
  auto o = quiet_options(260, 2);
  o.special_tokens = {"<|begin_of_text|>", "<|end_of_text|>"};
  o.special_tokens_last = true;
  BpeTrainer t(o);
  BpeModel m = t.train();
  TokenizerJsonOptions w;
  w.bos_token = "<|begin_of_text|>";
  json j = json::parse(to_tokenizer_json(m, w));
  auto& post = j["post_processor"];
  EXPECT_EQ(post["type"], "Sequence");
  EXPECT_EQ(post["processors"][0]["type"], "ByteLevel");
  auto& tp = post["processors"][1];
  EXPECT_EQ(tp["type"], "TemplateProcessing");
  EXPECT_EQ(tp["single"][0]["SpecialToken"]["id"], "<|begin_of_text|>");
  EXPECT_EQ(tp["single"][1]["Sequence"]["id"], "A");
  EXPECT_EQ(tp["pair"].size(), 4u);
  EXPECT_EQ(tp["special_tokens"]["<|begin_of_text|>"]["ids"], json::array({256}));
  w.bos_token = "<s>";
  EXPECT_THROW(to_tokenizer_json(m, w), Error);
}

TEST(TokenizerJsonWriter, RejectsInconsistentModels) {
  BpeModel m;
  m.pattern = "x";
  for (int b = 0; b < 256; ++b) m.tokens.emplace_back(1, static_cast<char>(b));
  m.tokens.push_back("ab");
  m.merges = {{'a', 'b'}};
  EXPECT_NO_THROW(to_tokenizer_json(m));
  m.merges = {{'a', 'c'}};  // "ac" is not in the vocabulary
  EXPECT_THROW(to_tokenizer_json(m), Error);
  m.merges = {{'a', 9999}};
  EXPECT_THROW(to_tokenizer_json(m), Error);
  m.merges.clear();
  m.tokens.push_back("ab");  // duplicate
  EXPECT_THROW(to_tokenizer_json(m), Error);
  m.tokens.back() = "\xff\xfe";
  m.special_ids = {257};  // a special token that is not UTF-8
  EXPECT_THROW(to_tokenizer_json(m), Error);
  m.special_ids = {999};
  EXPECT_THROW(to_tokenizer_json(m), Error);
}

TEST(TokenizerJsonWriter, FlagsPatternsThatHuggingFaceReadsDifferently) {
  EXPECT_EQ(hf_pattern_problem(kDefaultBpeTrainPattern), "");
  EXPECT_EQ(hf_pattern_problem(kGpt2Pattern), "");
  EXPECT_EQ(hf_pattern_problem(kO200kPattern), "");
  EXPECT_NE(hf_pattern_problem(kCl100kPattern), "");  // \p{N}{1,3}+
  EXPECT_NE(hf_pattern_problem("a{2}+"), "");
  EXPECT_NE(hf_pattern_problem("a{2,}+"), "");
  EXPECT_EQ(hf_pattern_problem(R"(a\{2}+)"), "");  // a literal brace
  EXPECT_EQ(hf_pattern_problem("a{2}"), "");
  EXPECT_EQ(hf_pattern_problem("{"), "");
}

TEST(TokenizerJsonWriter, WritesAtomically) {
  BpeTrainer t(quiet_options(256));
  BpeModel m = t.train();
  auto dir = std::filesystem::temp_directory_path() / ("agpt_bpe_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "tokenizer.json").string();
  write_tokenizer_json(path, m);
  EXPECT_EQ(read_file(path), to_tokenizer_json(m));
  std::filesystem::remove_all(dir);
}

// ---- round trip through the loader (when text/tokenizer.h exists) -----------------------------

#ifdef AGPT_HAVE_TOKENIZER_LOADER
std::string random_unicode(std::mt19937& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    uint32_t cp;
    switch (rng() % 5) {
      case 0: cp = 0x20 + rng() % 0x5F; break;
      case 1: cp = rng() % 0x20; break;
      case 2: cp = 0xA0 + rng() % 0x700; break;
      case 3: cp = 0x3000 + rng() % 0x7000; break;
      default: cp = 0x1F300 + rng() % 0x300; break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return s;
}

TEST(BpeTrainerRoundTrip, SaveLoadEncodeDecode) {
  auto docs = sample_documents();
  auto o = quiet_options(1000, 2);
  o.special_tokens = {"<|endoftext|>"};
  BpeTrainer t(o);
  for (auto& d : docs) t.add_text(d);
  BpeModel m = t.train();
  auto dir = std::filesystem::temp_directory_path() / ("agpt_bpe_rt_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "tokenizer.json").string();
  TokenizerJsonOptions w;
  w.bos_token = "<|endoftext|>";
  write_tokenizer_json(path, m, w);
  auto tok = load_tokenizer(path);
  ASSERT_EQ(tok->vocab_size(), m.tokens.size());
  EXPECT_TRUE(tok->is_special(0));
  EXPECT_EQ(tok->pattern(), kDefaultBpeTrainPattern);

  // (a) decode(encode(x)) == x, for training text and random Unicode.
  std::mt19937 rng(99);
  std::vector<std::string> texts(docs.begin(), docs.begin() + 20);
  for (int i = 0; i < 200; ++i) texts.push_back(random_unicode(rng, 1 + rng() % 40));
  texts.push_back("");
  texts.push_back("a<|endoftext|>b");
  for (auto& x : texts) {
    auto ids = tok->encode(x, false);
    EXPECT_EQ(tok->decode(ids), x);
  }
  // A special token in text is one id when allowed, and plain text otherwise.
  auto ids = tok->encode("a<|endoftext|>b", true);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0u), ids.end());
  ids = tok->encode("a<|endoftext|>b", false);
  EXPECT_EQ(std::find(ids.begin(), ids.end(), 0u), ids.end());
  // The BOS template of the post-processor.
  ids = tok->encode_with_template("hi");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], 0u);
  // Every learned token decodes to its bytes.
  for (uint32_t id = 1; id < m.tokens.size(); ++id) ASSERT_EQ(tok->token_bytes(id), m.tokens[id]) << id;

  // (b) frequent training words come out as the single tokens that were learned for them.
  std::map<std::string, uint32_t> learned;
  for (size_t id = 0; id < m.tokens.size(); ++id)
    if (!m.is_special(static_cast<uint32_t>(id))) learned[m.tokens[id]] = static_cast<uint32_t>(id);
  for (const char* w : {"the", " the", " model", " tokenizer", " données", " Größe", " CamelCase"}) {
    auto it = learned.find(w);
    if (it == learned.end()) continue;  // not learned at this vocabulary size
    auto got = tok->encode(w, false);
    ASSERT_EQ(got.size(), 1u) << w;
    EXPECT_EQ(got[0], it->second) << w;
  }
  std::filesystem::remove_all(dir);
}
#endif

}  // namespace
}  // namespace agpt::text
