#include "curate/dedup_dist.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_map>

#include "base/error.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/inputs.h"
#include "corpus/reader.h"
#include "corpus/stream.h"
#include "curate/dedup_spill.h"
#include "curate/input_sequence.h"

namespace agpt::curate {

std::vector<size_t> shard_input_files(const std::vector<uint64_t>& file_bytes, int ranks) {
  if (ranks < 1) fail("dedup: shard_input_files for ", ranks, " ranks");
  const size_t files = file_bytes.size(), n = static_cast<size_t>(ranks);
  unsigned __int128 total = 0;
  for (uint64_t b : file_bytes) total += b;
  const bool by_count = total == 0;
  if (by_count) total = files;
  std::vector<size_t> first(n + 1, files);
  first[0] = 0;
  unsigned __int128 before = 0;
  size_t next_rank = 1;
  for (size_t i = 0; i < files; ++i) {
    const unsigned __int128 w = by_count ? 1 : file_bytes[i];
    // The rank holding the file's middle byte: floor((before + w/2) * N / total), at most N - 1.
    const auto owner = static_cast<size_t>(std::min<unsigned __int128>((2 * before + w) * n / (2 * total), n - 1));
    while (next_rank <= owner) first[next_rank++] = i;
    before += w;
  }
  return first;
}

namespace {

namespace fs = std::filesystem;

// Records travel as raw bytes: every rank runs the same binary on hosts of the same byte order.
struct ExactRec {
  uint64_t lo, hi;
  uint64_t doc;
};
struct Pair {
  uint32_t doc, of;  // doc duplicates `of` (of < doc)
};
// What the paragraph stage did to one document: `lost` paragraphs (their indices follow), all of them
// when `all`, leaving bytes_after bytes of text.
struct ParaResult {
  uint32_t doc, lost, all, unused;
  uint64_t bytes_after;
};
// Rank 0's decision about a document that is not kept, sent back to the document's rank.
struct Decision {
  uint32_t doc, of, fate, unused;
};

// Reads records in order from one rank's message; a short message is an error, not a crash.
class MessageReader {
 public:
  explicit MessageReader(const std::string& msg) : msg_(msg) {}
  template <class T>
  void read(T* out, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (msg_.size() - pos_ < bytes) fail("dedup: a rank sent a truncated result");
    std::memcpy(out, msg_.data() + pos_, bytes);
    pos_ += bytes;
  }
  std::string read_string(size_t n) {
    if (msg_.size() - pos_ < n) fail("dedup: a rank sent a truncated result");
    std::string s = msg_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  bool done() const { return pos_ == msg_.size(); }

 private:
  const std::string& msg_;
  size_t pos_ = 0;
};

template <class T>
void append(std::string& out, const T* v, size_t n) {
  out.append(reinterpret_cast<const char*>(v), n * sizeof(T));
}

// Every rank's records of type T, concatenated in rank order.
template <class T>
std::vector<T> records(const std::vector<std::string>& from_each) {
  size_t bytes = 0;
  for (const auto& s : from_each) {
    if (s.size() % sizeof(T) != 0) fail("dedup: a rank sent a truncated record (", s.size(), " bytes)");
    bytes += s.size();
  }
  std::vector<T> out(bytes / sizeof(T));
  char* p = reinterpret_cast<char*>(out.data());
  for (const auto& s : from_each) std::memcpy(p, s.data(), s.size()), p += s.size();
  return out;
}

// ---- reading a shard ----

// The read reports travel between ranks as JSON (curate/input_sequence.h).
corpus::ReadReport read_report_from_string(const std::string& s) {
  const auto j = nlohmann::ordered_json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("dedup: a rank sent an unreadable read report");
  corpus::ReadReport r;
  add_read_report_json(r, j);
  return r;
}

// A piece of the input that one rank reads: a whole file (through corpus::DocumentReader), or, of a plain
// (uncompressed) JSONL file, the lines that start in [begin, end).
struct Unit {
  size_t file = 0;  // index in the expanded inputs
  corpus::InputFile input;
  bool whole = true;
  uint64_t begin = 0, end = 0;
  uint64_t lines = 0;      // lines read (once read)
  uint64_t line_base = 0;  // lines of the file before the unit's first (once the ranks told theirs)
};

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

// A plain JSONL file can be cut at byte offsets: no compression by name or by magic bytes.
bool splittable(const corpus::InputFile& f) {
  if (f.kind != corpus::InputKind::kJsonl || corpus::compression_from_path(f.path) != corpus::Compression::kNone)
    return false;
  std::FILE* in = std::fopen(f.path.c_str(), "rb");
  if (in == nullptr) return false;  // the reader will say why
  unsigned char m[4] = {0, 0, 0, 0};
  const size_t n = std::fread(m, 1, 4, in);
  std::fclose(in);
  if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b) return false;                                  // gzip
  if (n == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) return false;  // zstd
  if (n == 4 && (m[0] & 0xf0) == 0x50 && m[1] == 0x2a && m[2] == 0x4d && m[3] == 0x18) return false;  // skippable
  return true;
}

// The 1-based number of the line starting at byte `start`: counts the line breaks before it. Only for the
// error message of a rank that began reading in the middle of the file.
uint64_t line_number_at(const std::string& path, uint64_t start) {
  std::FILE* in = std::fopen(path.c_str(), "rb");
  if (in == nullptr) return 0;
  std::vector<char> buf(1 << 20);
  uint64_t left = start, lines = 1;
  while (left > 0) {
    const size_t n = std::fread(buf.data(), 1, static_cast<size_t>(std::min<uint64_t>(left, buf.size())), in);
    if (n == 0) break;
    lines += static_cast<uint64_t>(std::count(buf.data(), buf.data() + n, '\n'));
    left -= n;
  }
  std::fclose(in);
  return lines;
}

// The documents of a plain JSONL file's lines that start in [begin, end), read and accounted exactly as
// corpus::DocumentReader does (a BOM dropped from the file's first line, "\r" before "\n" dropped, blank
// lines counted, bad lines skipped and counted, or thrown). Line numbers are the unit's line_base plus
// its own count; `examples` gets, for every example message it adds to the report, where its line number
// goes (fixed once line_base is known).
class RangeReader {
 public:
  struct Example {
    size_t index;  // in report.examples
    size_t unit;
    uint64_t line;  // within the unit
    std::string path, rest;
  };

