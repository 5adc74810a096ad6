#include "dataset/indexed_stats.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

#include "base/error.h"

namespace agpt::dataset {
namespace {

std::string with_commas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

size_t bucket_of(int32_t len) {
  return len <= 0 ? 0 : static_cast<size_t>(std::bit_width(static_cast<uint32_t>(len)));
}

// Length of the UTF-8 sequence starting with lead byte c, or 0 if c cannot start one.
size_t utf8_length(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return 2;
  if (c >= 0xe0 && c <= 0xef) return 3;
  if (c >= 0xf0 && c <= 0xf4) return 4;
  return 0;
}

}  // namespace

LengthStats length_stats(std::span<const int32_t> sizes) {
  LengthStats s;
  s.documents = sizes.size();
  if (sizes.empty()) return s;
  s.min = sizes[0];
  s.max = sizes[0];
  s.buckets.assign(33, 0);
  for (int32_t n : sizes) {
    s.tokens += static_cast<uint64_t>(std::max(n, 0));
    s.min = std::min(s.min, n);
    s.max = std::max(s.max, n);
    if (n == 0) ++s.empty;
    ++s.buckets[bucket_of(n)];
  }
  s.mean = static_cast<double>(s.tokens) / static_cast<double>(s.documents);
  std::vector<int32_t> copy(sizes.begin(), sizes.end());
  auto mid = copy.begin() + static_cast<std::ptrdiff_t>(copy.size() / 2);
  std::nth_element(copy.begin(), mid, copy.end());
  s.median = *mid;
  while (!s.buckets.empty() && s.buckets.back() == 0) s.buckets.pop_back();
  return s;
}

std::string length_bucket_label(size_t bucket) {
  if (bucket == 0) return "0";
  if (bucket == 1) return "1";
  uint64_t lo = 1ull << (bucket - 1), hi = (1ull << bucket) - 1;
  return with_commas(lo) + "-" + with_commas(hi);
}

std::string format_length_histogram(const LengthStats& stats, int width) {
  std::string out;
  if (stats.buckets.empty()) return out;
  size_t first = 0;
  while (stats.buckets[first] == 0) ++first;
  uint64_t top = *std::max_element(stats.buckets.begin(), stats.buckets.end());
  size_t label_w = 0, count_w = with_commas(top).size();
  for (size_t b = first; b < stats.buckets.size(); ++b) label_w = std::max(label_w, length_bucket_label(b).size());
  for (size_t b = first; b < stats.buckets.size(); ++b) {
    const uint64_t n = stats.buckets[b];
    std::string label = length_bucket_label(b);
    size_t bar = top ? static_cast<size_t>(static_cast<double>(n) * width / static_cast<double>(top) + 0.5) : 0;
    if (n > 0 && bar == 0) bar = 1;
    char pct[32];
    std::snprintf(pct, sizeof pct, "%5.1f%%", 100.0 * static_cast<double>(n) / static_cast<double>(stats.documents));
    out += std::string(label_w - label.size(), ' ') + label + " | " + std::string(bar, '#') +
           std::string(static_cast<size_t>(width) - std::min(bar, static_cast<size_t>(width)), ' ') + " " +
           std::string(count_w - with_commas(n).size(), ' ') + with_commas(n) + "  " + pct + "\n";
  }
  return out;
}

std::string preview_text(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0, used = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = utf8_length(c);
    bool valid = len > 0 && i + len <= text.size();
    for (size_t k = 1; valid && k < len; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) valid = false;
    std::string piece;
    if (!valid) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      piece = buf;
      len = 1;
    } else if (c == '\n') {
      piece = "\\n";
    } else if (c == '\t') {
      piece = "\\t";
    } else if (c == '\r') {
      piece = "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      piece = buf;
    } else {
      piece.assign(text.substr(i, len));
    }
    if (used + len > max_bytes) {
      out += "…";
      return out;
    }
    out += piece;
    used += len;
    i += len;
  }
  return out;
}

int64_t max_token_id(const IndexedDataset& ds) {
  int64_t best = -1;
  std::vector<int64_t> buf;
  const size_t chunk = 1 << 16;
  for (size_t d = 0; d < ds.num_documents(); ++d) {
    const size_t len = static_cast<size_t>(ds.sizes()[d]);
    for (size_t off = 0; off < len; off += chunk) {
      size_t n = std::min(chunk, len - off);
      ds.read(d, off, n, buf);
      for (int64_t v : buf) best = std::max(best, v);
    }
  }
  return best;
}

uint64_t TokenCounts::distinct() const {
  return static_cast<uint64_t>(std::count_if(counts.begin(), counts.end(), [](uint64_t c) { return c > 0; }));
}

TokenCounts token_counts(const IndexedDataset& ds) {
  constexpr int64_t kMaxId = (int64_t{1} << 27) - 1;  // a 1 GiB table
  TokenCounts tc;
  std::vector<int64_t> buf;
  const size_t chunk = 1 << 16;
  for (size_t d = 0; d < ds.num_documents(); ++d) {
    const size_t len = static_cast<size_t>(ds.sizes()[d]);
    for (size_t off = 0; off < len; off += chunk) {
      const size_t n = std::min(chunk, len - off);
      ds.read(d, off, n, buf);
      for (int64_t v : buf) {
        if (v < 0 || v > kMaxId)
          fail(ds.prefix(), ": document ", d, " holds the value ", v, ", which is not a token id (0 .. ", kMaxId, ")");
        if (v > tc.max_id) {
          tc.max_id = v;
          if (static_cast<size_t>(v) >= tc.counts.size())
            tc.counts.resize(std::max(static_cast<size_t>(v) + 1, tc.counts.size() * 2));
        }
        ++tc.counts[static_cast<size_t>(v)];
      }
      tc.total += n;
    }
  }
  tc.counts.resize(static_cast<size_t>(tc.max_id + 1));
  return tc;
}

double unigram_entropy(std::span<const uint64_t> counts) {
  double total = 0;
  for (uint64_t c : counts) total += static_cast<double>(c);
  double h = 0;
  for (uint64_t c : counts)
    if (c > 0) {
      const double p = static_cast<double>(c) / total;
      h -= p * std::log(p);
    }
  return h;
}

}  // namespace agpt::dataset
