#include "curate/decontam.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "corpus/lines.h"
#include "curate/hash.h"
#include "curate/minhash.h"
#include "text/unicode_class.h"

namespace agpt::curate {
namespace {

// The byte classes of normalize_text (minhash.cpp): 1 whitespace (separates), 2 ASCII punctuation
// (deleted), 0 kept, 3 a lead byte of a multi-byte UTF-8 character that may be CJK (E1..EF, F0..F3:
// U+1000 and up), looked at by cjk_class. Kept in step with normalize_text by the tests
// (NormalizedWordsMatchNormalizeText) for text without such characters.
struct ByteClass {
  uint8_t cls[256] = {};
  ByteClass() {
    for (char c : std::string_view(" \t\n\r\v\f")) cls[static_cast<uint8_t>(c)] = 1;
    for (char c : std::string_view("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")) cls[static_cast<uint8_t>(c)] = 2;
    for (int c = 0xE1; c <= 0xF3; ++c) cls[c] = 3;
  }
};
const ByteClass kBytes;

// What the word splitter does with a code point of U+1000 and up.
enum class Cjk : uint8_t {
  kOther,      // kept in the word as it is (as before: any non-ASCII character)
  kWord,       // a word of its own: Han ideograph, kana, Hangul
  kSeparator,  // ends the word and is deleted: ideographic space, CJK and half-width punctuation
  kFullWidth,  // U+FF01..FF5E: taken as the ASCII character U+0021..007E
};

Cjk cjk_class(uint32_t cp) {
  if (cp < 0x1100) return Cjk::kOther;
  if (cp <= 0x11FF) return Cjk::kWord;  // Hangul Jamo
  if (cp < 0x3000) return Cjk::kOther;
  if (cp <= 0x303F) {                   // CJK symbols and punctuation
    if ((cp >= 0x3005 && cp <= 0x3007) ||  // 々 〆 〇
        (cp >= 0x3021 && cp <= 0x3029) ||  // Hangzhou numerals
        (cp >= 0x3031 && cp <= 0x3035) ||  // kana repeat marks
        cp == 0x303B || cp == 0x303C)      // 〻 〼
      return Cjk::kWord;
    return Cjk::kSeparator;
  }
  if (cp <= 0x30FF) {  // Hiragana, Katakana
    if (cp == 0x3040 || (cp >= 0x3097 && cp <= 0x3098)) return Cjk::kOther;  // unassigned
    if (cp == 0x30A0 || cp == 0x30FB) return Cjk::kSeparator;             // ゠ ・
    return Cjk::kWord;
  }
  if (cp >= 0x3131 && cp <= 0x318E) return Cjk::kWord;  // Hangul compatibility Jamo
  if (cp >= 0x31F0 && cp <= 0x31FF) return Cjk::kWord;  // Katakana phonetic extensions
  if (cp >= 0x3400 && cp <= 0x4DBF) return Cjk::kWord;  // CJK extension A
  if (cp >= 0x4E00 && cp <= 0x9FFF) return Cjk::kWord;  // CJK unified ideographs
  if (cp >= 0xAC00 && cp <= 0xD7A3) return Cjk::kWord;  // Hangul syllables
  if (cp >= 0xF900 && cp <= 0xFAFF) return Cjk::kWord;  // CJK compatibility ideographs
  if (cp >= 0xFF01 && cp <= 0xFF5E) return Cjk::kFullWidth;
  if (cp >= 0xFF5F && cp <= 0xFF65) return Cjk::kSeparator;  // half-width brackets and punctuation
  if (cp >= 0xFF66 && cp <= 0xFF9F) return Cjk::kWord;       // half-width Katakana
  if (cp >= 0xFFA0 && cp <= 0xFFDC) return Cjk::kWord;       // half-width Hangul
  if (cp >= 0x20000 && cp <= 0x3FFFF) return Cjk::kWord;     // supplementary ideographic planes
  return Cjk::kOther;
}

}  // namespace

void normalized_words(std::string_view text, std::vector<NormWord>& out) {
  out.clear();
  if (text.size() > UINT32_MAX)
    fail("decontaminate: a document of ", text.size(), " bytes is over the 4 GiB limit of word offsets");
  thread_local std::string word;
  word.clear();
  size_t begin = 0, end = 0;
  auto close = [&] {
    if (!word.empty()) out.push_back({static_cast<uint32_t>(begin), static_cast<uint32_t>(end), xxh64(word, 0)});
    word.clear();
  };
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  bool in_token = false;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<uint8_t>(text[i]);
    uint8_t k = kBytes.cls[c];
    if (k == 3) {
      uint32_t cp;
      const size_t len = text::decode_utf8(p + i, text.size() - i, cp);
      const Cjk ck = cp == text::kInvalidCodePoint ? Cjk::kOther : cjk_class(cp);
      if (ck == Cjk::kWord || ck == Cjk::kSeparator) {
        if (in_token) close();
        in_token = false;
        if (ck == Cjk::kWord)
          out.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(i + len), xxh64(text.substr(i, len), 0)});
        i += len - 1;
        continue;
      }
      if (ck == Cjk::kFullWidth) {
        // As its ASCII character, which is never whitespace: punctuation (deleted) or kept.
        if (!in_token) {
          in_token = true;
          begin = i;
        }
        end = i + len;
        i += len - 1;
        c = static_cast<uint8_t>(cp - 0xFEE0);
        if (kBytes.cls[c] == 2) continue;
        word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : static_cast<char>(c));
        continue;
      }
      k = 0;  // any other character: its bytes are kept one by one, as before
    }
    if (k == 1) {
      if (in_token) close();
      in_token = false;
      continue;
    }
    if (!in_token) {
      in_token = true;
      begin = i;
    }
    end = i + 1;
    if (k == 2) continue;
    word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : static_cast<char>(c));
  }
  if (in_token) close();
}

