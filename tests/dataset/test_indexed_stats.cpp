// Length statistics, the log2 histogram, text previews and token counts / unigram entropy of
// `agpt data inspect`.
#include "dataset/indexed_stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"

namespace fs = std::filesystem;
using namespace agpt::dataset;

TEST(IndexedStats, LengthStatsAndBuckets) {
  std::vector<int32_t> sizes = {0, 1, 2, 3, 4, 7, 8, 1000, 0};
  auto s = length_stats(sizes);
  EXPECT_EQ(s.documents, 9u);
  EXPECT_EQ(s.tokens, 1025u);
  EXPECT_EQ(s.empty, 2u);
  EXPECT_EQ(s.min, 0);
  EXPECT_EQ(s.max, 1000);
  EXPECT_EQ(s.median, 3);
  EXPECT_NEAR(s.mean, 1025.0 / 9, 1e-9);
  // 0 | 1 | 2-3 | 4-7 | 8-15 | ... | 512-1023
  ASSERT_EQ(s.buckets.size(), 11u);
  EXPECT_EQ(s.buckets[0], 2u);
  EXPECT_EQ(s.buckets[1], 1u);
  EXPECT_EQ(s.buckets[2], 2u);
  EXPECT_EQ(s.buckets[3], 2u);
  EXPECT_EQ(s.buckets[4], 1u);
  EXPECT_EQ(s.buckets[10], 1u);
  EXPECT_EQ(length_bucket_label(0), "0");
  EXPECT_EQ(length_bucket_label(1), "1");
  EXPECT_EQ(length_bucket_label(2), "2-3");
  EXPECT_EQ(length_bucket_label(11), "1,024-2,047");
  EXPECT_EQ(length_bucket_label(32), "2,147,483,648-4,294,967,295");
  std::string h = format_length_histogram(s, 10);
  EXPECT_NE(h.find("        0 | ##########"), std::string::npos) << h;
  EXPECT_NE(h.find("512-1,023 | #####"), std::string::npos) << h;
  EXPECT_NE(h.find(" 2   22.2%"), std::string::npos) << h;
  size_t lines = 0;
  for (char c : h) lines += c == '\n';
  EXPECT_EQ(lines, 11u);

  auto one = length_stats(std::vector<int32_t>{0x7fffffff});
  EXPECT_EQ(one.buckets.size(), 32u);
  EXPECT_EQ(one.buckets.back(), 1u);
  auto none = length_stats(std::vector<int32_t>{});
  EXPECT_EQ(none.documents, 0u);
  EXPECT_EQ(format_length_histogram(none), "");
}

TEST(IndexedStats, PreviewText) {
  EXPECT_EQ(preview_text("hello\nworld\t!"), "hello\\nworld\\t!");
  EXPECT_EQ(preview_text("abcdef", 3), "abc…");
  EXPECT_EQ(preview_text("abc", 3), "abc");
  // Never cuts inside a character: "é" is 2 bytes.
  EXPECT_EQ(preview_text("aé", 2), "a…");
  EXPECT_EQ(preview_text("aé", 3), "aé");
  // Invalid UTF-8 and control bytes are shown as escapes.
  EXPECT_EQ(preview_text(std::string("a\xff\x01" "b")), "a\\xff\\x01b");
  EXPECT_EQ(preview_text(std::string("\xe2\x82")), "\\xe2\\x82");  // truncated sequence
}

TEST(IndexedStats, UnigramEntropyByHand) {
  // p = 1/2, 1/4, 1/4 (id 2 never occurs): H = ½·ln 2 + 2·¼·ln 4 = 1.5·ln 2.
  EXPECT_NEAR(unigram_entropy(std::vector<uint64_t>{2, 1, 0, 1}), 1.5 * std::log(2.0), 1e-12);
  EXPECT_NEAR(unigram_entropy(std::vector<uint64_t>{5, 5, 5, 5}), std::log(4.0), 1e-12);  // uniform: ln V
  EXPECT_EQ(unigram_entropy(std::vector<uint64_t>{0, 7}), 0.0);  // one token: nothing to learn
  EXPECT_EQ(unigram_entropy(std::vector<uint64_t>{}), 0.0);
}

TEST(IndexedStats, TokenCountsOfADataset) {
  const fs::path dir = fs::temp_directory_path() / ("agpt_test_stats_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string prefix = (dir / "tc").string();
  {
    IndexedDatasetWriter w(prefix, TokenDType::kUInt16);
    w.add_document(std::vector<uint32_t>{0, 3});  // over both documents: 0 twice, 1 once, 3 once
    w.add_document(std::vector<uint32_t>{});
    w.add_document(std::vector<uint32_t>{1, 0});
    w.finish();
  }
  TokenCounts tc = token_counts(IndexedDataset(prefix));
  EXPECT_EQ(tc.counts, (std::vector<uint64_t>{2, 1, 0, 1}));
  EXPECT_EQ(tc.total, 4u);
  EXPECT_EQ(tc.max_id, 3);
  EXPECT_EQ(tc.distinct(), 3u);
  EXPECT_NEAR(unigram_entropy(tc.counts), 1.5 * std::log(2.0), 1e-12);

  // A value far beyond any vocabulary is not counted into a giant table.
  {
    IndexedDatasetWriter w(prefix + "_big", TokenDType::kInt32);
    w.add_document(std::vector<uint32_t>{1, 1u << 28});
    w.finish();
  }
  EXPECT_THROW(token_counts(IndexedDataset(prefix + "_big")), agpt::Error);
  {
    IndexedDatasetWriter w(prefix + "_empty", TokenDType::kUInt16);
    w.add_document(std::vector<uint32_t>{});
    w.finish();
  }
  TokenCounts none = token_counts(IndexedDataset(prefix + "_empty"));
  EXPECT_EQ(none.total, 0u);
  EXPECT_EQ(none.max_id, -1);
  EXPECT_TRUE(none.counts.empty());
  fs::remove_all(dir);
}
