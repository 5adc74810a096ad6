#include "dataset/index_header.h"

#include <cstring>

#include "base/error.h"
#include "dataset/permutation.h"

namespace agpt::dataset {
namespace {
constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
constexpr size_t kHeaderBytes = 34;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace

IndexHeader::IndexHeader(const std::string& prefix) : prefix_(prefix), idx_(prefix + ".idx") {
  const std::string idx_path = prefix + ".idx", bin_path = prefix + ".bin";
  if (idx_.size() < kHeaderBytes) fail(idx_path, ": ", idx_.size(), " bytes is too short for an MMIDIDX header (34 bytes)");
  idx_.advise_random();
  const uint8_t* p = idx_.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0)
    fail(idx_path, ": not a Megatron MMIDIDX index (bad magic); expected a .idx written by Megatron-LM or agpt");
  uint64_t version = load<uint64_t>(p + 9);
  if (version != 1) fail(idx_path, ": MMIDIDX version ", version, " (only version 1 is supported)");
  uint8_t code = p[17];
  if (!dtype_code_valid(code)) fail(idx_path, ": unknown dtype code ", int(code));
  dtype_ = static_cast<TokenDType>(code);
  itemsize_ = dtype_size(dtype_);
  sequences_ = load<uint64_t>(p + 18);
  doc_bounds_ = load<uint64_t>(p + 26);
  using u128 = unsigned __int128;
  u128 expected = u128(kHeaderBytes) + u128(sequences_) * 12 + u128(doc_bounds_) * 8;
  if (expected != idx_.size())
    fail(idx_path, ": size ", idx_.size(), " bytes does not match its header (", sequences_, " sequences, ", doc_bounds_,
         " document bounds need ", static_cast<uint64_t>(expected), " bytes); the file is truncated or corrupt");
  sizes_offset_ = kHeaderBytes;
  pointers_offset_ = kHeaderBytes + sequences_ * 4;
  bin_ = std::make_shared<MappedFile>(bin_path);
  bin_->advise_random();  // samples are scattered windows; read-ahead would waste memory
  if (bin_->size() % itemsize_ != 0)
    fail(bin_path, ": size ", bin_->size(), " is not a multiple of the ", dtype_name(dtype_), " token size");
  bin_tokens_ = bin_->size() / itemsize_;
  if (sequences_ > 0) {
    int64_t last_ptr = pointer(sequences_ - 1);
    int32_t last_size = size(sequences_ - 1);
    if (last_ptr < 0 || last_size < 0 ||
        u128(last_ptr) + u128(last_size) * itemsize_ != u128(bin_->size()))
      fail(bin_path, ": ", bin_->size(), " bytes, but ", idx_path, " says its last sequence ends at byte ",
           static_cast<int64_t>(last_ptr + int64_t(last_size) * int64_t(itemsize_)),
           "; the .bin is truncated or belongs to another .idx");
    if (pointer(0) != 0) fail(idx_path, ": the first sequence does not start at byte 0 of the .bin");
  } else if (bin_->size() != 0) {
    fail(bin_path, ": ", bin_->size(), " bytes, but ", idx_path, " lists no sequences");
  }
}

int32_t IndexHeader::size(uint64_t seq) const {
  if (seq >= sequences_) fail(prefix_, ": sequence ", seq, " out of range (", sequences_, " sequences)");
  return load<int32_t>(idx_.data() + sizes_offset_ + seq * 4);
}

int64_t IndexHeader::pointer(uint64_t seq) const {
  if (seq >= sequences_) fail(prefix_, ": sequence ", seq, " out of range (", sequences_, " sequences)");
  return load<int64_t>(idx_.data() + pointers_offset_ + seq * 8);
}

uint64_t IndexHeader::token_offset(uint64_t seq) const {
  if (seq == sequences_) return bin_tokens_;
  int64_t p = pointer(seq);
  if (p < 0 || static_cast<uint64_t>(p) > bin_->size() || p % static_cast<int64_t>(itemsize_) != 0)
    fail(prefix_, ".idx: pointer of sequence ", seq, " (", p, ") is not a token offset inside the .bin");
  return static_cast<uint64_t>(p) / itemsize_;
}

uint64_t IndexHeader::sequence_at(uint64_t token) const {
  if (token >= bin_tokens_) fail(prefix_, ": token ", token, " beyond the end of the .bin (", bin_tokens_, " tokens)");
  const uint64_t byte = token * itemsize_;
  uint64_t lo = 0, hi = sequences_;  // find the last sequence whose pointer <= byte
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (static_cast<uint64_t>(pointer(mid)) <= byte) lo = mid; else hi = mid;
  }
  return lo;
}

void IndexHeader::read_tokens(uint64_t token, uint64_t count, uint32_t* dst) const {
  if (token > bin_tokens_ || count > bin_tokens_ - token)
    fail(prefix_, ".bin: tokens [", token, ", ", token + count, ") outside the file (", bin_tokens_, " tokens)");
  const uint8_t* src = bin_->data() + token * itemsize_;
  switch (dtype_) {
    case TokenDType::kUInt16:
      for (uint64_t i = 0; i < count; ++i) dst[i] = load<uint16_t>(src + 2 * i);
      break;
    case TokenDType::kInt32:
      for (uint64_t i = 0; i < count; ++i) {
        int32_t v = load<int32_t>(src + 4 * i);
        if (v < 0) fail(prefix_, ".bin: negative token id ", v, " at token ", token + i);
        dst[i] = static_cast<uint32_t>(v);
      }
      break;
    case TokenDType::kUInt8:
      for (uint64_t i = 0; i < count; ++i) dst[i] = src[i];
      break;
    case TokenDType::kInt64:
      for (uint64_t i = 0; i < count; ++i) {
        int64_t v = load<int64_t>(src + 8 * i);
        if (v < 0 || v > int64_t(UINT32_MAX)) fail(prefix_, ".bin: token id ", v, " out of range at token ", token + i);
        dst[i] = static_cast<uint32_t>(v);
      }
      break;
    default:
      fail(prefix_, ": tokens of dtype ", dtype_name(dtype_), " cannot be served as token ids");
  }
}

uint64_t IndexHeader::fingerprint() const {
  // Only pages the header checks already touched (plus the index's last page): a cold start over
  // thousands of files is bound by random reads, so the fingerprint must not add any.
  uint64_t h = hash_bytes(idx_.data(), kHeaderBytes, idx_.size());
  h = mix64(h ^ bin_->size());
  const size_t page = 4096;
  auto hash_page_at = [&](size_t offset) {
    size_t at = offset / page * page;
    h = hash_bytes(idx_.data() + at, std::min(page, idx_.size() - at), h);
  };
  hash_page_at(0);
  if (sequences_ > 0) {
    hash_page_at(sizes_offset_ + (sequences_ - 1) * 4);
    hash_page_at(pointers_offset_ + (sequences_ - 1) * 8);
  }
  hash_page_at(idx_.size() - 1);
  return h;
}

}  // namespace agpt::dataset