  RangeReader(const Unit& unit, size_t unit_index, corpus::OnError on_error, corpus::ReadReport& report,
              std::vector<Example>& examples)
      : unit_(unit), unit_index_(unit_index), on_error_(on_error), report_(report), examples_(examples) {
    file_ = std::fopen(unit.input.path.c_str(), "rb");
    if (file_ == nullptr) fail(unit.input.path, ": cannot open: ", std::strerror(errno));
    if (unit.begin == 0) ++report_.files;
    if (unit.begin > 0) {
      // From the byte before: the partial line up to the first line break is the previous unit's.
      if (::fseeko(file_, static_cast<off_t>(unit.begin - 1), SEEK_SET) != 0)
        fail(unit.input.path, ": cannot seek to byte ", unit.begin - 1, ": ", std::strerror(errno));
      pos_ = unit.begin - 1;
      skip_partial_ = true;
    }
    buf_.resize(kChunk + corpus::LineReader::kPadding);
  }
  ~RangeReader() { std::fclose(file_); }
  RangeReader(const RangeReader&) = delete;
  RangeReader& operator=(const RangeReader&) = delete;

  bool next(corpus::Document& doc) {
    std::string_view line;
    uint64_t start = 0;
    while (next_line(line, start)) {
      ++lines_;
      ++report_.lines;
      if (start == 0 && line.size() >= 3 && std::memcmp(line.data(), "\xEF\xBB\xBF", 3) == 0) line.remove_prefix(3);
      if (is_blank(line)) {
        ++report_.blank_lines;
        continue;
      }
      if (parser_.parse(line, doc, reason_, detail_)) {
        doc.origin = unit_.input.path + ":" + std::to_string(unit_.line_base + lines_);
        ++report_.documents;
        return true;
      }
      const std::string rest = ": " + reason_ + " (" + detail_ + ")";
      if (on_error_ == corpus::OnError::kFail) {
        const uint64_t n = unit_.begin == 0 ? lines_ : line_number_at(unit_.input.path, start);
        const std::string message = unit_.input.path + ":" + std::to_string(n) + rest;
        report_.add_skip(reason_, message);
        throw Error(message);
      }
      if (report_.examples.size() < corpus::ReadReport::kMaxExamples)
        examples_.push_back({report_.examples.size(), unit_index_, lines_, unit_.input.path, rest});
      report_.add_skip(reason_, unit_.input.path + ":" + std::to_string(unit_.line_base + lines_) + rest);
    }
    return false;
  }
  uint64_t lines() const { return lines_; }
  uint64_t bytes_read() const { return std::min<uint64_t>(read_, unit_.end - unit_.begin); }  // for progress

 private:
  static constexpr size_t kChunk = 1 << 20;

  // The next line that starts before unit_.end (without its "\n" and a "\r" before it) and its offset.
  bool next_line(std::string_view& line, uint64_t& start) {
    for (;;) {
      if (done_) return false;
      const void* nl = scan_ < end_ ? std::memchr(buf_.data() + scan_, '\n', end_ - scan_) : nullptr;
      size_t line_end = 0, next = 0;
      if (nl != nullptr) {
        line_end = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data());
        next = line_end + 1;
      } else if (eof_) {
        if (begin_ == end_) return false;
        line_end = next = end_;  // the last line, without a final newline
      } else {
        scan_ = end_;
        fill();
        continue;
      }
      start = pos_ + begin_;
      const size_t b = begin_;
      begin_ = scan_ = next;
      if (skip_partial_) {
        skip_partial_ = false;
        continue;
      }
      if (start >= unit_.end) {
        done_ = true;
        return false;
      }
      report_.bytes += next - b;
      size_t len = line_end - b;
      if (len > 0 && buf_[line_end - 1] == '\r') --len;
      line = std::string_view(buf_.data() + b, len);
      return true;
    }
  }

  // More bytes at the end of the buffer (the unread rest moved to the front; grown when a line fills it).
  void fill() {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      pos_ += begin_;
      end_ -= begin_;
      scan_ -= begin_;
      begin_ = 0;
    }
    const size_t cap = buf_.size() - corpus::LineReader::kPadding;
    if (end_ == cap) buf_.resize(cap * 2 + corpus::LineReader::kPadding);
    const size_t room = buf_.size() - corpus::LineReader::kPadding - end_;
    const size_t n = std::fread(buf_.data() + end_, 1, room, file_);
    if (n == 0) {
      if (std::ferror(file_)) fail(unit_.input.path, ": read error: ", std::strerror(errno));
      eof_ = true;
    }
    end_ += n;
    read_ += n;
    std::memset(buf_.data() + end_, 0, corpus::LineReader::kPadding);
  }

  const Unit& unit_;
  size_t unit_index_;
  corpus::OnError on_error_;
  corpus::ReadReport& report_;
  std::vector<Example>& examples_;
  std::FILE* file_ = nullptr;
  std::vector<char> buf_;
  size_t begin_ = 0, scan_ = 0, end_ = 0;
  uint64_t pos_ = 0;  // file offset of buf_[0]
  bool eof_ = false, done_ = false, skip_partial_ = false;
  uint64_t lines_ = 0, read_ = 0;
  corpus::DocumentParser parser_;
  std::string reason_, detail_;
};

// The documents of this rank's units, in order, as corpus::DocumentReader reads the whole input: whole
// files through one DocumentReader each (the text files' ids set to their names as expand_input_files gave
// them: the path relative to the directory given), pieces of plain JSONL files through RangeReader; the
// read reports merged. Records each unit's line count.
class ShardReader {
 public:
  ShardReader(std::vector<Unit>& units, corpus::OnError on_error) : units_(units), on_error_(on_error) {
    for (const auto& u : units_) {
      if (!u.whole) {
        total_ += u.end - u.begin;
        continue;
      }
      std::error_code ec;
      const auto size = fs::file_size(u.input.path, ec);
      if (!ec) total_ += size;
    }
  }

