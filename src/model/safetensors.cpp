#include "model/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "base/log.h"

namespace agpt::model {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

struct DTypeEntry {
  StDType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {StDType::F64, "F64", 8},   {StDType::F32, "F32", 4},   {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2}, {StDType::I64, "I64", 8},   {StDType::I32, "I32", 4},
    {StDType::I16, "I16", 2},   {StDType::I8, "I8", 1},     {StDType::U64, "U64", 8},
    {StDType::U32, "U32", 4},   {StDType::U16, "U16", 2},   {StDType::U8, "U8", 1},
    {StDType::BOOL, "BOOL", 1}, {StDType::F8_E4M3, "F8_E4M3", 1}, {StDType::F8_E5M2, "F8_E5M2", 1},
};

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the safetensors library's own limit

// A JSON value that is a non-negative integer.
bool as_u64(const nlohmann::json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

const char* st_dtype_name(StDType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

size_t st_dtype_size(StDType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

bool st_dtype_from_name(std::string_view name, StDType* out) {
  for (const auto& e : kDTypes)
    if (name == e.name) {
      *out = e.dtype;
      return true;
    }
  return false;
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string StTensorInfo::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

StHeader parse_safetensors(std::string_view file, const std::string& label) {
  if (file.size() < 8)
    fail(label, ": not a safetensors file (", file.size(), " bytes; the 8-byte header length is missing)");
  uint64_t n = load_le<uint64_t>(reinterpret_cast<const uint8_t*>(file.data()));
  if (n > file.size() - 8)
    fail(label, ": safetensors header length ", n, " runs past the end of the file (", file.size(),
         " bytes): the file is truncated or not safetensors");
  if (n > kMaxHeaderBytes) fail(label, ": safetensors header length ", n, " exceeds the 100 MiB limit");
  std::string_view text = file.substr(8, n);

  // Parse, noting duplicate top-level keys (JSON objects would silently keep the last one).
  std::set<std::string> keys;
  std::string duplicate;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(
        text.begin(), text.end(),
        [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string() &&
              !keys.insert(parsed.get<std::string>()).second && duplicate.empty())
            duplicate = parsed.get<std::string>();
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    fail(label, ": safetensors header is not valid JSON (", e.what(), ")");
  }
  if (!header.is_object()) fail(label, ": safetensors header must be a JSON object");
  if (!duplicate.empty()) fail(label, ": safetensors header names tensor '", duplicate, "' twice");

  StHeader out;
  out.data_start = 8 + n;
  const uint64_t data_size = file.size() - out.data_start;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(label, ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail(label, ": __metadata__ value of '", k, "' is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    std::string where = label + ": tensor '" + name + "'";
    if (name.empty()) fail(label, ": a tensor has an empty name");
    if (!entry.is_object()) fail(where, ": entry must be an object with dtype, shape and data_offsets");
    StTensorInfo info;
    info.name = name;
    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) fail(where, ": missing dtype");
    if (!st_dtype_from_name(dt->get<std::string>(), &info.dtype))
      fail(where, ": unknown dtype '", dt->get<std::string>(), "'");
    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) fail(where, ": missing shape (an array of sizes)");
    if (sh->size() > 16) fail(where, ": shape has ", sh->size(), " dimensions (at most 16)");
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      uint64_t v;
      if (!as_u64(d, &v)) fail(where, ": shape holds '", d.dump(), "', not a non-negative integer");
      if (v > (1ull << 48)) fail(where, ": dimension ", v, " is implausibly large");
      if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / v) fail(where, ": too many elements");
      numel *= v;
      info.shape.push_back(static_cast<int64_t>(v));
    }
    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2 || !as_u64((*off)[0], &info.begin) ||
        !as_u64((*off)[1], &info.end))
      fail(where, ": data_offsets must be [begin, end] with non-negative integers");
    if (info.end < info.begin)
      fail(where, ": data_offsets [", info.begin, ", ", info.end, "] end before they begin");
    if (info.end > data_size)
      fail(where, ": data_offsets [", info.begin, ", ", info.end, "] lie beyond the data section (",
           data_size, " bytes): the file is truncated or corrupt");
    uint64_t expected = numel * st_dtype_size(info.dtype);
    if (info.end - info.begin != expected)
      fail(where, ": ", st_dtype_name(info.dtype), info.shape_string(), " needs ", expected,
           " bytes but data_offsets [", info.begin, ", ", info.end, "] hold ", info.end - info.begin);
    out.tensors.push_back(std::move(info));
  }
  std::sort(out.tensors.begin(), out.tensors.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const StTensorInfo* prev = nullptr;
  for (const StTensorInfo& t : out.tensors) {
    if (t.begin == t.end) continue;  // empty tensors occupy no bytes
    if (prev && t.begin < prev->end)
      fail(label, ": tensors '", prev->name, "' [", prev->begin, ", ", prev->end, ") and '", t.name, "' [",
           t.begin, ", ", t.end, ") overlap in the data section");
    prev = &t;
  }
  return out;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  header_ = parse_safetensors(file_.view(), path);
  for (size_t i = 0; i < header_.tensors.size(); ++i) by_name_[header_.tensors[i].name] = i;
}

const StTensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

const StTensorInfo& SafetensorsFile::at(std::string_view name) const {
  if (const StTensorInfo* info = find(name)) return *info;
  std::vector<std::string> names;
  for (const auto& t : header_.tensors) names.push_back(t.name);
  std::string near = closest_name(name, names);
  fail(path(), ": no tensor named '", name, "'", near.empty() ? "" : " (did you mean '" + near + "'?)");
}

std::string_view SafetensorsFile::bytes(const StTensorInfo& info) const {
  return file_.view().substr(header_.data_start + info.begin, info.end - info.begin);
}

std::vector<float> SafetensorsFile::read_f32(std::string_view name) const {
  const StTensorInfo& info = at(name);
  std::vector<float> out(static_cast<size_t>(info.numel()));
  convert_to_f32(info.dtype, bytes(info).data(), out.size(), out.data(), path() + ": tensor '" + info.name + "'");
  return out;
}

std::vector<int64_t> SafetensorsFile::read_i64(std::string_view name) const {
  const StTensorInfo& info = at(name);
  std::vector<int64_t> out(static_cast<size_t>(info.numel()));
  convert_to_i64(info.dtype, bytes(info).data(), out.size(), out.data(), path() + ": tensor '" + info.name + "'");
  return out;
}

float bf16_to_f32(uint16_t x) { return std::bit_cast<float>(static_cast<uint32_t>(x) << 16); }

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in float
    float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

uint16_t f32_to_bf16(float x) {
  uint32_t b = std::bit_cast<uint32_t>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((b >> 16) | 0x40);  // quiet NaN
  b += 0x7fffu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

uint16_t f32_to_f16(float x) {
  uint32_t b = std::bit_cast<uint32_t>(x);
  uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000);
  uint32_t a = b & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN, infinity
  if (a >= 0x477ff000u) return sign | 0x7c00;                                 // rounds past 65504
  if (a < 0x38800000u) {  // below 2^-14: a half subnormal (or zero), rounded to nearest even
    float scaled = std::bit_cast<float>(a) * 0x1p24f;
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  uint32_t mant = a & 0x7fffffu;
  uint32_t h = ((((a >> 23) - 127 + 15)) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return sign | static_cast<uint16_t>(h);
}

void convert_to_f32(StDType dtype, const void* src, size_t n, float* dst, const std::string& what) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (dtype) {
    case StDType::F32:
      if (n) std::memcpy(dst, p, n * 4);
      return;
    case StDType::F16:
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_le<uint16_t>(p + 2 * i));
      return;
    case StDType::BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_le<uint16_t>(p + 2 * i));
      return;
    case StDType::F64:
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load_le<double>(p + 8 * i));
      return;
    default: fail(what, ": dtype ", st_dtype_name(dtype), " is not a floating-point type (F32, F16, BF16, F64)");
  }
}

