// Tensor: a typed, shaped handle to memory that a backend owns (host memory for the CPU backend,
// device memory for a GPU backend). The model only moves handles around and asks the backend to
// compute; it never touches the elements, so the same model code drives every backend.
//
// Handles are cheap to copy and share their storage (like a shared_ptr). Tensors are dense and
// row-major (the last dimension is contiguous); reshape() gives another view of the same storage,
// narrow() a view of consecutive rows (a KV cache's filled prefix, one slot of a buffer). A view
// starts `offset()` bytes into its storage; raw() already points there, so backends need not care.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace agpt::ops {

enum class DType : uint8_t { kF32, kBF16, kI32 };
enum class Device : uint8_t { kCpu, kCuda };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(Device device);

// bf16 <-> fp32 on the host (round to nearest even; NaN stays NaN).
uint16_t f32_to_bf16(float x);
float bf16_to_f32(uint16_t x);

using Shape = std::vector<int64_t>;
std::string shape_string(const Shape& shape);  // "[2, 16, 64]"
int64_t shape_numel(const Shape& shape);        // fails on negative dims or overflow

// Bytes owned by a backend. A backend derives from it to free the memory its own way.
class Storage {
 public:
  Storage(Device device, void* data, size_t bytes) : device_(device), data_(data), bytes_(bytes) {}
  virtual ~Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Device device() const { return device_; }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  Device device_;
  void* data_;
  size_t bytes_;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: no storage (used for "not needed" arguments)
  // A view of `shape` starting offset_bytes into storage (which must hold it entirely).
  Tensor(std::shared_ptr<Storage> storage, Shape shape, DType dtype, size_t offset_bytes = 0);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  size_t bytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  // The first element in the backend's memory space (storage data + offset()). Only a backend
  // dereferences it.
  void* raw() const;
  size_t offset() const { return offset_; }  // bytes from the start of the storage
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Same storage and offset, another shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  // Rows [begin, begin + count) along dimension 0, sharing storage: t.narrow(2, 3) of an [8, 4, 16]
  // tensor is a [3, 4, 16] view starting at row 2. Fails on a scalar or a range outside dim(0).
  Tensor narrow(int64_t begin, int64_t count) const;
  // Elements [offset, offset + numel(shape)) of this tensor's (contiguous) range, seen as `shape`,
  // sharing storage: how one flat buffer holds many parameters' gradients (data parallel).
  Tensor view(int64_t offset, Shape shape) const;
  // Two handles into the same storage, whether or not their ranges overlap (the op checks use this
  // to refuse aliasing, so disjoint views of one buffer count as aliases there too).
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }

  std::string describe() const;  // "f32[2, 16, 64]"

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::kF32;
  size_t offset_ = 0;
};

}  // namespace agpt::ops
