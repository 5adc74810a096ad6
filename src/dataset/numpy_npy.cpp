#include "dataset/numpy_npy.h"

#include <cstring>
#include <limits>
#include <type_traits>

#include "base/error.h"
#include "base/file.h"

namespace agpt::dataset {
namespace {

// The header is a Python dict literal: {'descr': '<i4', 'fortran_order': False, 'shape': (40, 2), }
struct HeaderParser {
  std::string_view s;
  size_t p = 0;
  const std::string& name;

  [[noreturn]] void bad(const std::string& what) const {
    fail(name, ": malformed .npy header (", what, ") in ", std::string(s));
  }
  void ws() {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) ++p;
  }
  bool eat(char c) {
    ws();
    if (p < s.size() && s[p] == c) {
      ++p;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) bad(cat("expected '", c, "' at offset ", p));
  }
  std::string str() {
    ws();
    if (p >= s.size() || (s[p] != '\'' && s[p] != '"')) {
      if (p < s.size() && s[p] == '[') fail(name, ": structured dtypes (a list descr) are not supported");
      bad(cat("expected a string at offset ", p));
    }
    char q = s[p++];
    size_t e = s.find(q, p);
    if (e == std::string_view::npos) bad("unterminated string");
    std::string out(s.substr(p, e - p));
    p = e + 1;
    return out;
  }
  bool boolean() {
    ws();
    if (s.substr(p, 4) == "True") {
      p += 4;
      return true;
    }
    if (s.substr(p, 5) == "False") {
      p += 5;
      return false;
    }
    bad(cat("expected True or False at offset ", p));
  }
  std::vector<uint64_t> tuple() {
    std::vector<uint64_t> out;
    expect('(');
    while (true) {
      if (eat(')')) break;
      ws();
      if (p >= s.size() || s[p] < '0' || s[p] > '9') bad(cat("expected a dimension at offset ", p));
      uint64_t v = 0;
      while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
        if (v > (std::numeric_limits<uint64_t>::max() - 9) / 10) bad("dimension too large");
        v = v * 10 + uint64_t(s[p++] - '0');
      }
      while (p < s.size() && (s[p] == 'L')) ++p;  // Python 2 longs
      out.push_back(v);
      if (!eat(',')) {
        expect(')');
        break;
      }
    }
    return out;
  }
};

template <typename T>
T load(const char* p, bool swap) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (swap)
    for (size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(b[i], b[sizeof(T) - 1 - i]);
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

}  // namespace

uint64_t NpyArray::size() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

int64_t NpyArray::int_at(uint64_t i) const {
  if (i >= size()) fail(".npy element ", i, " out of range (", size(), " elements)");
  const char* p = data.data() + i * itemsize;
  if (kind == 'u' || kind == 'b') {
    uint64_t v = uint_at(i);
    if (v > uint64_t(std::numeric_limits<int64_t>::max())) fail(".npy element ", i, " (", v, ") does not fit int64");
    return int64_t(v);
  }
  if (kind != 'i') fail(".npy dtype ", descr, " is not an integer type");
  switch (itemsize) {
    case 1: return load<int8_t>(p, big_endian);
    case 2: return load<int16_t>(p, big_endian);
    case 4: return load<int32_t>(p, big_endian);
    case 8: return load<int64_t>(p, big_endian);
  }
  fail(".npy dtype ", descr, ": unsupported integer size");
}

uint64_t NpyArray::uint_at(uint64_t i) const {
  if (i >= size()) fail(".npy element ", i, " out of range (", size(), " elements)");
  const char* p = data.data() + i * itemsize;
  if (kind == 'i') {
    int64_t v = int_at(i);
    if (v < 0) fail(".npy element ", i, " (", v, ") is negative");
    return uint64_t(v);
  }
  if (kind != 'u' && kind != 'b') fail(".npy dtype ", descr, " is not an integer type");
  switch (itemsize) {
    case 1: return load<uint8_t>(p, big_endian);
    case 2: return load<uint16_t>(p, big_endian);
    case 4: return load<uint32_t>(p, big_endian);
    case 8: return load<uint64_t>(p, big_endian);
  }
  fail(".npy dtype ", descr, ": unsupported integer size");
}

double NpyArray::float_at(uint64_t i) const {
  if (i >= size()) fail(".npy element ", i, " out of range (", size(), " elements)");
  if (kind == 'f') {
    const char* p = data.data() + i * itemsize;
    if (itemsize == 8) return load<double>(p, big_endian);
    if (itemsize == 4) return load<float>(p, big_endian);
    fail(".npy dtype ", descr, ": unsupported float size");
  }
  if (kind == 'i') return double(int_at(i));
  return double(uint_at(i));
}