void convert_to_i64(StDType dtype, const void* src, size_t n, int64_t* dst, const std::string& what) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (dtype) {
    case StDType::I64:
      if (n) std::memcpy(dst, p, n * 8);
      return;
    case StDType::I32:
      for (size_t i = 0; i < n; ++i) dst[i] = load_le<int32_t>(p + 4 * i);
      return;
    case StDType::I16:
      for (size_t i = 0; i < n; ++i) dst[i] = load_le<int16_t>(p + 2 * i);
      return;
    case StDType::I8:
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<int8_t>(p[i]);
      return;
    case StDType::U8:
      for (size_t i = 0; i < n; ++i) dst[i] = p[i];
      return;
    case StDType::U16:
      for (size_t i = 0; i < n; ++i) dst[i] = load_le<uint16_t>(p + 2 * i);
      return;
    case StDType::U32:
      for (size_t i = 0; i < n; ++i) dst[i] = load_le<uint32_t>(p + 4 * i);
      return;
    default: fail(what, ": dtype ", st_dtype_name(dtype), " is not an integer type (I64, I32, ...)");
  }
}

// ---- writing ---------------------------------------------------------------------------------------

namespace {
int64_t checked_numel(const std::string& name, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("safetensors: tensor '", name, "' has a negative dimension");
    n *= d;
  }
  return n;
}
}  // namespace