  bool next(corpus::Document& doc) {
    for (;;) {
      if (!reader_ && !range_) {
        if (next_ >= units_.size()) return false;
        const Unit& u = units_[next_];
        if (u.whole)
          reader_ = std::make_unique<corpus::DocumentReader>(std::vector<std::string>{u.input.path}, on_error_);
        else
          range_ = std::make_unique<RangeReader>(u, next_, on_error_, report_, examples_);
        ++next_;
      }
      Unit& u = units_[next_ - 1];
      if (reader_) {
        if (reader_->next(doc)) {
          if (u.input.kind == corpus::InputKind::kText) doc.id = u.input.name;
          return true;
        }
        add_read_report(report_, reader_->report());
        done_ += reader_->bytes_read_compressed();
        reader_.reset();
      } else {
        if (range_->next(doc)) return true;
        u.lines = range_->lines();
        done_ += u.end - u.begin;
        range_.reset();
      }
    }
  }
  // Complete once next() returned false and the units' line_base are known.
  corpus::ReadReport report() const {
    corpus::ReadReport r = report_;
    for (const auto& e : examples_)
      r.examples[e.index] = e.path + ":" + std::to_string(units_[e.unit].line_base + e.line) + e.rest;
    return r;
  }
  uint64_t bytes_read_compressed() const {
    return done_ + (reader_ ? reader_->bytes_read_compressed() : range_ ? range_->bytes_read() : 0);
  }
  uint64_t bytes_total_compressed() const { return total_; }

 private:
  std::vector<Unit>& units_;
  corpus::OnError on_error_;
  size_t next_ = 0;
  std::unique_ptr<corpus::DocumentReader> reader_;
  std::unique_ptr<RangeReader> range_;
  corpus::ReadReport report_;
  std::vector<RangeReader::Example> examples_;
  uint64_t total_ = 0, done_ = 0;
};

// This rank's units: the inputs as one run of bytes cut into N equal ranges, rank r reading what lies in
// range r. Plain JSONL files are cut at the range boundaries (a line belongs to the piece where it
// starts); other files go whole to the rank holding their middle byte. So the units of the ranks, in rank
// order, are the input in order.
std::vector<Unit> my_units(const DedupOptions& opt, const dist::Communicator& comm) {
  const auto files = corpus::expand_input_files(opt.inputs);
  if (files.empty()) fail("no input files given");
  using u128 = unsigned __int128;
  const auto n = static_cast<u128>(comm.size());
  const auto me = static_cast<size_t>(comm.rank());
  std::vector<uint64_t> sizes;
  u128 total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f.path, ec);
    sizes.push_back(ec ? 0 : size);
    total += sizes.back();
  }
  std::vector<Unit> units;
  if (total == 0) {  // nothing to cut: whole files, by count
    const auto first = shard_input_files(sizes, comm.size());
    for (size_t i = first[me]; i < first[me + 1]; ++i) units.push_back({i, files[i], true, 0, 0, 0, 0});
    return units;
  }
  auto lo = [&](u128 r) { return static_cast<uint64_t>(total * r / n); };  // where range r starts
  uint64_t s = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const uint64_t w = sizes[i];
    if (w == 0 || !splittable(files[i])) {
      const auto owner = static_cast<size_t>(std::min<u128>((2 * static_cast<u128>(s) + w) * n / (2 * total), n - 1));
      if (owner == me) units.push_back({i, files[i], true, 0, 0, 0, 0});
    } else {
      const auto r0 = static_cast<size_t>(static_cast<u128>(s) * n / total);
      const auto r1 = static_cast<size_t>(std::min<u128>(static_cast<u128>(s + w - 1) * n / total, n - 1));
      if (me >= r0 && me <= r1) {
        const uint64_t b = std::max<uint64_t>(s, lo(me)) - s;
        const uint64_t e = me == r1 ? w : std::min<uint64_t>(s + w, lo(me + 1)) - s;
        units.push_back({i, files[i], false, b, e, 0, 0});
      }
    }
    s += w;
  }
  return units;
}

// Rank r holds the documents [first[r], first[r + 1]) of the corpus.
struct Layout {
  std::vector<uint64_t> first;
  uint64_t total() const { return first.back(); }
  size_t rank_of(uint64_t d) const {
    if (d >= total()) fail("dedup: document ", d, " of ", total());
    return static_cast<size_t>(std::upper_bound(first.begin(), first.end(), d) - first.begin()) - 1;
  }
};

// After a rank's first read: every rank's document count (the layout) and the line counts of its pieces of
// files, from which each piece's first line number (line_base) follows.
Layout gather_layout(uint64_t count, std::vector<Unit>& units, dist::Communicator& comm) {
  std::string mine(reinterpret_cast<const char*>(&count), sizeof count);
  for (const Unit& u : units)
    if (!u.whole) {
      const uint64_t rec[2] = {u.file, u.lines};
      append(mine, rec, 2);
    }
  const auto all = comm.all_gather(mine);
  Layout layout;
  layout.first.push_back(0);
  std::unordered_map<uint64_t, uint64_t> lines_before;  // file -> lines in the pieces of ranks before this one
  for (size_t r = 0; r < all.size(); ++r) {
    const std::string& s = all[r];
    if (s.size() < sizeof(uint64_t) || (s.size() - sizeof(uint64_t)) % (2 * sizeof(uint64_t)) != 0)
      fail("dedup: a rank sent a bad document count");
    uint64_t c;
    std::memcpy(&c, s.data(), sizeof c);
    layout.first.push_back(layout.first.back() + c);
    if (r >= static_cast<size_t>(comm.rank())) continue;
    for (size_t off = sizeof(uint64_t); off < s.size(); off += 2 * sizeof(uint64_t)) {
      uint64_t rec[2];
      std::memcpy(rec, s.data() + off, sizeof rec);
      lines_before[rec[0]] += rec[1];
    }
  }
  for (Unit& u : units)
    if (!u.whole) u.line_base = lines_before.count(u.file) ? lines_before[u.file] : 0;
  if (layout.total() >= 0xFFFFFFFFull) fail("dedup: more than 4 billion documents");
  return layout;
}

// Reads the units in batches of opt.batch_documents documents and calls fn(docs, count) for each (the
// first `count` of docs). Returns the documents read. With layout (the rank's first read), gathers the
// layout and the pieces' line numbers; then the read report goes to *read_report when given.
uint64_t read_shard(const DedupOptions& opt, std::vector<Unit>& units, dist::Communicator& comm,
                    corpus::OnError on_error, const char* label, Layout* layout, corpus::ReadReport* read_report,
                    const std::function<void(std::vector<corpus::Document>&, size_t)>& fn) {
  ShardReader reader(units, on_error);
  Progress progress(label, reader.bytes_total_compressed(), "B");
  std::vector<corpus::Document> docs(std::max<size_t>(1, std::min<size_t>(opt.batch_documents, 1 << 16)));
  uint64_t total = 0, done = 0;
  for (;;) {
    size_t count = 0;
    while (count < opt.batch_documents) {
      if (count == docs.size()) docs.resize(std::min(docs.size() * 2, opt.batch_documents));
      if (!reader.next(docs[count])) break;
      ++count;
    }
    if (count == 0) break;
    fn(docs, count);
    total += count;
    const uint64_t now = reader.bytes_read_compressed();
    progress.add(now - std::min(now, done));
    done = std::max(done, now);
    if (count < opt.batch_documents) break;
  }
  progress.finish();
  if (layout != nullptr) *layout = gather_layout(total, units, comm);
  if (read_report != nullptr) *read_report = reader.report();
  return total;
}

