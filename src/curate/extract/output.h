// The output of `agpt data extract`: Dolma JSONL written in chunks (one per input file) that can
// be cut off again, so an interrupted run resumes at a file boundary. Each chunk is a complete
// gzip member or zstd frame (for .gz/.zst names): concatenated, they are one valid stream, and
// every agpt reader (and gzip, zstd) reads them as one file.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace agpt::curate::extract {

class ChunkWriter {
 public:
  // Opens path for writing at byte offset `keep` (what was there after it is cut off; 0 starts a
  // new file). Missing parent directories are created. Throws Error on I/O failure.
  // compress_as: the name whose suffix (.gz, .zst) chooses the compression; empty: path.
  ChunkWriter(const std::string& path, uint64_t keep, const std::string& compress_as = "", int zstd_level = 3);
  ~ChunkWriter();
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Compresses (by the name's suffix) and appends lines (each ending in '\n'); returns the bytes
  // written. The data is flushed to the file system before returning.
  std::string_view append(std::string_view lines);
  uint64_t offset() const { return offset_; }
  // Flushes, fsyncs and closes.
  void close();

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t offset_ = 0;
  int level_;
  enum { kPlain, kGzip, kZstd } kind_;
  std::string buf_;
};

}  // namespace agpt::curate::extract
