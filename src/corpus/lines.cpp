#include "corpus/lines.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/error.h"

namespace agpt::corpus {

namespace {

constexpr size_t kInitialLineBuffer = size_t{1} << 20;
constexpr size_t kWriteBuffer = size_t{1} << 20;

}  // namespace

// ---------------------------------------------------------------------------------------------
// LineReader

LineReader::LineReader(const std::string& path) : stream_(path) {
  cap_ = kInitialLineBuffer;
  buf_.reset(new char[cap_ + kPadding]());  // zeroed: parsers may look past a line's end
}

LineReader::~LineReader() = default;

void LineReader::grow() {
  size_t cap = cap_ * 2;
  std::unique_ptr<char[]> bigger(new char[cap + kPadding]);
  std::memcpy(bigger.get(), buf_.get(), end_);
  std::memset(bigger.get() + end_, 0, cap + kPadding - end_);
  buf_ = std::move(bigger);
  cap_ = cap;
}

bool LineReader::next(std::string_view& line) {
  if (failed_) return false;
  char* buf = buf_.get();
  while (true) {
    size_t line_end = 0;
    bool found = false;
    if (scan_ < end_) {
      const void* nl = std::memchr(buf + scan_, '\n', end_ - scan_);
      if (nl) {
        line_end = static_cast<size_t>(static_cast<const char*>(nl) - buf);
        found = true;
      } else {
        scan_ = end_;
      }
    }
    if (!found && eof_ && begin_ < end_) {  // last line without a final newline
      line_end = end_;
      found = true;
    }
    if (found) {
      size_t b = begin_;
      size_t next = std::min(line_end + 1, end_);
      consumed_ += next - b;
      begin_ = scan_ = next;
      size_t len = line_end - b;
      if (len > 0 && buf[line_end - 1] == '\r') --len;
      if (first_) {
        first_ = false;
        if (len >= 3 && std::memcmp(buf + b, "\xEF\xBB\xBF", 3) == 0) b += 3, len -= 3;
      }
      ++line_number_;
      line = std::string_view(buf + b, len);
      return true;
    }
    if (eof_) return false;
    // Need more data: keep the partial line at the front, grow if it fills the buffer.
    if (begin_ > 0) {
      std::memmove(buf, buf + begin_, end_ - begin_);
      end_ -= begin_;
      scan_ -= begin_;
      begin_ = 0;
    }
    if (end_ == cap_) {
      grow();
      buf = buf_.get();
    }
    size_t k;
    try {
      k = stream_.read(buf + end_, cap_ - end_);
    } catch (const StreamError& e) {
      failed_ = true;
      std::string where = line_number_ > 0 ? cat(" after line ", line_number_) : std::string(" at the start");
      throw StreamError(e.kind(), cat(path(), ": ", e.problem(), where, " (", e.detail(), ")"), e.problem(),
                        e.detail());
    }
    if (k == 0) eof_ = true;
    end_ += k;
  }
}

// ---------------------------------------------------------------------------------------------
// LineWriter

struct LineWriter::Encoder {
  z_stream zs{};
  bool zs_init = false;
  ZSTD_CCtx* cctx = nullptr;
  std::unique_ptr<char[]> out;
  size_t out_cap = 0;
  ~Encoder() {
    if (zs_init) deflateEnd(&zs);
    ZSTD_freeCCtx(cctx);
  }
};

LineWriter::LineWriter(const std::string& path, int zstd_level)
    : path_(path), tmp_path_(path + ".tmp"), compression_(compression_from_path(path)) {
  if (path.empty()) fail("output path is empty");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) fail(path, ": cannot create the output directory ", parent.string(), " (", ec.message(), ")");
  }
  enc_ = std::make_unique<Encoder>();
  if (compression_ == Compression::kGzip) {
    if (deflateInit2(&enc_->zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      fail(path, ": cannot initialise zlib (out of memory?)");
    enc_->zs_init = true;
  } else if (compression_ == Compression::kZstd) {
    int lo = ZSTD_minCLevel(), hi = ZSTD_maxCLevel();
    if (zstd_level < lo || zstd_level > hi)
      fail(path, ": zstd level ", zstd_level, " is out of range (", lo, "..", hi, "; 3 is the usual choice)");
    enc_->cctx = ZSTD_createCCtx();
    if (!enc_->cctx) fail(path, ": cannot create a zstd encoder (out of memory?)");
    ZSTD_CCtx_setParameter(enc_->cctx, ZSTD_c_compressionLevel, zstd_level);
    ZSTD_CCtx_setParameter(enc_->cctx, ZSTD_c_checksumFlag, 1);
  }
  if (compression_ != Compression::kNone) {
    enc_->out_cap = kWriteBuffer;
    enc_->out.reset(new char[enc_->out_cap]);
  }
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path, ": cannot create ", tmp_path_, " (", std::strerror(errno), ")");
  buf_.reserve(kWriteBuffer + 4096);
}

