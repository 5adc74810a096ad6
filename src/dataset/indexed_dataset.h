// Megatron-LM indexed datasets (MMIDIDX version 1): token sequences in a flat .bin file and an .idx
// file with their lengths and byte offsets. Files written here are byte-identical to what
// Megatron-LM's IndexedDatasetBuilder writes for the same sequences, and Megatron's files open here.
//
// .idx layout (all integers little-endian, arrays packed with no padding):
//   offset 0   magic        9 bytes  "MMIDIDX\0\0"
//   offset 9   version      uint64   1
//   offset 17  dtype code   uint8    see TokenDType
//   offset 18  sequences    uint64   S
//   offset 26  doc bounds   uint64   D (= documents + 1: the leading 0 included)
//   offset 34  sizes        int32[S]   tokens in each sequence
//              pointers     int64[S]   byte offset of each sequence in .bin (0, then cumulative)
//              doc indices  int64[D]   sequence index where each document starts (0 ... S)
// .bin: the tokens of all sequences, back to back, each of dtype's size.
//
// In agpt one document is one sequence, so the document indices are 0, 1, ..., S.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/file.h"

namespace agpt::dataset {

// The dtype codes of Megatron's DType enum (stored in the .idx header).
enum class TokenDType : uint8_t {
  kUInt8 = 1,
  kInt8 = 2,
  kInt16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kFloat64 = 6,
  kFloat32 = 7,
  kUInt16 = 8,
};

// Megatron's rule (DType.optimal_dtype): uint16 when vocab_size < 65,500, int32 otherwise.
TokenDType dtype_for_vocab(size_t vocab_size);
// Bytes per token of dtype (1, 2, 4 or 8).
size_t dtype_size(TokenDType dtype);
// "uint16", "int32", ... (numpy's names).
const char* dtype_name(TokenDType dtype);
// True when code is one of the eight known codes.
bool dtype_code_valid(uint8_t code);

// Writes prefix.bin and prefix.idx. Tokens stream to a temporary file beside prefix.bin as they
// come; finish() writes the index to a temporary file too, syncs both, removes an old prefix.idx,
// and renames .bin then .idx into place. So neither file appears under its final name before
// finish(), and an .idx that exists always describes the .bin beside it (a reader sees the old pair,
// no .idx, or the new pair). Destroying a writer without finish() removes its temporary files.
// The parent directory of prefix is created if missing.
class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(const std::string& prefix, TokenDType dtype);
  ~IndexedDatasetWriter();
  IndexedDatasetWriter(const IndexedDatasetWriter&) = delete;
  IndexedDatasetWriter& operator=(const IndexedDatasetWriter&) = delete;

  // Appends one document (one sequence). Throws agpt::Error, writing nothing, if a token does not
  // fit the dtype or the document has more than 2^31-1 tokens. Empty documents are allowed.
  void add_document(std::span<const uint32_t> tokens);
  // Writes the index and moves both files into place. Nothing may be added afterwards.
  void finish();

  uint64_t documents() const { return sizes_.size(); }
  uint64_t tokens() const { return tokens_; }
  TokenDType dtype() const { return dtype_; }
  const std::string& prefix() const { return prefix_; }

 private:
  void flush_buffer();
  void abandon() noexcept;

  std::string prefix_, bin_path_, idx_path_, bin_tmp_;
  TokenDType dtype_;
  size_t itemsize_;
  int fd_ = -1;
  std::unique_ptr<uint8_t[]> buffer_;  // kBufferBytes, filled up to used_
  size_t used_ = 0;
  std::vector<int32_t> sizes_;
  uint64_t tokens_ = 0;
  bool finished_ = false;
};

// A read-only view of an indexed dataset: the .bin is memory-mapped, the .idx arrays are copied into
// aligned memory (in the file they are unaligned). Everything is validated at open, so reads of any
// in-range document never touch memory outside the files.
class IndexedDataset {
 public:
  // prefix without extension; a path ending in .bin or .idx is accepted too.
  explicit IndexedDataset(const std::string& prefix);

  size_t num_documents() const { return sizes_.size(); }  // sequences
  uint64_t num_tokens() const { return num_tokens_; }
  TokenDType dtype() const { return dtype_; }
  const std::string& prefix() const { return prefix_; }
  const std::string& bin_path() const { return bin_path_; }
  const std::string& idx_path() const { return idx_path_; }

  std::span<const int32_t> sizes() const { return sizes_; }  // tokens per sequence
  std::span<const int64_t> pointers() const { return pointers_; }  // byte offsets into .bin
  std::span<const int64_t> document_indices() const { return document_indices_; }

  // Tokens [offset, offset+count) of document doc, converted to uint32, replacing out's contents.
  // Throws agpt::Error if the range is outside the document, or a stored value is not a token id
  // that fits uint32 (negative, fractional, too large: use the int64 overload for signed data).
  void read(size_t doc, size_t offset, size_t count, std::vector<uint32_t>& out) const;
  void read(size_t doc, size_t offset, size_t count, std::vector<int64_t>& out) const;
  // The same into a caller's buffer of at least count elements (for loaders that pack samples).
  void read_into(size_t doc, size_t offset, size_t count, uint32_t* dst) const;
  // All tokens of document doc.
  std::vector<uint32_t> document(size_t doc) const;
  // The raw bytes of document doc in the .bin (dtype-encoded, little-endian).
  std::span<const uint8_t> document_bytes(size_t doc) const;

 private:
  const uint8_t* range_start(size_t doc, size_t offset, size_t count) const;

  std::string prefix_, bin_path_, idx_path_;
  TokenDType dtype_ = TokenDType::kUInt16;
  size_t itemsize_ = 2;
  uint64_t num_tokens_ = 0;
  // The three .idx arrays, copied into one aligned block (shared: copies of a dataset share it).
  std::shared_ptr<const uint8_t[]> arrays_;
  std::span<const int32_t> sizes_;
  std::span<const int64_t> pointers_;
  std::span<const int64_t> document_indices_;
  std::shared_ptr<const MappedFile> bin_;  // shared: copies of a dataset share one mapping
};

// Builds the exact .idx bytes Megatron writes for sequences of the given sizes, one per document.
std::string build_index_bytes(TokenDType dtype, std::span<const int32_t> sizes);

// Builds the .idx bytes for arbitrary document boundaries (doc_indices: 0, ..., sizes.size()).
std::string build_index_bytes(TokenDType dtype, std::span<const int32_t> sizes,
                              std::span<const int64_t> doc_indices);

}  // namespace agpt::dataset
