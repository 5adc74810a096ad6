// Reading numpy .npy files (format versions 1-3): the header's dtype and shape, then the raw array.
// Enough for Megatron-LM's index caches (document_index <i4, sample_index <i4/<i8 (n, 2),
// shuffle_index <u4/<i8, dataset_index <i2, dataset_sample_index <i8) and other plain numeric
// arrays. Structured dtypes, object arrays and Fortran order are refused with a clear error.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::dataset {

struct NpyArray {
  std::string descr;            // as written, e.g. "<i4"
  char kind = 'i';              // 'i' signed, 'u' unsigned, 'f' float, 'b' bool
  size_t itemsize = 0;          // bytes per element
  bool big_endian = false;
  std::vector<uint64_t> shape;  // () for a scalar
  std::string data;             // the raw elements, C order

  uint64_t size() const;        // number of elements (product of the shape)
  // Element i (flat, C order) converted; integers must fit the result exactly.
  int64_t int_at(uint64_t i) const;
  uint64_t uint_at(uint64_t i) const;
  double float_at(uint64_t i) const;
  // All elements converted to T (an integer or floating type); fails if one does not fit.
  template <typename T>
  std::vector<T> as() const;
};

// Parses a whole .npy file held in memory; `name` is used in error messages.
NpyArray parse_npy(std::string_view bytes, const std::string& name);
NpyArray read_npy(const std::string& path);

}  // namespace agpt::dataset
