#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <span>

#include "base/error.h"
#include "base/file.h"
#include "test_util.h"

namespace agpt::model {
namespace {

using testing::TempDir;

// A safetensors file from a header JSON text and a data section.
std::string make_file(const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

// Expects parse_safetensors to fail with a message containing `needle`.
void expect_parse_error(const std::string& file, const std::string& needle) {
  try {
    parse_safetensors(file, "x.safetensors");
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripEveryDtype) {
  TempDir dir;
  std::vector<float> f = {0.0f, -1.5f, 3.14159f, 1e-6f, 65504.0f, -0.0f};
  std::vector<int64_t> ids = {0, 1, -5, std::numeric_limits<int64_t>::max()};
  SafetensorsWriter w;
  w.add_f32("a.f32", {2, 3}, f);
  w.add_f32("a.bf16", {6}, f, StDType::BF16);
  w.add_f32("a.f16", {3, 2}, f, StDType::F16);
  w.add_i64("ids", {4}, ids);
  w.add_f32("empty", {0, 4}, {});
  w.set_metadata("format", "pt");
  w.write(dir.file("t.safetensors"));

  SafetensorsFile r(dir.file("t.safetensors"));
  EXPECT_EQ(r.tensors().size(), 5u);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  EXPECT_EQ(r.read_f32("a.f32"), f);
  EXPECT_EQ(r.at("a.f32").shape, (std::vector<int64_t>{2, 3}));
  auto bf = r.read_f32("a.bf16");
  auto hf = r.read_f32("a.f16");
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_NEAR(bf[i], f[i], std::fabs(f[i]) * 1.0 / 256) << i;
    EXPECT_NEAR(hf[i], f[i], std::max(std::fabs(f[i]) / 2048, 6e-8f)) << i;
  }
  EXPECT_EQ(r.read_i64("ids"), ids);
  EXPECT_TRUE(r.read_f32("empty").empty());
  EXPECT_THROW(r.read_f32("ids"), Error);    // not a float type
  EXPECT_THROW(r.read_i64("a.f32"), Error);  // not an integer type
  try {
    r.at("a.f23");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'a.f32'"), std::string::npos) << e.what();
  }
  // Data section starts 8-byte aligned.
  std::string bytes = read_file(dir.file("t.safetensors"));
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

// Declared tensors come from the producer at write time, in order, between stored ones: the file
// is byte-identical to one written with every tensor added up front; a producer giving the wrong
// count fails and leaves no file; serialize() refuses declared tensors.
TEST(Safetensors, DeclaredTensorsStreamFromTheProducer) {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {-1, 0.5f}, c = {7};
  SafetensorsWriter eager;
  eager.add_f32("a", {2, 3}, a);
  eager.add_f32("b", {2}, b, StDType::BF16);
  eager.add_f32("c", {1}, c);
  eager.set_metadata("format", "pt");
  eager.write(dir.file("eager.safetensors"));

  SafetensorsWriter lazy;
  lazy.declare_f32("a", {2, 3});
  lazy.add_f32("b", {2}, b, StDType::BF16);
  lazy.declare_f32("c", {1});
  lazy.set_metadata("format", "pt");
  std::vector<size_t> asked;
  lazy.write(dir.file("lazy.safetensors"), [&](size_t k) {
    asked.push_back(k);
    return std::span<const float>(k == 0 ? a : c);
  });
  EXPECT_EQ(asked, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(read_file(dir.file("lazy.safetensors")), read_file(dir.file("eager.safetensors")));
  EXPECT_EQ(lazy.data_bytes(), eager.data_bytes());

  EXPECT_THROW(lazy.write(dir.file("short.safetensors"), [&](size_t) { return std::span<const float>(b); }), Error);
  EXPECT_FALSE(file_exists(dir.file("short.safetensors")));
  EXPECT_THROW(lazy.write(dir.file("none.safetensors")), Error);  // declared, but no producer
  EXPECT_THROW(lazy.serialize(), Error);

  // Declared tensors stored as BF16/F16 are converted as they are written: the same bytes.
  SafetensorsWriter halves_eager, halves_lazy;
  halves_eager.add_f32("b", {2}, b, StDType::BF16);
  halves_eager.add_f32("a", {6}, a, StDType::F16);
  halves_lazy.declare_f32("b", {2}, StDType::BF16);
  halves_lazy.declare_f32("a", {6}, StDType::F16);
  halves_eager.write(dir.file("h1.safetensors"));
  halves_lazy.write(dir.file("h2.safetensors"), [&](size_t k) { return std::span<const float>(k == 0 ? b : a); });
  EXPECT_EQ(read_file(dir.file("h2.safetensors")), read_file(dir.file("h1.safetensors")));
  EXPECT_THROW(halves_lazy.declare_f32("i", {1}, StDType::I64), Error);
}

TEST(Safetensors, HalfAndBfloatConversions) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);            // tie rounds to even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);        // tie rounds to even (up)
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  EXPECT_EQ(f16_to_f32(0x7c00), INFINITY);
  // Every finite half survives a round trip through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
}

TEST(Safetensors, ReadsTheReferenceFiles) {
  std::string path = testing::testdata("llama-ref/llama-tiny/reference.safetensors");
  if (!file_exists(path)) GTEST_SKIP();
  SafetensorsFile r(path);
  EXPECT_EQ(r.at("input_ids").dtype, StDType::I64);
  EXPECT_EQ(r.read_i64("input_ids").size(), 32u);
  EXPECT_EQ(r.at("logits").shape, (std::vector<int64_t>{2, 16, 512}));
}

TEST(Safetensors, RejectsCorruptHeaders) {
  const std::string ok_entry = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data(8, '\0');
  EXPECT_NO_THROW(parse_safetensors(make_file(ok_entry, data), "x"));

  expect_parse_error("abc", "8-byte header length is missing");
  expect_parse_error(make_file(ok_entry, data).substr(0, 20), "runs past the end of the file");
  expect_parse_error(make_file(ok_entry, data.substr(0, 4)), "lie beyond the data section");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32")", data), "not valid JSON");
  expect_parse_error(make_file("[1,2]", data), "must be a JSON object");
  expect_parse_error(make_file(R"({"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data), "unknown dtype");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
                     "not a non-negative integer");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data),
                     "not a non-negative integer");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data), "needs 12 bytes");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data),
                     "end before they begin");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", data),
                     "beyond the data section");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[2]}})", data), "data_offsets must be");
  expect_parse_error(make_file(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", data), "missing dtype");
  expect_parse_error(make_file(R"({"t":7})", data), "entry must be an object");
  expect_parse_error(make_file(R"({"__metadata__":{"a":1}})", data), "is not a string");
  expect_parse_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                  "b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                               data),
                     "overlap");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                                  "t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                               data),
                     "twice");
  expect_parse_error(
      make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}})", data),
      "too many elements");
  expect_parse_error(make_file(R"({"t":{"dtype":"F32","shape":[281474976710657],"data_offsets":[0,8]}})", data),
                     "implausibly large");
  uint64_t huge = 1ull << 40;
  std::string hostile(reinterpret_cast<const char*>(&huge), 8);
  expect_parse_error(hostile + "{}", "runs past the end");
}

