// Indexed datasets: Megatron's own files, byte-identical rewrites, round trips, and every
// corruption the reader must reject with a clear error.
#include "dataset/indexed_dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"

namespace fs = std::filesystem;
using namespace agpt::dataset;

namespace {

// A fresh temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("agpt_test_indexed_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str(const std::string& name = "") const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string slurp(const std::string& path) { return agpt::read_file(path); }

void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string fixtures_dir() { return std::string(AGPT_TESTDATA) + "/megatron-index"; }

std::vector<std::string> fixture_prefixes() {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(fixtures_dir(), ec)) return out;
  for (auto& e : fs::recursive_directory_iterator(fixtures_dir()))
    if (e.path().extension() == ".idx") out.push_back((e.path().parent_path() / e.path().stem()).string());
  std::sort(out.begin(), out.end());
  return out;
}

// Expects fn to throw agpt::Error whose message contains every needle.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected agpt::Error containing '" << *needles.begin() << "'";
  } catch (const agpt::Error& e) {
    std::string msg = e.what();
    for (auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg << "\nmissing: " << n;
  }
}

// Writes a small valid dataset and returns its prefix.
std::string write_sample(const TempDir& dir, TokenDType dtype, const std::string& name = "sample") {
  std::string prefix = dir.str(name);
  IndexedDatasetWriter w(prefix, dtype);
  std::vector<std::vector<uint32_t>> docs = {{1, 2, 3}, {}, {7}, {100, 101, 102, 103, 104}, {5, 5}};
  for (auto& d : docs) w.add_document(d);
  w.finish();
  return prefix;
}

}  // namespace

TEST(IndexedDataset, DTypeRules) {
  EXPECT_EQ(dtype_for_vocab(1000), TokenDType::kUInt16);
  EXPECT_EQ(dtype_for_vocab(50257), TokenDType::kUInt16);
  EXPECT_EQ(dtype_for_vocab(65499), TokenDType::kUInt16);
  EXPECT_EQ(dtype_for_vocab(65500), TokenDType::kInt32);
  EXPECT_EQ(dtype_for_vocab(128256), TokenDType::kInt32);
  EXPECT_EQ(dtype_size(TokenDType::kUInt8), 1u);
  EXPECT_EQ(dtype_size(TokenDType::kUInt16), 2u);
  EXPECT_EQ(dtype_size(TokenDType::kFloat32), 4u);
  EXPECT_EQ(dtype_size(TokenDType::kFloat64), 8u);
  EXPECT_STREQ(dtype_name(TokenDType::kUInt16), "uint16");
}

TEST(IndexedDataset, ReadsMegatronFixtures) {
  auto prefixes = fixture_prefixes();
  if (prefixes.empty()) GTEST_SKIP() << "no Megatron fixtures under " << fixtures_dir();
  EXPECT_EQ(prefixes.size(), 11u);
  for (auto& p : prefixes) {
    SCOPED_TRACE(p);
    IndexedDataset ds(p);
    EXPECT_EQ(ds.dtype(), TokenDType::kUInt16);
    EXPECT_EQ(ds.num_tokens() * 2, agpt::file_size(p + ".bin"));
    ASSERT_EQ(ds.document_indices().size(), ds.num_documents() + 1);
    uint64_t total = 0;
    for (size_t i = 0; i < ds.num_documents(); ++i) {
      EXPECT_EQ(ds.document_indices()[i], static_cast<int64_t>(i));
      auto doc = ds.document(i);
      EXPECT_EQ(doc.size(), static_cast<size_t>(ds.sizes()[i]));
      for (uint32_t t : doc) EXPECT_LT(t, 1000u);  // vocabulary 1,000
      total += doc.size();
    }
    EXPECT_EQ(total, ds.num_tokens());
  }
  // Known values of the `single` case (checked with an independent reader).
  IndexedDataset single(fixtures_dir() + "/single/data/only");
  EXPECT_EQ(single.num_documents(), 100u);
  EXPECT_EQ(single.num_tokens(), 12064u);
  EXPECT_EQ(single.sizes()[0], 77);
  EXPECT_EQ(single.sizes()[1], 106);
  EXPECT_EQ(single.sizes()[2], 25);
  EXPECT_EQ(single.pointers()[1], 154);
  auto d0 = single.document(0);
  EXPECT_EQ(std::vector<uint32_t>(d0.begin(), d0.begin() + 3), (std::vector<uint32_t>{733, 398, 361}));
  auto last = single.document(99);
  EXPECT_EQ(last.back(), 101u);
  std::vector<uint32_t> part;
  single.read(0, 1, 2, part);
  EXPECT_EQ(part, (std::vector<uint32_t>{398, 361}));
  IndexedDataset web_a(fixtures_dir() + "/blend-5files/data/web_a.idx");  // a path with .idx works too
  EXPECT_EQ(web_a.num_documents(), 300u);
  EXPECT_EQ(web_a.prefix(), fixtures_dir() + "/blend-5files/data/web_a");
}

