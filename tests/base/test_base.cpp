#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <vector>

#include "base/checksum.h"
#include "base/error.h"
#include "base/file.h"
#include "base/parallel.h"

namespace fs = std::filesystem;
using namespace agpt;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("agpt_test_base_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
}  // namespace

TEST(Parallel, VisitsEveryIndexOnceForAnyThreadCount) {
  for (int threads : {1, 2, 3, 8}) {
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(hits.size(), threads, [&](size_t i) { hits[i]++; });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "threads=" << threads;
  }
}

TEST(Parallel, RethrowsTheWorkersError) {
  EXPECT_THROW(parallel_for(100, 4, [](size_t i) { if (i == 37) fail("bad item ", i); }), Error);
}

TEST(Files, AtomicWriteReplacesWholeFileAndLeavesNoTemporaries) {
  fs::path d = temp_dir("atomic");
  std::string p = (d / "f.txt").string();
  write_file_atomic(p, "first");
  write_file_atomic(p, "second version");
  EXPECT_EQ(read_file(p), "second version");
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(d)) { (void)e; ++entries; }
  EXPECT_EQ(entries, 1u);
  fs::remove_all(d);
}

// The streamed writer: pieces land in order; nothing appears at the path before commit(); an
// abandoned writer (destroyed without commit) leaves the old file and no temporary behind.
TEST(Files, AtomicFileWriterStreamsAndCommits) {
  fs::path d = temp_dir("atomic_stream");
  std::string p = (d / "f.bin").string();
  write_file_atomic(p, "old");
  {
    AtomicFileWriter w(p);
    w.append("new ");
    w.append("");
    w.append("contents");
    EXPECT_EQ(read_file(p), "old");  // not yet
    EXPECT_EQ(w.bytes(), 12u);
    w.commit();
    EXPECT_THROW(w.append("late"), Error);
  }
  EXPECT_EQ(read_file(p), "new contents");
  {
    AtomicFileWriter w(p);
    w.append("never committed");
  }
  EXPECT_EQ(read_file(p), "new contents");
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(d)) { (void)e; ++entries; }
  EXPECT_EQ(entries, 1u);
  EXPECT_THROW(AtomicFileWriter((d / "no" / "such" / "dir.bin").string()), Error);
  fs::remove_all(d);
}

// The word-wise FNV-1a fed in pieces: every split of the stream gives the whole's digest, the
// digest can be read midway, and the writer's digest is the checksum of the file it wrote.
TEST(Checksum, StreamedEqualsWholeForAnySplit) {
  std::string data;
  for (int i = 0; i < 61; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  const uint64_t whole = fnv1a64_words(data);
  EXPECT_NE(whole, fnv1a64_words(data.substr(1)));
  EXPECT_EQ(fnv1a64_words(""), 0xcbf29ce484222325ull);
  for (size_t a = 0; a <= data.size(); a += 3)
    for (size_t b = a; b <= data.size(); b += 5) {
      Fnv1a64Words f;
      f.update(std::string_view(data).substr(0, a));
      EXPECT_EQ(f.digest(), fnv1a64_words(data.substr(0, a)));
      f.update(std::string_view(data).substr(a, b - a));
      f.update(std::string_view(data).substr(b));
      ASSERT_EQ(f.digest(), whole) << a << " " << b;
    }
  fs::path d = temp_dir("digest");
  AtomicFileWriter w((d / "f.bin").string());
  w.append(std::string_view(data).substr(0, 13));
  w.append(std::string_view(data).substr(13));
  const FileDigest digest = w.commit();
  EXPECT_EQ(digest.bytes, data.size());
  EXPECT_EQ(digest.fnv1a64, whole);
  EXPECT_EQ(write_file_atomic((d / "g.bin").string(), data).fnv1a64, whole);
  fs::remove_all(d);
}

TEST(Files, MissingFileErrorNamesThePath) {
  try {
    read_file("/nonexistent/agpt/file.bin");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/agpt/file.bin"), std::string::npos);
  }
  EXPECT_THROW(MappedFile("/nonexistent/agpt/file.bin"), Error);
}

TEST(Files, MappedFileSeesContentsAndEmptyFiles) {
  fs::path d = temp_dir("mmap");
  std::string p = (d / "x.bin").string(), e = (d / "empty.bin").string();
  write_file_atomic(p, "hello mmap");
  write_file_atomic(e, "");
  MappedFile m(p);
  EXPECT_EQ(m.view(), "hello mmap");
  MappedFile moved = std::move(m);
  EXPECT_EQ(moved.size(), 10u);
  EXPECT_EQ(m.size(), 0u);
  MappedFile empty(e);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_THROW(MappedFile(d.string()), Error);  // a directory is not a regular file
  fs::remove_all(d);
}