uint64_t ngram_hash(const NormWord* words, size_t n) {
  uint64_t h = 0x13198A2E03707344ull ^ static_cast<uint64_t>(n);
  for (size_t k = 0; k < n; ++k) h = mix64(h ^ words[k].hash) + k;
  return h;
}

BenchmarkIndex::BenchmarkIndex(const DecontamOptions& opt) : opt_(opt) {
  if (opt.ngram < 1 || opt.ngram > 1000) fail("decontaminate: --ngram must be within 1..1000 (got ", opt.ngram, ")");
  if (opt.min_words < 1) fail("decontaminate: --min-words must be at least 1 (got ", opt.min_words, ")");
  if (opt.fields.empty()) fail("decontaminate: --fields must name at least one field");
}

namespace {

// Appends the text of a field value: strings as they are, numbers and booleans as their JSON,
// arrays and objects (e.g. ARC's {"text": [...], "label": [...]}) element by element.
void collect_text(const nlohmann::json& v, std::string& out) {
  if (v.is_string()) {
    out += v.get_ref<const std::string&>();
    out += ' ';
  } else if (v.is_number() || v.is_boolean()) {
    out += v.dump();
    out += ' ';
  } else if (v.is_array() || v.is_object()) {
    for (const auto& e : v) collect_text(e, out);
  }
}

}  // namespace

void BenchmarkIndex::add_item(uint32_t benchmark, std::string id, std::string_view text) {
  std::vector<NormWord> words;
  normalized_words(text, words);
  if (benchmark >= counts_.size()) {
    counts_.resize(benchmark + 1);
    if (files_.size() < counts_.size()) files_.resize(counts_.size(), "(given)");
  }
  ++counts_[benchmark].items;
  if (words.size() < static_cast<size_t>(opt_.min_words)) {
    ++counts_[benchmark].too_short;
    return;
  }
  const auto item = static_cast<uint32_t>(items_.size());
  items_.push_back({benchmark, std::move(id), static_cast<uint32_t>(words.size())});
  ++counts_[benchmark].indexed;
  const size_t n = std::min(words.size(), static_cast<size_t>(opt_.ngram));
  if (n < static_cast<size_t>(opt_.ngram) &&
      std::find(short_lengths_.begin(), short_lengths_.end(), n) == short_lengths_.end()) {
    short_lengths_.push_back(static_cast<uint32_t>(n));
    std::sort(short_lengths_.begin(), short_lengths_.end());
  }
  for (size_t s = 0; s + n <= words.size(); ++s) {
    const uint64_t h = ngram_hash(&words[s], n);
    auto [it, inserted] = slot_of_.emplace(h, static_cast<uint32_t>(slot_items_.size()));
    if (inserted) slot_items_.emplace_back();
    auto& list = slot_items_[it->second];
    if (list.empty() || list.back() != item) list.push_back(item);
  }
}

