#include "curate/extract/output.h"

#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "corpus/stream.h"

namespace agpt::curate::extract {
namespace {

std::string gzip_member(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("zlib: deflateInit2 failed");
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t n = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) fail("zlib: deflate failed (", rc, ")");
  out.resize(n);
  return out;
}

std::string zstd_frame(std::string_view data, int level) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(c, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(c);
  if (ZSTD_isError(n)) fail("zstd: ", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

}  // namespace

ChunkWriter::ChunkWriter(const std::string& path, uint64_t keep, const std::string& compress_as, int zstd_level)
    : path_(path), level_(zstd_level) {
  const std::string& name = compress_as.empty() ? path : compress_as;
  auto c = corpus::strip_compression_suffix(name);
  kind_ = c.size() == name.size() ? kPlain : (name.ends_with(".gz") ? kGzip : kZstd);
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (keep == 0) {
    f_ = std::fopen(path.c_str(), "wb");
  } else {
    f_ = std::fopen(path.c_str(), "r+b");
    if (f_ && (::ftruncate(fileno(f_), static_cast<off_t>(keep)) != 0 || std::fseek(f_, 0, SEEK_END) != 0)) {
      std::fclose(f_);
      f_ = nullptr;
    }
  }
  if (!f_) fail(path, ": cannot open for writing (", std::strerror(errno), ")");
  offset_ = keep;
}

ChunkWriter::~ChunkWriter() {
  if (f_) std::fclose(f_);
}

std::string_view ChunkWriter::append(std::string_view lines) {
  if (!f_) fail(path_, ": write after close");
  if (lines.empty()) {
    buf_.clear();
    return buf_;
  }
  if (kind_ == kGzip) buf_ = gzip_member(lines);
  else if (kind_ == kZstd) buf_ = zstd_frame(lines, level_);
  else buf_.assign(lines);
  if (std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size() || std::fflush(f_) != 0)
    fail(path_, ": write failed (", std::strerror(errno), "); is the disk full?");
  offset_ += buf_.size();
  return buf_;
}

void ChunkWriter::close() {
  if (!f_) return;
  bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
  ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) fail(path_, ": could not be written to disk (", std::strerror(errno), ")");
}

}  // namespace agpt::curate::extract
