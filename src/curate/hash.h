// Hashes for curation: XXH64 (Debian's libxxhash) and a 128-bit document key made of two
// independent XXH64 seeds.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>

struct XXH64_state_s;  // libxxhash's streaming state (xxhash.h)

namespace agpt::curate {

// XXH64 of data with seed.
uint64_t xxh64(std::string_view data, uint64_t seed = 0);

// XXH64 of bytes given in pieces: the same value as xxh64() of their concatenation.
class Xxh64Stream {
 public:
  explicit Xxh64Stream(uint64_t seed = 0);
  ~Xxh64Stream();
  Xxh64Stream(Xxh64Stream&&) noexcept;
  Xxh64Stream& operator=(Xxh64Stream&&) noexcept;
  void reset(uint64_t seed = 0);
  void update(std::string_view data);
  uint64_t digest() const;

 private:
  struct Free {
    void operator()(XXH64_state_s* s) const;
  };
  std::unique_ptr<XXH64_state_s, Free> state_;
};

// A 128-bit key: two XXH64 of the same bytes with different seeds. Used for exact-duplicate
// detection; n distinct texts collide with probability about n^2 / 2^129 (1e9 texts: ~1e-21).
struct Hash128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Hash128&) const = default;
};
Hash128 hash128(std::string_view data);

struct Hash128Hasher {
  size_t operator()(const Hash128& h) const { return static_cast<size_t>(h.lo ^ (h.hi * 0x9E3779B97F4A7C15ull)); }
};

// A fast 64-bit finaliser (the splitmix64 mixing step): a bijection of 64-bit values.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

}  // namespace agpt::curate
