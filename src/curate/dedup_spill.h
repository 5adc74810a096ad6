// The LSH band-key table of near-dedup, within a memory budget: records (band, key, document) are
// buffered in memory; when the buffer reaches the budget it is sorted and written to a temporary file
// (a sorted run), and reading the table back merges the runs (k-way) with what is still in memory.
// So a corpus's table can be larger than RAM, and the buckets come out in the same order either way.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace agpt::curate {

// One band key of one document. Ordered by (band, key, doc): a bucket is a run of equal (band, key).
struct BandRecord {
  uint64_t key;
  uint32_t band, doc;
};
bool band_record_less(const BandRecord& a, const BandRecord& b);

// A temporary file in dir ("": $TMPDIR), opened for reading and writing and already unlinked, so it
// goes away when closed or when the process ends, however it ends. what: for the error message.
std::FILE* open_unlinked_temp(const std::string& dir, const char* what);

class BandKeyTable {
 public:
  // budget_bytes: memory for records before a run is written (0: no limit, never spills). dir: where
  // the runs go ("": the system's temporary directory, $TMPDIR). Run files are unlinked as soon as
  // they are created, so nothing is left behind, whatever ends the process.
  explicit BandKeyTable(uint64_t budget_bytes = 0, std::string dir = "");
  ~BandKeyTable();
  BandKeyTable(const BandKeyTable&) = delete;
  BandKeyTable& operator=(const BandKeyTable&) = delete;

  void add(const BandRecord& r);
  // Calls fn(members, count) for every bucket (records of equal band and key) in (band, key) order,
  // members in document order; buckets of one record included. May be called again (the runs are
  // read again); add() after it is an error.
  void for_each_bucket(const std::function<void(const BandRecord*, size_t)>& fn);

  // Frees the memory and the run files (the table is empty after it).
  void release();

  uint64_t size() const { return records_; }
  size_t runs() const { return runs_.size(); }

 private:
  void spill();

  uint64_t budget_records_ = 0;  // 0: no limit
  std::string dir_;
  std::vector<BandRecord> buffer_;
  std::vector<std::FILE*> runs_;
  std::vector<uint64_t> run_sizes_;  // records per run
  uint64_t records_ = 0;
  bool reading_ = false;
};

}  // namespace agpt::curate
