#include "corpus/stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "base/log.h"

namespace agpt::corpus {

namespace {

constexpr size_t kInputBuffer = size_t{1} << 20;  // compressed bytes read per system call
constexpr size_t kMaxChunk = size_t{1} << 30;     // zlib counts in 32 bits

// Case-insensitive (ASCII) suffix test; suffix is lower case.
bool ends_with(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s = s.substr(s.size() - suffix.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

std::string hex_bytes(const char* p, size_t n) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(p[i]));
    if (i) out.push_back(' ');
    out += buf;
  }
  return out;
}

}  // namespace

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
    default: return "plain";
  }
}

Compression compression_from_path(std::string_view path) {
  if (ends_with(path, ".gz")) return Compression::kGzip;
  if (ends_with(path, ".zst") || ends_with(path, ".zstd")) return Compression::kZstd;
  return Compression::kNone;
}

std::string_view strip_compression_suffix(std::string_view path) {
  for (std::string_view s : {".gz", ".zst", ".zstd"})
    if (ends_with(path, s)) return path.substr(0, path.size() - s.size());
  return path;
}

struct InputStream::Gzip {
  z_stream zs{};
  bool in_member = false;
  ~Gzip() { inflateEnd(&zs); }
};

struct InputStream::Zstd {
  ZSTD_DCtx* dctx = nullptr;
  size_t last_ret = 0;  // 0 between frames; otherwise the decoder is inside a frame
  ~Zstd() { ZSTD_freeDCtx(dctx); }
};

InputStream::InputStream(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path, ": cannot open for reading (", std::strerror(errno), ")");
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    int e = errno;
    ::close(fd_);
    fail(path, ": cannot stat (", std::strerror(e), ")");
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    fail(path, ": is a directory, not a file");
  }
  file_size_ = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
#ifdef POSIX_FADV_SEQUENTIAL
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  in_.reset(new char[kInputBuffer]);
}

InputStream::~InputStream() {
  if (fd_ >= 0) ::close(fd_);
}

void InputStream::corrupt(const std::string& problem, const std::string& detail) {
  throw StreamError(StreamError::Kind::kCorrupt, cat(path_, ": ", problem, " (", detail, ")"), problem, detail);
}

void InputStream::truncated(const std::string& detail) {
  std::string problem = cat("truncated ", compression_name(compression_), " stream");
  throw StreamError(StreamError::Kind::kTruncated, cat(path_, ": ", problem, " (", detail, ")"), problem, detail);
}

bool InputStream::fill_input() {
  if (in_pos_ > 0) {
    std::memmove(in_.get(), in_.get() + in_pos_, in_end_ - in_pos_);
    in_end_ -= in_pos_;
    in_pos_ = 0;
  }
  while (in_end_ < kInputBuffer) {
    ssize_t r = ::read(fd_, in_.get() + in_end_, kInputBuffer - in_end_);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(path_, ": read error after ", raw_read_, " bytes (", std::strerror(errno), ")");
    }
    if (r == 0) {
      file_eof_ = true;
      return false;
    }
    in_end_ += static_cast<size_t>(r);
    raw_read_ += static_cast<uint64_t>(r);
    return true;
  }
  return true;
}

void InputStream::detect() {
  detected_ = true;
  while (in_end_ - in_pos_ < 4 && !file_eof_) fill_input();
  size_t have = in_end_ - in_pos_;
  const auto* b = reinterpret_cast<const unsigned char*>(in_.get() + in_pos_);
  Compression by_name = compression_from_path(path_);
  if (have == 0) {  // an empty file is an empty stream, whatever its name
    compression_ = Compression::kNone;
    return;
  }
  uint32_t magic = have >= 4 ? (uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24) : 0;
  if (have >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
    compression_ = Compression::kGzip;
    gzip_ = std::make_unique<Gzip>();
    // 16 + 15: gzip wrapper only, largest window.
    if (inflateInit2(&gzip_->zs, 16 + 15) != Z_OK) fail(path_, ": cannot initialise zlib (out of memory?)");
  } else if (magic == 0xFD2FB528u || (magic & 0xFFFFFFF0u) == 0x184D2A50u) {
    compression_ = Compression::kZstd;
    zstd_ = std::make_unique<Zstd>();
    zstd_->dctx = ZSTD_createDCtx();
    if (!zstd_->dctx) fail(path_, ": cannot create a zstd decoder (out of memory?)");
    // Accept frames written with --long (windows up to 2 GiB); memory is only used when needed.
    ZSTD_DCtx_setParameter(zstd_->dctx, ZSTD_d_windowLogMax, 31);
  } else if (by_name != Compression::kNone) {
    compression_ = by_name;
    corrupt(cat("not a ", compression_name(by_name), " stream"),
            cat("the name says ", compression_name(by_name), " but the file starts with bytes ",
                hex_bytes(in_.get() + in_pos_, std::min<size_t>(have, 4)),
                "; the file is damaged or not compressed (rename it if it is plain text)"));
  } else {
    compression_ = Compression::kNone;
  }
}