TEST(IndexedDataset, RewritesMegatronFixturesByteForByte) {
  auto prefixes = fixture_prefixes();
  if (prefixes.empty()) GTEST_SKIP() << "no Megatron fixtures under " << fixtures_dir();
  TempDir dir;
  for (auto& p : prefixes) {
    SCOPED_TRACE(p);
    IndexedDataset ds(p + ".bin");
    std::string out = dir.str(fs::path(p).filename().string());
    IndexedDatasetWriter w(out, ds.dtype());
    for (size_t i = 0; i < ds.num_documents(); ++i) w.add_document(ds.document(i));
    w.finish();
    EXPECT_EQ(w.documents(), ds.num_documents());
    EXPECT_EQ(w.tokens(), ds.num_tokens());
    EXPECT_TRUE(slurp(out + ".idx") == slurp(p + ".idx")) << ".idx differs";
    EXPECT_TRUE(slurp(out + ".bin") == slurp(p + ".bin")) << ".bin differs";
    // build_index_bytes alone reproduces it from the sizes.
    EXPECT_TRUE(build_index_bytes(ds.dtype(), ds.sizes(), ds.document_indices()) == slurp(p + ".idx"));
  }
}

class RoundTrip : public ::testing::TestWithParam<TokenDType> {};

TEST_P(RoundTrip, EmptyAndLargeDocuments) {
  const TokenDType dtype = GetParam();
  TempDir dir;
  std::mt19937 rng(42);
  const uint32_t max_id = dtype == TokenDType::kUInt16 ? 65535u : 2000000000u;
  std::vector<std::vector<uint32_t>> docs;
  docs.push_back({});
  docs.push_back({0, max_id, 1});
  std::vector<uint32_t> big(1500000);
  for (auto& t : big) t = rng() % (max_id + 1ull);
  docs.push_back(big);
  docs.push_back({});
  docs.push_back({});
  for (int i = 0; i < 200; ++i) {
    std::vector<uint32_t> d(rng() % 50);
    for (auto& t : d) t = rng() % (max_id + 1ull);
    docs.push_back(d);
  }
  docs.push_back({});
  std::string prefix = dir.str("rt");
  IndexedDatasetWriter w(prefix, dtype);
  uint64_t total = 0;
  for (auto& d : docs) {
    w.add_document(d);
    total += d.size();
  }
  EXPECT_EQ(w.documents(), docs.size());
  EXPECT_EQ(w.tokens(), total);
  w.finish();
  IndexedDataset ds(prefix);
  EXPECT_EQ(ds.dtype(), dtype);
  ASSERT_EQ(ds.num_documents(), docs.size());
  EXPECT_EQ(ds.num_tokens(), total);
  EXPECT_EQ(agpt::file_size(prefix + ".bin"), total * dtype_size(dtype));
  for (size_t i = 0; i < docs.size(); ++i) ASSERT_EQ(ds.document(i), docs[i]) << "document " << i;
  std::vector<uint32_t> part;
  ds.read(2, 1000, 5, part);
  EXPECT_EQ(part, std::vector<uint32_t>(big.begin() + 1000, big.begin() + 1005));
  ds.read(2, big.size(), 0, part);
  EXPECT_TRUE(part.empty());
  std::vector<int64_t> wide;
  ds.read(1, 0, 3, wide);
  EXPECT_EQ(wide, (std::vector<int64_t>{0, max_id, 1}));
  std::vector<uint32_t> buf(3);
  ds.read_into(1, 0, 3, buf.data());
  EXPECT_EQ(buf, docs[1]);
  EXPECT_EQ(ds.document_bytes(1).size(), 3 * dtype_size(dtype));
  expect_error([&] { ds.read(1, 2, 2, part); }, {"document 1", "out of range", "3 tokens"});
  expect_error([&] { ds.read(1, 4, 0, part); }, {"out of range"});
  expect_error([&] { ds.read(1, 1, SIZE_MAX, part); }, {"out of range"});
  expect_error([&] { ds.document(docs.size()); }, {"out of range", std::to_string(docs.size()) + " documents"});
}

