// Tensor: a typed, shaped handle to memory that a backend owns (host memory for the CPU backend,
// device memory for a GPU backend). The model only moves handles around and asks the backend to
// compute; it never touches the elements, so the same model code drives every backend.
//
// Handles are cheap to copy and share their storage (like a shared_ptr). Tensors are dense and
// row-major (the last dimension is contiguous); reshape() gives another view of the same storage.
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
  Tensor(std::shared_ptr<Storage> storage, Shape shape, DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  size_t bytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  // The first element in the backend's memory space. Only a backend dereferences it.
  void* raw() const;
  template <typename T>
  T* data() const {
    return static_cast<T*>(raw());
  }

  // Same storage, another shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  // Two handles to the same memory (the model uses this to check aliasing rules).
  bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }

  std::string describe() const;  // "f32[2, 16, 64]"

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::kF32;
};

}  // namespace agpt::ops
