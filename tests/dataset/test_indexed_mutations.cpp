// Deterministic random mutations of valid .idx files through the same code path as the libFuzzer
// target (fuzz/fuzz_indexed_dataset.cpp), so CI without clang exercises it: every outcome must be
// either a successful open or an agpt::Error, never a crash or another exception.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "dataset/indexed_dataset.h"
#include "dataset/indexed_dataset_fuzz.h"

namespace fs = std::filesystem;
using namespace agpt::dataset;

namespace {

std::string seed_index(TokenDType dtype, std::mt19937& rng, size_t docs) {
  std::vector<int32_t> sizes(docs);
  for (auto& s : sizes) s = static_cast<int32_t>(rng() % 40);
  return build_index_bytes(dtype, sizes);
}

std::string mutate(std::string s, std::mt19937& rng) {
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 9) {
      case 0:  // flip a bit
        if (!s.empty()) s[rng() % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:  // random byte
        if (!s.empty()) s[rng() % s.size()] = static_cast<char>(rng());
        break;
      case 2:  // truncate
        if (!s.empty()) s.resize(rng() % s.size());
        break;
      case 3:  // append junk
        s.append(1 + rng() % 16, static_cast<char>(rng()));
        break;
      case 4:  // erase a range
        if (s.size() > 2) {
          size_t a = rng() % s.size();
          s.erase(a, 1 + rng() % std::min<size_t>(16, s.size() - a));
        }
        break;
      case 5: {  // overwrite a header count with an interesting value
        static const uint64_t values[] = {0, 1, 2, 0x7fffffffffffffffull, 0xffffffffffffffffull,
                                          0x1555555555555556ull, 0x2000000000000000ull, 1ull << 32};
        size_t off = (rng() % 2) ? 18 : 26;
        if (s.size() >= off + 8) {
          uint64_t v = values[rng() % 8];
          std::memcpy(&s[off], &v, 8);
        }
        break;
      }
      case 6: {  // overwrite an int32 size with an interesting value
        static const int32_t values[] = {-1, 0, 1, 0x7fffffff, -0x7fffffff - 1, 65536};
        if (s.size() >= 38) {
          size_t off = 34 + 4 * (rng() % ((s.size() - 34) / 4));
          int32_t v = values[rng() % 6];
          std::memcpy(&s[off], &v, 4);
        }
        break;
      }
      case 7:  // change the dtype code
        if (s.size() > 17) s[17] = static_cast<char>(rng() % 10);
        break;
      case 8: {  // overwrite an int64 with a random value
        if (s.size() >= 42) {
          size_t off = 34 + rng() % (s.size() - 41);
          uint64_t v = (static_cast<uint64_t>(rng()) << 32) | rng();
          if (rng() % 2) v %= 64;
          std::memcpy(&s[off], &v, 8);
        }
        break;
      }
    }
  }
  return s;
}

}  // namespace

TEST(IndexedDatasetMutations, ThousandsOfMutatedIndexesNeverCrash) {
  std::random_device rd;
  fs::path dir = fs::temp_directory_path() / ("agpt_test_mut_" + std::to_string(::getpid()) + "_" +
                                              std::to_string(rd()));
  fs::create_directories(dir);
  std::mt19937 rng(20240613);  // fixed seed: the same inputs every run
  size_t opened = 0, rejected = 0;
  const int kIterations = 4000;
  for (int i = 0; i < kIterations; ++i) {
    TokenDType dtype = static_cast<TokenDType>(1 + rng() % 8);
    std::string idx = seed_index(dtype, rng, rng() % 12);
    if (i % 10 != 0) idx = mutate(idx, rng);  // every tenth input is valid
    IndexedFuzzOutcome out;
    ASSERT_NO_THROW(out = exercise_indexed_dataset(idx, dir.string())) << "iteration " << i;
    if (out.opened) {
      ++opened;
    } else {
      ++rejected;
      EXPECT_FALSE(out.error.empty());
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  // Both outcomes must be exercised in quantity, or the test checks little.
  EXPECT_GT(opened, static_cast<size_t>(kIterations / 20));
  EXPECT_GT(rejected, static_cast<size_t>(kIterations / 2));
  std::printf("mutations: %zu opened, %zu rejected\n", opened, rejected);
}