INSTANTIATE_TEST_SUITE_P(IndexedDataset, RoundTrip, ::testing::Values(TokenDType::kUInt16, TokenDType::kInt32),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(IndexedDataset, EveryDTypeRoundTrips) {
  TempDir dir;
  for (uint8_t code = 1; code <= 8; ++code) {
    auto dtype = static_cast<TokenDType>(code);
    SCOPED_TRACE(dtype_name(dtype));
    std::string prefix = dir.str(std::string("d_") + dtype_name(dtype));
    IndexedDatasetWriter w(prefix, dtype);
    w.add_document(std::vector<uint32_t>{0, 1, 127});
    w.add_document(std::vector<uint32_t>{});
    w.add_document(std::vector<uint32_t>{42});
    w.finish();
    IndexedDataset ds(prefix);
    EXPECT_EQ(ds.dtype(), dtype);
    EXPECT_EQ(ds.document(0), (std::vector<uint32_t>{0, 1, 127}));
    EXPECT_EQ(ds.document(1), std::vector<uint32_t>{});
    EXPECT_EQ(ds.document(2), std::vector<uint32_t>{42});
  }
}

TEST(IndexedDataset, EmptyDatasetRoundTrips) {
  TempDir dir;
  IndexedDatasetWriter w(dir.str("empty"), TokenDType::kUInt16);
  w.finish();
  IndexedDataset ds(dir.str("empty"));
  EXPECT_EQ(ds.num_documents(), 0u);
  EXPECT_EQ(ds.num_tokens(), 0u);
  EXPECT_EQ(agpt::file_size(dir.str("empty.idx")), 34u + 8u);
}

TEST(IndexedDataset, TokenTooLargeForDType) {
  TempDir dir;
  IndexedDatasetWriter w(dir.str("big"), TokenDType::kUInt16);
  w.add_document(std::vector<uint32_t>{1, 2});
  expect_error([&] { w.add_document(std::vector<uint32_t>{3, 65536, 4}); },
               {"document 1", "token 1", "65536", "uint16", "int32"});
  // The failed document left nothing behind.
  w.add_document(std::vector<uint32_t>{9});
  w.finish();
  IndexedDataset ds(dir.str("big"));
  ASSERT_EQ(ds.num_documents(), 2u);
  EXPECT_EQ(ds.document(1), std::vector<uint32_t>{9});

  IndexedDatasetWriter w8(dir.str("i8"), TokenDType::kInt8);
  expect_error([&] { w8.add_document(std::vector<uint32_t>{128}); }, {"int8"});
  IndexedDatasetWriter wf(dir.str("f32"), TokenDType::kFloat32);
  wf.add_document(std::vector<uint32_t>{1u << 24});
  expect_error([&] { wf.add_document(std::vector<uint32_t>{(1u << 24) + 1}); }, {"float32"});
}

TEST(IndexedDataset, WriterIsAtomic) {
  TempDir dir;
  std::string prefix = dir.str("sub/atomic");  // parent directory is created
  {
    IndexedDatasetWriter w(prefix, TokenDType::kUInt16);
    std::vector<uint32_t> doc(300000, 7);  // enough to flush the buffer to disk
    w.add_document(doc);
    w.add_document(doc);
    EXPECT_FALSE(fs::exists(prefix + ".bin"));
    EXPECT_FALSE(fs::exists(prefix + ".idx"));
    w.finish();
    EXPECT_TRUE(fs::exists(prefix + ".bin"));
    EXPECT_TRUE(fs::exists(prefix + ".idx"));
    expect_error([&] { w.add_document(doc); }, {"after finish"});
  }
  // Only the two files remain: no temporaries.
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir.str("sub"))) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2u);
  // A writer dropped without finish() leaves nothing, and the old pair stays intact.
  {
    IndexedDatasetWriter w(prefix, TokenDType::kUInt16);
    w.add_document(std::vector<uint32_t>{1, 2, 3});
  }
  files = 0;
  for (auto& e : fs::directory_iterator(dir.str("sub"))) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2u);
  IndexedDataset ds(prefix);
  EXPECT_EQ(ds.num_documents(), 2u);
}

