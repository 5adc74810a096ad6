// Byte-level BPE training. Counting: texts are cut (special tokens, large-text chunks), pre-tokenized
// and counted in per-thread maps that are summed into a sharded global map. Training: the classic
// incremental algorithm — pair counts, for each pair the words it occurs in, and a max-heap with
// lazy invalidation — so each merge touches only the words that contain the merged pair.
#include "text/bpe_trainer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/log.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"

namespace agpt::text {

const char* const kDefaultBpeTrainPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

bool BpeModel::is_special(uint32_t id) const {
  return std::find(special_ids.begin(), special_ids.end(), id) != special_ids.end();
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Word counts are capped here so that sums over words stay far from int64 overflow.
constexpr uint64_t kMaxCount = uint64_t{1} << 62;
uint64_t saturating_add(uint64_t a, uint64_t b) { return std::min(kMaxCount, std::min(a, kMaxCount) + std::min(b, kMaxCount)); }

// ---- UTF-8 -------------------------------------------------------------------------------------

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_sequence_length(const unsigned char* s, size_t n, size_t i) {
  unsigned char c = s[i];
  if (c < 0x80) return 1;
  auto cont = [&](size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i + k < n && s[i + k] >= lo && s[i + k] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

bool is_valid_utf8(std::string_view text) {
  auto s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  while (i < n) {
    // Fast path: 8 ASCII bytes at a time.
    if (i + 8 <= n) {
      uint64_t v;
      std::memcpy(&v, s + i, 8);
      if ((v & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    size_t len = utf8_sequence_length(s, n, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// Every byte that does not start a well-formed sequence becomes U+FFFD.
std::string repair_utf8(std::string_view text) {
  auto s = reinterpret_cast<const unsigned char*>(text.data());
  std::string out;
  out.reserve(text.size() + 16);
  size_t i = 0;
  while (i < text.size()) {
    size_t len = utf8_sequence_length(s, text.size(), i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.data() + i, len);
      i += len;
    }
  }
  return out;
}

// ---- cutting text ------------------------------------------------------------------------------

// Calls fn(segment) for each stretch of text between occurrences of the special tokens (leftmost
// occurrence first; at one position the longest special wins). Returns the number of occurrences.
uint64_t cut_specials(std::string_view text, const std::vector<std::string>& specials,
                      const std::function<void(std::string_view)>& fn) {
  if (specials.empty()) {
    if (!text.empty()) fn(text);
    return 0;
  }
  std::vector<size_t> next(specials.size());
  for (size_t k = 0; k < specials.size(); ++k) next[k] = text.find(specials[k]);
  uint64_t found = 0;
  size_t from = 0;
  for (;;) {
    size_t best = std::string_view::npos, best_k = 0;
    for (size_t k = 0; k < specials.size(); ++k) {
      if (next[k] < best || (next[k] == best && next[k] != std::string_view::npos &&
                             specials[k].size() > specials[best_k].size())) {
        best = next[k];
        best_k = k;
      }
    }
    if (best == std::string_view::npos) break;
    if (best > from) fn(text.substr(from, best - from));
    ++found;
    from = best + specials[best_k].size();
    for (size_t k = 0; k < specials.size(); ++k)
      if (next[k] != std::string_view::npos && next[k] < from) next[k] = text.find(specials[k], from);
  }
  if (from < text.size()) fn(text.substr(from));
  return found;
}

// True when cutting text at position p would split an occurrence of a special token.
bool inside_special(std::string_view text, size_t p, const std::vector<std::string>& specials) {
  for (const auto& s : specials) {
    if (s.size() < 2) continue;
    size_t lo = p >= s.size() - 1 ? p - (s.size() - 1) : 0;
    size_t hi = std::min(text.size(), p + s.size() - 1);
    size_t at = text.substr(lo, hi - lo).find(s);
    if (at != std::string_view::npos) return true;
  }
  return false;
}

// Cut points for a large text: after a '\n' that is followed by an ASCII letter or digit. None of the
// known pre-tokenization patterns (GPT-2, cl100k, o200k, Llama-3) matches a piece across such a
// place (their newline-swallowing rules stop at letters and digits), so counting the chunks
// separately gives the same pieces as counting the whole text. Custom patterns are never cut.
constexpr size_t kChunkBytes = size_t{1} << 20;

std::vector<std::pair<size_t, size_t>> chunk_ranges(std::string_view text, const std::vector<std::string>& specials) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t start = 0;
  while (text.size() - start > 2 * kChunkBytes) {
    size_t p = start + kChunkBytes, cut = std::string_view::npos;
    while (p < text.size()) {
      const void* nl = std::memchr(text.data() + p, '\n', text.size() - p);
      if (!nl) break;
      size_t q = static_cast<const char*>(nl) - text.data() + 1;
      if (q < text.size() && std::isalnum(static_cast<unsigned char>(text[q])) && !inside_special(text, q, specials)) {
        cut = q;
        break;
      }
      p = q;
    }
    if (cut == std::string_view::npos) break;
    out.emplace_back(start, cut - start);
    start = cut;
  }
  out.emplace_back(start, text.size() - start);
  return out;
}

// ---- counting maps -----------------------------------------------------------------------------

// A fast 64-bit hash of short byte strings (8 bytes per step, murmur3's finalizer).
uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  uint64_t h = s.size() * kMul;
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ (v * 0xBF58476D1CE4E5B9ULL)) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ (v * 0xBF58476D1CE4E5B9ULL)) * kMul;
  }
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ULL;
  h ^= h >> 33;
  return h;
}

// Counts of distinct byte strings: open addressing; keys of up to 15 bytes live in the slot itself
// (almost all pieces), longer ones back to back in an arena.
class PieceCounter {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void add(std::string_view key, uint64_t hash, uint64_t n) {
    if (n == 0) return;
    if ((size_ + 1) * 2 > slots_.size()) grow();
    uint64_t a = 0, b = 0;
    const bool inline_key = key.size() <= kInline;
    if (inline_key) {
      char buf[16] = {};
      std::memcpy(buf, key.data(), key.size());
      buf[15] = static_cast<char>(key.size());
      std::memcpy(&a, buf, 8);
      std::memcpy(&b, buf + 8, 8);
    }
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.count == 0) {
        if (inline_key) {
          s = {hash, std::min(n, kMaxCount), a, b};
        } else {
          s = {hash, std::min(n, kMaxCount), arena_.size(), key.size() | kLongFlag};
          arena_.append(key);
        }
        ++size_;
        return;
      }
      if (s.hash != hash) continue;
      bool same = inline_key ? (s.a == a && s.b == b)
                             : (s.b == (key.size() | kLongFlag) &&
                                std::memcmp(arena_.data() + s.a, key.data(), key.size()) == 0);
      if (same) {
        s.count = saturating_add(s.count, n);
        return;
      }
    }
  }

  // Calls fn(key, hash, count) for every entry (in table order).
  template <typename Fn>
  void for_each(Fn&& fn) const {
    char buf[16];
    for (const Slot& s : slots_) {
      if (!s.count) continue;
      if (s.b & kLongFlag) {
        fn(std::string_view(arena_).substr(s.a, s.b & ~kLongFlag), s.hash, s.count);
      } else {
        std::memcpy(buf, &s.a, 8);
        std::memcpy(buf + 8, &s.b, 8);
        fn(std::string_view(buf, static_cast<unsigned char>(buf[15])), s.hash, s.count);
      }
    }
  }

  void clear() {
    std::vector<Slot>().swap(slots_);
    std::string().swap(arena_);
    size_ = 0;
  }
  void swap(PieceCounter& other) noexcept {
    slots_.swap(other.slots_);
    arena_.swap(other.arena_);
    std::swap(size_, other.size_);
  }

 private:
  static constexpr size_t kInline = 15;
  // In b of a long key (arena offset in a, length in b). An inline key's b has its length (< 16)
  // in the top byte, so the flag (top bit) is never set there.
  static constexpr uint64_t kLongFlag = uint64_t{1} << 63;
  struct Slot {
    uint64_t hash = 0;
    uint64_t count = 0;  // 0 = empty
    uint64_t a = 0, b = 0;
  };
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (!s.count) continue;
      size_t i = s.hash & mask;
      while (slots_[i].count) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0;
};

// The counts are split into shards by the top bits of the hash (the table uses the low bits), so
// that per-thread counts merge into the global ones one shard per task.
constexpr size_t kShards = 64;
size_t shard_of(uint64_t hash) { return hash >> 58; }
using ShardedCounts = std::array<PieceCounter, kShards>;

// ---- pair table (open addressing, pair key -> dense pair index) --------------------------------

class PairIndex {
 public:
  PairIndex() { rehash(1 << 16); }

  // The index of key, or -1.
  int64_t find(uint64_t key) const {
    for (size_t s = slot_of(key);; s = (s + 1) & mask_) {
      if (idx_[s] == kEmpty) return -1;
      if (keys_[s] == key) return idx_[s];
    }
  }
  // The index of key, adding it as next_index when absent (inserted reports which).
  uint32_t find_or_add(uint64_t key, uint32_t next_index, bool& inserted) {
    if ((size_ + 1) * 2 > keys_.size()) rehash(keys_.size() * 2);
    for (size_t s = slot_of(key);; s = (s + 1) & mask_) {
      if (idx_[s] == kEmpty) {
        keys_[s] = key;
        idx_[s] = next_index;
        ++size_;
        inserted = true;
        return next_index;
      }
      if (keys_[s] == key) {
        inserted = false;
        return idx_[s];
      }
    }
  }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  size_t slot_of(uint64_t key) const { return ((key + 1) * 0x9E3779B97F4A7C15ULL) >> shift_; }
  void rehash(size_t capacity) {
    std::vector<uint64_t> old_keys = std::move(keys_);
    std::vector<uint32_t> old_idx = std::move(idx_);
    keys_.assign(capacity, 0);
    idx_.assign(capacity, kEmpty);
    mask_ = capacity - 1;
    shift_ = 64 - __builtin_ctzll(capacity);
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_idx[i] == kEmpty) continue;
      size_t s = slot_of(old_keys[i]);
      while (idx_[s] != kEmpty) s = (s + 1) & mask_;
      keys_[s] = old_keys[i];
      idx_[s] = old_idx[i];
    }
  }
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> idx_;
  size_t size_ = 0, mask_ = 0;
  int shift_ = 0;
};

