// The lookup tables of the BPE encoder (internal to src/text): a hash of byte strings, an
// open-addressing map from byte strings to ids, and one from id pairs to merges.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::text::bpe {

constexpr uint32_t kNoId = 0xFFFFFFFFu;
constexpr uint64_t kNoMerge = ~0ull;  // also the "no pair" priority: larger than any real one

inline uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t fold_mul(uint64_t a, uint64_t b) {
  __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Equality of two short byte strings of length n (overlapping word loads, no call).
inline __attribute__((always_inline)) bool equal_bytes(const char* a, const char* b, size_t n) {
  auto x = reinterpret_cast<const unsigned char*>(a);
  auto y = reinterpret_cast<const unsigned char*>(b);
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8)
      if (load64(x + i) != load64(y + i)) return false;
    return load64(x + n - 8) == load64(y + n - 8);
  }
  if (n >= 4) return load32(x) == load32(y) && load32(x + n - 4) == load32(y + n - 4);
  for (size_t i = 0; i < n; ++i)
    if (x[i] != y[i]) return false;
  return true;
}

// A fast 64-bit hash of a short byte string (two overlapping loads for up to 16 bytes, a
// multiply-fold per 16-byte block beyond). Not for untrusted-key hash-flooding resistance: keys come
// from the tokenizer's own vocabulary, and lookups of text pieces only probe.
inline __attribute__((always_inline)) uint64_t hash_bytes(const char* data, size_t n) {
  constexpr uint64_t k0 = 0x9E3779B97F4A7C15ull, k1 = 0xC2B2AE3D27D4EB4Full, k2 = 0x165667B19E3779F9ull;
  auto p = reinterpret_cast<const unsigned char*>(data);
  uint64_t a, b, seed = k2 ^ (n * k0);
  if (n <= 16) {
    if (n >= 8) {
      a = load64(p);
      b = load64(p + n - 8);
    } else if (n >= 4) {
      a = load32(p);
      b = load32(p + n - 4);
    } else if (n > 0) {
      a = (uint64_t{p[0]} << 16) | (uint64_t{p[n >> 1]} << 8) | p[n - 1];
      b = 0;
    } else {
      a = b = 0;
    }
  } else {
    size_t i = 0;
    for (; i + 16 < n; i += 16) seed = fold_mul(load64(p + i) ^ k0, load64(p + i + 8) ^ seed);
    a = load64(p + n - 16);
    b = load64(p + n - 8);
  }
  return fold_mul(a ^ k1, b ^ seed);
}

// Byte string -> id. Built once; probed with a precomputed hash.
class BytesMap {
 public:
  void build(const std::vector<std::pair<std::string_view, uint32_t>>& entries) {
    size_t cap = 16;
    while (cap < entries.size() * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    arena_.clear();
    for (auto& [bytes, id] : entries) {
      uint64_t h = hash_bytes(bytes.data(), bytes.size());
      size_t i = h & mask_;
      while (slots_[i].len != kEmpty) i = (i + 1) & mask_;
      Slot& s = slots_[i];
      s.tag = static_cast<uint32_t>(h >> 32);
      s.id = id;
      s.len = static_cast<uint32_t>(bytes.size());
      if (bytes.size() <= sizeof s.inl) {
        std::memcpy(s.inl, bytes.data(), bytes.size());
      } else {
        uint64_t off = arena_.size();
        std::memcpy(s.inl, &off, sizeof off);
        arena_.append(bytes);
      }
    }
  }
  uint32_t find(const char* p, size_t n, uint64_t h) const {
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.len == kEmpty) return kNoId;
      if (s.tag == tag && s.len == n) {
        const char* b = s.inl;
        if (n > sizeof s.inl) {
          uint64_t off;
          std::memcpy(&off, s.inl, sizeof off);
          b = arena_.data() + off;
        }
        if (equal_bytes(b, p, n)) return s.id;
      }
    }
  }
  uint32_t find(std::string_view s) const { return find(s.data(), s.size(), hash_bytes(s.data(), s.size())); }
  size_t memory_bytes() const { return slots_.size() * sizeof(Slot) + arena_.size(); }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  struct Slot {
    uint32_t tag = 0, id = 0, len = kEmpty;
    char inl[20] = {};  // the bytes when they fit, else an offset into arena_
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  std::string arena_;
};

// (left id, right id) -> merge value: (priority << 32) | merged id. kNoMerge when absent.
class PairMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    shift_ = 64 - __builtin_ctzll(cap);
  }
  // Inserts unless present; returns false when the key was already there.
  bool insert(uint32_t a, uint32_t b, uint64_t value) {
    uint64_t key = (uint64_t{a} << 32) | b;
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmptyKey) {
        slots_[i] = {key, value};
        return true;
      }
      if (slots_[i].key == key) return false;
    }
  }
  uint64_t find(uint32_t a, uint32_t b) const {
    uint64_t key = (uint64_t{a} << 32) | b;
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.value;
      if (s.key == kEmptyKey) return kNoMerge;
    }
  }
  size_t memory_bytes() const { return slots_.size() * sizeof(Slot); }

 private:
  static constexpr uint64_t kEmptyKey = ~0ull;  // (kNoId, kNoId): never a real pair
  struct Slot {
    uint64_t key = kEmptyKey, value = kNoMerge;
  };
  size_t slot_of(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 60;
};

}  // namespace agpt::text::bpe