// ------------------------------------------------------------------------------------------
// Corruptions

namespace {

void set_u64(std::string& s, size_t off, uint64_t v) { std::memcpy(&s[off], &v, 8); }
void set_i32(std::string& s, size_t off, int32_t v) { std::memcpy(&s[off], &v, 4); }
void set_i64(std::string& s, size_t off, int64_t v) { std::memcpy(&s[off], &v, 8); }

// The sample dataset has 5 sequences: sizes at 34, pointers at 54, doc indices at 94 (6 of them).
constexpr size_t kSizes = 34, kPointers = 54, kDocs = 94;

}  // namespace

TEST(IndexedDatasetCorrupt, MissingFiles) {
  TempDir dir;
  std::string p = write_sample(dir, TokenDType::kUInt16);
  expect_error([&] { IndexedDataset ds(dir.str("nope")); }, {"nope.idx", "not found", "PREFIX"});
  fs::remove(p + ".bin");
  expect_error([&] { IndexedDataset ds(p); }, {"sample.bin", "not found"});
}

TEST(IndexedDatasetCorrupt, BinTruncatedByOneByte) {
  TempDir dir;
  std::string p = write_sample(dir, TokenDType::kUInt16);
  fs::resize_file(p + ".bin", fs::file_size(p + ".bin") - 1);
  expect_error([&] { IndexedDataset ds(p); }, {"sample.bin", "size", "different run"});
}

TEST(IndexedDatasetCorrupt, BinTooLong) {
  TempDir dir;
  std::string p = write_sample(dir, TokenDType::kUInt16);
  std::string bin = slurp(p + ".bin");
  spit(p + ".bin", bin + "xx");
  expect_error([&] { IndexedDataset ds(p); }, {"sample.bin", "found 24 bytes, expected 22", "different run"});
}

TEST(IndexedDatasetCorrupt, HeaderFields) {
  TempDir dir;
  std::string p = write_sample(dir, TokenDType::kUInt16);
  const std::string good = slurp(p + ".idx");
  auto with = [&](std::string idx, auto&& check) {
    spit(p + ".idx", idx);
    check();
    spit(p + ".idx", good);
  };
  std::string s = good;
  s[0] = 'X';
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"sample.idx", "bad magic", "XMIDIDX", "MMIDIDX"}); });
  with("TNTIDX\0\0" + good.substr(8), [&] { expect_error([&] { IndexedDataset ds(p); }, {"TNTIDX", "older"}); });
  with("", [&] { expect_error([&] { IndexedDataset ds(p); }, {"bad magic"}); });
  s = good;
  set_u64(s, 9, 2);
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"version", "found 2", "expected 1"}); });
  s = good;
  s[17] = 9;
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"dtype code", "found 9", "1..8"}); });
  s = good;
  s[17] = 0;
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"dtype code", "found 0"}); });
  with(good.substr(0, 20), [&] { expect_error([&] { IndexedDataset ds(p); }, {"truncated header", "20 bytes"}); });
  // Truncated .idx (last byte missing), and trailing bytes.
  with(good.substr(0, good.size() - 1),
       [&] { expect_error([&] { IndexedDataset ds(p); }, {"sample.idx", "truncated", "142 bytes"}); });
  with(good + std::string(3, '\0'),
       [&] { expect_error([&] { IndexedDataset ds(p); }, {"sample.idx", "3 trailing bytes"}); });
  // Huge counts that would overflow a 64-bit size computation.
  s = good;
  set_u64(s, 18, 0x1555555555555556ull);  // * 12 wraps around 2^64
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"sequences", "truncated"}); });
  s = good;
  set_u64(s, 18, UINT64_MAX);
  set_u64(s, 26, UINT64_MAX);
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"more than 2^64"}); });
  s = good;
  set_u64(s, 26, 0x2000000000000000ull);  // * 8 == 2^64
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"document indices", "truncated"}); });
  s = good;
  set_u64(s, 26, 0);
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"document count", "found 0"}); });
  // Counts that shift the arrays but still match the file size: 4 sequences + 3 extra... (12 = 8 + 4)
  s = good;
  set_u64(s, 18, 4);
  set_u64(s, 26, 7);  // 34 + 48 + 56 = 138 != 143
  with(s, [&] { expect_error([&] { IndexedDataset ds(p); }, {"sample.idx"}); });
}

