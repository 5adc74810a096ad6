// The encoder: added-token matching, pre-tokenization, byte-level BPE with a per-thread cache.
#include "text/tokenizer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <unordered_map>

#include "base/error.h"
#include "base/log.h"
#include "text/bpe_tables.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/pretokenizer_scanners.h"
#include "text/unicode_class.h"

namespace agpt::text {
namespace {

using bpe::kNoId;
using bpe::kNoMerge;

constexpr uint32_t kDeadId = 0xFFFFFFFEu;
constexpr size_t kMaxVocabIds = size_t{1} << 24;  // ids beyond 16M are taken for a corrupt file
constexpr size_t kSmallPiece = 256;                // longer pieces merge with a heap: O(n log n)

// ---- per-thread cache of piece -> ids -------------------------------------------------------

// Per-thread memo of piece -> ids, in two direct-mapped tables of 32-byte slots (pieces of up to
// 14 bytes, up to 3 ids): `hot` (512 KiB, sized to stay in a core's L2) serves the frequent pieces,
// whatever their ids came from; `merged` (1 MiB) keeps BPE results, which are costly to recompute,
// and is consulted only when `hot` and the vocabulary miss. Bounded memory, no allocation after
// creation; a collision overwrites.
struct MemoTable {
  static constexpr size_t kMaxLen = 14;
  static constexpr size_t kMaxIds = 3;
  struct Entry {  // 32 bytes: two to a cache line
    uint32_t tag;
    uint8_t len, nids;
    char bytes[kMaxLen];
    uint32_t ids[kMaxIds];
  };
  explicit MemoTable(size_t slots) : mask(slots - 1), entries(new Entry[slots]()) {}
  void clear() { std::fill(entries.get(), entries.get() + mask + 1, Entry{}); }

