#include "dataset/permutation.h"

#include "base/error.h"

namespace agpt::dataset {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_bytes(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return mix64(h);
}

Permutation::Permutation(uint64_t n, uint64_t key) : n_(n), key_(mix64(key)) {
  if (n > (uint64_t(1) << 62)) fail("permutation domain too large: ", n);
  unsigned bits = 2;
  while (bits < 64 && (uint64_t(1) << bits) < n) ++bits;
  low_bits_ = bits / 2;
  high_bits_ = bits - low_bits_;
  low_mask_ = (uint64_t(1) << low_bits_) - 1;
  high_mask_ = (uint64_t(1) << high_bits_) - 1;
  for (uint64_t r = 0; r < 4; ++r) round_keys_[r] = mix64(key_ + r * 0x632be59bd9b4e019ULL);
}

// Alternating (unbalanced) Feistel rounds on x = (a: high_bits_, b: low_bits_). Each round replaces
// one half by itself xor a keyed hash of the other, so every round is invertible.
uint64_t Permutation::encrypt(uint64_t x) const {
  uint64_t a = x >> low_bits_, b = x & low_mask_;
  for (int r = 0; r < 4; r += 2) {
    a ^= mix64(b ^ round_keys_[r]) & high_mask_;
    b ^= mix64(a ^ round_keys_[r + 1]) & low_mask_;
  }
  return (a << low_bits_) | b;
}

uint64_t Permutation::operator()(uint64_t i) const {
  // Cycle walking: the network permutes [0, 2^bits); re-encrypt until back inside [0, n).
  // The domain is < 2n, so on average fewer than 2 passes are needed.
  uint64_t x = encrypt(i);
  while (x >= n_) x = encrypt(x);
  return x;
}

}  // namespace agpt::dataset
