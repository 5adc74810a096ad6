#include "curate/minhash.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "curate/hash.h"

namespace agpt::curate {
namespace {

constexpr uint64_t kPrime = (uint64_t{1} << 61) - 1;

struct CharClass {
  // 0: keep, 1: whitespace, 2: punctuation (deleted); lower[] maps A-Z to a-z.
  uint8_t cls[256];
  char lower[256];
  CharClass() {
    for (int c = 0; c < 256; ++c) {
      cls[c] = 0;
      lower[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    for (char c : std::string_view(" \t\n\r\v\f")) cls[static_cast<uint8_t>(c)] = 1;
    for (char c : std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) cls[static_cast<uint8_t>(c)] = 2;
  }
};
const CharClass kChars;

inline uint64_t mod_p(unsigned __int128 v) {
  uint64_t r = static_cast<uint64_t>(v & kPrime) + static_cast<uint64_t>(v >> 61);
  r = (r & kPrime) + (r >> 61);
  return r >= kPrime ? r - kPrime : r;
}

uint64_t splitmix(uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  return mix64(state);
}

}  // namespace

void normalize_text(std::string_view text, std::string& out) {
  out.clear();
  out.reserve(text.size());
  bool pending_space = false;
  for (char ch : text) {
    auto c = static_cast<uint8_t>(ch);
    uint8_t k = kChars.cls[c];
    if (k == 2) continue;
    if (k == 1) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    out.push_back(kChars.lower[c]);
  }
}

std::string normalize_text(std::string_view text) {
  std::string out;
  normalize_text(text, out);
  return out;
}

void shingle_hashes(std::string_view s, const MinHashOptions& opt, std::vector<uint64_t>& out) {
  out.clear();
  if (s.empty()) return;
  const size_t n = static_cast<size_t>(opt.ngram);
  if (opt.char_ngrams) {
    // Start offsets of the code points (bytes that are not UTF-8 continuation bytes).
    std::vector<size_t> starts;
    starts.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i)
      if ((static_cast<uint8_t>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
    if (starts.size() <= n) {
      out.push_back(xxh64(s, opt.seed));
      return;
    }
    starts.push_back(s.size());
    const size_t count = starts.size() - 1 - n + 1;
    out.reserve(count);
    for (size_t i = 0; i < count; ++i) out.push_back(xxh64(s.substr(starts[i], starts[i + n] - starts[i]), opt.seed));
    return;
  }
  // Word hashes first (each word hashed once), then each n-gram combines n word hashes in order.
  std::vector<uint64_t> words;
  words.reserve(s.size() / 5 + 1);
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    words.push_back(xxh64(s.substr(i, j - i), opt.seed));
    i = j + 1;
  }
  const size_t m = std::min(n, words.size());
  const size_t count = words.size() - m + 1;
  out.resize(count);
  for (size_t w = 0; w < count; ++w) {
    uint64_t h = 0x243F6A8885A308D3ull ^ m;
    for (size_t k = 0; k < m; ++k) h = mix64(h ^ words[w + k]) + k;
    out[w] = h;
  }
}

MinHasher::MinHasher(const MinHashOptions& opt) : opt_(opt) {
  if (opt.ngram < 1) fail("dedup: n-gram size must be at least 1 (got ", opt.ngram, ")");
  if (opt.bands < 1 || opt.rows < 1) fail("dedup: bands and rows must be at least 1 (got ", opt.bands, " x ", opt.rows, ")");
  if (opt.bands * opt.rows > 4096) fail("dedup: bands x rows must be at most 4096");
  uint64_t state = opt.seed;
  const int k = size();
  a_.resize(k);
  b_.resize(k);
  for (int i = 0; i < k; ++i) {
    a_[i] = splitmix(state) % (kPrime - 1) + 1;
    b_[i] = splitmix(state) % kPrime;
  }
}

void MinHasher::signature_of(const std::vector<uint64_t>& shingles, std::vector<uint64_t>& sig) const {
  const int k = size();
  sig.assign(k, std::numeric_limits<uint64_t>::max());
  const uint64_t* a = a_.data();
  const uint64_t* b = b_.data();
  uint64_t* out = sig.data();
  for (uint64_t x0 : shingles) {
    const uint64_t x = mod_p(x0);
    for (int i = 0; i < k; ++i) {
      uint64_t v = mod_p(static_cast<unsigned __int128>(a[i]) * x + b[i]);
      out[i] = v < out[i] ? v : out[i];
    }
  }
}

bool MinHasher::signature(std::string_view normalized, std::vector<uint64_t>& sig, std::vector<uint64_t>& scratch) const {
  shingle_hashes(normalized, opt_, scratch);
  if (scratch.empty()) {
    sig.assign(size(), std::numeric_limits<uint64_t>::max());
    return false;
  }
  // Repeated shingles do not change a minimum: drop them first (fewer permutations to apply).
  std::sort(scratch.begin(), scratch.end());
  scratch.erase(std::unique(scratch.begin(), scratch.end()), scratch.end());
  signature_of(scratch, sig);
  return true;
}

void MinHasher::band_keys(const std::vector<uint64_t>& sig, uint64_t* keys) const {
  for (int band = 0; band < opt_.bands; ++band) {
    keys[band] = xxh64(std::string_view(reinterpret_cast<const char*>(sig.data() + band * opt_.rows),
                                        sizeof(uint64_t) * opt_.rows),
                       static_cast<uint64_t>(band));
  }
}

double estimated_jaccard(const uint64_t* a, const uint64_t* b, int n) {
  int same = 0;
  for (int i = 0; i < n; ++i) same += a[i] == b[i];
  return n > 0 ? static_cast<double>(same) / n : 0.0;
}

double lsh_probability(double s, int bands, int rows) { return 1.0 - std::pow(1.0 - std::pow(s, rows), bands); }

}  // namespace agpt::curate
