#include "dataset/indexed_dataset_fuzz.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include "base/error.h"
#include "dataset/indexed_dataset.h"

namespace agpt::dataset {
namespace {

void put_file(const std::string& path, const char* data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, ": cannot write fuzz input file");
  out.write(data, static_cast<std::streamsize>(n));
  if (!out) fail(path, ": write failed");
}

// The .bin size the index's sizes imply, read leniently (the index may be anything), capped.
uint64_t derived_bin_size(std::string_view idx) {
  if (idx.size() < 34) return 0;
  uint8_t code = static_cast<uint8_t>(idx[17]);
  if (!dtype_code_valid(code)) return 0;
  size_t itemsize = dtype_size(static_cast<TokenDType>(code));
  uint64_t seqs;
  std::memcpy(&seqs, idx.data() + 18, 8);
  uint64_t avail = (idx.size() - 34) / 4;
  uint64_t n = std::min(seqs, avail);
  uint64_t total = 0;
  const uint64_t cap = 1u << 16;
  for (uint64_t i = 0; i < n && total <= cap; ++i) {
    int32_t s;
    std::memcpy(&s, idx.data() + 34 + 4 * i, 4);
    if (s > 0) total += static_cast<uint64_t>(s) * itemsize;
  }
  return std::min(total, cap);
}

}  // namespace

IndexedFuzzOutcome exercise_indexed_dataset(std::string_view idx_bytes, const std::string& dir) {
  IndexedFuzzOutcome outcome;
  uint32_t h = 2166136261u;  // FNV-1a of the input picks the .bin variant
  for (char c : idx_bytes) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  uint64_t bin_size = derived_bin_size(idx_bytes);
  if (h % 8 == 0 && bin_size > 0) bin_size -= 1;
  if (h % 8 == 1) bin_size += 1;
  std::vector<char> bin(bin_size);
  for (size_t i = 0; i < bin.size(); ++i) bin[i] = static_cast<char>((i * 7 + (h >> 8)) & ((h & 16) ? 0xff : 0x03));

  const std::string prefix = dir + "/fuzz";
  put_file(prefix + ".idx", idx_bytes.data(), idx_bytes.size());
  put_file(prefix + ".bin", bin.data(), bin.size());
  try {
    IndexedDataset ds(prefix);
    outcome.opened = true;
    std::vector<uint32_t> u;
    std::vector<int64_t> s;
    const size_t n = ds.num_documents();
    for (size_t d = 0; d < n; ++d) {
      const size_t len = static_cast<size_t>(ds.sizes()[d]);
      try {
        u = ds.document(d);
      } catch (const Error&) {
      }
      try {
        ds.read(d, len / 2, len - len / 2, s);
      } catch (const Error&) {
      }
      try {
        ds.read(d, len / 3, len + 1, u);  // out of range: must be an Error
      } catch (const Error&) {
      }
      (void)ds.document_bytes(d);
      ++outcome.documents_read;
    }
    try {
      ds.read(n, 0, 0, u);  // past the end: must be an Error
    } catch (const Error&) {
    }
  } catch (const Error& e) {
    outcome.opened = false;
    outcome.error = e.what();
  }
  return outcome;
}

}  // namespace agpt::dataset