size_t InputStream::read(char* dst, size_t n) {
  if (error_) std::rethrow_exception(error_);  // a damaged stream stays damaged
  if (pending_) {                              // found after the bytes handed out last time
    error_ = pending_;
    pending_ = nullptr;
    std::rethrow_exception(error_);
  }
  n = std::min(n, kMaxChunk);
  if (n == 0) return 0;
  produced_ = 0;
  try {
    if (!detected_) detect();
    switch (compression_) {
      case Compression::kGzip: return read_gzip(dst, n);
      case Compression::kZstd: return read_zstd(dst, n);
      default: return read_plain(dst, n);
    }
  } catch (const StreamError&) {
    // Hand out what was decoded before the error; report the error on the next call.
    size_t done = compression_ == Compression::kGzip && gzip_ ? n - gzip_->zs.avail_out : produced_;
    if (done == 0) {
      error_ = std::current_exception();
      throw;
    }
    pending_ = std::current_exception();
    return done;
  }
}

size_t InputStream::read_plain(char* dst, size_t n) {
  if (in_pos_ < in_end_) {  // bytes read while detecting the format
    size_t k = std::min(n, in_end_ - in_pos_);
    std::memcpy(dst, in_.get() + in_pos_, k);
    in_pos_ += k;
    return k;
  }
  if (file_eof_) return 0;
  while (true) {
    ssize_t r = ::read(fd_, dst, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(path_, ": read error after ", raw_read_, " bytes (", std::strerror(errno), ")");
    }
    if (r == 0) file_eof_ = true;
    raw_read_ += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }
}

size_t InputStream::read_gzip(char* dst, size_t n) {
  z_stream& zs = gzip_->zs;
  zs.next_out = reinterpret_cast<Bytef*>(dst);
  zs.avail_out = static_cast<uInt>(n);
  while (zs.avail_out > 0) {
    if (in_pos_ == in_end_ && !file_eof_) fill_input();
    if (!gzip_->in_member) {
      if (in_pos_ == in_end_) break;  // clean end after the last member
      if (static_cast<unsigned char>(in_[in_pos_]) != 0x1f) {
        // Some tools pad gzip files with zero bytes; accept that, refuse anything else.
        uint64_t at = raw_read_ - (in_end_ - in_pos_);
        uint64_t zeros = 0;
        while (true) {
          for (; in_pos_ < in_end_; ++in_pos_, ++zeros)
            if (in_[in_pos_] != 0)
              corrupt("unexpected data after the gzip stream",
                      cat("byte ", at, " of the file is neither a new gzip member nor padding; the file is damaged"));
          if (file_eof_ || !fill_input()) break;
        }
        log_warn(path_, ": ignored ", zeros, " zero bytes of padding after the gzip data");
        break;
      }
      gzip_->in_member = true;
    }
    zs.next_in = reinterpret_cast<Bytef*>(in_.get() + in_pos_);
    zs.avail_in = static_cast<uInt>(in_end_ - in_pos_);
    int ret = inflate(&zs, Z_NO_FLUSH);
    in_pos_ = in_end_ - zs.avail_in;
    if (ret == Z_STREAM_END) {
      gzip_->in_member = false;
      inflateReset(&zs);
      continue;
    }
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR) {  // no progress was possible
      if (zs.avail_out == 0) break;
      if (in_pos_ == in_end_ && file_eof_) {
        if (zs.avail_out < n) break;  // hand out what we have first
        truncated("the file ends in the middle of a gzip member: an interrupted download or write? "
                  "re-create the file");
      }
      continue;
    }
    corrupt("damaged gzip data", cat(zs.msg ? zs.msg : "zlib error ", zs.msg ? "" : std::to_string(ret),
                                     "; the file is damaged"));
  }
  return n - zs.avail_out;
}

size_t InputStream::read_zstd(char* dst, size_t n) {
  ZSTD_outBuffer out{dst, n, 0};
  while (out.pos < out.size) {
    if (in_pos_ == in_end_ && !file_eof_) fill_input();
    ZSTD_inBuffer in{in_.get(), in_end_, in_pos_};
    bool at_end = in.pos == in.size && file_eof_;
    if (at_end && zstd_->last_ret == 0) break;  // clean end between frames
    size_t before = out.pos;
    size_t r = ZSTD_decompressStream(zstd_->dctx, &out, &in);
    in_pos_ = in.pos;
    produced_ = out.pos;
    if (ZSTD_isError(r))
      corrupt("damaged zstd data", cat(ZSTD_getErrorName(r), "; the file is damaged or not zstd"));
    zstd_->last_ret = r;
    if (at_end && out.pos == before && r != 0) {
      if (out.pos > 0) break;  // hand out what we have first
      truncated("the file ends in the middle of a zstd frame: an interrupted download or write? "
                "re-create the file");
    }
  }
  return out.pos;
}

std::string read_decompressed(const std::string& path) {
  InputStream in(path);
  std::string out;
  size_t chunk = std::max<uint64_t>(in.file_size(), 1 << 16);
  while (true) {
    size_t old = out.size();
    out.resize(old + chunk);
    size_t k = in.read(out.data() + old, chunk);
    out.resize(old + k);
    if (k == 0) break;
    chunk = std::min<size_t>(std::max(chunk, out.size()), size_t{1} << 28);
  }
  return out;
}

}  // namespace agpt::corpus