  bool lookup(uint64_t h, const char* p, size_t n, std::vector<uint32_t>& out) const {
    const Entry& e = entries[h & mask];
    if (e.tag != static_cast<uint32_t>(h >> 32) || e.len != n || !bpe::equal_bytes(e.bytes, p, n)) return false;
    for (size_t i = 0; i < e.nids; ++i) out.push_back(e.ids[i]);
    return true;
  }
  void store(uint64_t h, const char* p, size_t n, const uint32_t* ids, size_t nids) {
    Entry& e = entries[h & mask];
    e.tag = static_cast<uint32_t>(h >> 32);
    e.len = static_cast<uint8_t>(n);
    e.nids = static_cast<uint8_t>(nids);
    std::memcpy(e.bytes, p, n);
    std::memcpy(e.ids, ids, nids * sizeof(uint32_t));
  }
  size_t mask;
  std::unique_ptr<Entry[]> entries;
};

// Longer pieces (reST tables, rules, long words): fewer, but each costly to merge. At most
// 1024 x 256 bytes of keys and their ids.
struct LongMemo {
  static constexpr size_t kSlots = 1024;
  static constexpr size_t kMaxLen = 256;
  struct Entry {
    uint64_t hash = 0;
    std::string bytes;
    std::vector<uint32_t> ids;
  };
  std::vector<Entry> entries{kSlots};
  bool lookup(uint64_t h, const char* p, size_t n, std::vector<uint32_t>& out) const {
    const Entry& e = entries[h & (kSlots - 1)];
    if (e.hash != h || e.bytes.size() != n || std::memcmp(e.bytes.data(), p, n) != 0) return false;
    out.insert(out.end(), e.ids.begin(), e.ids.end());
    return true;
  }
  void store(uint64_t h, const char* p, size_t n, const uint32_t* ids, size_t nids) {
    Entry& e = entries[h & (kSlots - 1)];
    e.hash = h;
    e.bytes.assign(p, n);
    e.ids.assign(ids, ids + nids);
  }
  void clear() {
    for (auto& e : entries) e = Entry{};
  }
};

struct PieceCache {
  static constexpr size_t kMaxLen = MemoTable::kMaxLen;
  static constexpr size_t kMaxIds = MemoTable::kMaxIds;
  MemoTable hot{16384}, merged{32768};
  LongMemo long_pieces;
  void clear() {
    hot.clear();
    merged.clear();
    long_pieces.clear();
  }
};

// Each thread keeps caches for the last few tokenizers it used, keyed by a never-reused serial
// number (not the address, which a new tokenizer may reuse).
struct ThreadCaches {
  static constexpr int kWays = 4;
  uint64_t owner[kWays] = {};
  std::unique_ptr<PieceCache> cache[kWays];
  int next = 0;
  PieceCache& get(uint64_t serial) {
    for (int i = 0; i < kWays; ++i)
      if (owner[i] == serial) return *cache[i];
    int i = next;
    next = (next + 1) % kWays;
    owner[i] = serial;
    if (!cache[i]) cache[i] = std::make_unique<PieceCache>();
    else cache[i]->clear();
    return *cache[i];
  }
};
thread_local ThreadCaches t_caches;

// Scratch buffers of one thread.
struct Scratch {
  std::string prefixed;
  std::vector<std::string_view> pieces_a, pieces_b;
};
thread_local Scratch t_scratch;

std::atomic<uint64_t> g_next_serial{1};


// ---- added tokens ---------------------------------------------------------------------------

bool is_word_char(std::string_view text, size_t pos, bool before) {
  // The character just before (before=true) or at pos: a letter, number or '_' is a word character.
  auto s = reinterpret_cast<const unsigned char*>(text.data());
  if (before) {
    if (pos == 0) return false;
    size_t i = pos - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) --i;
    pos = i;
  } else if (pos >= text.size()) {
    return false;
  }
  if (s[pos] == '_') return true;
  uint32_t cp;
  decode_utf8(s + pos, text.size() - pos, cp);
  if (cp == kInvalidCodePoint) return false;
  return UnicodeClasses::get().of(cp) & (kClsLetter | kClsNumber);
}

bool is_space_byte_at(std::string_view text, size_t pos, size_t& len) {
  auto s = reinterpret_cast<const unsigned char*>(text.data());
  uint32_t cp;
  len = decode_utf8(s + pos, text.size() - pos, cp);
  return cp != kInvalidCodePoint && (UnicodeClasses::get().of(cp) & kClsSpace);
}

// Finds added tokens in text: leftmost match; at one position the longest token.
class AddedMatcher {
 public:
  void add(const AddedToken& t) {
    if (t.content.empty()) return;
    auto b = static_cast<unsigned char>(t.content[0]);
    by_first_[b].push_back(t);
    first_[b] = true;
    any_ = true;
  }
  void finish() {
    for (auto& v : by_first_)
      std::stable_sort(v.begin(), v.end(),
                       [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  }
  bool empty() const { return !any_; }

  struct Match {
    size_t start, end;
    uint32_t id;
  };
  // The first match in text at or after from; lstrip may extend it left, but not before `floor`.
  bool find(std::string_view text, size_t from, size_t floor, Match& m) const {
    auto s = reinterpret_cast<const unsigned char*>(text.data());
    for (size_t i = from; i < text.size(); ++i) {
      if (!first_[s[i]]) continue;
      for (const AddedToken& t : by_first_[s[i]]) {
        if (text.compare(i, t.content.size(), t.content) != 0) continue;
        size_t end = i + t.content.size();
        if (t.single_word && (is_word_char(text, i, true) || is_word_char(text, end, false))) continue;
        size_t start = i;
        if (t.lstrip) {
          while (start > floor) {
            size_t k = start - 1;
            while (k > floor && (s[k] & 0xC0) == 0x80) --k;
            size_t len;
            if (!is_space_byte_at(text, k, len) || k + len != start) break;
            start = k;
          }
        }
        if (t.rstrip) {
          size_t len;
          while (end < text.size() && is_space_byte_at(text, end, len)) end += len;
        }
        m = {start, end, t.id};
        return true;
      }
    }
    return false;
  }

 private:
  std::array<std::vector<AddedToken>, 256> by_first_;
  std::array<bool, 256> first_{};
  bool any_ = false;
};

}  // namespace

// ---- the tokenizer --------------------------------------------------------------------------

struct Tokenizer::Impl {
  uint64_t serial = g_next_serial.fetch_add(1);
  std::string description;
  std::vector<AddedToken> added;
  std::optional<uint32_t> bos, eos, unk;
  std::vector<uint32_t> template_prefix, template_suffix;

