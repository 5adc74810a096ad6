// A strict little PNG reader for the tests: checks the signature and every chunk's CRC, inflates
// the IDAT stream with zlib and undoes filter type 0. Independent of the encoder under test.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "plot/surface.h"

namespace agpt::testing {

struct DecodedPng {
  std::string error;  // "" when the file is valid
  uint32_t width = 0, height = 0;
  std::vector<std::string> chunk_types;
  size_t inflated_size = 0;
  std::vector<uint8_t> rgb;  // row-major RGB, filter bytes removed
  plot::Rgb pixel(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * width + x) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};

inline uint32_t be32(const std::string& s, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24 | static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8 | static_cast<uint32_t>(static_cast<uint8_t>(s[at + 3]));
}

inline DecodedPng decode_png(const std::string& png) {
  DecodedPng d;
  if (png.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) != 0) return d.error = "bad signature", d;
  std::string idat;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = be32(png, at);
    if (at + 12 + len > png.size()) return d.error = "chunk runs past the end", d;
    const std::string type = png.substr(at + 4, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    if (be32(png, at + 8 + len) != static_cast<uint32_t>(crc)) return d.error = "bad CRC in " + type, d;
    d.chunk_types.push_back(type);
    if (type == "IHDR") {
      d.width = be32(png, at + 8), d.height = be32(png, at + 12);
      if (png[at + 16] != 8 || png[at + 17] != 2) return d.error = "not 8-bit RGB", d;
    }
    if (type == "IDAT") idat += png.substr(at + 8, len);
    at += 12 + len;
  }
  if (at != png.size()) return d.error = "trailing bytes", d;
  if (d.chunk_types.empty() || d.chunk_types.front() != "IHDR" || d.chunk_types.back() != "IEND") return d.error = "chunk order", d;
  const size_t row = 1 + 3 * static_cast<size_t>(d.width);
  std::vector<uint8_t> raw(row * d.height + 1);  // one spare byte: a longer stream shows as a size mismatch
  uLongf raw_size = raw.size();
  const int rc = uncompress(raw.data(), &raw_size, reinterpret_cast<const Bytef*>(idat.data()), idat.size());
  if (rc != Z_OK) return d.error = "zlib inflate failed: " + std::to_string(rc), d;
  d.inflated_size = raw_size;
  if (raw_size != row * d.height) return d.error = "inflated size mismatch", d;
  for (size_t y = 0; y < d.height; ++y) {
    if (raw[y * row] != 0) return d.error = "filter type is not 0", d;
    d.rgb.insert(d.rgb.end(), raw.begin() + y * row + 1, raw.begin() + (y + 1) * row);
  }
  return d;
}

}  // namespace agpt::testing