// This rank's documents (its files), in input order, and what pass 1 computed for them.
struct LocalDocs {
  uint32_t first = 0;            // global number of the first
  size_t count = 0;
  std::vector<uint64_t> bytes;   // text bytes as read
  std::vector<Hash128> exact;    // when exact dedup is on
  std::vector<uint64_t> keys;    // bands per document, when near dedup is on
  std::vector<uint64_t> sigs;    // the whole signature per document, only with --threshold > 0
  std::vector<uint8_t> has_sig;  // 0: no shingles
  std::vector<uint8_t> removed;  // set by the paragraph stage (all paragraphs) and the exact stage
  // With --paragraphs: the paragraphs this rank's documents lost (increasing indices; by global number)
  // and their text bytes after the stage; paragraph count per document.
  std::unordered_map<uint32_t, std::vector<uint32_t>> lost_paragraphs;
  std::unordered_map<uint32_t, uint64_t> bytes_after;
  std::vector<uint32_t> paragraphs;

  size_t index_of(uint32_t d) const {
    if (d < first || d - first >= count) fail("dedup: rank got a result for document ", d, " which it does not hold");
    return d - first;
  }
};

// One paragraph's normal-form hash; the paragraph stage's order is (doc, para).
struct ParaRec {
  uint64_t lo, hi;
  uint32_t doc, para;
};

// The paragraph stage (--paragraphs), a pass of its own since the document hashes are taken of the text
// it leaves: (hash, doc, paragraph) to the rank owning the hash, where every occurrence but the first in
// (document, paragraph) order is removed, as Deduper::add does in input order; the removals go back to
// the documents' ranks. Fills local.first, local.count, local.paragraphs and local.lost_paragraphs;
// returns the layout.
Layout paragraph_stage(const DedupOptions& opt, std::vector<Unit>& units,
                       dist::Communicator& comm, LocalDocs& local) {
  const auto ranks = static_cast<size_t>(comm.size());
  std::vector<std::string> to(ranks);
  std::vector<std::vector<Hash128>> hashes;
  auto hash_paragraphs = [&](std::vector<corpus::Document>& docs, size_t count) {
    hashes.assign(count, {});
    parallel_for(count, opt.threads, [&](size_t i) {
      thread_local std::string norm;
      for (auto p : split_paragraphs(docs[i].text)) {
        normalize_text(p, norm);
        hashes[i].push_back(norm.empty() ? Hash128{} : hash128(norm));
      }
    });
    for (size_t i = 0; i < count; ++i) {
      const auto d = static_cast<uint32_t>(local.paragraphs.size());  // local number for now
      local.paragraphs.push_back(static_cast<uint32_t>(hashes[i].size()));
      for (size_t p = 0; p < hashes[i].size(); ++p) {
        const Hash128& h = hashes[i][p];
        if (h == Hash128{}) continue;  // empty normal form: never removed
        const ParaRec rec{h.lo, h.hi, d, static_cast<uint32_t>(p)};
        append(to[static_cast<size_t>(h.hi % ranks)], &rec, 1);
      }
    }
  };
  Layout layout;
  const uint64_t count =
      read_shard(opt, units, comm, opt.on_error, "dedup pass 1a (paragraphs)", &layout, nullptr, hash_paragraphs);
  local.first = static_cast<uint32_t>(layout.first[static_cast<size_t>(comm.rank())]);
  local.count = count;
  // Local numbers to global ones.
  for (auto& payload : to)
    for (size_t off = 0; off < payload.size(); off += sizeof(ParaRec)) {
      ParaRec rec;
      std::memcpy(&rec, payload.data() + off, sizeof rec);
      rec.doc += local.first;
      std::memcpy(payload.data() + off, &rec, sizeof rec);
    }
  auto recs = records<ParaRec>(comm.all_to_all(to));
  std::vector<std::string>().swap(to);
  std::sort(recs.begin(), recs.end(), [](const ParaRec& a, const ParaRec& b) {
    return std::tie(a.lo, a.hi, a.doc, a.para) < std::tie(b.lo, b.hi, b.doc, b.para);
  });
  std::vector<std::string> back(ranks);
  for (size_t s = 0; s < recs.size();) {
    size_t e = s + 1;
    for (; e < recs.size() && recs[e].lo == recs[s].lo && recs[e].hi == recs[s].hi; ++e) {
      const Pair lost{recs[e].doc, recs[e].para};  // (document, paragraph index)
      append(back[layout.rank_of(lost.doc)], &lost, 1);
    }
    s = e;
  }
  std::vector<ParaRec>().swap(recs);
  for (const Pair& lost : records<Pair>(comm.all_to_all(back))) {
    local.index_of(lost.doc);  // checks that it is this rank's
    local.lost_paragraphs[lost.doc].push_back(lost.of);
  }
  for (auto& [d, lost] : local.lost_paragraphs) std::sort(lost.begin(), lost.end());
  return layout;
}

// The ids of this rank's documents, in order, in an unlinked temporary file (length, bytes), for the
// ranks whose removed documents name one of them as their original.
class IdSpill {
 public:
  explicit IdSpill(const std::string& dir) : file_(open_unlinked_temp(dir, "document ids")) {}
  ~IdSpill() { std::fclose(file_); }
  IdSpill(const IdSpill&) = delete;
  IdSpill& operator=(const IdSpill&) = delete;