uint64_t pair_key(uint32_t a, uint32_t b) { return (uint64_t{a} << 32) | b; }

// Decodes the code point of one UTF-8 character (used to order the byte-level alphabet).
uint32_t first_code_point(const std::string& s) {
  auto u = reinterpret_cast<const unsigned char*>(s.data());
  if (u[0] < 0x80) return u[0];
  if ((u[0] >> 5) == 6) return ((u[0] & 0x1F) << 6) | (u[1] & 0x3F);
  return ((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

// ---- the trainer -------------------------------------------------------------------------------

struct BpeTrainer::Impl {
  BpeTrainerOptions options;
  std::unique_ptr<PreTokenizer> pretokenizer;
  ShardedCounts words;
  std::array<std::mutex, kShards> shard_mutex;
  std::mutex stats_mutex;
  BpeTrainerStats stats;
  bool trained = false;
  bool chunkable = false;  // large texts may be cut at line breaks (a known pattern)

  // Counts the pieces of one (valid UTF-8) text into a per-thread sharded map.
  void count_text(std::string_view text, ShardedCounts& local, std::vector<std::string_view>& buf,
                  uint64_t& pieces, uint64_t& specials, uint64_t& long_pieces) {
    const size_t max_piece = options.max_piece_bytes ? options.max_piece_bytes : SIZE_MAX;
    specials += cut_specials(text, options.special_tokens, [&](std::string_view segment) {
      buf.clear();
      pretokenizer->split(segment, buf);
      for (std::string_view piece : buf) {
        if (piece.empty()) continue;
        if (piece.size() > max_piece) {
          ++long_pieces;
          continue;
        }
        uint64_t h = hash_bytes(piece);
        local[shard_of(h)].add(piece, h, 1);
        ++pieces;
      }
    });
  }

  // Sums per-thread maps into the global map, one shard per task.
  void merge_locals(std::vector<ShardedCounts>& locals) {
    size_t entries = 0;
    for (auto& local : locals)
      for (auto& shard : local) entries += shard.size();
    // Small merges (one short text) are not worth starting threads for.
    int threads = entries < 50000 ? 1 : options.threads;
    parallel_for(kShards, threads, [&](size_t s) {
      std::lock_guard<std::mutex> lock(shard_mutex[s]);
      for (auto& local : locals) {
        if (words[s].empty()) {
          words[s].swap(local[s]);
          continue;
        }
        local[s].for_each([&](std::string_view key, uint64_t h, uint64_t n) { words[s].add(key, h, n); });
        local[s].clear();
      }
    });
  }
};

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : impl_(std::make_unique<Impl>()) {
  auto& o = impl_->options;
  o = std::move(options);
  if (o.pattern.empty()) o.pattern = kDefaultBpeTrainPattern;
  if (o.threads <= 0) o.threads = default_threads();
  std::unordered_set<std::string> seen;
  for (const auto& s : o.special_tokens) {
    if (s.empty()) fail("special tokens must not be empty");
    if (!is_valid_utf8(s)) fail("special token \"", printable(s), "\" is not valid UTF-8");
    if (!seen.insert(s).second) fail("special token \"", s, "\" is given twice");
    for (int b = 0; b < 256; ++b)
      if (s == byte_level_char(static_cast<unsigned char>(b)))
        fail("special token \"", s, "\" has the same text as the token of byte ", b,
             " in the byte-level vocabulary; choose a longer name such as \"<|", s, "|>\"");
  }
  size_t floor = 256 + o.special_tokens.size();
  if (o.vocab_size < floor)
    fail("vocab size ", o.vocab_size, " is too small: a byte-level BPE vocabulary holds the 256 bytes",
         o.special_tokens.empty() ? "" : " and the special tokens", ", so it needs at least ", floor);
  if (o.vocab_size > (size_t{1} << 31)) fail("vocab size ", o.vocab_size, " is too large (at most 2^31 ids)");
  impl_->pretokenizer = make_pretokenizer(o.pattern);
  impl_->chunkable = known_pattern_kind(o.pattern) != PatternKind::kOther;
}

BpeTrainer::~BpeTrainer() = default;

const BpeTrainerStats& BpeTrainer::stats() const { return impl_->stats; }
const BpeTrainerOptions& BpeTrainer::options() const { return impl_->options; }

void BpeTrainer::add_text(std::string_view text) { add_texts({text}); }

void BpeTrainer::add_word(std::string_view piece, uint64_t count) {
  if (piece.empty() || count == 0) return;
  auto t0 = Clock::now();
  uint64_t h = hash_bytes(piece);
  size_t s = shard_of(h);
  {
    std::lock_guard<std::mutex> lock(impl_->shard_mutex[s]);
    impl_->words[s].add(piece, h, count);
  }
  std::lock_guard<std::mutex> lock(impl_->stats_mutex);
  impl_->stats.pieces = saturating_add(impl_->stats.pieces, count);
  impl_->stats.count_seconds += seconds_since(t0);
}

void BpeTrainer::add_texts(const std::vector<std::string_view>& texts) {
  auto t0 = Clock::now();
  Impl& im = *impl_;
  if (im.trained) fail("BpeTrainer: texts added after train()");
  const auto& specials = im.options.special_tokens;

  // Large texts are validated (and repaired) here and cut into chunks; small ones go whole to a
  // worker, which validates them itself.
  struct Item {
    size_t text;
    std::string_view view;
    bool checked;  // already valid UTF-8
  };
  std::vector<Item> items;
  std::deque<std::string> repaired;
  std::vector<uint8_t> invalid_big(texts.size(), 0);
  uint64_t bytes = 0;
  for (size_t t = 0; t < texts.size(); ++t) {
    std::string_view text = texts[t];
    bytes += text.size();
    if (text.size() <= 2 * kChunkBytes) {
      items.push_back({t, text, false});
      continue;
    }
    if (!is_valid_utf8(text)) {
      repaired.push_back(repair_utf8(text));
      text = repaired.back();
      invalid_big[t] = 1;
    }
    if (!im.chunkable) {
      items.push_back({t, text, true});
      continue;
    }
    for (auto [off, len] : chunk_ranges(text, specials)) items.push_back({t, text.substr(off, len), true});
  }

  size_t slots = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(im.options.threads), items.size()));
  std::vector<ShardedCounts> locals(slots);
  std::vector<uint64_t> pieces(slots, 0), special_hits(slots, 0), invalid_small(slots, 0), long_pieces(slots, 0);
  std::atomic<size_t> next{0};
  parallel_for(slots, static_cast<int>(slots), [&](size_t slot) {
    std::vector<std::string_view> buf;
    std::string fixed;
    // Tallies in registers, written once: neighbouring slots share cache lines.
    uint64_t n_pieces = 0, n_special = 0, n_invalid = 0, n_long = 0;
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < items.size();) {
      std::string_view view = items[i].view;
      if (!items[i].checked && !is_valid_utf8(view)) {
        fixed = repair_utf8(view);
        view = fixed;
        ++n_invalid;
      }
      im.count_text(view, locals[slot], buf, n_pieces, n_special, n_long);
    }
    pieces[slot] = n_pieces;
    special_hits[slot] = n_special;
    invalid_small[slot] = n_invalid;
    long_pieces[slot] = n_long;
  });
  im.merge_locals(locals);

  std::lock_guard<std::mutex> lock(im.stats_mutex);
  auto& st = im.stats;
  st.texts += texts.size();
  st.bytes += bytes;
  for (size_t s = 0; s < slots; ++s) {
    st.pieces += pieces[s];
    st.special_occurrences += special_hits[s];
    st.long_pieces += long_pieces[s];
    st.invalid_utf8_texts += invalid_small[s];
  }
  for (uint8_t v : invalid_big) st.invalid_utf8_texts += v;
  st.count_seconds += seconds_since(t0);
}

