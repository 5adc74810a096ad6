// Text normalisation, shingling and MinHash signatures for duplicate detection.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::curate {

// The normal form used by exact and near-duplicate detection (datatrove's "simplify text" in
// spirit): ASCII letters lowercased, ASCII punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~)
// deleted, runs of ASCII whitespace collapsed to one space, leading/trailing space trimmed.
// Bytes >= 0x80 (non-ASCII UTF-8) are kept as they are: no Unicode case folding or NFC.
// out is replaced.
void normalize_text(std::string_view text, std::string& out);
std::string normalize_text(std::string_view text);

struct MinHashOptions {
  int ngram = 5;             // shingle size: words (default) or characters (code points)
  bool char_ngrams = false;  // character n-grams instead of word n-grams
  int bands = 14;            // LSH bands (datatrove's default 14 x 8)
  int rows = 8;              // signature values per band
  uint64_t seed = 1;         // fixes the permutations: same seed, same signatures everywhere
};

// The 64-bit hashes of the shingles of an already-normalised text, in text order (duplicates
// kept). Word shingles: the n consecutive space-separated words; a text with fewer than n (but at
// least one) words is one shingle of all its words. Character shingles: n consecutive UTF-8 code
// points (fewer -> one shingle of the whole text). An empty text has no shingles.
void shingle_hashes(std::string_view normalized, const MinHashOptions& opt, std::vector<uint64_t>& out);

// MinHash with bands*rows permutations h_k(x) = (a_k * x + b_k) mod p, p = 2^61 - 1, of the shingle
// hashes x (reduced mod p); a_k in [1, p), b_k in [0, p) drawn from splitmix64(seed).
class MinHasher {
 public:
  explicit MinHasher(const MinHashOptions& opt);
  const MinHashOptions& options() const { return opt_; }
  int size() const { return opt_.bands * opt_.rows; }

  // Signature of a normalised text into sig (size() values). Returns false (sig untouched beyond
  // resizing) when the text has no shingles: such a text takes no part in near-dedup.
  bool signature(std::string_view normalized, std::vector<uint64_t>& sig, std::vector<uint64_t>& scratch) const;
  // The signature of a set of shingle hashes.
  void signature_of(const std::vector<uint64_t>& shingles, std::vector<uint64_t>& sig) const;
  // One key per band: XXH64 of the band's rows values, seeded by the band index.
  void band_keys(const std::vector<uint64_t>& sig, uint64_t* keys) const;

 private:
  MinHashOptions opt_;
  std::vector<uint64_t> a_, b_;
};

// The fraction of equal positions of two signatures: an unbiased estimate of Jaccard similarity.
double estimated_jaccard(const uint64_t* a, const uint64_t* b, int n);

// The probability that LSH with b bands of r rows makes a pair of Jaccard similarity s a
// candidate: 1 - (1 - s^r)^b.
double lsh_probability(double s, int bands, int rows);

}  // namespace agpt::curate
