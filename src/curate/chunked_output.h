// An output file written in chunks, one per input file, that can be cut back to a chunk boundary:
// what makes the curation commands resumable per input file (curate/progress_log.h). Each chunk
// is a complete gzip member or zstd frame (for .gz/.zst names): concatenated they are one valid
// stream that every agpt reader (and gzip, zstd) reads as one file. Streaming: a chunk of any size
// is compressed as it is written, with bounded memory.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "curate/hash.h"

namespace agpt::curate {

// Where a chunk ends in its output and the XXH64 of its bytes as written (compressed).
struct ChunkMark {
  uint64_t end = 0;
  uint64_t hash = 0;
};

class ChunkedOutput {
 public:
  // Opens path for writing at byte offset `keep` (what was after it is cut off; 0 starts a new
  // file). Missing parent directories are created. Throws Error on I/O failure.
  // compress_as: the name whose suffix (.gz, .zst, .zstd) chooses the compression; empty: path.
  ChunkedOutput(const std::string& path, uint64_t keep, const std::string& compress_as = "", int zstd_level = 3);
  ~ChunkedOutput();
  ChunkedOutput(const ChunkedOutput&) = delete;
  ChunkedOutput& operator=(const ChunkedOutput&) = delete;

  // Appends bytes to the current chunk.
  void write(std::string_view bytes);
  // Appends line and "\n"; a line holding "\n" or "\r" is refused (Error): it would split a record.
  void write_line(std::string_view line);
  // Ends the current chunk (a chunk without bytes writes nothing) and hands its bytes to the file
  // system; returns where it ends and its hash.
  ChunkMark end_chunk();
  // Bytes in the file up to the end of the last chunk.
  uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }
  // Ends the chunk, flushes, fsyncs and closes. Throws Error when the data did not reach the disk.
  void close();
  // close(), then renames the file to final_path.
  void close_and_rename(const std::string& final_path);

 private:
  struct Encoder;
  void put(std::string_view compressed);
  void encode(bool finish);

  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t offset_ = 0;
  std::unique_ptr<Encoder> enc_;
  std::string buf_;       // bytes of the current chunk not yet compressed
  bool streaming_ = false;  // the current chunk outgrew buf_ and is being compressed in pieces
  Xxh64Stream hash_;
};

}  // namespace agpt::curate