  // id -> bytes
  std::string arena;
  std::vector<uint64_t> offsets;   // size vocab_size + 1
  std::vector<uint8_t> id_kind;    // 0: no token, 1: vocabulary, 2: added, 3: added special
  size_t vocab_size = 0;

  // encoding
  bpe::BytesMap vocab_map;
  bpe::PairMap pairs;
  std::array<uint32_t, 256> byte_id{};
  std::vector<uint64_t> byte_pairs;  // 256 x 256: the merge of two single bytes (the first BPE round)
  bool missing_bytes = false;
  std::vector<uint8_t> direct;  // 1: a piece equal to this token is emitted as it (no merging needed)
  bool all_direct = false;

  std::vector<std::string> split_patterns;
  std::string first_pattern;
  PatternKind kind = PatternKind::kOther;
  std::vector<std::unique_ptr<PreTokenizer>> stages;
  bool add_prefix_space = false;
  const UnicodeClasses* classes = &UnicodeClasses::get();

  AddedMatcher match_all, match_nonspecial;
  std::unordered_map<std::string, uint32_t> added_by_content;

  void build(Config& c);
  void encode(std::string_view text, bool allow_special, std::vector<uint32_t>& out) const;
  void encode_segment(std::string_view seg, std::vector<uint32_t>& out, PieceCache& cache) const;
  void encode_valid(std::string_view seg, std::vector<uint32_t>& out, PieceCache& cache) const;
  template <typename Scanner>
  void scan_and_encode(const Scanner& sc, std::string_view seg, std::vector<uint32_t>& out, PieceCache& cache) const {
    auto s = reinterpret_cast<const unsigned char*>(seg.data());
    size_t n = seg.size(), pos = 0;
    while (pos < n) {
      size_t end = sc.next(s, pos, n);
      encode_piece(seg.data() + pos, end - pos, out, cache);
      pos = end;
    }
  }
  void encode_piece(const char* p, size_t n, std::vector<uint32_t>& out, PieceCache& cache) const {
    if (n == 1) {
      emit(byte_id[static_cast<unsigned char>(*p)], out);
      return;
    }
    uint64_t h = bpe::hash_bytes(p, n);
    // Frequent pieces are found in the small per-thread cache, which stays in the CPU caches;
    // the vocabulary table (tens of MB) is consulted for the others.
    bool cacheable = n <= PieceCache::kMaxLen;
    if (cacheable && cache.hot.lookup(h, p, n, out)) return;
    uint32_t id = vocab_map.find(p, n, h);
    if (id != kNoId && (all_direct || direct[id])) {
      out.push_back(id);
      if (cacheable) cache.hot.store(h, p, n, &id, 1);
      return;
    }
    if (cacheable && cache.merged.lookup(h, p, n, out)) {
      size_t k = out.size() - cache.merged.entries[h & cache.merged.mask].nids;
      cache.hot.store(h, p, n, out.data() + k, out.size() - k);
      return;
    }
    bool long_cacheable = n <= LongMemo::kMaxLen;  // also short pieces of more than kMaxIds ids
    if (long_cacheable && cache.long_pieces.lookup(h, p, n, out)) return;
    size_t before = out.size();
    merge(reinterpret_cast<const unsigned char*>(p), n, out);
    size_t added_ids = out.size() - before;
    if (cacheable && added_ids <= PieceCache::kMaxIds) {
      cache.hot.store(h, p, n, out.data() + before, added_ids);
      cache.merged.store(h, p, n, out.data() + before, added_ids);
    } else if (long_cacheable) {
      cache.long_pieces.store(h, p, n, out.data() + before, added_ids);
    }
  }
  void emit(uint32_t id, std::vector<uint32_t>& out) const {
    if (id < kDeadId) out.push_back(id);
    else if (id == kNoId && unk) out.push_back(*unk);  // a byte with no token: unk, or dropped (as HF)
  }
  // Byte-level BPE of one piece; appends the ids.
  void merge(const unsigned char* p, size_t n, std::vector<uint32_t>& out) const {
    if (n <= kSmallPiece) merge_small(p, n, out);
    else merge_heap(p, n, out);
  }
  void merge_small(const unsigned char* p, size_t n, std::vector<uint32_t>& out) const;
  void merge_heap(const unsigned char* p, size_t n, std::vector<uint32_t>& out) const;
};

void Tokenizer::Impl::merge_small(const unsigned char* p, size_t n, std::vector<uint32_t>& out) const {
  uint32_t ids[kSmallPiece];
  uint64_t pri[kSmallPiece];
  for (size_t i = 0; i < n; ++i) ids[i] = byte_id[p[i]];
  size_t m = n;
  for (size_t i = 0; i + 1 < m; ++i) pri[i] = byte_pairs[(size_t{p[i]} << 8) | p[i + 1]];
  while (m > 1) {
    size_t best = 0;
    uint64_t bv = pri[0];
    for (size_t i = 1; i + 1 < m; ++i)
      if (pri[i] < bv) {
        bv = pri[i];
        best = i;
      }
    if (bv == kNoMerge) break;
    ids[best] = static_cast<uint32_t>(bv);
    // Remove symbol best+1 and the pair entry best+1.
    for (size_t i = best + 1; i + 1 < m; ++i) ids[i] = ids[i + 1];
    for (size_t i = best + 1; i + 2 < m; ++i) pri[i] = pri[i + 1];
    --m;
    if (best > 0) pri[best - 1] = pairs.find(ids[best - 1], ids[best]);
    if (best + 1 < m) pri[best] = pairs.find(ids[best], ids[best + 1]);
  }
  for (size_t i = 0; i < m; ++i) emit(ids[i], out);
}

// A 4-ary min-heap of 64-bit keys: half the depth of a binary heap, so fewer cache misses on the
// long pieces it serves.
namespace {
void sift_down(std::vector<uint64_t>& h, size_t i, uint64_t key) {
  size_t n = h.size();
  for (;;) {
    size_t c = 4 * i + 1;
    if (c >= n) break;
    size_t best = c;
    uint64_t bv = h[c];
    size_t end = std::min(c + 4, n);
    for (size_t j = c + 1; j < end; ++j)
      if (h[j] < bv) {
        bv = h[j];
        best = j;
      }
    if (key <= bv) break;
    h[i] = bv;
    i = best;
  }
  h[i] = key;
}
void heap_push(std::vector<uint64_t>& h, uint64_t key) {
  size_t i = h.size();
  h.push_back(key);
  while (i > 0) {
    size_t parent = (i - 1) / 4;
    if (h[parent] <= key) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = key;
}
uint64_t heap_pop(std::vector<uint64_t>& h) {
  uint64_t top = h[0], last = h.back();
  h.pop_back();
  if (!h.empty()) sift_down(h, 0, last);
  return top;
}
}  // namespace

void Tokenizer::Impl::merge_heap(const unsigned char* p, size_t n, std::vector<uint32_t>& out) const {
  // Symbols in a linked list; candidate merges in a min-heap of 64-bit keys (priority in the top
  // 24 bits, the left symbol's position below, so ties go to the leftmost pair). Entries go stale
  // when a neighbour merges; a popped entry is checked by looking its pair up again (a priority
  // names one pair: a rank one merged token, a merge index one merge).
  struct Sym {
    uint32_t id;
    int32_t prev, next;
  };
  if (n >= (size_t{1} << 31)) fail("a single pre-tokenizer piece of ", n, " bytes is too long to encode (limit 2 GiB)");
  thread_local std::vector<Sym> syms;
  thread_local std::vector<uint64_t> heap;
  constexpr int kPosBits = 40;
  constexpr uint64_t kPosMask = (uint64_t{1} << kPosBits) - 1;
  syms.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i)
    syms[i] = {byte_id[p[i]], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  for (size_t i = 0; i + 1 < n; ++i) {
    uint64_t v = byte_pairs[(size_t{p[i]} << 8) | p[i + 1]];
    if (v != kNoMerge) heap.push_back(((v >> 32) << kPosBits) | i);
  }
  for (size_t i = heap.size() / 4 + 1; i-- > 0;)
    if (i < heap.size()) sift_down(heap, i, heap[i]);
  auto push = [&](int32_t l) {
    uint64_t v = pairs.find(syms[l].id, syms[syms[l].next].id);
    if (v != kNoMerge) heap_push(heap, ((v >> 32) << kPosBits) | static_cast<uint64_t>(l));
  };
  while (!heap.empty()) {
    uint64_t key = heap_pop(heap);
    int32_t pos = static_cast<int32_t>(key & kPosMask);
    Sym& l = syms[pos];
    if (l.id == kDeadId || l.next < 0) continue;
    Sym& r = syms[l.next];
    uint64_t v = pairs.find(l.id, r.id);
    if (v == kNoMerge || (v >> 32) != (key >> kPosBits)) continue;  // stale
    l.id = static_cast<uint32_t>(v);
    int32_t dead = l.next;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = pos;
    syms[dead].id = kDeadId;
    if (l.prev >= 0) push(l.prev);
    if (l.next >= 0) push(pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) emit(syms[i].id, out);
  if (n > (size_t{1} << 20)) {  // do not keep the memory of a huge piece
    std::vector<Sym>().swap(syms);
    std::vector<uint64_t>().swap(heap);
  }
}

void Tokenizer::Impl::build(Config& c) {
  description = c.description;
  bos = c.bos_id;
  eos = c.eos_id;
  unk = c.unk_id;
  template_prefix = c.template_prefix;
  template_suffix = c.template_suffix;
  add_prefix_space = c.add_prefix_space;
  const std::string& where = description.empty() ? std::string("tokenizer") : description;

  // Ids and their bytes.
  uint64_t max_id = 0;
  bool any = false;
  for (auto& [bytes, id] : c.vocab) {
    if (bytes.empty()) fail(where, ": token id ", id, " has empty bytes");
    max_id = std::max<uint64_t>(max_id, id);
    any = true;
  }
  for (auto& t : c.added_tokens) {
    if (t.content.empty()) fail(where, ": added token id ", t.id, " has empty content");
    max_id = std::max<uint64_t>(max_id, t.id);
    any = true;
  }
  if (!any) fail(where, ": the vocabulary is empty");
  if (max_id >= kMaxVocabIds)
    fail(where, ": token id ", max_id, " is too large (agpt accepts ids below ", kMaxVocabIds,
         "); the file is probably corrupt");
  vocab_size = static_cast<size_t>(max_id) + 1;
  id_kind.assign(vocab_size, 0);
  std::vector<std::string_view> bytes_of(vocab_size);
  for (auto& [bytes, id] : c.vocab) {
    if (id_kind[id]) fail(where, ": token id ", id, " appears twice in the vocabulary");
    id_kind[id] = 1;
    bytes_of[id] = bytes;
  }
  for (auto& t : c.added_tokens) {
    if (id_kind[t.id] >= 2 && bytes_of[t.id] != t.content)
      fail(where, ": added token id ", t.id, " is given twice, as \"", bytes_of[t.id], "\" and \"", t.content, "\"");
    id_kind[t.id] = t.special ? 3 : 2;
    bytes_of[t.id] = t.content;  // decode gives the added token's content
  }
  offsets.assign(vocab_size + 1, 0);
  for (size_t id = 0; id < vocab_size; ++id) {
    offsets[id] = arena.size();
    arena.append(bytes_of[id]);
  }
  offsets[vocab_size] = arena.size();

  // Byte string -> id over the mergeable vocabulary (duplicates rejected).
  std::vector<std::pair<std::string_view, uint32_t>> entries;
  entries.reserve(c.vocab.size());
  for (auto& [bytes, id] : c.vocab) entries.emplace_back(bytes, id);
  vocab_map.build(entries);
  for (auto& [bytes, id] : c.vocab) {
    uint32_t found = vocab_map.find(bytes);
    if (found != id)
      fail(where, ": the token ", byte_level_encode(bytes), " appears twice in the vocabulary (ids ", found, " and ",
           id, ")");
  }
  int missing = 0;
  for (int b = 0; b < 256; ++b) {
    char ch = static_cast<char>(b);
    byte_id[b] = vocab_map.find(std::string_view(&ch, 1));
    if (byte_id[b] == kNoId) ++missing;
  }
  missing_bytes = missing > 0;
  if (missing)
    log_warn(where, ": ", missing, " of the 256 bytes have no token; such bytes encode as ",
             unk ? "the unk token" : "nothing (dropped, as Hugging Face does without unk_token)");

  // Merges -> one table of (left, right) -> (priority, merged id).
  if (c.rule == Config::Rule::kRanks) {
    size_t npairs = 0;
    for (auto& [bytes, id] : c.vocab) npairs += bytes.size() - 1;
    pairs.reserve(std::max<size_t>(npairs / 3, 16));
    for (auto& [bytes, id] : c.vocab) {
      std::string_view t = bytes;
      for (size_t i = 1; i < t.size(); ++i) {
        uint32_t a = vocab_map.find(t.substr(0, i));
        if (a == kNoId) continue;
        uint32_t b = vocab_map.find(t.substr(i));
        if (b == kNoId) continue;
        pairs.insert(a, b, (uint64_t{id} << 32) | id);
      }
    }
    all_direct = true;
  } else {
    if (c.merges.size() >= kMaxVocabIds) fail(where, ": too many merges (", c.merges.size(), "; agpt accepts up to ", kMaxVocabIds, ")");
    pairs.reserve(std::max<size_t>(c.merges.size(), 16));
    std::string joined;
    for (size_t k = 0; k < c.merges.size(); ++k) {
      auto& [left, right] = c.merges[k];
      uint32_t a = vocab_map.find(left), b = vocab_map.find(right);
      joined = left;
      joined += right;
      uint32_t m = vocab_map.find(joined);
      if (a == kNoId || b == kNoId || m == kNoId) {
        const std::string& missing_tok = a == kNoId ? left : b == kNoId ? right : joined;
        fail(where, ": merge #", k + 1, " (\"", byte_level_encode(left), " ", byte_level_encode(right),
             "\") uses the token \"", byte_level_encode(missing_tok),
             "\", which is not in the vocabulary; the merges do not belong to this vocabulary");
      }
      pairs.insert(a, b, (uint64_t{k} << 32) | m);  // a repeated merge keeps its first (lowest) rank
    }
    all_direct = c.ignore_merges;
  }
  byte_pairs.assign(65536, kNoMerge);
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) byte_pairs[(a << 8) | b] = pairs.find(byte_id[a], byte_id[b]);
  if (c.rule == Config::Rule::kMerges) {
    if (!all_direct) {
      // A piece equal to a token may be emitted directly when BPE would produce exactly that token.
      direct.assign(vocab_size, 0);
      std::vector<uint32_t> tmp;
      for (auto& [bytes, id] : c.vocab) {
        tmp.clear();
        merge(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), tmp);
        direct[id] = tmp.size() == 1 && tmp[0] == id;
      }
    }
  }

