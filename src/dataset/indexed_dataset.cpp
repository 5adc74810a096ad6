#include "dataset/indexed_dataset.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <type_traits>

#include "base/error.h"
#include "base/file.h"

namespace agpt::dataset {

static_assert(std::endian::native == std::endian::little,
              "the MMIDIDX format is little-endian; agpt reads it on little-endian hosts only");

namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr size_t kHeaderBytes = 9 + 8 + 1 + 8 + 8;  // 34
constexpr uint64_t kVersion = 1;
constexpr size_t kBufferBytes = 1 << 20;  // writer buffer; a multiple of every item size

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void append_pod(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s.append(b, sizeof(T));
}

// Printable form of a few header bytes for error messages.
std::string show_bytes(const uint8_t* p, size_t n) {
  std::string s = "\"";
  for (size_t i = 0; i < n; ++i) {
    unsigned c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      s += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    }
  }
  return s + "\"";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The largest token id dtype can hold exactly.
uint64_t dtype_max_token(TokenDType d) {
  switch (d) {
    case TokenDType::kUInt8: return 0xff;
    case TokenDType::kInt8: return 0x7f;
    case TokenDType::kInt16: return 0x7fff;
    case TokenDType::kUInt16: return 0xffff;
    case TokenDType::kInt32: return 0x7fffffff;
    case TokenDType::kFloat32: return 1u << 24;  // integers above 2^24 are not exact in float32
    case TokenDType::kInt64:
    case TokenDType::kFloat64: return 0xffffffffull;
  }
  return 0;
}

// Stores tokens as dtype, little-endian, at dst (n * itemsize bytes). Tokens are already checked.
void encode_tokens(TokenDType d, const uint32_t* src, size_t n, uint8_t* dst) {
  auto put = [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      T v = static_cast<T>(src[i]);
      std::memcpy(dst + i * sizeof(T), &v, sizeof(T));
    }
  };
  switch (d) {
    case TokenDType::kUInt8: put(uint8_t{}); break;
    case TokenDType::kInt8: put(int8_t{}); break;
    case TokenDType::kInt16: put(int16_t{}); break;
    case TokenDType::kUInt16: put(uint16_t{}); break;
    case TokenDType::kInt32: put(int32_t{}); break;
    case TokenDType::kInt64: put(int64_t{}); break;
    case TokenDType::kFloat32: put(float{}); break;
    case TokenDType::kFloat64: put(double{}); break;
  }
}

