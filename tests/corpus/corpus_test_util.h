// Helpers for the corpus tests: temporary directories, raw files, gzip/zstd bytes made with the
// libraries directly (so tests do not trust the code they test), and reading everything back.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "corpus/reader.h"

namespace corpus_test {

namespace fs = std::filesystem;

// A fresh temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("agpt_test_corpus_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

inline void write_bytes(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// One complete gzip member holding data.
inline std::string gzip_member(const std::string& data, int level = 6) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// One complete zstd frame holding data (with a content checksum).
inline std::string zstd_frame(const std::string& data, int level = 3) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(c, out.data(), out.size(), data.data(), data.size());
  EXPECT_FALSE(ZSTD_isError(n));
  ZSTD_freeCCtx(c);
  out.resize(n);
  return out;
}

struct ReadResult {
  std::vector<agpt::corpus::Document> docs;
  agpt::corpus::ReadReport report;
};

// Reads every document of specs; checks the accounting invariant on the way out.
inline ReadResult read_all(const std::vector<std::string>& specs,
                           agpt::corpus::OnError mode = agpt::corpus::OnError::kSkip) {
  ReadResult r;
  agpt::corpus::DocumentReader reader(specs, mode);
  agpt::corpus::Document doc;
  while (reader.next(doc)) r.docs.push_back(doc);
  r.report = reader.report();
  EXPECT_EQ(r.report.lines, r.report.documents + r.report.skipped + r.report.blank_lines) << r.report.summary();
  EXPECT_EQ(r.report.documents, r.docs.size());
  uint64_t by_reason = 0;
  for (const auto& [why, n] : r.report.skipped_by_reason) by_reason += n;
  EXPECT_EQ(by_reason, r.report.skipped);
  EXPECT_EQ(reader.bytes_read_compressed(), reader.bytes_total_compressed());
  return r;
}

// The message of the agpt::Error that fn throws ("" and a test failure if it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const agpt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an agpt::Error";
  return "";
}

}  // namespace corpus_test
