// One round of robustness checking for the indexed-dataset reader, shared by the libFuzzer target
// (fuzz/fuzz_indexed_dataset.cpp) and the deterministic mutation test (tests/dataset), so that CI
// without clang exercises the same code path.
#pragma once
#include <string>
#include <string_view>

namespace agpt::dataset {

struct IndexedFuzzOutcome {
  bool opened = false;      // IndexedDataset accepted the files
  size_t documents_read = 0;
  std::string error;        // the agpt::Error message that rejected the files (empty when opened)
};

// Writes idx_bytes as DIR/fuzz.idx and a .bin derived from it (the size its sizes imply, capped at
// 64 KiB, sometimes one byte off), opens them with IndexedDataset and reads every document through
// each read function. agpt::Error is an expected outcome; anything else (a crash, another exception)
// is a bug and propagates.
IndexedFuzzOutcome exercise_indexed_dataset(std::string_view idx_bytes, const std::string& dir);

}  // namespace agpt::dataset