void SafetensorsWriter::add_raw(const std::string& name, StDType dtype, std::vector<int64_t> shape,
                                std::string data) {
  if (name.empty() || name == "__metadata__") fail("safetensors: invalid tensor name '", name, "'");
  for (const Entry& e : entries_)
    if (e.name == name) fail("safetensors: tensor '", name, "' added twice");
  uint64_t expected = static_cast<uint64_t>(checked_numel(name, shape)) * st_dtype_size(dtype);
  if (data.size() != expected)
    fail("safetensors: tensor '", name, "' has ", data.size(), " bytes, its shape needs ", expected);
  data_bytes_ += data.size();
  const uint64_t bytes = data.size();
  entries_.push_back({name, dtype, std::move(shape), std::move(data), bytes, false});
}

void SafetensorsWriter::declare_f32(const std::string& name, std::vector<int64_t> shape, StDType store_as) {
  if (store_as != StDType::F32 && store_as != StDType::BF16 && store_as != StDType::F16)
    fail("safetensors: cannot store float tensor '", name, "' as ", st_dtype_name(store_as));
  const uint64_t bytes = static_cast<uint64_t>(checked_numel(name, shape)) * st_dtype_size(store_as);
  data_bytes_ += bytes;
  entries_.push_back({name, store_as, std::move(shape), {}, bytes, true});
  declared_++;
}

void SafetensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape, std::span<const float> values,
                                StDType store_as) {
  if (static_cast<int64_t>(values.size()) != checked_numel(name, shape))
    fail("safetensors: tensor '", name, "' has ", values.size(), " values for its shape");
  std::string data;
  if (store_as == StDType::F32) {
    data.assign(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  } else if (store_as == StDType::BF16 || store_as == StDType::F16) {
    data.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      uint16_t h = store_as == StDType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
      std::memcpy(data.data() + 2 * i, &h, 2);
    }
  } else {
    fail("safetensors: cannot store float tensor '", name, "' as ", st_dtype_name(store_as));
  }
  add_raw(name, store_as, std::move(shape), std::move(data));
}

void SafetensorsWriter::add_i64(const std::string& name, std::vector<int64_t> shape,
                                std::span<const int64_t> values) {
  add_raw(name, StDType::I64, std::move(shape),
          std::string(reinterpret_cast<const char*>(values.data()), values.size_bytes()));
}

// The 8-byte header length, the JSON header (padded to 8 bytes), then each tensor's bytes in order.
std::string SafetensorsWriter::header_bytes() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {{"dtype", st_dtype_name(e.dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.bytes}}};
    offset += e.bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data section to 8 bytes
  std::string out;
  uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
  return out;
}

std::string SafetensorsWriter::serialize() const {
  if (declared_ > 0) fail("safetensors: serialize() cannot produce declared tensors; use write(path, produce)");
  std::string out = header_bytes();
  out.reserve(out.size() + data_bytes_);
  for (const Entry& e : entries_) out += e.data;
  return out;
}

