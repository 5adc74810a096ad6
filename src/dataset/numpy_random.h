// numpy's legacy `numpy.random.RandomState` (MT19937), as far as Megatron-LM's dataset builders use
// it: seeding with a 32-bit integer and `shuffle` of a 1-D array. Bit-exact with numpy (the legacy
// stream is frozen by numpy's compatibility policy), so the shuffles Megatron writes into its index
// caches can be reproduced here without Python. Written from the algorithm descriptions (MT19937
// reference generator; numpy's legacy bounded-integer "random_interval": mask to the smallest
// 2^k - 1 >= max, reject values above max).
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

namespace agpt::dataset {

class NumpyRandomState {
 public:
  // numpy.random.RandomState(seed) for an integer seed in [0, 2^32).
  explicit NumpyRandomState(uint32_t seed);

  // The tempered MT19937 output (numpy's next_uint32 for MT19937). Outputs are tempered 624 at a
  // time, right after each twist.
  uint32_t next_uint32() {
    if (pos_ >= kN) twist();
    return out_[pos_++];
  }
  // Two draws, the first one the high half (numpy's mt19937_next64).
  uint64_t next_uint64() {
    uint64_t hi = next_uint32();
    uint64_t lo = next_uint32();
    return hi << 32 | lo;
  }
  // A uniform integer in [0, max] by masked rejection (numpy legacy random_interval): 32-bit draws
  // when max fits 32 bits, else 64-bit draws.
  uint64_t random_interval(uint64_t max) {
    if (max == 0) return 0;
    const uint64_t mask = smallest_mask(max);
    uint64_t value;
    if (max <= 0xffffffffull) {
      while ((value = (next_uint32() & mask)) > max) {
      }
    } else {
      while ((value = (next_uint64() & mask)) > max) {
      }
    }
    return value;
  }

  // RandomState.shuffle(x) for a 1-D array x of n elements: for i = n-1 down to 1, swap x[i] with
  // x[random_interval(i)]. The element type does not change the draws.
  template <typename T>
  void shuffle(T* x, size_t n) {
    if (n < 2) return;
    if (n - 1 > 0xffffffffull) {  // 64-bit draws while i needs them (arrays this large are not built here)
      for (size_t i = n - 1; i >= 1; --i) {
        size_t j = static_cast<size_t>(random_interval(i));
        std::swap(x[i], x[j]);
      }
      return;
    }
    // The same draws without a branch per rejection: every 32-bit output is masked and compared
    // with i; a rejected one swaps x[i] with itself and keeps i. Consumes exactly the outputs the
    // loop above would.
    uint32_t i = static_cast<uint32_t>(n - 1);
    while (i > 0) {
      if (pos_ >= kN) twist();
      const uint32_t mask = 0xffffffffu >> __builtin_clz(i), low = mask >> 1;  // the mask holds while i > low
      int p = pos_;
      while (p < kN && i > low) {
        const uint32_t ahead = out_[p + kAhead] & mask;  // a later draw: its element, if it is accepted
        __builtin_prefetch(x + (ahead <= i ? ahead : i));
        const uint32_t v = out_[p++] & mask;
        const uint32_t accept = v <= i ? 1u : 0u;
        const uint32_t t = accept ? v : i;
        T a = x[i];
        x[i] = x[t];
        x[t] = a;
        i -= accept;
      }
      pos_ = p;
    }
  }

  // Smallest 2^k - 1 >= v.
  static uint64_t smallest_mask(uint64_t v) {
    v |= v >> 1;
    v |= v >> 2;
    v |= v >> 4;
    v |= v >> 8;
    v |= v >> 16;
    v |= v >> 32;
    return v;
  }

 private:
  static constexpr int kN = 624;
  void twist();
  uint32_t mt_[kN];
  static constexpr int kAhead = 8;
  uint32_t out_[kN + kAhead] = {};  // tempered mt_, then zeros (read by shuffle's prefetch only)
  int pos_ = kN;
};

}  // namespace agpt::dataset