  void add(const std::string& id) {
    const auto n = static_cast<uint32_t>(std::min<size_t>(id.size(), 0xFFFFFFFFu));
    if (std::fwrite(&n, sizeof n, 1, file_) != 1 || std::fwrite(id.data(), 1, n, file_) != n)
      fail("dedup: cannot write document ids to a temporary file (disk full?): ", std::strerror(errno));
    ++count_;
  }
  // The ids of the documents `wanted` (local numbers, increasing, unique), read in one pass.
  std::vector<std::string> lookup(const std::vector<uint32_t>& wanted) {
    std::vector<std::string> out;
    if (wanted.empty()) return out;
    if (std::fflush(file_) != 0 || std::fseek(file_, 0, SEEK_SET) != 0)
      fail("dedup: cannot read back the document ids: ", std::strerror(errno));
    std::string id;
    size_t w = 0;
    for (uint32_t i = 0; i < count_ && w < wanted.size(); ++i) {
      uint32_t n;
      if (std::fread(&n, sizeof n, 1, file_) != 1) fail("dedup: the temporary file of document ids is short");
      if (i != wanted[w]) {
        if (std::fseek(file_, static_cast<long>(n), SEEK_CUR) != 0) fail("dedup: cannot read back the document ids");
        continue;
      }
      id.resize(n);
      if (n > 0 && std::fread(id.data(), 1, n, file_) != n) fail("dedup: the temporary file of document ids is short");
      out.push_back(id);
      ++w;
    }
    if (w != wanted.size()) fail("dedup: a rank asked for the id of a document it does not hold");
    std::fseek(file_, 0, SEEK_END);
    return out;
  }

 private:
  std::FILE* file_;
  uint32_t count_ = 0;
};

// Pass 1 on this rank: hashes its documents (the text the paragraph stage left, with --paragraphs), keeps
// their text sizes and, when ids is given, their ids. Without the paragraph stage, fills local.first and
// local.count and sets *layout.
void hash_my_shard(const DedupOptions& opt, std::vector<Unit>& units, dist::Communicator& comm,
                   LocalDocs& local, IdSpill* ids, corpus::ReadReport& read_report, Layout& layout) {
  const MinHasher hasher(opt.minhash);
  const int bands = opt.minhash.bands, k = hasher.size();
  const bool keep_sigs = opt.near && opt.threshold > 0;
  const bool paragraphs = opt.paragraphs;
  std::vector<std::string> rebuilt;
  std::vector<uint64_t> after;
  size_t next = 0;  // local number of the batch's first document
  auto hash_batch = [&](std::vector<corpus::Document>& docs, size_t count) {
    const size_t base = next;
    if (paragraphs && base + count > local.count)
      fail("dedup: the inputs changed between the paragraph pass and pass 1 (more documents)");
    if (opt.exact) local.exact.resize(base + count);
    if (opt.near) local.keys.resize((base + count) * bands);
    if (keep_sigs) local.sigs.resize((base + count) * k);
    local.has_sig.resize(base + count, 0);
    local.removed.resize(base + count, 0);
    for (size_t i = 0; i < count; ++i) {
      local.bytes.push_back(docs[i].text.size());
      if (ids != nullptr) ids->add(docs[i].id);
    }
    rebuilt.assign(count, {});
    after.assign(count, 0);
    parallel_for(count, opt.threads, [&](size_t i) {
      std::string_view text = docs[i].text;
      if (paragraphs) {
        const auto d = static_cast<uint32_t>(local.first + base + i);
        auto it = local.lost_paragraphs.find(d);
        if (it != local.lost_paragraphs.end()) {
          rebuilt[i] = join_kept_paragraphs(text, it->second);
          text = rebuilt[i];
          after[i] = text.size();
          if (it->second.size() == local.paragraphs[base + i]) {
            local.removed[base + i] = 1;  // all paragraphs duplicated: in no later stage
            return;
          }
        }
      }
      thread_local std::string norm;
      thread_local std::vector<uint64_t> sig, scratch;
      normalize_text(text, norm);
      if (opt.exact) local.exact[base + i] = hash128(norm);
      if (opt.near && hasher.signature(norm, sig, scratch)) {
        local.has_sig[base + i] = 1;
        hasher.band_keys(sig, &local.keys[(base + i) * bands]);
        if (keep_sigs) std::copy(sig.begin(), sig.end(), local.sigs.begin() + (base + i) * k);
      }
    });
    if (paragraphs)
      for (size_t i = 0; i < count; ++i) {
        const auto d = static_cast<uint32_t>(local.first + base + i);
        if (local.lost_paragraphs.count(d)) local.bytes_after[d] = after[i];
      }
    next += count;
  };
  const uint64_t count = read_shard(opt, units, comm, opt.on_error, "dedup pass 1", paragraphs ? nullptr : &layout,
                                    &read_report, hash_batch);
  if (paragraphs) {
    if (count != local.count)
      fail("dedup: the inputs changed between the paragraph pass and pass 1 (", local.count, " then ", count,
           " documents)");
  } else {
    local.first = static_cast<uint32_t>(layout.first[static_cast<size_t>(comm.rank())]);
    local.count = count;
  }
}