// Streamed: no second copy of the data (serialize() would hold the whole file in one string).
FileDigest SafetensorsWriter::write(const std::string& path, const Producer& produce) const {
  if (declared_ > 0 && !produce) fail(path, ": safetensors tensors were declared but no producer given");
  AtomicFileWriter f(path);
  f.append(header_bytes());
  size_t k = 0;
  for (const Entry& e : entries_) {
    if (!e.declared) {
      f.append(e.data);
      continue;
    }
    const std::span<const float> values = produce(k++);
    const uint64_t width = st_dtype_size(e.dtype);
    if (values.size() * width != e.bytes)
      fail(path, ": tensor '", e.name, "' was declared with ", e.bytes / width, " values, its producer gave ",
           values.size());
    if (e.dtype == StDType::F32) {
      f.append({reinterpret_cast<const char*>(values.data()), static_cast<size_t>(e.bytes)});
      continue;
    }
    // Converted in pieces, so no second copy of a large tensor exists.
    std::vector<uint16_t> half(std::min<size_t>(values.size(), size_t{1} << 20));
    for (size_t i = 0; i < values.size(); i += half.size()) {
      const size_t n = std::min(half.size(), values.size() - i);
      for (size_t j = 0; j < n; ++j)
        half[j] = e.dtype == StDType::BF16 ? f32_to_bf16(values[i + j]) : f32_to_f16(values[i + j]);
      f.append({reinterpret_cast<const char*>(half.data()), n * 2});
    }
  }
  return f.commit();
}

// ---- model directories -------------------------------------------------------------------------------

WeightReader::WeightReader(const std::string& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(dir, ec)) {  // a single .safetensors file
    files_.push_back(std::make_unique<SafetensorsFile>(dir));
  } else {
    if (!fs::is_directory(dir, ec)) fail(dir, ": no such model directory");
    std::string single = (fs::path(dir) / "model.safetensors").string();
    std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
    if (file_exists(single)) {
      files_.push_back(std::make_unique<SafetensorsFile>(single));
    } else if (file_exists(index_path)) {
      nlohmann::json index;
      try {
        index = nlohmann::json::parse(read_file(index_path));
      } catch (const nlohmann::json::exception& e) {
        fail(index_path, ": not valid JSON (", e.what(), ")");
      }
      if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
        fail(index_path, ": needs a \"weight_map\" object {tensor name: shard file}");
      std::map<std::string, size_t> shard_ids;
      for (const auto& [name, shard] : index["weight_map"].items()) {
        if (!shard.is_string()) fail(index_path, ": weight_map entry for '", name, "' is not a file name");
        std::string file = shard.get<std::string>();
        if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos ||
            file == "." || file == "..")
          fail(index_path, ": shard name '", file, "' must be a plain file name in the same directory");
        auto it = shard_ids.find(file);
        if (it == shard_ids.end()) {
          files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / file).string()));
          it = shard_ids.emplace(file, files_.size() - 1).first;
        }
        const StTensorInfo* info = files_[it->second]->find(name);
        if (!info) fail(index_path, ": lists tensor '", name, "' in ", file, ", which does not hold it");
        index_[name] = {it->second, info};
      }
      return;
    } else {
      fail(dir, ": no model.safetensors or model.safetensors.index.json");
    }
  }
  for (const StTensorInfo& t : files_[0]->tensors()) index_[t.name] = {0, &t};
}

std::vector<std::string> WeightReader::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : index_) out.push_back(name);
  return out;
}

const StTensorInfo& WeightReader::info(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    std::string near = closest_name(name, names());
    fail(dir_, ": no tensor named '", name, "'", near.empty() ? "" : " (did you mean '" + near + "'?)");
  }
  return *it->second.second;
}

const SafetensorsFile& WeightReader::file_of(std::string_view name) const {
  info(name);  // fails with a clear message when missing
  return *files_[index_.find(name)->second.first];
}

std::vector<float> WeightReader::read_f32(std::string_view name) const { return file_of(name).read_f32(name); }

