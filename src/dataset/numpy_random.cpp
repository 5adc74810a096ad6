#include "dataset/numpy_random.h"

namespace agpt::dataset {

NumpyRandomState::NumpyRandomState(uint32_t seed) {
  // init_genrand: Knuth's multiplier, index added after the multiply.
  mt_[0] = seed;
  for (int i = 1; i < kN; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  pos_ = kN;
}

void NumpyRandomState::twist() {
  constexpr int kM = 397;
  constexpr uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
  int k = 0;
  for (; k < kN - kM; ++k) {
    uint32_t y = (mt_[k] & kUpper) | (mt_[k + 1] & kLower);
    mt_[k] = mt_[k + kM] ^ (y >> 1) ^ (-(y & 1u) & kMatrixA);
  }
  for (; k < kN - 1; ++k) {
    uint32_t y = (mt_[k] & kUpper) | (mt_[k + 1] & kLower);
    mt_[k] = mt_[k + (kM - kN)] ^ (y >> 1) ^ (-(y & 1u) & kMatrixA);
  }
  uint32_t y = (mt_[kN - 1] & kUpper) | (mt_[0] & kLower);
  mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
  for (int i = 0; i < kN; ++i) {
    uint32_t t = mt_[i];
    t ^= t >> 11;
    t ^= (t << 7) & 0x9d2c5680u;
    t ^= (t << 15) & 0xefc60000u;
    t ^= t >> 18;
    out_[i] = t;
  }
  pos_ = 0;
}

}  // namespace agpt::dataset