// Union-find over the documents named by `edges` (each joins doc and of); returns, for every such document
// that is not its cluster's first, the pair (document, first). The first is the smallest number, as in
// Deduper::join, so merging these pairs anywhere gives the same clusters.
std::vector<Pair> compress_clusters(const std::vector<Pair>& edges) {
  std::vector<uint32_t> ids;
  ids.reserve(edges.size() * 2);
  for (const auto& e : edges) ids.push_back(e.doc), ids.push_back(e.of);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  auto idx = [&](uint32_t d) {
    return static_cast<uint32_t>(std::lower_bound(ids.begin(), ids.end(), d) - ids.begin());
  };
  std::vector<uint32_t> parent(ids.size());
  for (uint32_t i = 0; i < parent.size(); ++i) parent[i] = i;
  auto find = [&](uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (const auto& e : edges) {
    uint32_t a = find(idx(e.doc)), b = find(idx(e.of));
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // ids sorted: smaller index, smaller doc
  }
  std::vector<Pair> out;
  for (uint32_t i = 0; i < parent.size(); ++i)
    if (find(i) != i) out.push_back({ids[i], ids[find(i)]});
  return out;
}

// The signatures of the documents that share a bucket with another, fetched from their ranks (--threshold >
// 0): the owner of a bucket verifies its pairs as Deduper::finish does.
struct SignatureTable {
  int k = 0;
  std::vector<uint32_t> doc;  // sorted
  std::vector<uint64_t> sig;  // k per doc
  const uint64_t* of(uint32_t d) const {
    auto it = std::lower_bound(doc.begin(), doc.end(), d);
    if (it == doc.end() || *it != d) fail("dedup: no signature for document ", d);
    return &sig[static_cast<size_t>(it - doc.begin()) * static_cast<size_t>(k)];
  }
};

SignatureTable fetch_signatures(BandKeyTable& table, const LocalDocs& local, const Layout& layout,
                                const DedupOptions& opt, dist::Communicator& comm) {
  const auto ranks = static_cast<size_t>(comm.size());
  SignatureTable t;
  t.k = opt.minhash.bands * opt.minhash.rows;
  table.for_each_bucket([&](const BandRecord* bucket, size_t m) {
    if (m > 1)
      for (size_t j = 0; j < m; ++j) t.doc.push_back(bucket[j].doc);
  });
  std::sort(t.doc.begin(), t.doc.end());
  t.doc.erase(std::unique(t.doc.begin(), t.doc.end()), t.doc.end());
  // Requests (document numbers, increasing) to the documents' ranks; replies in request order.
  std::vector<std::string> ask(ranks);
  for (uint32_t d : t.doc) append(ask[layout.rank_of(d)], &d, 1);
  const auto asked = comm.all_to_all(ask);
  std::vector<std::string> reply(ranks);
  for (size_t r = 0; r < ranks; ++r)
    for (uint32_t d : records<uint32_t>({asked[r]})) {
      const size_t i = local.index_of(d);
      if (!local.has_sig[i]) fail("dedup: rank asked for the signature of document ", d, ", which has none");
      append(reply[r], &local.sigs[i * static_cast<size_t>(t.k)], static_cast<size_t>(t.k));
    }
  const auto replies = comm.all_to_all(reply);
  // Requests went out by rank in increasing document order; merging the replies back by rank fills the table
  // in that order.
  t.sig.resize(t.doc.size() * static_cast<size_t>(t.k));
  std::vector<size_t> next(ranks, 0);
  for (size_t i = 0; i < t.doc.size(); ++i) {
    const size_t r = layout.rank_of(t.doc[i]);
    const size_t bytes = static_cast<size_t>(t.k) * sizeof(uint64_t);
    if (replies[r].size() < (next[r] + 1) * bytes) fail("dedup: a rank sent too few signatures");
    std::memcpy(&t.sig[i * static_cast<size_t>(t.k)], replies[r].data() + next[r] * bytes, bytes);
    ++next[r];
  }
  return t;
}

// Deduper::finish's verified joins, bucket by bucket: each member is joined to the first earlier member (of
// at most 64) whose signature agrees on at least `threshold` of its values.
void verify_buckets(BandKeyTable& table, const SignatureTable& sigs, double threshold, uint64_t& candidate_pairs,
                    std::vector<Pair>& edges) {
  table.for_each_bucket([&](const BandRecord* bucket, size_t m) {
    for (size_t j = 1; j < m; ++j) {
      const uint64_t* sj = sigs.of(bucket[j].doc);
      for (size_t i = 0; i < j && i < 64; ++i) {
        ++candidate_pairs;
        if (estimated_jaccard(sigs.of(bucket[i].doc), sj, sigs.k) >= threshold) {
          edges.push_back({bucket[j].doc, bucket[i].doc});
          break;
        }
      }
    }
  });
}

}  // namespace