void BenchmarkIndex::add_file(const std::string& path) {
  const auto b = static_cast<uint32_t>(files_.size());
  files_.push_back(path);
  counts_.resize(files_.size());
  corpus::LineReader lines(path);
  std::string_view line;
  std::string text;
  while (lines.next(line)) {
    ++counts_[b].lines;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = path + ":" + std::to_string(lines.line_number());
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": a benchmark line must be a JSON object (", e.what(), ")");
    }
    if (!j.is_object()) fail(where, ": a benchmark line must be a JSON object");
    text.clear();
    bool any = false;
    for (const auto& f : opt_.fields) {
      auto it = j.find(f);
      if (it == j.end()) continue;
      any = true;
      collect_text(*it, text);
    }
    if (!any) {
      ++counts_[b].items;
      ++counts_[b].without_fields;
      continue;
    }
    std::string id = where;
    if (auto it = j.find(opt_.id_field); it != j.end() && !it->is_null())
      id = it->is_string() ? it->get<std::string>() : it->dump();
    add_item(b, std::move(id), text);
  }
  if (counts_[b].items > 0 && counts_[b].without_fields == counts_[b].items) {
    std::string fields;
    for (const auto& f : opt_.fields) fields += (fields.empty() ? "" : ",") + f;
    fail(path, ": no item has any of the fields ", fields, ": name the item's text fields with --fields");
  }
}

void BenchmarkIndex::find(const std::vector<NormWord>& words, std::vector<Hit>& out) const {
  out.clear();
  if (slot_of_.empty()) return;
  auto scan = [&](size_t n) {
    if (words.size() < n) return;
    for (size_t s = 0; s + n <= words.size(); ++s) {
      auto it = slot_of_.find(ngram_hash(&words[s], n));
      if (it != slot_of_.end()) out.push_back({it->second, static_cast<uint32_t>(s), static_cast<uint32_t>(n)});
    }
  };
  for (uint32_t n : short_lengths_) scan(n);
  scan(static_cast<size_t>(opt_.ngram));
}

std::pair<const uint32_t*, const uint32_t*> BenchmarkIndex::items_of(uint32_t slot) const {
  const auto& v = slot_items_[slot];
  return {v.data(), v.data() + v.size()};
}

std::vector<std::pair<uint64_t, uint64_t>> merge_ranges(std::vector<std::pair<uint64_t, uint64_t>> r) {
  std::sort(r.begin(), r.end());
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const auto& x : r) {
    if (!out.empty() && x.first <= out.back().second) out.back().second = std::max(out.back().second, x.second);
    else out.push_back(x);
  }
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> pieces_after_cut(std::string_view text,
                                                            const std::vector<std::pair<uint64_t, uint64_t>>& hits,
                                                            uint32_t margin) {
  const uint64_t size = text.size();
  auto is_cont = [&](uint64_t i) { return i < size && (static_cast<uint8_t>(text[i]) & 0xC0) == 0x80; };
  std::vector<std::pair<uint64_t, uint64_t>> grown;
  for (auto [b, e] : hits) {
    b = b > margin ? b - margin : 0;
    e = std::min(size, e + margin);
    while (b > 0 && is_cont(b)) --b;  // a character is removed whole
    while (is_cont(e)) ++e;
    grown.emplace_back(b, e);
  }
  grown = merge_ranges(std::move(grown));
  std::vector<std::pair<uint64_t, uint64_t>> pieces;
  uint64_t pos = 0;
  for (auto [b, e] : grown) {
    if (b > pos) pieces.emplace_back(pos, b);
    pos = std::max(pos, e);
  }
  if (pos < size) pieces.emplace_back(pos, size);
  return pieces;
}