LineWriter::~LineWriter() {
  if (closed_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(tmp_path_.c_str());
}

void LineWriter::check_open() const {
  if (closed_) fail(path_, ": write after close()");
  if (failed_) fail(path_, ": an earlier write failed; the output is incomplete and will not be kept");
}

void LineWriter::write_line(std::string_view line) {
  check_open();
  if (const void* nl = std::memchr(line.data(), '\n', line.size()))
    fail(path_, ": line ", lines_ + 1, " contains a newline at byte ",
         static_cast<const char*>(nl) - line.data(), "; a JSONL record must be one line");
  ++lines_;
  bytes_ += line.size() + 1;
  if (line.size() >= kWriteBuffer) {  // a long line goes straight to the encoder, not through buf_
    flush_buffer(false);
    encode(line.data(), line.size(), false);
    buf_.push_back('\n');
    return;
  }
  buf_.append(line);
  buf_.push_back('\n');
  if (buf_.size() >= kWriteBuffer) flush_buffer(false);
}

void LineWriter::write(std::string_view bytes) {
  check_open();
  bytes_ += bytes.size();
  if (bytes.size() >= kWriteBuffer) {
    flush_buffer(false);
    encode(bytes.data(), bytes.size(), false);
    return;
  }
  buf_.append(bytes);
  if (buf_.size() >= kWriteBuffer) flush_buffer(false);
}

void LineWriter::write_fd(const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      failed_ = true;
      fail(path_, ": write to ", tmp_path_, " failed (", std::strerror(errno), "); is the disk full?");
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

void LineWriter::flush_buffer(bool finish) {
  encode(buf_.data(), buf_.size(), finish);
  buf_.clear();
}

void LineWriter::encode(const char* data, size_t size, bool finish) {
  try {
    if (compression_ == Compression::kNone) {
      write_fd(data, size);
    } else if (compression_ == Compression::kGzip) {
      z_stream& zs = enc_->zs;
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
      size_t left = size;  // zlib counts in 32 bits: feed at most 1 GiB at a time
      while (true) {
        uInt feed = static_cast<uInt>(std::min<size_t>(left, size_t{1} << 30));
        zs.avail_in = feed;
        bool last = feed == left;
        while (true) {
          zs.next_out = reinterpret_cast<Bytef*>(enc_->out.get());
          zs.avail_out = static_cast<uInt>(enc_->out_cap);
          int ret = deflate(&zs, finish && last ? Z_FINISH : Z_NO_FLUSH);
          if (ret == Z_STREAM_ERROR) fail(path_, ": zlib compression failed");
          write_fd(enc_->out.get(), enc_->out_cap - zs.avail_out);
          if (finish && last ? ret == Z_STREAM_END : (zs.avail_in == 0 && zs.avail_out != 0)) break;
        }
        left -= feed;
        if (last) break;
      }
    } else {
      ZSTD_inBuffer in{data, size, 0};
      while (true) {
        ZSTD_outBuffer out{enc_->out.get(), enc_->out_cap, 0};
        size_t r = ZSTD_compressStream2(enc_->cctx, &out, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(r)) fail(path_, ": zstd compression failed (", ZSTD_getErrorName(r), ")");
        write_fd(enc_->out.get(), out.pos);
        if (finish ? r == 0 : in.pos == in.size) break;
      }
    }
  } catch (...) {
    failed_ = true;
    throw;
  }
}

void LineWriter::close() {
  if (closed_) return;
  check_open();
  flush_buffer(true);
  if (::fsync(fd_) != 0) {
    failed_ = true;
    fail(path_, ": could not flush to disk (", std::strerror(errno), ")");
  }
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    failed_ = true;
    fail(path_, ": closing ", tmp_path_, " failed (", std::strerror(errno), ")");
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    failed_ = true;
    fail(path_, ": could not rename ", tmp_path_, " into place (", std::strerror(errno), ")");
  }
  closed_ = true;
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace agpt::corpus