DedupReport run_dedup_distributed(const DedupOptions& opt, const DedupSink& sink, dist::Communicator& comm) {
  const int n_ranks = comm.size(), me = comm.rank();
  if (n_ranks == 1) return run_dedup(opt, sink);
  if (opt.batch_documents == 0) fail("dedup: batch_documents must be at least 1");
  if (opt.threshold < 0 || opt.threshold > 1) fail("dedup: --threshold must be within [0, 1] (got ", opt.threshold, ")");
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto ranks = static_cast<size_t>(n_ranks);

  std::vector<Unit> units = my_units(opt, comm);
  corpus::ReadReport read_report;
  Layout layout;
  LocalDocs local;
  std::unique_ptr<IdSpill> ids;
  if (sink.removed) ids = std::make_unique<IdSpill>(opt.tmp_dir);
  if (opt.paragraphs) layout = paragraph_stage(opt, units, comm, local);
  hash_my_shard(opt, units, comm, local, ids.get(), read_report, layout);

  // Exact stage: (hash, doc) to the rank owning the hash; there the smallest doc of each hash is the
  // original. Results go back to the documents' ranks (the near stage skips them) and to rank 0.
  std::vector<Pair> exact_found;  // found by this rank as owner
  if (opt.exact) {
    std::vector<std::string> to(ranks);
    for (size_t i = 0; i < local.count; ++i) {
      if (local.removed[i]) continue;  // all paragraphs duplicated
      const ExactRec rec{local.exact[i].lo, local.exact[i].hi, local.first + i};
      append(to[static_cast<size_t>(rec.hi % ranks)], &rec, 1);
    }
    std::vector<Hash128>().swap(local.exact);
    auto recs = records<ExactRec>(comm.all_to_all(to));
    std::vector<std::string>().swap(to);
    std::sort(recs.begin(), recs.end(), [](const ExactRec& a, const ExactRec& b) {
      return std::tie(a.lo, a.hi, a.doc) < std::tie(b.lo, b.hi, b.doc);
    });
    std::vector<std::string> back(ranks);
    for (size_t s = 0; s < recs.size();) {
      size_t e = s + 1;
      for (; e < recs.size() && recs[e].lo == recs[s].lo && recs[e].hi == recs[s].hi; ++e) {
        const Pair p{static_cast<uint32_t>(recs[e].doc), static_cast<uint32_t>(recs[s].doc)};
        exact_found.push_back(p);
        append(back[layout.rank_of(p.doc)], &p, 1);
      }
      s = e;
    }
    std::vector<ExactRec>().swap(recs);
    for (const Pair& p : records<Pair>(comm.all_to_all(back))) local.removed[local.index_of(p.doc)] = 1;
  }

  // Near stage: (band, key, doc) of every document still kept to the rank owning the key; there each bucket
  // joins its members to its first (datatrove's rule, as Deduper::finish with threshold 0). The keys travel
  // in rounds: each round a rank sends the keys of its next documents, at most exchange_bytes in all.
  uint64_t candidate_pairs = 0, no_shingles = 0;
  std::vector<Pair> near_found;
  if (opt.near) {
    const int bands = opt.minhash.bands;
    for (size_t i = 0; i < local.count; ++i)
      if (!local.removed[i] && !local.has_sig[i]) ++no_shingles;
    const uint64_t per_round = opt.exchange_bytes > 0   ? opt.exchange_bytes
                               : opt.memory_bytes > 0 ? std::max<uint64_t>(1, opt.memory_bytes / ranks)
                                                      : 0;
    const uint64_t doc_bytes = static_cast<uint64_t>(bands) * sizeof(BandRecord);
    const uint64_t docs_per_round =
        per_round == 0 ? std::max<uint64_t>(1, local.count) : std::max<uint64_t>(1, per_round / doc_bytes);
    uint64_t rounds = (local.count + docs_per_round - 1) / docs_per_round;
    for (const auto& s : comm.all_gather(std::string(reinterpret_cast<const char*>(&rounds), sizeof rounds))) {
      uint64_t r;
      if (s.size() != sizeof r) fail("dedup: a rank sent a bad round count");
      std::memcpy(&r, s.data(), sizeof r);
      rounds = std::max(rounds, r);
    }
    // The owned keys go into the table (spilling sorted runs beyond --memory-mb), one sender's payload at
    // a time, each freed once copied.
    BandKeyTable table(opt.memory_bytes, opt.tmp_dir);
    std::vector<std::string> to(ranks);
    size_t i = 0;
    for (uint64_t round = 0; round < rounds; ++round) {
      for (auto& s : to) s.clear();
      const size_t end = static_cast<size_t>(std::min<uint64_t>(local.count, i + docs_per_round));
      for (; i < end; ++i) {
        if (local.removed[i] || !local.has_sig[i]) continue;
        for (int b = 0; b < bands; ++b) {
          const BandRecord rec{local.keys[i * bands + b], static_cast<uint32_t>(b),
                               static_cast<uint32_t>(local.first + i)};
          append(to[static_cast<size_t>(mix64(rec.key ^ static_cast<uint64_t>(b)) % ranks)], &rec, 1);
        }
      }
      auto received = comm.all_to_all(to);
      for (auto& payload : received) {
        if (payload.size() % sizeof(BandRecord) != 0) fail("dedup: a rank sent a truncated record");
        for (size_t off = 0; off < payload.size(); off += sizeof(BandRecord)) {
          BandRecord rec;
          std::memcpy(&rec, payload.data() + off, sizeof rec);
          table.add(rec);
        }
        std::string().swap(payload);
      }
    }
    std::vector<std::string>().swap(to);
    std::vector<uint64_t>().swap(local.keys);
    std::vector<Pair> edges;
    if (opt.threshold <= 0) {
      table.for_each_bucket([&](const BandRecord* bucket, size_t m) {
        for (size_t j = 1; j < m; ++j) {
          ++candidate_pairs;
          edges.push_back({bucket[j].doc, bucket[0].doc});
        }
      });
    } else {
      const SignatureTable sigs = fetch_signatures(table, local, layout, opt, comm);
      std::vector<uint64_t>().swap(local.sigs);
      verify_buckets(table, sigs, opt.threshold, candidate_pairs, edges);
    }
    table.release();
    near_found = compress_clusters(edges);
  }

  // Rank 0 gathers the counts, pairs, text sizes and read reports, and merges the clusters.
  // Message: header, exact pairs, near pairs, per document that lost paragraphs a ParaResult and the lost
  // paragraphs' indices, the text size of every document, the read report.
  std::vector<std::string> to_root(ranks);
  uint64_t paragraphs_seen = 0;
  for (uint32_t c : local.paragraphs) paragraphs_seen += c;
  const std::string read_json = read_report_json(read_report).dump();
  const uint64_t head[8] = {candidate_pairs,   no_shingles,     exact_found.size(),           near_found.size(),
                            paragraphs_seen,   local.lost_paragraphs.size(), local.count, read_json.size()};
  append(to_root[0], head, 8);
  append(to_root[0], exact_found.data(), exact_found.size());
  append(to_root[0], near_found.data(), near_found.size());
  for (const auto& [d, lost] : local.lost_paragraphs) {
    const ParaResult pr{d, static_cast<uint32_t>(lost.size()),
                        static_cast<uint32_t>(lost.size() == local.paragraphs[local.index_of(d)]), 0,
                        local.bytes_after.at(d)};
    append(to_root[0], &pr, 1);
    append(to_root[0], lost.data(), lost.size());
  }
  append(to_root[0], local.bytes.data(), local.bytes.size());
  std::vector<uint64_t>().swap(local.bytes);
  to_root[0] += read_json;
  std::vector<Pair>().swap(exact_found);
  std::vector<Pair>().swap(near_found);
  auto from = comm.all_to_all(to_root);
  std::vector<std::string>().swap(to_root);

  // On rank 0: every document's fate, the report, and the decisions for each rank.
  std::unique_ptr<Deduper> dd;
  std::vector<std::string> decisions_to(ranks);
  if (me == 0) {
    const size_t n = layout.total();
    std::vector<Fate> fate(n, Fate::kKept);
    std::vector<uint32_t> of(n);
    for (size_t i = 0; i < n; ++i) of[i] = static_cast<uint32_t>(i);
    std::vector<uint32_t> parent(of);
    auto find = [&](uint32_t x) {
      while (parent[x] != x) x = parent[x] = parent[parent[x]];
      return x;
    };
    uint64_t total_pairs = 0, total_no_shingles = 0;
    ParagraphResults paras;
    std::vector<uint64_t> bytes_all;
    bytes_all.reserve(n);
    corpus::ReadReport read_all;
    for (size_t src = 0; src < ranks; ++src) {
      MessageReader in(from[src]);
      uint64_t h[8];
      in.read(h, 8);
      total_pairs += h[0];
      total_no_shingles += h[1];
      paras.seen += h[4];
      for (uint64_t k = 0; k < h[2] + h[3]; ++k) {
        Pair p;
        in.read(&p, 1);
        if (p.doc >= n || p.of >= p.doc) fail("dedup: a rank sent an invalid pair (", p.doc, ", ", p.of, ")");
        if (k < h[2]) {
          fate[p.doc] = Fate::kExact;
          of[p.doc] = p.of;
        } else {
          uint32_t a = find(p.doc), b = find(p.of);
          if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the root stays the first document
        }
      }
      for (uint64_t k = 0; k < h[5]; ++k) {
        ParaResult pr;
        in.read(&pr, 1);
        if (pr.doc >= n || pr.lost == 0) fail("dedup: a rank sent invalid paragraph results");
        std::vector<uint32_t> lost(pr.lost);
        in.read(lost.data(), lost.size());
        if (pr.all) fate[pr.doc] = Fate::kAllParagraphs;  // left out of the later stages by its rank
        paras.bytes_after[pr.doc] = pr.bytes_after;
        paras.removed[pr.doc] = std::move(lost);
      }
      if (h[6] != layout.first[src + 1] - layout.first[src]) fail("dedup: a rank sent the sizes of too few documents");
      bytes_all.resize(bytes_all.size() + h[6]);
      in.read(bytes_all.data() + bytes_all.size() - h[6], h[6]);
      add_read_report(read_all, read_report_from_string(in.read_string(h[7])));
      if (!in.done()) fail("dedup: a rank sent more than its results");
      std::string().swap(from[src]);
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t r = find(static_cast<uint32_t>(i));
      if (r == i) continue;
      if (fate[i] != Fate::kKept) fail("dedup: document ", i, " is both an exact and a near duplicate");
      fate[i] = Fate::kNear;
      of[i] = r;
    }
    std::vector<uint32_t>().swap(parent);
    for (size_t i = 0; i < n; ++i)
      if (fate[i] != Fate::kKept) {
        const Decision dc{static_cast<uint32_t>(i), of[i], static_cast<uint32_t>(fate[i]), 0};
        append(decisions_to[layout.rank_of(i)], &dc, 1);
      }
    dd = std::make_unique<Deduper>(opt);
    dd->set_results(std::move(fate), std::move(of), std::move(bytes_all), std::move(paras));
    DedupReport& r = dd->report();
    r.near_candidate_pairs = total_pairs;
    r.no_shingles = total_no_shingles;
    r.read = read_all;
  }
  std::vector<std::string>().swap(from);
  const std::vector<Decision> decisions = records<Decision>(comm.all_to_all(decisions_to));
  std::vector<std::string>().swap(decisions_to);

  // The originals this rank's removed documents name: its own (their ids are kept while pass 2 reads
  // them) and other ranks' (their ids are fetched now).
  std::vector<uint32_t> own_refs, foreign_refs;
  for (const Decision& dc : decisions) {
    local.index_of(dc.doc);
    if (dc.fate > static_cast<uint32_t>(Fate::kNear) || dc.of > dc.doc)
      fail("dedup: rank 0 sent an invalid decision for document ", dc.doc);
    if (dc.of == dc.doc) continue;
    (dc.of >= local.first ? own_refs : foreign_refs).push_back(dc.of);
  }
  for (auto* v : {&own_refs, &foreign_refs}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  std::unordered_map<uint32_t, std::string> foreign_ids;
  {
    std::vector<std::string> ask(ranks);
    if (sink.removed)
      for (uint32_t d : foreign_refs) append(ask[layout.rank_of(d)], &d, 1);
    const auto asked = comm.all_to_all(ask);
    std::vector<uint32_t> wanted;
    for (const auto& a : asked)
      for (uint32_t d : records<uint32_t>({a})) wanted.push_back(static_cast<uint32_t>(local.index_of(d)));
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    if (!wanted.empty() && !ids) fail("dedup: a rank asked for document ids this rank did not keep");
    const std::vector<std::string> found = ids ? ids->lookup(wanted) : std::vector<std::string>{};
    std::vector<std::string> reply(ranks);
    for (size_t r = 0; r < ranks; ++r)
      for (uint32_t d : records<uint32_t>({asked[r]})) {
        const size_t w = static_cast<size_t>(
            std::lower_bound(wanted.begin(), wanted.end(), static_cast<uint32_t>(d - local.first)) - wanted.begin());
        const std::string& id = found[w];
        const auto len = static_cast<uint32_t>(id.size());
        append(reply[r], &len, 1);
        reply[r] += id;
      }
    const auto replies = comm.all_to_all(reply);
    if (sink.removed) {
      std::vector<size_t> next(ranks, 0);
      std::vector<std::unique_ptr<MessageReader>> in;
      for (const auto& rp : replies) in.push_back(std::make_unique<MessageReader>(rp));
      for (uint32_t d : foreign_refs) {
        const size_t r = layout.rank_of(d);
        uint32_t len;
        in[r]->read(&len, 1);
        foreign_ids[d] = in[r]->read_string(len);
      }
      for (const auto& m : in)
        if (!m->done()) fail("dedup: a rank sent more ids than asked");
    }
  }
  ids.reset();
  const auto t1 = clock::now();

  // Pass 2: this rank's documents, in order, to its sink.
  {
    ShardReader reader(units, corpus::OnError::kSkip);
    Progress progress("dedup pass 2", local.count, "docs");
    std::unordered_map<uint32_t, std::string> own_ids;
    corpus::Document doc;
    size_t i = 0, next_decision = 0, next_ref = 0;
    std::string of_id;
    while (reader.next(doc)) {
      if (i >= local.count)
        fail("dedup: the inputs changed between the two passes (more documents on the second read)");
      const auto d = static_cast<uint32_t>(local.first + i);
      Fate f = Fate::kKept;
      uint32_t of = d;
      if (next_decision < decisions.size() && decisions[next_decision].doc == d) {
        f = static_cast<Fate>(decisions[next_decision].fate);
        of = decisions[next_decision].of;
        ++next_decision;
      }
      if (next_ref < own_refs.size() && own_refs[next_ref] == d) {
        own_ids[d] = doc.id;
        ++next_ref;
      }
      if (f == Fate::kKept) {
        auto it = local.lost_paragraphs.find(d);
        if (it != local.lost_paragraphs.end()) doc.text = join_kept_paragraphs(doc.text, it->second);
        if (sink.kept) sink.kept(doc);
      } else if (sink.removed) {
        of_id.clear();
        if (f == Fate::kExact || f == Fate::kNear) {
          if (of >= local.first) {
            auto it = own_ids.find(of);
            if (it != own_ids.end()) of_id = it->second;
          } else {
            of_id = foreign_ids.at(of);
          }
          if (of_id.empty()) of_id = "#" + std::to_string(of);  // a document without an id
        }
        sink.removed(doc, fate_reason(f), of_id);
      }
      ++i;
      progress.add(1);
    }
    progress.finish();
    if (i != local.count)
      fail("dedup: the inputs changed between the two passes (fewer documents on the second read)");
  }
  const auto t2 = clock::now();
  if (me != 0) {
    DedupReport r;  // the job's report is rank 0's
    r.read = read_report;
    return r;
  }
  DedupReport r = dd->report();
  r.seconds_pass1 = std::chrono::duration<double>(t1 - t0).count();
  r.seconds_pass2 = std::chrono::duration<double>(t2 - t1).count();
  return r;
}

}  // namespace agpt::curate
