#include "base/checksum.h"

#include <cstring>

namespace agpt {
namespace {

constexpr uint64_t kPrime = 0x100000001b3ull;

}  // namespace

void Fnv1a64Words::update(std::string_view data) {
  size_t i = 0;
  if (tail_n_ > 0) {  // complete the pending word first
    while (tail_n_ < 8 && i < data.size()) tail_[tail_n_++] = static_cast<unsigned char>(data[i++]);
    if (tail_n_ < 8) return;
    uint64_t w;
    std::memcpy(&w, tail_, 8);
    h_ = (h_ ^ w) * kPrime;
    tail_n_ = 0;
  }
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + i, 8);  // little-endian hosts only (as the rest of agpt)
    h_ = (h_ ^ w) * kPrime;
  }
  for (; i < data.size(); ++i) tail_[tail_n_++] = static_cast<unsigned char>(data[i]);
}

uint64_t Fnv1a64Words::digest() const {
  uint64_t h = h_;
  for (size_t i = 0; i < tail_n_; ++i) h = (h ^ tail_[i]) * kPrime;
  return h;
}

uint64_t fnv1a64_words(std::string_view data) {
  Fnv1a64Words f;
  f.update(data);
  return f.digest();
}

}  // namespace agpt