template <typename T>
std::vector<T> NpyArray::as() const {
  std::vector<T> out(size());
  for (uint64_t i = 0; i < out.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      out[i] = static_cast<T>(float_at(i));
    } else if constexpr (std::is_signed_v<T>) {
      if (kind == 'f') fail(".npy dtype ", descr, " is not an integer type");
      int64_t v = int_at(i);
      if (v < int64_t(std::numeric_limits<T>::min()) || v > int64_t(std::numeric_limits<T>::max()))
        fail(".npy element ", i, " (", v, ") does not fit the requested integer type");
      out[i] = static_cast<T>(v);
    } else {
      if (kind == 'f') fail(".npy dtype ", descr, " is not an integer type");
      uint64_t v = uint_at(i);
      if (v > uint64_t(std::numeric_limits<T>::max()))
        fail(".npy element ", i, " (", v, ") does not fit the requested integer type");
      out[i] = static_cast<T>(v);
    }
  }
  return out;
}

template std::vector<int8_t> NpyArray::as<int8_t>() const;
template std::vector<int16_t> NpyArray::as<int16_t>() const;
template std::vector<int32_t> NpyArray::as<int32_t>() const;
template std::vector<int64_t> NpyArray::as<int64_t>() const;
template std::vector<uint8_t> NpyArray::as<uint8_t>() const;
template std::vector<uint16_t> NpyArray::as<uint16_t>() const;
template std::vector<uint32_t> NpyArray::as<uint32_t>() const;
template std::vector<uint64_t> NpyArray::as<uint64_t>() const;
template std::vector<float> NpyArray::as<float>() const;
template std::vector<double> NpyArray::as<double>() const;

NpyArray parse_npy(std::string_view bytes, const std::string& name) {
  static constexpr char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    fail(name, ": not a .npy file (bad magic; expected \\x93NUMPY)");
  const unsigned major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_at = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | size_t(static_cast<unsigned char>(bytes[9])) << 8;
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(name, ": truncated .npy header");
    header_len = 0;
    for (int k = 0; k < 4; ++k) header_len |= size_t(static_cast<unsigned char>(bytes[8 + k])) << (8 * k);
    header_at = 12;
  } else {
    fail(name, ": .npy format version ", major, " is not supported (1, 2 or 3)");
  }
  if (header_at + header_len > bytes.size()) fail(name, ": truncated .npy header");
  HeaderParser hp{bytes.substr(header_at, header_len), 0, name};
  NpyArray a;
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  hp.expect('{');
  while (!hp.eat('}')) {
    std::string key = hp.str();
    hp.expect(':');
    if (key == "descr") {
      a.descr = hp.str();
      have_descr = true;
    } else if (key == "fortran_order") {
      fortran = hp.boolean();
      have_order = true;
    } else if (key == "shape") {
      a.shape = hp.tuple();
      have_shape = true;
    } else {
      hp.bad("unknown key '" + key + "'");
    }
    if (!hp.eat(',')) {
      hp.expect('}');
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape) hp.bad("needs descr, fortran_order and shape");
  if (fortran && a.shape.size() > 1) fail(name, ": Fortran-ordered arrays are not supported");
  const std::string& d = a.descr;
  if (d.size() < 3) fail(name, ": unsupported dtype '", d, "'");
  const char order = d[0];
  if (order == '>') a.big_endian = true;
  else if (order != '<' && order != '|' && order != '=') fail(name, ": unsupported dtype byte order in '", d, "'");
  a.kind = d[1];
  if (a.kind == 'O') fail(name, ": object arrays (dtype '", d, "') cannot be read without Python");
  if (a.kind != 'i' && a.kind != 'u' && a.kind != 'f' && a.kind != 'b')
    fail(name, ": unsupported dtype '", d, "' (integers, unsigned integers, floats or bool only)");
  a.itemsize = 0;
  for (size_t k = 2; k < d.size(); ++k) {
    if (d[k] < '0' || d[k] > '9') fail(name, ": unsupported dtype '", d, "'");
    a.itemsize = a.itemsize * 10 + size_t(d[k] - '0');
  }
  const bool ok = (a.kind == 'f') ? (a.itemsize == 4 || a.itemsize == 8)
                  : (a.kind == 'b') ? a.itemsize == 1
                                    : (a.itemsize == 1 || a.itemsize == 2 || a.itemsize == 4 || a.itemsize == 8);
  if (!ok) fail(name, ": unsupported dtype '", d, "'");
  using u128 = unsigned __int128;
  u128 want = u128(a.itemsize);
  for (uint64_t dim : a.shape) want *= dim;
  const size_t data_at = header_at + header_len;
  if (want != u128(bytes.size() - data_at))
    fail(name, ": the array needs ", static_cast<uint64_t>(want), " bytes (dtype ", d, ", ", a.shape.size(),
         "-d shape) but the file holds ", bytes.size() - data_at, " after its header; truncated or corrupt");
  a.data.assign(bytes.data() + data_at, bytes.size() - data_at);
  return a;
}

NpyArray read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

}  // namespace agpt::dataset