TEST(Safetensors, TruncatedFileOnDisk) {
  TempDir dir;
  SafetensorsWriter w;
  std::vector<float> v(100, 1.0f);
  w.add_f32("w", {100}, v);
  std::string bytes = w.serialize();
  write_file_atomic(dir.file("cut.safetensors"), bytes.substr(0, bytes.size() - 10));
  try {
    SafetensorsFile f(dir.file("cut.safetensors"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SafetensorsFile(dir.file("missing.safetensors")), Error);
}

// Random byte flips, truncations and header-length edits of a valid file: every outcome is either
// a clean parse whose tensors lie inside the file, or agpt::Error. (A fuzz target lives in fuzz/.)
TEST(Safetensors, MutatedFilesNeverCrash) {
  SafetensorsWriter w;
  std::vector<float> v(12, 0.5f);
  w.add_f32("model.a", {3, 4}, v);
  w.add_f32("model.b", {4}, std::span<const float>(v).subspan(0, 4), StDType::BF16);
  std::vector<int64_t> ids = {1, 2};
  w.add_i64("ids", {2}, ids);
  const std::string good = w.serialize();
  uint64_t state = 7;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  int parsed = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string f = good;
    int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (next() % 4) {
        case 0: f[next() % f.size()] = static_cast<char>(next()); break;
        case 1: f.resize(next() % (f.size() + 1)); break;
        case 2:
          if (f.size() >= 8) f[next() % 8] = static_cast<char>(next());
          break;
        case 3: {  // replace a digit inside the header
          size_t pos = 8 + next() % (f.size() > 8 ? f.size() - 8 : 1);
          if (pos < f.size() && std::isdigit(static_cast<unsigned char>(f[pos]))) f[pos] = static_cast<char>('0' + next() % 10);
          break;
        }
      }
      if (f.empty()) break;
    }
    try {
      StHeader h = parse_safetensors(f, "fuzz");
      for (const StTensorInfo& t : h.tensors) ASSERT_LE(h.data_start + t.end, f.size());
      ++parsed;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(parsed, 0);
}

TEST(Safetensors, ShardedWeightsRoundTrip) {
  TempDir dir;
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < 5; ++i) {
    NamedTensor t{"layer." + std::to_string(i), {10, 10}, std::vector<float>(100)};
    for (int j = 0; j < 100; ++j) t.values[j] = static_cast<float>(i * 1000 + j);
    tensors.push_back(std::move(t));
  }
  write_weights(dir.path(), tensors, StDType::F32, /*max_shard_bytes=*/900);  // 2 tensors a shard
  EXPECT_TRUE(file_exists(dir.file("model.safetensors.index.json")));
  EXPECT_TRUE(file_exists(dir.file("model-00003-of-00003.safetensors")));
  EXPECT_FALSE(file_exists(dir.file("model.safetensors")));
  WeightReader r(dir.path());
  EXPECT_EQ(r.names().size(), 5u);
  for (const NamedTensor& t : tensors) EXPECT_EQ(r.read_f32(t.name), t.values);

  // One file again: the stale index goes away.
  write_weights(dir.path(), tensors, StDType::F32);
  EXPECT_TRUE(file_exists(dir.file("model.safetensors")));
  EXPECT_FALSE(file_exists(dir.file("model.safetensors.index.json")));
  EXPECT_EQ(WeightReader(dir.path()).read_f32("layer.4"), tensors[4].values);
}

// Ranks that all hold the weights share the files out; together they write what one writer writes,
// and each asks only for the tensors of its own files.
TEST(Safetensors, WritersShareTheShardFiles) {
  std::vector<TensorSpec> specs;
  std::vector<std::vector<float>> values;
  for (int i = 0; i < 5; ++i) {
    specs.push_back({"layer." + std::to_string(i), {10, 10}});
    values.emplace_back(100);
    for (int j = 0; j < 100; ++j) values.back()[j] = static_cast<float>(i * 1000 + j);
  }
  TempDir one, shared;
  const WrittenFiles alone = write_weights(
      one.path(), specs, [&](size_t i) { return std::span<const float>(values[i]); }, StDType::F32, 900);
  ASSERT_EQ(alone.size(), 4u);  // 3 shards (2 tensors each, the last 1) and the index
  WrittenFiles together;
  std::vector<size_t> asked;
  for (int part = 0; part < 2; ++part) {
    WrittenFiles mine = write_weights(
        shared.path(), specs,
        [&](size_t i) {
          asked.push_back(i);
          return std::span<const float>(values[i]);
        },
        StDType::F32, 900, {part, 2});
    // Part 0: shards 1 and 3 and the index; part 1: shard 2.
    EXPECT_EQ(mine.size(), part == 0 ? 3u : 1u) << part;
    together.merge(mine);
  }
  EXPECT_EQ(asked, (std::vector<size_t>{0, 1, 4, 2, 3}));
  const auto plan = plan_weight_files(specs, StDType::F32, 900);
  EXPECT_EQ(tensors_of_share(plan, {0, 2}), (std::vector<size_t>{0, 1, 4}));
  EXPECT_EQ(tensors_of_share(plan, {1, 2}), (std::vector<size_t>{2, 3}));
  // One file (model.safetensors): part 0 writes it all.
  const auto one_file = plan_weight_files(specs, StDType::F32);
  EXPECT_EQ(tensors_of_share(one_file, {0, 2}).size(), 5u);
  EXPECT_TRUE(tensors_of_share(one_file, {1, 2}).empty());
  ASSERT_EQ(together.size(), alone.size());
  for (const auto& [name, digest] : alone) {
    EXPECT_EQ(together.at(name).bytes, digest.bytes) << name;
    EXPECT_EQ(together.at(name).fnv1a64, digest.fnv1a64) << name;
    EXPECT_EQ(read_file(shared.file(name)), read_file(one.file(name))) << name;
  }
  EXPECT_THROW(write_weights(shared.path(), specs, nullptr, StDType::F32, 900, {2, 2}), Error);
}

TEST(Safetensors, HostileShardIndex) {
  TempDir dir;
  auto expect_error = [&](const std::string& index, const std::string& needle) {
    write_file_atomic(dir.file("model.safetensors.index.json"), index);
    try {
      WeightReader r(dir.path());
      ADD_FAILURE() << "no error for " << index;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error("{", "not valid JSON");
  expect_error(R"({"weight_map": []})", "weight_map");
  expect_error(R"({"weight_map": {"a": "../etc/passwd"}})", "plain file name");
  expect_error(R"({"weight_map": {"a": 3}})", "not a file name");
  expect_error(R"({"weight_map": {"a": "missing.safetensors"}})", "missing.safetensors");
  SafetensorsWriter w;
  std::vector<float> v = {1, 2};
  w.add_f32("b", {2}, v);
  w.write(dir.file("s1.safetensors"));
  expect_error(R"({"weight_map": {"a": "s1.safetensors"}})", "does not hold it");
  TempDir empty;
  EXPECT_THROW(WeightReader r(empty.path()), Error);
}

}  // namespace
}  // namespace agpt::model
