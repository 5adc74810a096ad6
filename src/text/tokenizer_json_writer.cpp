#include "text/tokenizer_json_writer.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/file.h"
#include "text/byte_level.h"

namespace agpt::text {
namespace {

using json = nlohmann::ordered_json;

json byte_level_settings(const char* type, bool add_prefix_space, bool trim_offsets, bool use_regex) {
  json j;
  j["type"] = type;
  j["add_prefix_space"] = add_prefix_space;
  j["trim_offsets"] = trim_offsets;
  j["use_regex"] = use_regex;
  return j;
}

// Appends key -> value to an ordered object without the linear duplicate search of
// ordered_map::emplace (keys are known to be unique here); keeps writing a 200k vocab fast.
void append_unique(json& object, std::string key, json value) {
  auto& map = object.get_ref<json::object_t&>();
  static_cast<json::object_t::Container&>(map).emplace_back(std::move(key), std::move(value));
}

}  // namespace

std::string to_tokenizer_json(const BpeModel& model, const TokenizerJsonOptions& options) {
  const size_t n = model.tokens.size();
  if (n > (size_t{1} << 31)) fail("tokenizer has too many tokens (", n, ")");
  std::vector<uint8_t> special(n, 0);
  for (uint32_t id : model.special_ids) {
    if (id >= n) fail("special token id ", id, " is outside the vocabulary (", n, " tokens)");
    if (special[id]) fail("special token id ", id, " is listed twice");
    special[id] = 1;
  }

  // Vocabulary keys: byte-level text for ordinary tokens, the text itself for special tokens.
  std::vector<std::string> keys(n);
  std::unordered_map<std::string, uint32_t> key_id;
  key_id.reserve(n * 2);
  for (size_t id = 0; id < n; ++id) {
    const std::string& t = model.tokens[id];
    if (t.empty()) fail("token ", id, " is empty");
    keys[id] = special[id] ? t : byte_level_encode(t);
    auto [it, inserted] = key_id.emplace(keys[id], static_cast<uint32_t>(id));
    if (!inserted)
      fail("tokens ", it->second, " and ", id, " have the same text \"", keys[id],
           "\" in tokenizer.json; a vocabulary key must be unique");
  }

  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  json added = json::array();
  for (uint32_t id : model.special_ids) {
    json t;
    t["id"] = id;
    t["content"] = model.tokens[id];
    t["single_word"] = false;
    t["lstrip"] = false;
    t["rstrip"] = false;
    t["normalized"] = false;
    t["special"] = true;
    added.push_back(std::move(t));
  }
  j["added_tokens"] = std::move(added);
  j["normalizer"] = nullptr;

  json split;
  split["type"] = "Split";
  split["pattern"] = json::object({{"Regex", model.pattern}});
  split["behavior"] = "Isolated";
  split["invert"] = false;
  json pre;
  pre["type"] = "Sequence";
  pre["pretokenizers"] = json::array({split, byte_level_settings("ByteLevel", false, true, false)});
  j["pre_tokenizer"] = std::move(pre);

  json byte_level_post = byte_level_settings("ByteLevel", false, true, false);
  if (options.bos_token.empty()) {
    j["post_processor"] = std::move(byte_level_post);
  } else {
    auto it = key_id.find(options.bos_token);
    if (it == key_id.end() || !special[it->second])
      fail("BOS token \"", options.bos_token, "\" is not one of the special tokens; add it to the special tokens");
    const std::string& bos = options.bos_token;
    auto special_piece = [&](int type_id) {
      return json::object({{"SpecialToken", json::object({{"id", bos}, {"type_id", type_id}})}});
    };
    auto sequence_piece = [](const char* id, int type_id) {
      return json::object({{"Sequence", json::object({{"id", id}, {"type_id", type_id}})}});
    };
    json tp;
    tp["type"] = "TemplateProcessing";
    tp["single"] = json::array({special_piece(0), sequence_piece("A", 0)});
    tp["pair"] = json::array({special_piece(0), sequence_piece("A", 0), special_piece(1), sequence_piece("B", 1)});
    json entry;
    entry["id"] = bos;
    entry["ids"] = json::array({it->second});
    entry["tokens"] = json::array({bos});
    tp["special_tokens"] = json::object();
    append_unique(tp["special_tokens"], bos, std::move(entry));
    json post;
    post["type"] = "Sequence";
    post["processors"] = json::array({std::move(byte_level_post), std::move(tp)});
    j["post_processor"] = std::move(post);
  }
  j["decoder"] = byte_level_settings("ByteLevel", true, true, true);

  json m;
  m["type"] = "BPE";
  m["dropout"] = nullptr;
  m["unk_token"] = nullptr;
  m["continuing_subword_prefix"] = nullptr;
  m["end_of_word_suffix"] = nullptr;
  m["fuse_unk"] = false;
  m["byte_fallback"] = false;
  m["ignore_merges"] = false;
  json vocab = json::object();
  vocab.get_ref<json::object_t&>().reserve(n);
  for (size_t id = 0; id < n; ++id) append_unique(vocab, keys[id], json(id));
  m["vocab"] = std::move(vocab);
  json merges = json::array();
  merges.get_ref<json::array_t&>().reserve(model.merges.size());
  for (size_t r = 0; r < model.merges.size(); ++r) {
    auto [a, b] = model.merges[r];
    if (a >= n || b >= n) fail("merge ", r, " names token ids (", a, ", ", b, ") outside the vocabulary");
    if (special[a] || special[b]) fail("merge ", r, " uses a special token");
    auto it = key_id.find(byte_level_encode(model.tokens[a] + model.tokens[b]));
    if (it == key_id.end() || special[it->second])
      fail("merge ", r, " (\"", keys[a], "\", \"", keys[b], "\") makes a token that is not in the vocabulary");
    merges.push_back(json::array({keys[a], keys[b]}));
  }
  m["merges"] = std::move(merges);
  j["model"] = std::move(m);

  try {
    return j.dump(2, ' ', false, json::error_handler_t::strict) + "\n";
  } catch (const json::exception& e) {
    fail("cannot write tokenizer.json: a special token is not valid UTF-8 (", e.what(), ")");
  }
}

std::string hf_pattern_problem(const std::string& pattern) {
  // Looks for an unescaped interval {n}, {n,} or {n,m} directly followed by '+'.
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;  // skip the escaped character
      continue;
    }
    if (pattern[i] != '{') continue;
    size_t j = i + 1, digits = 0;
    while (j < pattern.size() && std::isdigit(static_cast<unsigned char>(pattern[j]))) ++j, ++digits;
    if (digits == 0) continue;
    if (j < pattern.size() && pattern[j] == ',') {
      ++j;
      while (j < pattern.size() && std::isdigit(static_cast<unsigned char>(pattern[j]))) ++j;
    }
    if (j + 1 < pattern.size() && pattern[j] == '}' && pattern[j + 1] == '+')
      return cat("the pre-tokenization pattern has the possessive interval \"", pattern.substr(i, j + 2 - i),
                 "\" at offset ", i, ", which Hugging Face tokenizers (Oniguruma) reads as a repetition of the "
                 "interval, so HF would split text differently from agpt; write (?>X", pattern.substr(i, j + 1 - i),
                 ") for a possessive X", pattern.substr(i, j + 2 - i),
                 ", or drop the '+' where nothing follows it in its alternative");
  }
  return "";
}

void write_tokenizer_json(const std::string& path, const BpeModel& model, const TokenizerJsonOptions& options) {
  write_file_atomic(path, to_tokenizer_json(model, options));
}

}  // namespace agpt::text
