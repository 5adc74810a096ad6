#include "curate/chunked_output.h"

#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "corpus/stream.h"

namespace agpt::curate {
namespace {

// A chunk up to this size is compressed in one call (what `agpt data extract` always did, so its
// outputs did not change); a longer one is compressed in pieces as it is written.
constexpr size_t kOneShotLimit = size_t{8} << 20;
constexpr size_t kPiece = size_t{1} << 30;  // zlib counts in 32 bits

}  // namespace

struct ChunkedOutput::Encoder {
  enum Kind { kPlain, kGzip, kZstd } kind = kPlain;
  int level = 3;
  z_stream zs{};
  bool zs_ready = false;
  ZSTD_CCtx* cctx = nullptr;
  std::string out;

  ~Encoder() {
    if (zs_ready) deflateEnd(&zs);
    if (cctx) ZSTD_freeCCtx(cctx);
  }
  ZSTD_CCtx* zstd() {
    if (!cctx) {
      cctx = ZSTD_createCCtx();
      if (!cctx) fail("zstd: out of memory");
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
      ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    }
    return cctx;
  }
  // One gzip member of data (deflate level 6), as the whole chunk.
  std::string_view gzip_member(std::string_view data) {
    z_stream z{};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("zlib: deflateInit2 failed");
    out.resize(deflateBound(&z, data.size()) + 64);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) fail("zlib: deflate failed (", rc, ")");
    return {out.data(), n};
  }
  std::string_view zstd_frame(std::string_view data) {
    out.resize(ZSTD_compressBound(data.size()));
    ZSTD_CCtx_reset(zstd(), ZSTD_reset_session_only);
    size_t n = ZSTD_compress2(zstd(), out.data(), out.size(), data.data(), data.size());
    if (ZSTD_isError(n)) fail("zstd: ", ZSTD_getErrorName(n));
    return {out.data(), n};
  }
};

ChunkedOutput::ChunkedOutput(const std::string& path, uint64_t keep, const std::string& compress_as, int zstd_level)
    : path_(path), enc_(std::make_unique<Encoder>()) {
  const std::string& name = compress_as.empty() ? path : compress_as;
  auto stripped = corpus::strip_compression_suffix(name);
  enc_->kind = stripped.size() == name.size() ? Encoder::kPlain : (name.ends_with(".gz") ? Encoder::kGzip : Encoder::kZstd);
  enc_->level = zstd_level;
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

ChunkedOutput::~ChunkedOutput() {
  if (f_) std::fclose(f_);
}

void ChunkedOutput::put(std::string_view bytes) {
  if (bytes.empty()) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size())
    fail(path_, ": write failed (", std::strerror(errno), "); is the disk full?");
  hash_.update(bytes);
  offset_ += bytes.size();
}

void ChunkedOutput::encode(bool finish) {
  Encoder& e = *enc_;
  if (e.kind == Encoder::kPlain) {
    put(buf_);
  } else if (!streaming_ && finish) {
    put(e.kind == Encoder::kGzip ? e.gzip_member(buf_) : e.zstd_frame(buf_));
  } else if (e.kind == Encoder::kGzip) {
    if (!streaming_) {
      if (!e.zs_ready) {
        if (deflateInit2(&e.zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fail("zlib: deflateInit2 failed");
        e.zs_ready = true;
      } else {
        deflateReset(&e.zs);
      }
    }
    e.out.resize(1 << 20);
    size_t at = 0;
    while (true) {
      size_t take = std::min(kPiece, buf_.size() - at);
      bool last = at + take == buf_.size();
      e.zs.next_in = reinterpret_cast<Bytef*>(buf_.data() + at);
      e.zs.avail_in = static_cast<uInt>(take);
      int flush = last && finish ? Z_FINISH : Z_NO_FLUSH;
      int rc;
      do {
        e.zs.next_out = reinterpret_cast<Bytef*>(e.out.data());
        e.zs.avail_out = static_cast<uInt>(e.out.size());
        rc = deflate(&e.zs, flush);
        if (rc == Z_STREAM_ERROR) fail("zlib: deflate failed");
        put({e.out.data(), e.out.size() - e.zs.avail_out});
      } while (e.zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
      at += take;
      if (last) break;
    }
  } else {
    ZSTD_CCtx* c = e.zstd();
    if (!streaming_) ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
    e.out.resize(ZSTD_CStreamOutSize());
    ZSTD_inBuffer in{buf_.data(), buf_.size(), 0};
    const ZSTD_EndDirective mode = finish ? ZSTD_e_end : ZSTD_e_continue;
    while (true) {
      ZSTD_outBuffer o{e.out.data(), e.out.size(), 0};
      size_t left = ZSTD_compressStream2(c, &o, &in, mode);
      if (ZSTD_isError(left)) fail("zstd: ", ZSTD_getErrorName(left));
      put({e.out.data(), o.pos});
      if (finish ? left == 0 : in.pos == in.size) break;
    }
  }
  buf_.clear();
  streaming_ = !finish;
}

void ChunkedOutput::write(std::string_view bytes) {
  if (!f_) fail(path_, ": write after close");
  buf_.append(bytes);
  if (buf_.size() >= kOneShotLimit) encode(false);
}

void ChunkedOutput::write_line(std::string_view line) {
  if (line.find_first_of("\n\r") != std::string_view::npos)
    fail(path_, ": a line to write holds a line break; it would split the record");
  if (!f_) fail(path_, ": write after close");
  buf_.append(line);
  buf_.push_back('\n');
  if (buf_.size() >= kOneShotLimit) encode(false);
}

ChunkMark ChunkedOutput::end_chunk() {
  if (!f_) fail(path_, ": write after close");
  if (!buf_.empty() || streaming_) encode(true);
  if (std::fflush(f_) != 0) fail(path_, ": write failed (", std::strerror(errno), "); is the disk full?");
  ChunkMark m{offset_, hash_.digest()};
  hash_.reset();
  return m;
}

void ChunkedOutput::close() {
  if (!f_) return;
  end_chunk();
  bool ok = ::fsync(fileno(f_)) == 0;
  ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok) fail(path_, ": could not be written to disk (", std::strerror(errno), ")");
}

void ChunkedOutput::close_and_rename(const std::string& final_path) {
  close();
  std::error_code ec;
  std::filesystem::rename(path_, final_path, ec);
  if (ec) fail(final_path, ": cannot rename ", path_, " to it (", ec.message(), ")");
}

}  // namespace agpt::curate