BpeModel BpeTrainer::train() {
  auto t0 = Clock::now();
  Impl& im = *impl_;
  if (im.trained) fail("BpeTrainer::train() may be called only once");
  im.trained = true;
  const auto& o = im.options;
  const size_t k = o.special_tokens.size();

  // 1. The distinct words, sorted by bytes: word order (and so everything after) does not depend
  //    on how or in what order the texts were counted.
  std::vector<std::pair<std::string, uint64_t>> word_list;
  {
    size_t n = 0;
    for (auto& m : im.words) n += m.size();
    word_list.reserve(n);
    for (size_t s = 0; s < kShards; ++s) {
      std::lock_guard<std::mutex> lock(im.shard_mutex[s]);
      im.words[s].for_each([&](std::string_view key, uint64_t, uint64_t c) { word_list.emplace_back(key, c); });
      im.words[s].clear();
    }
    std::sort(word_list.begin(), word_list.end());
  }

  // 2. Initial vocabulary.
  BpeModel model;
  model.pattern = o.pattern;
  if (!o.special_tokens_last) {
    for (const auto& s : o.special_tokens) {
      model.special_ids.push_back(static_cast<uint32_t>(model.tokens.size()));
      model.tokens.push_back(s);
    }
  }
  std::array<uint32_t, 256> byte_id{};
  {
    std::vector<int> order(256);
    for (int b = 0; b < 256; ++b) order[b] = b;
    std::sort(order.begin(), order.end(), [](int x, int y) {
      return first_code_point(byte_level_char(static_cast<unsigned char>(x))) <
             first_code_point(byte_level_char(static_cast<unsigned char>(y)));
    });
    for (int b : order) {
      byte_id[b] = static_cast<uint32_t>(model.tokens.size());
      model.tokens.emplace_back(1, static_cast<char>(b));
    }
  }
  std::unordered_map<std::string, uint32_t> token_id;  // bytes -> id of ordinary tokens
  for (int b = 0; b < 256; ++b) token_id.emplace(std::string(1, static_cast<char>(b)), byte_id[b]);
  std::unordered_set<std::string> special_text(o.special_tokens.begin(), o.special_tokens.end());

  // 3. Words as symbol sequences (flat), and the initial pair counts.
  const size_t n_words = word_list.size();
  if (n_words > 0xFFFFFFF0u) fail("too many distinct words to train on (more than 2^32)");
  std::vector<uint32_t> sym;
  std::vector<size_t> wbegin(n_words);
  std::vector<uint32_t> wlen(n_words);
  std::vector<int64_t> wcount(n_words);
  {
    size_t total = 0;
    for (auto& w : word_list) total += w.first.size();
    sym.reserve(total);
  }
  uint64_t weighted = 0;  // sum of count * (len - 1): bounds every pair count
  for (size_t w = 0; w < n_words; ++w) {
    const std::string& bytes = word_list[w].first;
    if (bytes.size() > 0xFFFFFFFFu) fail("a pre-tokenized piece is longer than 4 GiB");
    wbegin[w] = sym.size();
    wlen[w] = static_cast<uint32_t>(bytes.size());
    wcount[w] = static_cast<int64_t>(word_list[w].second);
    for (unsigned char c : bytes) sym.push_back(byte_id[c]);
    uint64_t add = word_list[w].second;
    if (bytes.size() > 1 && add > (kMaxCount - weighted) / (bytes.size() - 1))
      fail("word counts are too large to train on (their total exceeds 2^62)");
    if (bytes.size() > 1) weighted += add * (bytes.size() - 1);
  }
  std::vector<std::pair<std::string, uint64_t>>().swap(word_list);

  PairIndex index;
  std::vector<uint64_t> pkey;
  std::vector<int64_t> pcount;
  std::vector<std::vector<uint32_t>> pwhere;
  std::vector<uint8_t> pstate;  // 0 open, 1 merged (recorded), 2 blocked
  std::vector<uint32_t> pstamp;
  enum : uint8_t { kOpen = 0, kMerged = 1, kBlocked = 2 };
  auto pair_of = [&](uint32_t a, uint32_t b) -> uint32_t {
    bool inserted = false;
    uint32_t next = static_cast<uint32_t>(pkey.size());
    uint32_t p = index.find_or_add(pair_key(a, b), next, inserted);
    if (inserted) {
      if (next == 0xFFFFFFFEu) fail("too many distinct symbol pairs to train on");
      pkey.push_back(pair_key(a, b));
      pcount.push_back(0);
      pwhere.emplace_back();
      pstate.push_back(kOpen);
      pstamp.push_back(0);
    }
    return p;
  };
  for (size_t w = 0; w < n_words; ++w) {
    const uint32_t* s = &sym[wbegin[w]];
    for (uint32_t i = 0; i + 1 < wlen[w]; ++i) {
      uint32_t p = pair_of(s[i], s[i + 1]);
      pcount[p] += wcount[w];
      auto& where = pwhere[p];
      if (where.empty() || where.back() != w) where.push_back(static_cast<uint32_t>(w));
    }
  }

  // 4. The heap: highest count first; ties to the lexicographically smallest (left, right) bytes,
  //    or to the smallest (left id, right id).
  struct Entry {
    int64_t count;
    uint32_t pair;
  };
  auto& tokens = model.tokens;
  const bool ties_by_ids = o.tie_break == BpeTieBreak::kSmallestIds;
  auto lower = [&](const Entry& x, const Entry& y) {  // x has lower priority than y
    if (x.count != y.count) return x.count < y.count;
    uint64_t kx = pkey[x.pair], ky = pkey[y.pair];
    if (ties_by_ids) return kx > ky;
    int c = tokens[kx >> 32].compare(tokens[ky >> 32]);
    if (c == 0) c = tokens[kx & 0xFFFFFFFFu].compare(tokens[ky & 0xFFFFFFFFu]);
    return c > 0;
  };
  std::vector<Entry> heap;
  heap.reserve(pkey.size());
  for (uint32_t p = 0; p < pkey.size(); ++p)
    if (pcount[p] > 0) heap.push_back({pcount[p], p});
  std::make_heap(heap.begin(), heap.end(), lower);

  // 5. Merge until the vocabulary is full.
  const size_t learn_target = o.vocab_size - 256 - k;
  size_t learned = 0;
  uint64_t duplicates = 0;
  int64_t stop_count = -1;  // the count of the best pair when min_frequency stopped training
  uint32_t stamp = 0;
  std::vector<uint32_t> touched;
  std::optional<Progress> progress;
  if (o.show_progress) progress.emplace("BPE merges", learn_target, "tokens");

  auto dec = [&](uint32_t a, uint32_t b, int64_t c) {
    int64_t p = index.find(pair_key(a, b));
    if (p >= 0) pcount[p] -= c;
  };
  auto inc = [&](uint32_t a, uint32_t b, int64_t c, uint32_t w) {
    uint32_t p = pair_of(a, b);
    pcount[p] += c;
    auto& where = pwhere[p];
    if (where.empty() || where.back() != w) where.push_back(w);
    if (pstamp[p] != stamp) {
      pstamp[p] = stamp;
      touched.push_back(p);
    }
  };

  while (learned < learn_target && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower);
    Entry top = heap.back();
    heap.pop_back();
    const uint32_t p = top.pair;
    if (pstate[p] == kBlocked) continue;
    if (pcount[p] != top.count) {  // stale: re-queue with the current count if it went down
      if (pcount[p] > 0 && pcount[p] < top.count) {
        heap.push_back({pcount[p], p});
        std::push_heap(heap.begin(), heap.end(), lower);
      }
      continue;
    }
    if (top.count <= 0) continue;
    if (static_cast<uint64_t>(top.count) < o.min_frequency) {
      stop_count = top.count;
      break;
    }
    const uint32_t a = static_cast<uint32_t>(pkey[p] >> 32), b = static_cast<uint32_t>(pkey[p] & 0xFFFFFFFFu);
    std::string merged = tokens[a] + tokens[b];
    if ((o.max_token_bytes > 0 && merged.size() > o.max_token_bytes) ||
        (!special_text.empty() && special_text.count(byte_level_encode(merged)))) {
      pstate[p] = kBlocked;
      std::vector<uint32_t>().swap(pwhere[p]);
      continue;
    }
    uint32_t c;
    auto it = token_id.find(merged);
    if (it != token_id.end()) {
      c = it->second;
      if (pstate[p] == kOpen) ++duplicates;
    } else {
      c = static_cast<uint32_t>(tokens.size());
      token_id.emplace(merged, c);
      tokens.push_back(std::move(merged));
      ++learned;
      if (progress) progress->add(1);
    }
    if (pstate[p] == kOpen) {
      model.merges.emplace_back(a, b);
      pstate[p] = kMerged;
    }

    // Apply the merge to every word that holds the pair, updating neighbouring pair counts.
    std::vector<uint32_t> where = std::move(pwhere[p]);
    pwhere[p] = {};
    std::sort(where.begin(), where.end());
    where.erase(std::unique(where.begin(), where.end()), where.end());
    ++stamp;
    touched.clear();
    for (uint32_t w : where) {
      uint32_t* s = &sym[wbegin[w]];
      const uint32_t len = wlen[w];
      const int64_t cnt = wcount[w];
      uint32_t i = 0, j = 0;
      while (i < len) {
        if (i + 1 < len && s[i] == a && s[i + 1] == b) {
          if (j > 0) {
            dec(s[j - 1], a, cnt);
            inc(s[j - 1], c, cnt, w);
          }
          if (i + 2 < len) {
            dec(b, s[i + 2], cnt);
            inc(c, s[i + 2], cnt, w);
          }
          pcount[p] -= cnt;
          s[j++] = c;
          i += 2;
        } else {
          s[j++] = s[i++];
        }
      }
      wlen[w] = j;
    }
    for (uint32_t q : touched) {
      if (pstate[q] != kBlocked && pcount[q] > 0) {
        heap.push_back({pcount[q], q});
        std::push_heap(heap.begin(), heap.end(), lower);
      }
    }
  }
  if (progress) progress->finish();

  if (o.special_tokens_last) {
    for (const auto& s : o.special_tokens) {
      model.special_ids.push_back(static_cast<uint32_t>(tokens.size()));
      tokens.push_back(s);
    }
  }
  if (learned < learn_target) {
    if (stop_count >= 0)
      log_warn("BPE training stopped at ", tokens.size(), " tokens (asked for ", o.vocab_size,
               "): the most frequent remaining pair occurs ", stop_count, " times, below --min-frequency ",
               o.min_frequency, ". Add text or lower the minimum frequency for a larger vocabulary.");
    else
      log_warn("BPE training stopped at ", tokens.size(), " tokens (asked for ", o.vocab_size,
               "): no pair of tokens is left to merge. Add text for a larger vocabulary.");
  }

  std::lock_guard<std::mutex> lock(im.stats_mutex);
  im.stats.distinct_words = n_words;
  im.stats.merges = model.merges.size();
  im.stats.duplicate_merges = duplicates;
  im.stats.vocab_size = tokens.size();
  im.stats.train_seconds = seconds_since(t0);
  return model;
}

}  // namespace agpt::text