WrittenFiles write_weights(const std::string& dir, const std::vector<NamedTensor>& tensors, StDType store_as,
                           uint64_t max_shard_bytes) {
  std::vector<TensorSpec> specs;
  for (const NamedTensor& t : tensors) specs.push_back({t.name, t.shape});
  return write_weights(dir, specs, [&](size_t i) { return std::span<const float>(tensors[i].values); }, store_as,
                max_shard_bytes);
}

std::vector<std::vector<size_t>> plan_weight_files(const std::vector<TensorSpec>& specs, StDType store_as,
                                                   uint64_t max_shard_bytes) {
  std::vector<std::vector<size_t>> files(1);
  uint64_t used = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t bytes = static_cast<uint64_t>(checked_numel(specs[i].name, specs[i].shape)) * st_dtype_size(store_as);
    if (!files.back().empty() && used + bytes > max_shard_bytes) {
      files.emplace_back();
      used = 0;
    }
    files.back().push_back(i);
    used += bytes;
  }
  return files;
}

std::vector<size_t> tensors_of_share(const std::vector<std::vector<size_t>>& plan, WriterShare share) {
  std::vector<size_t> out;
  for (size_t i = 0; i < plan.size(); ++i)
    if (static_cast<int>(i % static_cast<size_t>(share.parts)) == share.part && (plan.size() > 1 || share.part == 0))
      out.insert(out.end(), plan[i].begin(), plan[i].end());
  return out;
}

WrittenFiles write_weights(const std::string& dir, const std::vector<TensorSpec>& specs,
                           const std::function<std::span<const float>(size_t)>& values, StDType store_as,
                           uint64_t max_shard_bytes, WriterShare share) {
  if (share.parts < 1 || share.part < 0 || share.part >= share.parts)
    fail("write_weights: part ", share.part, " of ", share.parts, " does not exist");
  WrittenFiles written;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) fail(dir, ": cannot create directory (", ec.message(), ")");
  const std::vector<std::vector<size_t>> shards = plan_weight_files(specs, store_as, max_shard_bytes);
  uint64_t total = 0;
  for (const TensorSpec& t : specs)
    total += static_cast<uint64_t>(checked_numel(t.name, t.shape)) * st_dtype_size(store_as);
  std::string single = (fs::path(dir) / "model.safetensors").string();
  std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  auto write_shard = [&](const std::vector<size_t>& list, const std::string& path) {
    SafetensorsWriter w;
    w.set_metadata("format", "pt");  // transformers requires it
    for (size_t i : list) w.declare_f32(specs[i].name, specs[i].shape, store_as);
    written[fs::path(path).filename().string()] = w.write(path, [&](size_t k) { return values(list[k]); });
  };
  if (shards.size() == 1) {
    if (share.part != 0) return written;
    write_shard(shards[0], single);
    if (file_exists(index_path)) fs::remove(index_path, ec);  // stale: model.safetensors is the model now
    return written;
  }
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  char buf[64];
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    if (static_cast<int>(i % static_cast<size_t>(share.parts)) == share.part)
      write_shard(shards[i], (fs::path(dir) / buf).string());
    for (size_t t : shards[i]) weight_map[specs[t].name] = buf;
  }
  if (share.part != 0) return written;
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  written[fs::path(index_path).filename().string()] = write_file_atomic(index_path, index.dump(2) + "\n");
  if (file_exists(single)) fs::remove(single, ec);  // would shadow the index for readers
  return written;
}

std::string closest_name(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const std::string& c : candidates) {
    // Levenshtein distance with one row.
    std::vector<size_t> row(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= name.size(); ++i) {
      size_t diag = row[0];
      row[0] = i;
      for (size_t j = 1; j <= c.size(); ++j) {
        size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (name[i - 1] == c[j - 1] ? 0 : 1)});
        diag = up;
      }
    }
    if (row[c.size()] < best_d) {
      best_d = row[c.size()];
      best = c;
    }
  }
  size_t limit = std::max<size_t>(2, name.size() / 3);
  return best_d <= limit ? best : "";
}

}  // namespace agpt::model
