#include "plot/png.h"

#include <zlib.h>

#include <cstring>

#include "base/error.h"

namespace agpt::plot {
namespace {

void put_u32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

// length, type, data, CRC-32 of type and data (the PNG chunk layout).
void put_chunk(std::string& out, const char type[4], const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.append(type, 4);
  out += data;
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + start), static_cast<uInt>(out.size() - start));
  put_u32(out, static_cast<uint32_t>(crc));
}

}  // namespace

std::string encode_png(const Canvas& canvas) {
  const int w = canvas.width(), h = canvas.height();
  const size_t row = static_cast<size_t>(w) * 3;
  // Every scanline starts with its filter byte; 0 (None) keeps the encoder trivial, and zlib
  // still shrinks the mostly-white image well.
  std::string raw(static_cast<size_t>(h) * (row + 1), '\0');
  for (int y = 0; y < h; ++y) std::memcpy(&raw[y * (row + 1) + 1], &canvas.rgb()[y * row], row);

  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(packed_size, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                           reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6);
  if (rc != Z_OK) fail("PNG encoding: zlib compress2 failed (code ", rc, ")");
  packed.resize(packed_size);

  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(w));
  put_u32(ihdr, static_cast<uint32_t>(h));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace

  std::string out("\x89PNG\r\n\x1a\n", 8);
  put_chunk(out, "IHDR", ihdr);
  put_chunk(out, "IDAT", packed);
  put_chunk(out, "IEND", "");
  return out;
}

}  // namespace agpt::plot
