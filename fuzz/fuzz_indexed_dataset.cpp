// libFuzzer target: the input bytes are an .idx file (with a .bin derived from it); the reader must
// reject bad input with agpt::Error and never crash or read out of bounds.
//   cmake -S . -B build-fuzz -G Ninja -DAGPT_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
//   ninja -C build-fuzz fuzz_indexed_dataset && build-fuzz/fuzz_indexed_dataset -max_total_time=60
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "dataset/indexed_dataset_fuzz.h"

namespace {
const std::string& work_dir() {
  static const std::string dir = [] {
    auto p = std::filesystem::temp_directory_path() / ("agpt_fuzz_indexed_" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p.string();
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  agpt::dataset::exercise_indexed_dataset(std::string_view(reinterpret_cast<const char*>(data), size), work_dir());
  return 0;
}
