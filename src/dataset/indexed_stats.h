// Summaries of an indexed dataset for `agpt data inspect`: document length statistics, a log2
// length histogram drawn as ASCII bars, safe one-line previews of decoded text, and token counts
// with their unigram entropy.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/indexed_dataset.h"

namespace agpt::dataset {

struct LengthStats {
  uint64_t documents = 0;
  uint64_t tokens = 0;
  uint64_t empty = 0;  // documents of length 0
  int32_t min = 0, max = 0, median = 0;
  double mean = 0;
  // buckets[0]: length 0; buckets[k] for k >= 1: lengths in [2^(k-1), 2^k - 1]. Trailing empty
  // buckets are dropped.
  std::vector<uint64_t> buckets;
};

LengthStats length_stats(std::span<const int32_t> sizes);

// "0", "1", "2-3", "4-7", ... "1,024-2,047".
std::string length_bucket_label(size_t bucket);

// One line per bucket from the first to the last non-empty one: label, a bar of up to `width`
// '#' (scaled to the largest bucket; a non-empty bucket gets at least one), count and percentage.
std::string format_length_histogram(const LengthStats& stats, int width = 50);

// text cut to at most max_bytes bytes at a UTF-8 character boundary, with control characters made
// visible (\n, \t, \r, \xNN) so the preview is one line; "…" marks a cut.
std::string preview_text(std::string_view text, size_t max_bytes = 300);

// The largest token id stored in the dataset (scans the whole .bin); -1 when it holds no tokens.
// Throws agpt::Error where a value is not an integer (float dtypes).
int64_t max_token_id(const IndexedDataset& ds);

// How often each token id occurs in the whole dataset (one scan of the .bin).
struct TokenCounts {
  std::vector<uint64_t> counts;  // counts[id] for ids 0 .. max_id
  uint64_t total = 0;
  int64_t max_id = -1;           // -1: no tokens
  uint64_t distinct() const;     // ids that occur at least once
};
// Throws agpt::Error for float dtypes, negative ids, and ids of 2^27 or more (a count table that
// large means the data is not token ids).
TokenCounts token_counts(const IndexedDataset& ds);

// H = -Σ p·ln p in nats over the distribution the counts give (0 for no tokens). It is the loss of
// the best model that ignores context (it predicts every token with its frequency), so a language
// model has learned more than token frequencies only once its loss is below it.
double unigram_entropy(std::span<const uint64_t> counts);

}  // namespace agpt::dataset
