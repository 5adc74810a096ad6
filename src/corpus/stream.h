// Byte streams over files that may be compressed: gzip (zlib; several concatenated members allowed)
// and zstd (libzstd streaming; several frames allowed). Reading picks the format by the file's first
// bytes and checks them against the extension; writing picks it by the extension.
#pragma once
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "base/error.h"

namespace agpt::corpus {

enum class Compression { kNone, kGzip, kZstd };

// "plain", "gzip" or "zstd".
const char* compression_name(Compression c);

// By name: ".gz" -> gzip, ".zst" / ".zstd" -> zstd, anything else -> none.
Compression compression_from_path(std::string_view path);

// The name without a trailing .gz/.zst/.zstd ("a.jsonl.zst" -> "a.jsonl").
std::string_view strip_compression_suffix(std::string_view path);

// Problems in the data of a compressed file (as opposed to I/O failures, which are plain Errors).
// The message names the file; readers that skip bad input count these instead of stopping.
class StreamError : public Error {
 public:
  enum class Kind {
    kTruncated,  // the data ends in the middle of a gzip member or zstd frame
    kCorrupt,    // not the format the name or magic says, or damaged data
  };
  // message is the whole text; problem ("truncated zstd stream") and detail (the decoder's words,
  // the hint) are kept apart so that callers can rephrase with more context.
  StreamError(Kind kind, const std::string& message, std::string problem, std::string detail)
      : Error(message), kind_(kind), problem_(std::move(problem)), detail_(std::move(detail)) {}
  Kind kind() const { return kind_; }
  const std::string& problem() const { return problem_; }
  const std::string& detail() const { return detail_; }

 private:
  Kind kind_;
  std::string problem_, detail_;
};

// Reads the decompressed bytes of one file, in order, with constant memory.
//  - gzip magic (1f 8b) -> gzip, zstd magic (28 b5 2f fd, or a skippable frame) -> zstd, else plain;
//  - a name ending in .gz/.zst whose data has no such magic is a StreamError (kCorrupt), so a
//    damaged or mislabelled file is reported instead of being read as text;
//  - an empty file is an empty stream whatever its name.
// Data errors throw StreamError with a message "<path>: <what>"; callers that know line numbers
// may rethrow with more context (LineReader does).
class InputStream {
 public:
  // Opens path; throws Error when it cannot be opened (missing, permissions, a directory).
  explicit InputStream(const std::string& path);
  ~InputStream();
  InputStream(const InputStream&) = delete;
  InputStream& operator=(const InputStream&) = delete;

  // Reads up to n decoded bytes into dst. Returns 0 only at the clean end of the data. Damaged
  // data throws StreamError, after the bytes decoded before the damage were handed out; every
  // later call throws it again.
  size_t read(char* dst, size_t n);

  // Bytes read from the file so far (compressed bytes), for progress bars.
  uint64_t raw_bytes_read() const { return raw_read_; }
  // Size of the file when it was opened.
  uint64_t file_size() const { return file_size_; }
  // Known after the first read().
  Compression compression() const { return compression_; }
  const std::string& path() const { return path_; }

 private:
  struct Gzip;
  struct Zstd;
  void detect();
  bool fill_input();  // more compressed bytes into in_; false at end of file
  size_t read_plain(char* dst, size_t n);
  size_t read_gzip(char* dst, size_t n);
  size_t read_zstd(char* dst, size_t n);
  [[noreturn]] void corrupt(const std::string& problem, const std::string& detail);
  [[noreturn]] void truncated(const std::string& detail);

  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  uint64_t raw_read_ = 0;
  bool detected_ = false;
  bool file_eof_ = false;
  Compression compression_ = Compression::kNone;
  std::unique_ptr<char[]> in_;
  size_t in_pos_ = 0, in_end_ = 0;
  std::exception_ptr pending_;  // a StreamError to throw on the next read()
  std::exception_ptr error_;    // the StreamError thrown; every later read() throws it again
  size_t produced_ = 0;         // bytes decoded by the current read() (zstd)
  std::unique_ptr<Gzip> gzip_;
  std::unique_ptr<Zstd> zstd_;
};

// Reads a whole (possibly compressed) file into memory. Throws Error / StreamError.
std::string read_decompressed(const std::string& path);

}  // namespace agpt::corpus