std::string DecontamReport::to_json() const {
  nlohmann::ordered_json j;
  j["mode"] = mode;
  j["ngram"] = ngram;
  j["documents_in"] = documents_in;
  j["bytes_in"] = bytes_in;
  j["documents_clean"] = documents_clean;
  j["documents_contaminated"] = documents_contaminated;
  j["documents_cut"] = documents_cut;
  j["fragments_written"] = fragments_written;
  j["fragments_dropped_short"] = fragments_dropped_short;
  j["documents_removed_by_reason"] = removed_by_reason;
  j["lines_out"] = documents_out;
  j["bytes_out"] = bytes_out;
  j["bytes_removed"] = bytes_in - bytes_out;
  j["ngrams_indexed"] = ngrams_indexed;
  j["ngrams_ignored_frequent"] = ngrams_ignored_frequent;
  nlohmann::ordered_json b = nlohmann::ordered_json::array();
  for (size_t i = 0; i < benchmark_files.size(); ++i) {
    const auto& c = benchmark_counts[i];
    b.push_back({{"file", benchmark_files[i]},
                 {"items", c.items},
                 {"items_indexed", c.indexed},
                 {"items_too_short", c.too_short},
                 {"items_without_fields", c.without_fields},
                 {"items_contaminating", benchmark_items_contaminating[i]},
                 {"documents_contaminated", benchmark_documents[i]}});
  }
  j["benchmarks"] = b;
  nlohmann::ordered_json it = nlohmann::ordered_json::array();
  for (const auto& x : items) it.push_back({{"benchmark", x.benchmark}, {"id", x.id}, {"documents", x.documents}});
  j["items"] = it;
  nlohmann::ordered_json rd;
  rd["files"] = read.files;
  rd["lines"] = read.lines;
  rd["skipped"] = read.skipped;
  rd["skipped_by_reason"] = read.skipped_by_reason;
  j["read"] = rd;
  j["seconds"] = seconds;
  return j.dump(2) + "\n";
}

std::string DecontamReport::table() const {
  std::string out;
  char line[512];
  for (size_t i = 0; i < benchmark_files.size(); ++i) {
    const auto& c = benchmark_counts[i];
    std::snprintf(line, sizeof line, "  benchmark %s: %llu items (%llu indexed, %llu too short), %llu contaminating, "
                  "%llu documents hit\n", benchmark_files[i].c_str(), static_cast<unsigned long long>(c.items),
                  static_cast<unsigned long long>(c.indexed), static_cast<unsigned long long>(c.too_short),
                  static_cast<unsigned long long>(benchmark_items_contaminating[i]),
                  static_cast<unsigned long long>(benchmark_documents[i]));
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-50s %14s\n", "", "documents");
  out += line;
  auto row = [&](const std::string& name, uint64_t v) {
    std::snprintf(line, sizeof line, "  %-50s %14llu\n", name.c_str(), static_cast<unsigned long long>(v));
    out += line;
  };
  row("read", documents_in);
  row("clean (written unchanged)", documents_clean);
  row("contaminated", documents_contaminated);
  if (documents_cut) row("  cut into fragments", documents_cut);
  for (const auto& [r, n] : removed_by_reason) row("  removed: " + r, n);
  if (fragments_written || fragments_dropped_short) {
    row("fragments written", fragments_written);
    row("fragments dropped (short)", fragments_dropped_short);
  }
  if (files_resumed > 0) row("resumed: input files done by the interrupted run", files_resumed);
  std::snprintf(line, sizeof line, "  bytes: %llu in, %llu out; %llu n-grams indexed, %llu ignored as frequent\n",
                static_cast<unsigned long long>(bytes_in), static_cast<unsigned long long>(bytes_out),
                static_cast<unsigned long long>(ngrams_indexed), static_cast<unsigned long long>(ngrams_ignored_frequent));
  out += line;
  return out;
}

}  // namespace agpt::curate
