#include "ops/tensor.h"

#include <cstring>
#include <limits>

#include "base/error.h"

namespace agpt::ops {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kI32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
  }
  return "?";
}

const char* device_name(Device device) {
  switch (device) {
    case Device::kCpu: return "cpu";
    case Device::kCuda: return "cuda";
  }
  return "?";
}

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("tensor shape ", shape_string(shape), " has a negative dimension");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail("tensor shape ", shape_string(shape), " has too many elements");
    n *= d;
  }
  return n;
}

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, DType dtype, size_t offset_bytes)
    : storage_(std::move(storage)),
      shape_(std::move(shape)),
      numel_(shape_numel(shape_)),
      dtype_(dtype),
      offset_(offset_bytes) {
  if (storage_ && (offset_ > storage_->bytes() || bytes() > storage_->bytes() - offset_))
    fail("tensor ", describe(), " at byte offset ", offset_, " needs ", bytes(), " bytes but its storage holds ",
         storage_->bytes());
}

int64_t Tensor::dim(int i) const {
  int r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r) fail("tensor ", describe(), " has no dimension ", i);
  return shape_[static_cast<size_t>(i)];
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::kCpu; }

void* Tensor::raw() const { return storage_ ? static_cast<char*>(storage_->data()) + offset_ : nullptr; }

Tensor Tensor::reshape(Shape shape) const {
  if (shape_numel(shape) != numel_)
    fail("cannot reshape ", describe(), " to ", shape_string(shape), ": element counts differ");
  return Tensor(storage_, std::move(shape), dtype_, offset_);
}

Tensor Tensor::narrow(int64_t begin, int64_t count) const {
  if (rank() == 0) fail("cannot narrow ", describe(), ": it has no dimension 0");
  int64_t rows = shape_[0];
  if (begin < 0 || count < 0 || begin > rows || count > rows - begin)
    fail("cannot narrow ", describe(), " to rows [", begin, ", ", begin + count, "): dimension 0 has ", rows);
  Shape shape = shape_;
  shape[0] = count;
  // Elements per row from the shape itself (numel_ / rows would divide by zero for empty tensors).
  Shape row_shape(shape_.begin() + 1, shape_.end());
  size_t row_bytes = static_cast<size_t>(shape_numel(row_shape)) * dtype_size(dtype_);
  return Tensor(storage_, std::move(shape), dtype_, offset_ + static_cast<size_t>(begin) * row_bytes);
}

Tensor Tensor::view(int64_t offset, Shape shape) const {
  const int64_t n = shape_numel(shape);
  if (offset < 0 || offset > numel_ || n > numel_ - offset)
    fail("cannot view elements [", offset, ", ", offset + n, ") of ", describe(), " as ", shape_string(shape));
  return Tensor(storage_, std::move(shape), dtype_, offset_ + static_cast<size_t>(offset) * dtype_size(dtype_));
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype_)) + shape_string(shape_);
}

uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t x) {
  uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace agpt::ops