void write_all(int fd, const uint8_t* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(path, ": write failed (", std::strerror(errno), "); is the disk full?");
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

TokenDType dtype_for_vocab(size_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::kUInt16 : TokenDType::kInt32;
}

bool dtype_code_valid(uint8_t code) { return code >= 1 && code <= 8; }

size_t dtype_size(TokenDType d) {
  switch (d) {
    case TokenDType::kUInt8:
    case TokenDType::kInt8: return 1;
    case TokenDType::kInt16:
    case TokenDType::kUInt16: return 2;
    case TokenDType::kInt32:
    case TokenDType::kFloat32: return 4;
    case TokenDType::kInt64:
    case TokenDType::kFloat64: return 8;
  }
  fail("unknown token dtype code ", static_cast<int>(d));
}

const char* dtype_name(TokenDType d) {
  switch (d) {
    case TokenDType::kUInt8: return "uint8";
    case TokenDType::kInt8: return "int8";
    case TokenDType::kInt16: return "int16";
    case TokenDType::kInt32: return "int32";
    case TokenDType::kInt64: return "int64";
    case TokenDType::kFloat64: return "float64";
    case TokenDType::kFloat32: return "float32";
    case TokenDType::kUInt16: return "uint16";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Index bytes

std::string build_index_bytes(TokenDType dtype, std::span<const int32_t> sizes,
                              std::span<const int64_t> doc_indices) {
  if (!dtype_code_valid(static_cast<uint8_t>(dtype)))
    fail("indexed dataset: unknown dtype code ", static_cast<int>(dtype));
  const size_t itemsize = dtype_size(dtype);
  std::string out;
  out.reserve(kHeaderBytes + sizes.size() * 12 + doc_indices.size() * 8);
  out.append(kMagic, sizeof(kMagic));
  append_pod<uint64_t>(out, kVersion);
  append_pod<uint8_t>(out, static_cast<uint8_t>(dtype));
  append_pod<uint64_t>(out, sizes.size());
  append_pod<uint64_t>(out, doc_indices.size());
  for (int32_t s : sizes) {
    if (s < 0) fail("indexed dataset: negative sequence length ", s);
    append_pod<int32_t>(out, s);
  }
  int64_t ptr = 0;
  for (int32_t s : sizes) {
    append_pod<int64_t>(out, ptr);
    if (static_cast<uint64_t>(s) * itemsize > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() - ptr))
      fail("indexed dataset: total size exceeds 2^63 bytes");
    ptr += static_cast<int64_t>(s) * static_cast<int64_t>(itemsize);
  }
  for (int64_t d : doc_indices) append_pod<int64_t>(out, d);
  return out;
}

std::string build_index_bytes(TokenDType dtype, std::span<const int32_t> sizes) {
  std::vector<int64_t> docs(sizes.size() + 1);
  for (size_t i = 0; i < docs.size(); ++i) docs[i] = static_cast<int64_t>(i);
  return build_index_bytes(dtype, sizes, docs);
}

// ---------------------------------------------------------------------------------------------
// Writer

IndexedDatasetWriter::IndexedDatasetWriter(const std::string& prefix, TokenDType dtype)
    : prefix_(prefix), bin_path_(prefix + ".bin"), idx_path_(prefix + ".idx"), dtype_(dtype) {
  if (!dtype_code_valid(static_cast<uint8_t>(dtype)))
    fail(prefix, ": cannot write an indexed dataset with unknown dtype code ", static_cast<int>(dtype),
         " (known: 1..8)");
  if (prefix.empty()) fail("indexed dataset writer: empty output prefix");
  if (ends_with(prefix, "/")) fail(prefix, ": output prefix names a directory; add a file name, e.g. ", prefix, "corpus");
  itemsize_ = dtype_size(dtype);
  std::filesystem::path parent = std::filesystem::path(bin_path_).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) fail(parent.string(), ": cannot create output directory (", ec.message(), ")");
  }
  std::random_device rd;
  bin_tmp_ = bin_path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  fd_ = ::open(bin_tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(bin_tmp_, ": cannot create temporary output file (", std::strerror(errno), ")");
  buffer_.reset(new uint8_t[kBufferBytes]);
}

IndexedDatasetWriter::~IndexedDatasetWriter() {
  if (!finished_) abandon();
}

void IndexedDatasetWriter::abandon() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!bin_tmp_.empty()) ::unlink(bin_tmp_.c_str());
}

void IndexedDatasetWriter::flush_buffer() {
  if (used_ == 0) return;
  write_all(fd_, buffer_.get(), used_, bin_tmp_);
  used_ = 0;
}

void IndexedDatasetWriter::add_document(std::span<const uint32_t> tokens) {
  if (finished_ || fd_ < 0) fail(prefix_, ": add_document after finish()");
  if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail(prefix_, ": document ", sizes_.size(), " has ", tokens.size(),
         " tokens; the MMIDIDX format stores lengths as int32 (at most 2,147,483,647); split the document");
  const uint64_t max_ok = dtype_max_token(dtype_);
  uint32_t mx = 0;
  for (uint32_t t : tokens) mx = t > mx ? t : mx;
  if (mx > max_ok) {
    size_t at = 0;
    while (tokens[at] <= max_ok) ++at;
    fail(prefix_, ": document ", sizes_.size(), ", token ", at, ": id ", tokens[at], " does not fit dtype ",
         dtype_name(dtype_), " (largest ", max_ok, "); use a wider dtype (int32 for vocabularies of 65,500 or more)");
  }
  for (size_t off = 0; off < tokens.size();) {
    if (used_ == kBufferBytes) flush_buffer();
    size_t n = std::min((kBufferBytes - used_) / itemsize_, tokens.size() - off);
    encode_tokens(dtype_, tokens.data() + off, n, buffer_.get() + used_);
    used_ += n * itemsize_;
    off += n;
  }
  sizes_.push_back(static_cast<int32_t>(tokens.size()));
  tokens_ += tokens.size();
}

