// Files: whole reads, atomic writes, and read-only memory maps.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/checksum.h"

namespace agpt {

// Reads a whole file; throws Error naming the path on failure.
std::string read_file(const std::string& path);

// What was written: its size and its checksum (base/checksum.h), computed on the way out so that a
// checkpoint need not read its files back.
struct FileDigest {
  uint64_t bytes = 0;
  uint64_t fnv1a64 = 0;
};

// Writes data to path atomically: a temporary file in the same directory, fsync, rename.
// A crash leaves either the old file or the new one, never a partial file.
FileDigest write_file_atomic(const std::string& path, std::string_view data);

// The same, streamed: append() pieces as they come (a 7B checkpoint's 64 GB of moments need not be
// one string in memory first), then commit() (fsync, rename into place). Destroyed without
// commit(), or after a failure, the temporary file is removed and `path` is left as it was.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void append(std::string_view data);
  FileDigest commit();
  uint64_t bytes() const { return bytes_; }

 private:
  [[noreturn]] void abandon(const std::string& what, int err);
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  Fnv1a64Words checksum_;
};

bool file_exists(const std::string& path);
uint64_t file_size(const std::string& path);

// A read-only memory map of a whole file. Empty files map to an empty view.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  // Tells the kernel access will be scattered: no read-ahead around each touched page (keeps the
  // resident set small when only a few entries of a huge file are read).
  void advise_random() const;

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace agpt
