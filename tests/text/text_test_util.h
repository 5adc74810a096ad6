// Helpers shared by the text tests: the shared test data, random Unicode text, real text.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "text/unicode_class.h"

namespace agpt::text::testing {

inline std::string tokenizer_data_dir() { return std::string(AGPT_TESTDATA) + "/tokenizers"; }

inline bool have_tokenizer_data() {
  return std::filesystem::exists(tokenizer_data_dir() + "/cases.jsonl");
}

#define AGPT_REQUIRE_TOKENIZER_DATA() \
  if (!::agpt::text::testing::have_tokenizer_data()) GTEST_SKIP() << "no " << AGPT_TESTDATA << "/tokenizers"

struct Case {
  std::string text;
  nlohmann::json expected;  // tokenizer name -> ids
};

inline std::vector<Case> load_cases() {
  std::vector<Case> cases;
  std::ifstream in(tokenizer_data_dir() + "/cases.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    cases.push_back({j["text"].get<std::string>(), j});
  }
  return cases;
}

// Random text that exercises every branch of the pre-tokenization patterns: letters of many scripts
// (upper, lower, title case, modifier, other), marks, digits of several kinds, all White_Space
// characters, \r\n, apostrophes and contractions (also 'S and the long s), punctuation, symbols,
// emoji with ZWJ and variation selectors. Code points are taken from ranges assigned long ago, so
// PCRE2's and utf8proc's Unicode versions agree on them. U+180E is left out on purpose: PCRE2 10.42
// counts it as \s, Unicode's White_Space (and tiktoken) does not.
class RandomText {
 public:
  explicit RandomText(uint32_t seed) : rng_(seed) {}

  std::string next(size_t max_chars = 48) {
    std::string out;
    size_t n = std::uniform_int_distribution<size_t>(0, max_chars)(rng_);
    for (size_t i = 0; i < n; ++i) add_one(out);
    return out;
  }

  uint32_t pick(uint32_t lo, uint32_t hi) { return std::uniform_int_distribution<uint32_t>(lo, hi)(rng_); }

 private:
  void add_one(std::string& out) {
    static const char* const kSnippets[] = {"'s", "'S", "'t", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d",
                                            "'D", "'\xC5\xBF", "\r\n", "\n\n", "  ", "...", "//", "</", " '",
                                            "\xE2\x80\x8D", "\xEF\xB8\x8F"};
    static const uint32_t kSpaces[] = {' ', ' ', ' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x2000,
                                       0x2005, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    static const uint32_t kTitle[] = {0x01C5, 0x01C8, 0x01CB, 0x01F2, 0x1F88, 0x1FBC};
    int kind = std::uniform_int_distribution<int>(0, 29)(rng_);
    uint32_t cp;
    switch (kind) {
      case 0: case 1: case 2: cp = pick('a', 'z'); break;
      case 3: cp = pick('A', 'Z'); break;
      case 4: cp = pick('0', '9'); break;
      case 5: case 6: cp = kSpaces[pick(0, sizeof kSpaces / sizeof kSpaces[0] - 1)]; break;
      case 7: out += kSnippets[pick(0, sizeof kSnippets / sizeof kSnippets[0] - 1)]; return;
      case 8: cp = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"[pick(0, 31)]; break;
      case 9: cp = pick(0xC0, 0xFF); if (cp == 0xD7 || cp == 0xF7) cp = 0xE9; break;  // Latin-1 letters
      case 10: cp = pick(0x391, 0x3A9); if (cp == 0x3A2) cp = 0x3A3; break;              // Greek capitals
      case 11: cp = pick(0x3B1, 0x3C9); break;                                            // Greek small
      case 12: cp = pick(0x410, 0x44F); break;                                            // Cyrillic
      case 13: cp = pick(0x627, 0x64A); break;                                            // Arabic letters
      case 14: cp = pick(0x300, 0x36F); break;                                            // combining marks
      case 15: cp = pick(0x905, 0x939); break;                                            // Devanagari letters
      case 16: cp = pick(0x93E, 0x94D); break;                                            // Devanagari marks
      case 17: cp = pick(0x4E00, 0x4FFF); break;                                          // CJK
      case 18: cp = pick(0x3041, 0x3096); break;                                          // Hiragana
      case 19: cp = pick(0xAC00, 0xAFFF); break;                                          // Hangul
      case 20: cp = kTitle[pick(0, 5)]; break;                                            // Lt
      case 21: cp = pick(0x2B0, 0x2C1); break;                                            // Lm
      case 22: cp = pick(0x660, 0x669) + (pick(0, 1) ? 0x306 : 0); break;                 // Arabic/Devanagari digits
      case 23: { static const uint32_t no[] = {0xB2, 0xB3, 0xB9, 0xBC, 0xBD, 0x2160, 0x2165, 0x2460, 0x2473, 0x3007};
                 cp = no[pick(0, 9)]; break; }                                            // No, Nl
      case 24: cp = pick(0x1F600, 0x1F64F); break;                                        // emoji
      case 25: cp = pick(0x2200, 0x22FF); break;                                          // math symbols
      case 26: cp = pick(0x10400, 0x1044F); break;                                        // Deseret (4-byte Lu/Ll)
      case 27: cp = pick(0x20DD, 0x20E0); break;                                          // Me
      case 28: { static const uint32_t misc[] = {0x3001, 0x3002, 0xFF01, 0xFF1F, 0xFF21, 0xFF41, 0xE000, 0xFFFD,
                                                  0x200B, 0x2019, 0x00AD, 0x17F, 0x1D400, 0x1D41A};
                 cp = misc[pick(0, 13)]; break; }
      default: cp = pick(0x5D0, 0x5EA); break;                                            // Hebrew
    }
    append_utf8(cp, out);
  }
  std::mt19937 rng_;
};

// Real text: the Python 3.11 documentation sources shipped by Debian, up to max_bytes, as one
// string per file. Empty when the docs are not installed.
inline std::vector<std::string> real_texts(size_t max_bytes) {
  std::vector<std::string> out;
  const std::filesystem::path root = "/usr/share/doc/python3.11/html/_sources";
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return out;
  std::vector<std::filesystem::path> files;
  for (auto& e : std::filesystem::recursive_directory_iterator(root, ec))
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  size_t total = 0;
  for (auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    total += ss.str().size();
    out.push_back(ss.str());
    if (total >= max_bytes) break;
  }
  return out;
}

}  // namespace agpt::text::testing
