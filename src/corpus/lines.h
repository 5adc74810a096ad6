// Line-oriented reading and writing of (possibly compressed) text files: the layer under every
// JSONL format agpt reads or writes (documents, ids, attributes, metrics).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "corpus/stream.h"

namespace agpt::corpus {

// Reads the lines of a plain, .gz or .zst file (format chosen by magic bytes, see InputStream)
// with memory bounded by the longest line: there is no limit on line length.
//  - a line is returned without its "\n" (and without a "\r" before it);
//  - a last line without a final newline is still returned; blank lines are returned too;
//  - a UTF-8 byte order mark at the start of the file is dropped;
//  - damaged compressed data throws StreamError "path: truncated gzip stream after line N (...)"
//    (or "... damaged zstd data after line N"); all complete lines before it were returned, the
//    partial line that was being decoded is lost. After that next() returns false.
class LineReader {
 public:
  // Bytes readable after the end of every returned line (for parsers that read ahead, e.g. simdjson).
  static constexpr size_t kPadding = 64;

  // Opens path; throws Error when it cannot be opened. Data errors come from next().
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line; the view stays valid until the next call. False at the end of the file.
  bool next(std::string_view& line);

  // Number of the line last returned (1-based), 0 before the first.
  uint64_t line_number() const { return line_number_; }
  // Decoded bytes up to the end of the last returned line, newline included.
  uint64_t bytes_consumed() const { return consumed_; }
  // Bytes read from the file so far (compressed size), for progress bars.
  uint64_t bytes_read_compressed() const { return stream_.raw_bytes_read(); }
  uint64_t file_size() const { return stream_.file_size(); }
  Compression compression() const { return stream_.compression(); }
  const std::string& path() const { return stream_.path(); }

 private:
  void grow();

  InputStream stream_;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;                     // usable bytes of buf_ (kPadding more are allocated)
  size_t begin_ = 0, scan_ = 0, end_ = 0;  // unconsumed [begin_, end_); no '\n' in [begin_, scan_)
  bool eof_ = false, failed_ = false, first_ = true;
  uint64_t line_number_ = 0, consumed_ = 0;
};

// Writes lines to path + ".tmp", compressed by the name (.gz -> gzip level 6, .zst/.zstd -> zstd
// at zstd_level with checksums, anything else plain), then renames it to path on close(), so that
// the final name only ever holds a complete file. Destroying it without close() (an exception
// unwinding) removes the temporary file. Missing parent directories are created.
class LineWriter {
 public:
  explicit LineWriter(const std::string& path, int zstd_level = 3);
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Writes line and a "\n". The line must not contain "\n" (throws Error: it would split the record).
  void write_line(std::string_view line);
  // Writes bytes as they are (the caller keeps the line structure).
  void write(std::string_view bytes);
  // Finishes the compressed stream, flushes to disk and renames into place. Further writes throw.
  void close();

  const std::string& path() const { return path_; }
  uint64_t lines_written() const { return lines_; }
  uint64_t bytes_written() const { return bytes_; }  // before compression

 private:
  struct Encoder;
  void flush_buffer(bool finish);
  void encode(const char* data, size_t size, bool finish);  // compress and write
  void write_fd(const char* data, size_t n);
  void check_open() const;

  std::string path_, tmp_path_;
  int fd_ = -1;
  bool closed_ = false, failed_ = false;
  Compression compression_ = Compression::kNone;
  std::unique_ptr<Encoder> enc_;
  std::string buf_;  // uncompressed bytes waiting to be encoded
  uint64_t lines_ = 0, bytes_ = 0;
};

}  // namespace agpt::corpus