void IndexedDatasetWriter::finish() {
  if (finished_) fail(prefix_, ": finish() called twice");
  finished_ = true;
  std::string idx_tmp;
  try {
    // Both files complete and on disk under temporary names first.
    std::string idx = build_index_bytes(dtype_, sizes_);
    flush_buffer();
    if (::fsync(fd_) != 0) fail(bin_tmp_, ": could not flush to disk (", std::strerror(errno), ")");
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail(bin_tmp_, ": close failed (", std::strerror(errno), ")");
    idx_tmp = idx_path_ + bin_tmp_.substr(bin_path_.size());  // the same ".tmp.<pid>.<n>" suffix
    int ifd = ::open(idx_tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (ifd < 0) fail(idx_tmp, ": cannot create temporary output file (", std::strerror(errno), ")");
    try {
      write_all(ifd, reinterpret_cast<const uint8_t*>(idx.data()), idx.size(), idx_tmp);
      if (::fsync(ifd) != 0) fail(idx_tmp, ": could not flush to disk (", std::strerror(errno), ")");
    } catch (...) {
      ::close(ifd);
      throw;
    }
    if (::close(ifd) != 0) fail(idx_tmp, ": close failed (", std::strerror(errno), ")");
    // Then into place: an old .idx goes first, so that at no moment does an .idx sit beside a .bin
    // it does not describe (a reader sees the old pair, no .idx, or the new pair).
    if (::unlink(idx_path_.c_str()) != 0 && errno != ENOENT)
      fail(idx_path_, ": cannot replace the existing file (", std::strerror(errno), ")");
    if (std::rename(bin_tmp_.c_str(), bin_path_.c_str()) != 0)
      fail(bin_path_, ": could not rename temporary file into place (", std::strerror(errno), ")");
    bin_tmp_.clear();
    if (std::rename(idx_tmp.c_str(), idx_path_.c_str()) != 0) {
      int e = errno;
      ::unlink(bin_path_.c_str());  // a .bin without its .idx is of no use
      fail(idx_path_, ": could not rename temporary file into place (", std::strerror(e), ")");
    }
  } catch (...) {
    abandon();
    if (!idx_tmp.empty()) ::unlink(idx_tmp.c_str());
    throw;
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

IndexedDataset::IndexedDataset(const std::string& path) {
  prefix_ = path;
  if (ends_with(prefix_, ".bin") || ends_with(prefix_, ".idx")) prefix_.resize(prefix_.size() - 4);
  bin_path_ = prefix_ + ".bin";
  idx_path_ = prefix_ + ".idx";
  const std::string hint_pair = " (an indexed dataset is a pair PREFIX.bin + PREFIX.idx; pass PREFIX)";
  if (!file_exists(idx_path_)) fail(idx_path_, ": index file not found", hint_pair);
  if (!file_exists(bin_path_)) fail(bin_path_, ": data file not found beside ", idx_path_, hint_pair);

  const std::string& ip = idx_path_;
  MappedFile idx(idx_path_);
  const uint8_t* p = idx.data();
  const size_t n = idx.size();

  // Header.
  if (n < sizeof(kMagic) || std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    size_t shown = std::min<size_t>(n, 9);
    std::string hint = "not a Megatron-LM MMIDIDX index";
    if (n >= 6 && std::memcmp(p, "TNTIDX", 6) == 0)
      hint = "this is the older fairseq/Megatron 'TNTIDX' (lazy/cached) format; rewrite it with Megatron-LM's "
             "tools/preprocess_data.py or agpt data tokenize";
    fail(ip, ": bad magic: found ", show_bytes(p, shown), " expected \"MMIDIDX\\x00\\x00\" (", hint, ")");
  }
  if (n < kHeaderBytes)
    fail(ip, ": truncated header: file has ", n, " bytes, the MMIDIDX header needs ", kHeaderBytes,
         " (incomplete copy or interrupted write?)");
  const uint64_t version = load<uint64_t>(p + 9);
  if (version != kVersion)
    fail(ip, ": version: found ", version, " expected ", kVersion,
         " (agpt reads MMIDIDX version 1, what Megatron-LM writes; a newer format needs a newer agpt)");
  const uint8_t code = p[17];
  if (!dtype_code_valid(code))
    fail(ip, ": dtype code: found ", static_cast<int>(code),
         " expected 1..8 (uint8, int8, int16, int32, int64, float64, float32, uint16); the index is corrupt");
  dtype_ = static_cast<TokenDType>(code);
  itemsize_ = dtype_size(dtype_);
  const uint64_t num_seq = load<uint64_t>(p + 18);
  const uint64_t num_doc = load<uint64_t>(p + 26);
  if (num_doc == 0)
    fail(ip, ": document count: found 0, expected at least 1 (the document indices start with 0); the index is corrupt");
  // Needed size, computed in 128 bits so that huge counts cannot wrap around.
  const unsigned __int128 need =
      static_cast<unsigned __int128>(kHeaderBytes) + static_cast<unsigned __int128>(num_seq) * 12u +
      static_cast<unsigned __int128>(num_doc) * 8u;
  if (need != n) {
    std::string need_str = need > std::numeric_limits<uint64_t>::max()
                               ? std::string("more than 2^64")
                               : std::to_string(static_cast<uint64_t>(need));
    if (need > n)
      fail(ip, ": header says ", num_seq, " sequences and ", num_doc, " document indices, which need ", need_str,
           " bytes, but the file has ", n, " (truncated .idx, or corrupt counts)");
    fail(ip, ": ", n - static_cast<uint64_t>(need), " trailing bytes: header says ", num_seq, " sequences and ",
         num_doc, " document indices, which need ", need_str, " bytes, but the file has ", n,
         " (two files concatenated, or corrupt counts?)");
  }

  // Arrays (unaligned in the file: copied into one aligned block, left uninitialised before the
  // copy so that each page is touched once; counts are bounded by the file size checked above).
  const size_t ptr_off = (num_seq * 4 + 7) / 8 * 8;
  const size_t doc_off = ptr_off + num_seq * 8;
  std::shared_ptr<uint8_t[]> block(new uint8_t[doc_off + num_doc * 8]);
  size_t off = kHeaderBytes;
  if (num_seq) std::memcpy(block.get(), p + off, num_seq * 4);
  off += num_seq * 4;
  if (num_seq) std::memcpy(block.get() + ptr_off, p + off, num_seq * 8);
  off += num_seq * 8;
  std::memcpy(block.get() + doc_off, p + off, num_doc * 8);
  sizes_ = {reinterpret_cast<const int32_t*>(block.get()), num_seq};
  pointers_ = {reinterpret_cast<const int64_t*>(block.get() + ptr_off), num_seq};
  document_indices_ = {reinterpret_cast<const int64_t*>(block.get() + doc_off), num_doc};
  arrays_ = std::move(block);

  // The .bin.
  bin_ = std::make_shared<const MappedFile>(bin_path_);
  const uint64_t bin_size = bin_->size();

  const std::string hint_run = " (was the .bin written by a different run, or is one of the files truncated?)";
  uint64_t end = 0;  // byte where the next sequence must start; kept <= bin_size, so no overflow
  for (uint64_t i = 0; i < num_seq; ++i) {
    const int32_t s = sizes_[i];
    if (s < 0) fail(ip, ": sizes[", i, "]: found ", s, ", expected a length >= 0; the index is corrupt");
    if (pointers_[i] < 0 || static_cast<uint64_t>(pointers_[i]) != end)
      fail(ip, ": pointers[", i, "]: found ", pointers_[i], ", expected ", end,
           i == 0 ? " (the first sequence starts at byte 0)"
                  : cat(" (pointers[", i - 1, "] + sizes[", i - 1, "] * ", itemsize_, ")"),
           "; sizes and pointers disagree, the index is corrupt");
    const uint64_t bytes = static_cast<uint64_t>(s) * itemsize_;
    if (bytes > bin_size - end)
      fail(bin_path_, ": size: found ", bin_size, " bytes, but ", ip, " says sequence ", i, " of ", num_seq,
           " ends at byte ", end + bytes, hint_run);
    end += bytes;
    num_tokens_ += static_cast<uint64_t>(s);
  }
  if (end != bin_size)
    fail(bin_path_, ": size: found ", bin_size, " bytes, expected ", end, " (", num_tokens_, " tokens of ",
         dtype_name(dtype_), " as listed in ", ip, ")", hint_run);

  if (document_indices_[0] != 0)
    fail(ip, ": document_indices[0]: found ", document_indices_[0], ", expected 0; the index is corrupt");
  for (uint64_t i = 1; i < num_doc; ++i)
    if (document_indices_[i] < document_indices_[i - 1])
      fail(ip, ": document_indices[", i, "]: found ", document_indices_[i], ", expected >= ",
           document_indices_[i - 1], " (document indices never decrease); the index is corrupt");
  if (static_cast<uint64_t>(document_indices_[num_doc - 1]) != num_seq)
    fail(ip, ": document_indices[", num_doc - 1, "] (the last): found ", document_indices_[num_doc - 1],
         ", expected ", num_seq, " (the sequence count); the index is corrupt");
}

const uint8_t* IndexedDataset::range_start(size_t doc, size_t offset, size_t count) const {
  if (doc >= sizes_.size())
    fail(prefix_, ": document ", doc, " out of range (the dataset has ", sizes_.size(), " documents)");
  const size_t len = static_cast<size_t>(sizes_[doc]);
  if (offset > len || count > len - offset)
    fail(prefix_, ": document ", doc, ": tokens [", offset, ", ", offset, "+", count,
         ") out of range (the document has ", len, " tokens)");
  return bin_->data() + static_cast<size_t>(pointers_[doc]) + offset * itemsize_;
}

namespace {

// Converts n stored values at src to uint32, with checks. Where a value is not a valid id, names it.
template <typename Out>
void convert(TokenDType d, const uint8_t* src, size_t n, Out* dst, const std::string& prefix, size_t doc,
             size_t offset) {
  auto bad = [&](size_t i, const std::string& what, const std::string& value) {
    fail(prefix, ".bin: document ", doc, ", token ", offset + i, ": value ", value, " ", what,
         std::is_same_v<Out, uint32_t> ? " (read signed data with the int64 overload)" : "");
  };
  auto ints = [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      T v = load<T>(src + i * sizeof(T));
      if constexpr (std::is_signed_v<T>) {
        if constexpr (std::is_same_v<Out, uint32_t>) {
          if (v < 0) bad(i, "is negative, not a token id", std::to_string(v));
        }
      }
      if constexpr (std::is_same_v<Out, uint32_t> && sizeof(T) > 4) {
        if (static_cast<uint64_t>(v) > 0xffffffffull) bad(i, "does not fit uint32", std::to_string(v));
      }
      dst[i] = static_cast<Out>(v);
    }
  };
  auto floats = [&](auto tag) {
    using T = decltype(tag);
    const double lo = std::is_same_v<Out, uint32_t> ? 0.0 : -9223372036854775808.0;
    const double hi = std::is_same_v<Out, uint32_t> ? 4294967295.0 : 9223372036854774784.0;
    for (size_t i = 0; i < n; ++i) {
      double v = static_cast<double>(load<T>(src + i * sizeof(T)));
      if (!(v >= lo && v <= hi) || v != std::floor(v))
        bad(i, "is not an integer token id in range", cat(v));
      dst[i] = static_cast<Out>(v);
    }
  };
  switch (d) {
    case TokenDType::kUInt8: ints(uint8_t{}); break;
    case TokenDType::kInt8: ints(int8_t{}); break;
    case TokenDType::kInt16: ints(int16_t{}); break;
    case TokenDType::kUInt16: ints(uint16_t{}); break;
    case TokenDType::kInt32: ints(int32_t{}); break;
    case TokenDType::kInt64: ints(int64_t{}); break;
    case TokenDType::kFloat32: floats(float{}); break;
    case TokenDType::kFloat64: floats(double{}); break;
  }
}

}  // namespace

void IndexedDataset::read_into(size_t doc, size_t offset, size_t count, uint32_t* dst) const {
  const uint8_t* src = range_start(doc, offset, count);
  convert<uint32_t>(dtype_, src, count, dst, prefix_, doc, offset);
}

void IndexedDataset::read(size_t doc, size_t offset, size_t count, std::vector<uint32_t>& out) const {
  const uint8_t* src = range_start(doc, offset, count);
  out.resize(count);
  convert<uint32_t>(dtype_, src, count, out.data(), prefix_, doc, offset);
}

void IndexedDataset::read(size_t doc, size_t offset, size_t count, std::vector<int64_t>& out) const {
  const uint8_t* src = range_start(doc, offset, count);
  out.resize(count);
  convert<int64_t>(dtype_, src, count, out.data(), prefix_, doc, offset);
}

std::vector<uint32_t> IndexedDataset::document(size_t doc) const {
  std::vector<uint32_t> out;
  if (doc >= sizes_.size())
    fail(prefix_, ": document ", doc, " out of range (the dataset has ", sizes_.size(), " documents)");
  read(doc, 0, static_cast<size_t>(sizes_[doc]), out);
  return out;
}

std::span<const uint8_t> IndexedDataset::document_bytes(size_t doc) const {
  if (doc >= sizes_.size())
    fail(prefix_, ": document ", doc, " out of range (the dataset has ", sizes_.size(), " documents)");
  const size_t len = static_cast<size_t>(sizes_[doc]);
  return {range_start(doc, 0, len), len * itemsize_};
}

}  // namespace agpt::dataset
