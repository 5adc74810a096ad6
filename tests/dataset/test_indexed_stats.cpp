// Length statistics, the log2 histogram and text previews of `agpt data inspect`.
#include "dataset/indexed_stats.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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
