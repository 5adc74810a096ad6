// O(1) access to a Megatron .idx/.bin pair for the mixture and the sample stream: reads the header
// and only the entries it is asked for, straight from the memory map, so opening thousands of
// multi-GB index files costs a few page reads each. (IndexedDataset validates and copies the whole
// index; use it where every document is read anyway.)
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "base/file.h"
#include "dataset/indexed_dataset.h"

namespace agpt::dataset {

class IndexHeader {
 public:
  // prefix without extension. Checks: magic, version, dtype, that the .idx size matches its
  // counts, and that the last sequence ends exactly at the end of the .bin (truncated or
  // mismatched files fail here with the numbers).
  explicit IndexHeader(const std::string& prefix);

  const std::string& prefix() const { return prefix_; }
  TokenDType dtype() const { return dtype_; }
  size_t itemsize() const { return itemsize_; }
  uint64_t sequences() const { return sequences_; }
  uint64_t bin_tokens() const { return bin_tokens_; }
  uint64_t idx_bytes() const { return idx_.size(); }

  int32_t size(uint64_t seq) const;      // tokens of sequence seq
  int64_t pointer(uint64_t seq) const;   // byte offset of sequence seq in .bin
  // Token offset where sequence seq starts; seq == sequences() gives bin_tokens().
  uint64_t token_offset(uint64_t seq) const;
  // The sequence containing token offset t (t < bin_tokens()), by binary search on the pointers.
  uint64_t sequence_at(uint64_t token) const;

  // Copies tokens [token, token + count) of the .bin into dst as uint32; bounds-checked.
  void read_tokens(uint64_t token, uint64_t count, uint32_t* dst) const;

  // A cheap content fingerprint: hash of both file sizes and the .idx pages holding the header,
  // the last size, the last pointer and the end (hashing whole multi-GB indices would take
  // minutes; these pages are read anyway, so the fingerprint costs no extra disk reads).
  uint64_t fingerprint() const;

 private:
  std::string prefix_;
  MappedFile idx_;
  std::shared_ptr<MappedFile> bin_;
  TokenDType dtype_ = TokenDType::kUInt16;
  size_t itemsize_ = 2;
  uint64_t sequences_ = 0, doc_bounds_ = 0, bin_tokens_ = 0;
  size_t sizes_offset_ = 0, pointers_offset_ = 0;
};

}  // namespace agpt::dataset
