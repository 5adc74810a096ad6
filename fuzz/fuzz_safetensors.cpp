// libFuzzer target: the input bytes are a safetensors file; the header parser must reject bad input
// with agpt::Error and never crash or read out of bounds. Every tensor of an accepted file is then
// touched, since acceptance promises that reading needs no further checks.
//   cmake -S . -B build-fuzz -G Ninja -DAGPT_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
//   ninja -C build-fuzz fuzz_safetensors && build-fuzz/fuzz_safetensors -max_total_time=60
#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view file(reinterpret_cast<const char*>(data), size);
  try {
    agpt::model::StHeader h = agpt::model::parse_safetensors(file, "fuzz.safetensors");
    volatile uint8_t sink = 0;
    for (const auto& t : h.tensors)
      for (uint64_t b = t.begin; b < t.end; ++b) sink = sink ^ static_cast<uint8_t>(file[h.data_start + b]);
  } catch (const agpt::Error&) {
  }
  return 0;
}
