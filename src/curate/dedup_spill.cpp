#include "curate/dedup_spill.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <queue>
#include <tuple>

#include "base/error.h"

namespace agpt::curate {

bool band_record_less(const BandRecord& a, const BandRecord& b) {
  return std::tie(a.band, a.key, a.doc) < std::tie(b.band, b.key, b.doc);
}

BandKeyTable::BandKeyTable(uint64_t budget_bytes, std::string dir) : dir_(std::move(dir)) {
  if (budget_bytes > 0) budget_records_ = std::max<uint64_t>(16, budget_bytes / sizeof(BandRecord));
  if (dir_.empty()) dir_ = std::filesystem::temp_directory_path().string();
}

BandKeyTable::~BandKeyTable() { release(); }

void BandKeyTable::release() {
  for (std::FILE* f : runs_) std::fclose(f);
  runs_.clear();
  run_sizes_.clear();
  std::vector<BandRecord>().swap(buffer_);
  records_ = 0;
}

void BandKeyTable::add(const BandRecord& r) {
  if (reading_) fail("BandKeyTable::add after for_each_bucket");
  buffer_.push_back(r);
  ++records_;
  if (budget_records_ > 0 && buffer_.size() >= budget_records_) spill();
}

std::FILE* open_unlinked_temp(const std::string& dir, const char* what) {
  const std::string d = dir.empty() ? std::filesystem::temp_directory_path().string() : dir;
  std::string path = (std::filesystem::path(d) / "agpt-dedup-run-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  if (fd < 0) fail("dedup: cannot create a temporary file in ", d, " for the ", what, ": ", std::strerror(errno));
  ::unlink(path.c_str());  // gone when closed, or when the process ends however it ends
  std::FILE* f = ::fdopen(fd, "w+b");
  if (f == nullptr) {
    ::close(fd);
    fail("dedup: cannot open a temporary file in ", d, ": ", std::strerror(errno));
  }
  return f;
}

void BandKeyTable::spill() {
  std::sort(buffer_.begin(), buffer_.end(), band_record_less);
  std::FILE* f = open_unlinked_temp(dir_, "band-key table");
  runs_.push_back(f);
  run_sizes_.push_back(buffer_.size());
  if (std::fwrite(buffer_.data(), sizeof(BandRecord), buffer_.size(), f) != buffer_.size() || std::fflush(f) != 0)
    fail("dedup: cannot write ", buffer_.size() * sizeof(BandRecord), " bytes of band keys to a temporary file in ",
         dir_, " (disk full?): ", std::strerror(errno));
  buffer_.clear();
}

namespace {

// Reads one sorted run in blocks.
class RunReader {
 public:
  RunReader(std::FILE* f, uint64_t records, size_t block) : f_(f), left_(records), buf_(block) {
    if (std::fseek(f_, 0, SEEK_SET) != 0) fail("dedup: cannot rewind a temporary run file: ", std::strerror(errno));
    refill();
  }
  bool done() const { return pos_ == end_; }
  const BandRecord& head() const { return buf_[pos_]; }
  void pop() {
    if (++pos_ == end_) refill();
  }

 private:
  void refill() {
    pos_ = 0;
    end_ = static_cast<size_t>(std::min<uint64_t>(left_, buf_.size()));
    if (end_ == 0) return;
    if (std::fread(buf_.data(), sizeof(BandRecord), end_, f_) != end_)
      fail("dedup: a temporary run file was cut short (", std::strerror(errno), ")");
    left_ -= end_;
  }
  std::FILE* f_;
  uint64_t left_;
  std::vector<BandRecord> buf_;
  size_t pos_ = 0, end_ = 0;
};

}  // namespace

void BandKeyTable::for_each_bucket(const std::function<void(const BandRecord*, size_t)>& fn) {
  if (!reading_) std::sort(buffer_.begin(), buffer_.end(), band_record_less);
  reading_ = true;
  if (runs_.empty()) {  // all in memory (no budget, or within it): group the sorted buffer directly
    for (size_t s = 0; s < buffer_.size();) {
      size_t e = s + 1;
      while (e < buffer_.size() && buffer_[e].band == buffer_[s].band && buffer_[e].key == buffer_[s].key) ++e;
      fn(&buffer_[s], e - s);
      s = e;
    }
    return;
  }
  // Sources: every run, then the in-memory rest (index runs_.size()). Read blocks share the budget.
  const size_t sources = runs_.size() + 1;
  const size_t block = budget_records_ == 0 ? 4096 : std::max<size_t>(64, budget_records_ / sources);
  std::vector<RunReader> readers;
  readers.reserve(runs_.size());
  for (size_t i = 0; i < runs_.size(); ++i) readers.emplace_back(runs_[i], run_sizes_[i], block);
  size_t mem = 0;
  auto done = [&](size_t s) { return s < readers.size() ? readers[s].done() : mem == buffer_.size(); };
  auto head = [&](size_t s) -> const BandRecord& { return s < readers.size() ? readers[s].head() : buffer_[mem]; };
  auto pop = [&](size_t s) { s < readers.size() ? readers[s].pop() : void(++mem); };
  // Ties (a document's record in two runs cannot happen: each record is added once) are broken by
  // the source index, so the order is total and deterministic.
  auto later = [&](size_t a, size_t b) {
    if (band_record_less(head(b), head(a))) return true;
    if (band_record_less(head(a), head(b))) return false;
    return a > b;
  };
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> heap(later);
  for (size_t s = 0; s < sources; ++s)
    if (!done(s)) heap.push(s);
  std::vector<BandRecord> bucket;
  while (!heap.empty()) {
    const size_t s = heap.top();
    heap.pop();
    const BandRecord r = head(s);
    pop(s);
    if (!done(s)) heap.push(s);
    if (!bucket.empty() && (bucket.back().band != r.band || bucket.back().key != r.key)) {
      fn(bucket.data(), bucket.size());
      bucket.clear();
    }
    bucket.push_back(r);
  }
  if (!bucket.empty()) fn(bucket.data(), bucket.size());
}

}  // namespace agpt::curate
