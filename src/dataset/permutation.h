// Pseudo-random permutations of [0, n) that are computed, not stored: a keyed 4-round Feistel
// network (unbalanced halves, so the domain is the smallest power of two >= n) with cycle walking
// back into [0, n). O(1) memory and tens of nanoseconds per lookup, for any n up to 2^62; the same
// key gives the same permutation everywhere.
#pragma once
#include <cstddef>
#include <cstdint>

namespace agpt::dataset {

// A strong 64-bit mix (SplitMix64 finaliser); used to derive keys from seeds and names.
uint64_t mix64(uint64_t x);
// Hash of a byte string (FNV-1a then mixed); stable across platforms and runs.
uint64_t hash_bytes(const void* data, size_t size, uint64_t seed = 0);

class Permutation {
 public:
  Permutation(uint64_t n, uint64_t key);
  uint64_t operator()(uint64_t i) const;  // i < n
  uint64_t size() const { return n_; }

 private:
  uint64_t encrypt(uint64_t x) const;
  uint64_t n_, key_;
  unsigned low_bits_, high_bits_;  // the two halves; high_bits_ = low_bits_ or low_bits_ + 1
  uint64_t low_mask_, high_mask_;
  uint64_t round_keys_[4];
};

}  // namespace agpt::dataset