  // Added tokens.
  added = c.added_tokens;
  for (auto& t : added) {
    match_all.add(t);
    if (!t.special) match_nonspecial.add(t);
    added_by_content.emplace(t.content, t.id);
  }
  match_all.finish();
  match_nonspecial.finish();

  // Pre-tokenizer.
  split_patterns = c.split_patterns;
  first_pattern = split_patterns.empty() ? std::string() : split_patterns[0];
  if (split_patterns.size() == 1) kind = known_pattern_kind(split_patterns[0]);
  if (kind == PatternKind::kOther)
    for (auto& pat : split_patterns) stages.push_back(make_pretokenizer(pat));

  for (uint32_t id : template_prefix)
    if (id >= vocab_size || !id_kind[id]) fail(where, ": the post-processor template names id ", id, ", not a token");
  for (uint32_t id : template_suffix)
    if (id >= vocab_size || !id_kind[id]) fail(where, ": the post-processor template names id ", id, ", not a token");
  for (auto opt : {bos, eos, unk})
    if (opt && (*opt >= vocab_size || !id_kind[*opt])) fail(where, ": special id ", *opt, " is not a token");
}

void Tokenizer::Impl::encode_valid(std::string_view seg, std::vector<uint32_t>& out, PieceCache& cache) const {
  switch (kind) {
    case PatternKind::kGpt2:
      scan_and_encode(scan::Gpt2Scanner{*classes}, seg, out, cache);
      return;
    case PatternKind::kCl100k:
      scan_and_encode(scan::Cl100kScanner{*classes, true}, seg, out, cache);
      return;
    case PatternKind::kCl100kNoEndRule:
      scan_and_encode(scan::Cl100kScanner{*classes, false}, seg, out, cache);
      return;
    case PatternKind::kO200k:
      scan_and_encode(scan::O200kScanner{*classes}, seg, out, cache);
      return;
    case PatternKind::kOther:
      break;
  }
  if (stages.empty()) {
    encode_piece(seg.data(), seg.size(), out, cache);
    return;
  }
  // Regex stages, each splitting the pieces of the one before. The scratch vectors are per thread,
  // and this function does not recurse, so they are free to use here.
  auto& a = t_scratch.pieces_a;
  auto& b = t_scratch.pieces_b;
  a.clear();
  stages[0]->split(seg, a);
  for (size_t k = 1; k < stages.size(); ++k) {
    b.clear();
    for (auto piece : a) stages[k]->split(piece, b);
    std::swap(a, b);
  }
  for (auto piece : a) encode_piece(piece.data(), piece.size(), out, cache);
}

void Tokenizer::Impl::encode_segment(std::string_view seg, std::vector<uint32_t>& out, PieceCache& cache) const {
  if (seg.empty()) return;
  if (add_prefix_space && seg[0] != ' ') {
    // HF ByteLevel(add_prefix_space): each segment between added tokens gets a leading space.
    // (encode_valid never touches `prefixed`, so the view stays valid below.)
    std::string& buf = t_scratch.prefixed;
    buf.assign(1, ' ');
    buf.append(seg);
    seg = buf;
  }
  // Invalid UTF-8: valid runs are pre-tokenized as usual, each invalid byte is a piece of its own.
  while (!seg.empty()) {
    size_t v = valid_utf8_prefix(seg);
    if (v) encode_valid(seg.substr(0, v), out, cache);
    if (v == seg.size()) break;
    encode_piece(seg.data() + v, 1, out, cache);
    seg.remove_prefix(v + 1);
  }
}

void Tokenizer::Impl::encode(std::string_view text, bool allow_special, std::vector<uint32_t>& out) const {
  PieceCache& cache = t_caches.get(serial);
  const AddedMatcher& matcher = allow_special ? match_all : match_nonspecial;
  if (matcher.empty()) {
    encode_segment(text, out, cache);
    return;
  }
  size_t pos = 0;
  AddedMatcher::Match m;
  while (pos < text.size()) {
    if (!matcher.find(text, pos, pos, m)) {
      encode_segment(text.substr(pos), out, cache);
      break;
    }
    encode_segment(text.substr(pos, m.start - pos), out, cache);
    out.push_back(m.id);
    pos = m.end;
  }
}

// ---- public API -----------------------------------------------------------------------------

Tokenizer::Tokenizer(Config config) : impl_(std::make_unique<Impl>()) { impl_->build(config); }
Tokenizer::~Tokenizer() = default;

void Tokenizer::encode_ordinary(std::string_view text, std::vector<uint32_t>& out) const {
  impl_->encode(text, false, out);
}

std::vector<uint32_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 4);
  impl_->encode(text, allow_special, out);
  return out;
}

