#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <vector>

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
