#include "curate/hash.h"

#include <algorithm>
#include <cstring>

namespace agpt::curate {
namespace {

constexpr uint64_t P1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t P2 = 0xC2B2AE3D27D4EB4Full;
constexpr uint64_t P3 = 0x165667B19E3779F9ull;
constexpr uint64_t P4 = 0x85EBCA77C2B2AE63ull;
constexpr uint64_t P5 = 0x27D4EB2F165667C5ull;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts (x86-64, aarch64) only
}
inline uint32_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t round(uint64_t acc, uint64_t lane) {
  acc += lane * P2;
  acc = rotl(acc, 31);
  return acc * P1;
}
inline uint64_t merge(uint64_t acc, uint64_t v) {
  acc ^= round(0, v);
  return acc * P1 + P4;
}

}  // namespace

uint64_t xxh64(std::string_view data, uint64_t seed) {
  const char* p = data.data();
  const char* end = p + data.size();
  uint64_t acc;
  if (data.size() >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    const char* limit = end - 32;
    do {
      v1 = round(v1, load64(p));
      v2 = round(v2, load64(p + 8));
      v3 = round(v3, load64(p + 16));
      v4 = round(v4, load64(p + 24));
      p += 32;
    } while (p <= limit);
    acc = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    acc = merge(acc, v1);
    acc = merge(acc, v2);
    acc = merge(acc, v3);
    acc = merge(acc, v4);
  } else {
    acc = seed + P5;
  }
  acc += static_cast<uint64_t>(data.size());
  while (end - p >= 8) {
    acc ^= round(0, load64(p));
    acc = rotl(acc, 27) * P1 + P4;
    p += 8;
  }
  if (end - p >= 4) {
    acc ^= static_cast<uint64_t>(load32(p)) * P1;
    acc = rotl(acc, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    acc ^= static_cast<uint64_t>(static_cast<uint8_t>(*p)) * P5;
    acc = rotl(acc, 11) * P1;
    ++p;
  }
  acc ^= acc >> 33;
  acc *= P2;
  acc ^= acc >> 29;
  acc *= P3;
  acc ^= acc >> 32;
  return acc;
}

void Xxh64Stream::reset(uint64_t seed) {
  seed_ = seed;
  v_[0] = seed + P1 + P2;
  v_[1] = seed + P2;
  v_[2] = seed;
  v_[3] = seed - P1;
  total_ = 0;
  buffered_ = 0;
}

void Xxh64Stream::update(std::string_view data) {
  const char* p = data.data();
  const char* end = p + data.size();
  total_ += data.size();
  if (buffered_ > 0) {
    size_t take = std::min<size_t>(32 - buffered_, data.size());
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    if (buffered_ < 32) return;
    for (int k = 0; k < 4; ++k) v_[k] = round(v_[k], load64(buf_ + 8 * k));
    buffered_ = 0;
  }
  while (end - p >= 32) {
    for (int k = 0; k < 4; ++k) v_[k] = round(v_[k], load64(p + 8 * k));
    p += 32;
  }
  std::memcpy(buf_, p, static_cast<size_t>(end - p));
  buffered_ = static_cast<size_t>(end - p);
}

uint64_t Xxh64Stream::digest() const {
  uint64_t acc;
  if (total_ >= 32) {
    acc = rotl(v_[0], 1) + rotl(v_[1], 7) + rotl(v_[2], 12) + rotl(v_[3], 18);
    for (int k = 0; k < 4; ++k) acc = merge(acc, v_[k]);
  } else {
    acc = seed_ + P5;
  }
  acc += total_;
  const char* p = buf_;
  const char* end = buf_ + buffered_;
  while (end - p >= 8) {
    acc ^= round(0, load64(p));
    acc = rotl(acc, 27) * P1 + P4;
    p += 8;
  }
  if (end - p >= 4) {
    acc ^= static_cast<uint64_t>(load32(p)) * P1;
    acc = rotl(acc, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    acc ^= static_cast<uint64_t>(static_cast<uint8_t>(*p)) * P5;
    acc = rotl(acc, 11) * P1;
    ++p;
  }
  acc ^= acc >> 33;
  acc *= P2;
  acc ^= acc >> 29;
  acc *= P3;
  acc ^= acc >> 32;
  return acc;
}

Hash128 hash128(std::string_view data) { return {xxh64(data, 0), xxh64(data, 0x5BD1E9955BD1E995ull)}; }

}  // namespace agpt::curate