void Tokenizer::encode(std::string_view text, bool allow_special, std::vector<uint32_t>& out) const {
  impl_->encode(text, allow_special, out);
}

std::string Tokenizer::decode(std::span<const uint32_t> ids) const {
  std::string out;
  size_t total = 0;
  for (uint32_t id : ids) {
    if (id >= impl_->vocab_size || !impl_->id_kind[id])
      fail("decode: id ", id, " is not a token of ", impl_->description, " (vocabulary size ", impl_->vocab_size,
           id < impl_->vocab_size ? ", and this id is unused" : "", ")");
    total += impl_->offsets[id + 1] - impl_->offsets[id];
  }
  out.reserve(total);
  for (uint32_t id : ids)
    out.append(impl_->arena, impl_->offsets[id], impl_->offsets[id + 1] - impl_->offsets[id]);
  return out;
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<uint32_t> Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->added_by_content.find(std::string(token));
  if (it != impl_->added_by_content.end()) return it->second;
  auto bytes = byte_level_decode(token);
  if (!bytes || bytes->empty()) return std::nullopt;
  uint32_t id = impl_->vocab_map.find(*bytes);
  if (id == kNoId) return std::nullopt;
  return id;
}

std::string Tokenizer::token_bytes(uint32_t id) const {
  if (id >= impl_->vocab_size || !impl_->id_kind[id])
    fail("token_bytes: id ", id, " is not a token of ", impl_->description, " (vocabulary size ", impl_->vocab_size,
         ")");
  return impl_->arena.substr(impl_->offsets[id], impl_->offsets[id + 1] - impl_->offsets[id]);
}