TEST(IndexedDatasetCorrupt, Arrays) {
  TempDir dir;
  std::string p = write_sample(dir, TokenDType::kUInt16);
  const std::string good = slurp(p + ".idx");
  {
    IndexedDataset ok(p);  // sanity: layout assumptions of the offsets below
    ASSERT_EQ(ok.num_documents(), 5u);
    ASSERT_EQ(good.size(), kDocs + 6 * 8);
  }
  auto expect_idx = [&](std::string idx, std::initializer_list<std::string> needles) {
    spit(p + ".idx", idx);
    expect_error([&] { IndexedDataset ds(p); }, needles);
    spit(p + ".idx", good);
  };
  std::string s = good;
  set_i32(s, kSizes + 4, -1);
  expect_idx(s, {"sizes[1]", "found -1"});
  s = good;
  set_i32(s, kSizes + 0, 4);  // sizes/pointers disagree (pointer[1] stays 6)
  expect_idx(s, {"pointers[1]", "found 6, expected 8", "disagree"});
  s = good;
  set_i64(s, kPointers, 2);
  expect_idx(s, {"pointers[0]", "found 2, expected 0"});
  s = good;
  set_i64(s, kPointers + 8 * 4, -4);
  expect_idx(s, {"pointers[4]", "found -4"});
  s = good;
  set_i32(s, kSizes + 16, 1000);  // last sequence runs past the .bin
  expect_idx(s, {"sample.bin", "ends at byte 2018", "different run"});
  s = good;
  set_i32(s, kSizes + 16, 0x7fffffff);
  expect_idx(s, {"sample.bin"});
  s = good;
  set_i64(s, kDocs, 1);
  expect_idx(s, {"document_indices[0]", "found 1, expected 0"});
  s = good;
  set_i64(s, kDocs + 8 * 3, 1);
  expect_idx(s, {"document_indices[3]", "found 1", "never decrease"});
  s = good;
  set_i64(s, kDocs + 8 * 5, 4);
  expect_idx(s, {"document_indices[5]", "found 4, expected 5"});
  s = good;
  set_i64(s, kDocs + 8 * 5, 6);
  expect_idx(s, {"document_indices[5]", "found 6, expected 5"});
}

TEST(IndexedDatasetCorrupt, ValuesThatAreNotTokenIds) {
  TempDir dir;
  // Signed and float data open fine but refuse to become uint32 token ids where they are not.
  std::string p = dir.str("neg");
  std::string bin;
  int32_t v[3] = {5, -7, 9};
  bin.append(reinterpret_cast<const char*>(v), sizeof(v));
  spit(p + ".bin", bin);
  std::vector<int32_t> sizes = {3};
  spit(p + ".idx", build_index_bytes(TokenDType::kInt32, sizes));
  IndexedDataset ds(p);
  std::vector<uint32_t> u;
  expect_error([&] { ds.read(0, 0, 3, u); }, {"token 1", "-7", "negative", "int64 overload"});
  ds.read(0, 2, 1, u);
  EXPECT_EQ(u, std::vector<uint32_t>{9});
  std::vector<int64_t> s;
  ds.read(0, 0, 3, s);
  EXPECT_EQ(s, (std::vector<int64_t>{5, -7, 9}));

  std::string q = dir.str("flt");
  double f[3] = {1.0, 2.5, std::nan("")};
  spit(q + ".bin", std::string(reinterpret_cast<const char*>(f), sizeof(f)));
  spit(q + ".idx", build_index_bytes(TokenDType::kFloat64, sizes));
  IndexedDataset fd(q);
  expect_error([&] { fd.read(0, 1, 1, u); }, {"2.5", "not an integer"});
  expect_error([&] { fd.read(0, 2, 1, s); }, {"not an integer"});
  fd.read(0, 0, 1, u);
  EXPECT_EQ(u, std::vector<uint32_t>{1});
}
