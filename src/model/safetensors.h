// safetensors: the Hugging Face tensor file format. An 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the
// tensor bytes (offsets are relative to the end of the header), little-endian, row-major.
//
// Reading maps the file and checks the whole header against the file before anything is used:
// header length, JSON, dtypes, shapes (byte counts must match the offsets), offsets inside the
// data, no two tensors overlapping. A file that passes can be read without further checks.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"

namespace agpt::model {

enum class StDType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2 };

const char* st_dtype_name(StDType dtype);  // "F32"
size_t st_dtype_size(StDType dtype);
bool st_dtype_from_name(std::string_view name, StDType* out);

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets in the data section
  uint64_t end = 0;
  int64_t numel() const;
  std::string shape_string() const;
};

// The parsed and validated header of a safetensors file held in `file` (the whole file's bytes).
// `label` names the file in error messages. Throws agpt::Error on any inconsistency.
struct StHeader {
  std::vector<StTensorInfo> tensors;  // sorted by data offset
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section
};
StHeader parse_safetensors(std::string_view file, const std::string& label);

// A safetensors file opened for reading (memory-mapped).
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  const std::vector<StTensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const StTensorInfo* find(std::string_view name) const;
  const StTensorInfo& at(std::string_view name) const;  // fails naming the file and the closest name

  // The raw little-endian bytes of a tensor.
  std::string_view bytes(const StTensorInfo& info) const;
  // Elements converted to float (F32, F16, BF16, F64) or to int64 (I64, I32, I16, I8, U8, U16, U32).
  std::vector<float> read_f32(std::string_view name) const;
  std::vector<int64_t> read_i64(std::string_view name) const;

 private:
  MappedFile file_;
  StHeader header_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

// Converts n elements of `dtype` at `src` to float / int64; fails for other dtypes.
void convert_to_f32(StDType dtype, const void* src, size_t n, float* dst, const std::string& what);
void convert_to_i64(StDType dtype, const void* src, size_t n, int64_t* dst, const std::string& what);

// Rounding conversions of one float (nearest-even; NaN stays NaN).
uint16_t f32_to_bf16(float x);
uint16_t f32_to_f16(float x);
float bf16_to_f32(uint16_t x);
float f16_to_f32(uint16_t x);

// Builds a safetensors file in memory and writes it atomically.
class SafetensorsWriter {
 public:
  // Stores float data as F32, F16 or BF16 (rounded to nearest even).
  void add_f32(const std::string& name, std::vector<int64_t> shape, std::span<const float> values,
               StDType store_as = StDType::F32);
  void add_i64(const std::string& name, std::vector<int64_t> shape, std::span<const int64_t> values);
  // Raw bytes already in `dtype` (little-endian).
  void add_raw(const std::string& name, StDType dtype, std::vector<int64_t> shape, std::string data);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  size_t size() const { return entries_.size(); }
  uint64_t data_bytes() const { return data_bytes_; }
  // Declares a float tensor (stored as F32, F16 or BF16) whose values come only when the file is
  // written, from write()'s `produce` (called once per declared tensor, in the order declared):
  // one such tensor is in memory at a time (a 7B checkpoint's AdamW moments are 64 GB).
  void declare_f32(const std::string& name, std::vector<int64_t> shape, StDType store_as = StDType::F32);
  // Returns the values of declared tensor k; they must stay valid until the next call.
  using Producer = std::function<std::span<const float>(size_t declared_index)>;

  std::string serialize() const;  // not with declared tensors
  // Atomic (temporary file, fsync, rename) and streamed: the data is not copied into one buffer.
  FileDigest write(const std::string& path, const Producer& produce = nullptr) const;

 private:
  struct Entry {
    std::string name;
    StDType dtype;
    std::vector<int64_t> shape;
    std::string data;
    uint64_t bytes = 0;     // data.size(), or a declared tensor's size
    bool declared = false;  // values from write()'s producer
  };
  std::string header_bytes() const;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_bytes_ = 0;
  size_t declared_ = 0;
};

// The weights of a model directory: model.safetensors, or the shards listed in
// model.safetensors.index.json ({"weight_map": {tensor name: shard file name}}).
class WeightReader {
 public:
  explicit WeightReader(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const { return index_.find(name) != index_.end(); }
  const StTensorInfo& info(std::string_view name) const;
  std::vector<float> read_f32(std::string_view name) const;
  const SafetensorsFile& file_of(std::string_view name) const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<size_t, const StTensorInfo*>, std::less<>> index_;
};

// One float tensor to save.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Writes tensors into dir as model.safetensors, or as model-0000i-of-0000n.safetensors shards plus
// model.safetensors.index.json when they exceed max_shard_bytes. Every file is written atomically;
// shard files from an earlier save that are no longer listed are left alone.
// Returns what it wrote: file name (in dir) -> size and checksum.
using WrittenFiles = std::map<std::string, FileDigest>;
WrittenFiles write_weights(const std::string& dir, const std::vector<NamedTensor>& tensors, StDType store_as,
                           uint64_t max_shard_bytes = 5'000'000'000ull);

// The same, with tensor i's values asked of `values(i)` only when its bytes are written (in order
// 0, 1, ...; each span valid until the next call): one tensor in memory at a time.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};
// Several writers (ranks that all hold the weights) can share the work: each writes the shard
// files i with i % parts == part and asks values() only for their tensors; part 0 also writes the
// index, or the single model.safetensors. Together they write what one writer would.
struct WriterShare {
  int part = 0;
  int parts = 1;
};
WrittenFiles write_weights(const std::string& dir, const std::vector<TensorSpec>& specs,
                           const std::function<std::span<const float>(size_t)>& values, StDType store_as,
                           uint64_t max_shard_bytes = 5'000'000'000ull, WriterShare share = {});
// The tensors (indices into specs) of each weight file write_weights makes: in order, a new file
// once the next tensor would pass max_shard_bytes; and those that `share` writes.
std::vector<std::vector<size_t>> plan_weight_files(const std::vector<TensorSpec>& specs, StDType store_as,
                                                   uint64_t max_shard_bytes = 5'000'000'000ull);
std::vector<size_t> tensors_of_share(const std::vector<std::vector<size_t>>& plan, WriterShare share);

// The name in `candidates` closest to `name` (edit distance), or "" if none is close.
std::string closest_name(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace agpt::model