bool Tokenizer::is_special(uint32_t id) const { return id < impl_->vocab_size && impl_->id_kind[id] == 3; }
std::optional<uint32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<uint32_t> Tokenizer::eos_id() const { return impl_->eos; }

std::vector<uint32_t> Tokenizer::encode_with_template(std::string_view text) const {
  return encode_with_template(text, false);
}

std::vector<uint32_t> Tokenizer::encode_with_template(std::string_view text, bool allow_special) const {
  std::vector<uint32_t> out(impl_->template_prefix);
  out.reserve(text.size() / 3 + 8);
  impl_->encode(text, allow_special, out);
  out.insert(out.end(), impl_->template_suffix.begin(), impl_->template_suffix.end());
  return out;
}

const std::string& Tokenizer::pattern() const { return impl_->first_pattern; }

std::string Tokenizer::description() const {
  size_t mergeable = 0, special = 0, added = 0;
  for (uint8_t k : impl_->id_kind) {
    mergeable += k == 1;
    added += k == 2;
    special += k == 3;
  }
  std::string pre;
  if (impl_->split_patterns.empty()) pre = "no split";
  else if (impl_->kind != PatternKind::kOther) pre = cat(pattern_kind_name(impl_->kind), " (hand-written scanner)");
  else pre = cat(impl_->split_patterns.size(), " regex split(s) (PCRE2)");
  return cat(impl_->description, ": ", impl_->vocab_size, " ids (", mergeable, " byte-level BPE, ", special,
             " special, ", added, " other added), pre-tokenizer ", pre,
             impl_->add_prefix_space ? ", add_prefix_space" : "");
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added; }

}  // namespace agpt::text
