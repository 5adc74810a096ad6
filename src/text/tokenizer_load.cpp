// Reading tokenizers: tiktoken rank files, GPT-2 vocab+merges, Hugging Face tokenizer.json.
// Every input is untrusted: each problem is reported with the file, the line or JSON key, and what
// to do about it.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/tokenizer.h"

namespace agpt::text {
namespace {

using json = nlohmann::json;
using Config = Tokenizer::Config;

// Hugging Face's ByteLevel(use_regex=true) pattern (GPT-2's spelling).
const char* const kHfByteLevelPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string shorten(std::string_view s, size_t max = 60) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else out += cat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
  }
  if (s.size() > max) out += "...";
  return out;
}

// ---- base64 ---------------------------------------------------------------------------------

int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict standard base64 (padding required); nullopt when malformed.
std::optional<std::string> b64_decode(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(s.size() / 4 * 3);
  for (size_t i = 0; i < s.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      unsigned char c = s[i + k];
      if (c == '=') {
        if (i + 4 != s.size() || k < 2) return std::nullopt;
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return std::nullopt;  // data after padding
        v[k] = b64_value(c);
        if (v[k] < 0) return std::nullopt;
      }
    }
    uint32_t w = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(w >> 16);
    if (pad < 2) out += static_cast<char>((w >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(w & 0xFF);
  }
  return out;
}

bool parse_u32(std::string_view s, uint32_t& v) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + (c - '0');
  }
  if (x > 0xFFFFFFFEull) return false;
  v = static_cast<uint32_t>(x);
  return true;
}

// ---- JSON helpers ---------------------------------------------------------------------------

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const json& obj, const char* key, bool dflt, const std::string& where) {
  const json* v = member(obj, key);
  if (!v) return dflt;
  if (!v->is_boolean()) fail(where, ": \"", key, "\" must be true or false, found ", shorten(v->dump()));
  return v->get<bool>();
}

std::string get_string(const json& obj, const char* key, const std::string& where) {
  const json* v = member(obj, key);
  if (!v) return "";
  if (!v->is_string()) fail(where, ": \"", key, "\" must be a string, found ", shorten(v->dump()));
  return v->get<std::string>();
}

uint32_t get_id(const json& v, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 0xFFFFFFFEll)
    fail(where, ": expected a token id (a non-negative integer), found ", shorten(v.dump()));
  return static_cast<uint32_t>(v.get<int64_t>());
}

// Token strings of byte-level vocabularies are in GPT-2's alphabet. A string outside it (rare:
// hand-added entries) stands for its own UTF-8 bytes, as Hugging Face's ByteLevel decoder does.
std::string token_string_bytes(const std::string& s) {
  if (auto b = byte_level_decode(s)) return *b;
  return s;
}

void find_bos_eos(Config& c) {
  auto find = [&](std::initializer_list<const char*> names) -> std::optional<uint32_t> {
    for (const char* n : names)
      for (auto& t : c.added_tokens)
        if (t.content == n) return t.id;
    return std::nullopt;
  };
  if (!c.bos_id) {
    if (!c.template_prefix.empty()) c.bos_id = c.template_prefix.front();
    else c.bos_id = find({"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"});
  }
  if (!c.eos_id) c.eos_id = find({"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|im_end|>"});
}

// ---- tokenizer.json parts -------------------------------------------------------------------

void parse_pre_tokenizer(const json& pt, Config& c, const std::string& where) {
  std::string type = get_string(pt, "type", where + " pre_tokenizer");
  auto byte_level = [&](const json& node, bool first) {
    bool prefix = get_bool(node, "add_prefix_space", false, where + " pre_tokenizer ByteLevel");
    if (prefix && !first)
      fail(where, ": pre_tokenizer ByteLevel with add_prefix_space after another pre-tokenizer is not supported "
                  "(agpt adds the prefix space before splitting); set add_prefix_space false or put ByteLevel first");
    c.add_prefix_space = prefix;
    if (get_bool(node, "use_regex", true, where + " pre_tokenizer ByteLevel"))
      c.split_patterns.push_back(kHfByteLevelPattern);
  };
  auto split = [&](const json& node) {
    std::string sub = where + " pre_tokenizer Split";
    std::string behavior = get_string(node, "behavior", sub);
    if (behavior != "Isolated")
      fail(where, ": pre_tokenizer Split with behavior \"", behavior,
           "\" is not supported (agpt supports \"Isolated\", as GPT-4o/Llama 3 tokenizers use)");
    if (get_bool(node, "invert", false, sub)) fail(where, ": pre_tokenizer Split with invert=true is not supported");
    const json* pat = member(node, "pattern");
    if (!pat || !pat->is_object()) fail(where, ": pre_tokenizer Split needs \"pattern\": {\"Regex\": ...}");
    if (const json* r = member(*pat, "Regex")) {
      if (!r->is_string()) fail(where, ": pre_tokenizer Split pattern Regex must be a string");
      c.split_patterns.push_back(r->get<std::string>());
    } else if (const json* s = member(*pat, "String")) {
      if (!s->is_string()) fail(where, ": pre_tokenizer Split pattern String must be a string");
      c.split_patterns.push_back("\\Q" + s->get<std::string>() + "\\E");
    } else {
      fail(where, ": pre_tokenizer Split pattern must hold \"Regex\" or \"String\"");
    }
  };
  if (type == "ByteLevel") {
    byte_level(pt, true);
    return;
  }
  if (type == "Sequence") {
    const json* list = member(pt, "pretokenizers");
    if (!list || !list->is_array()) fail(where, ": pre_tokenizer Sequence needs a \"pretokenizers\" list");
    bool seen_byte_level = false;
    for (size_t i = 0; i < list->size(); ++i) {
      const json& node = (*list)[i];
      std::string t = get_string(node, "type", where + " pre_tokenizer");
      if (t == "ByteLevel") {
        if (seen_byte_level) fail(where, ": pre_tokenizer Sequence holds ByteLevel twice");
        byte_level(node, i == 0);
        seen_byte_level = true;
      } else if (t == "Split") {
        split(node);
      } else {
        fail(where, ": pre_tokenizer \"", t,
             "\" is not supported (agpt reads byte-level BPE: ByteLevel, or Sequence of Split(Isolated) and ByteLevel)");
      }
    }
    if (!seen_byte_level)
      fail(where, ": pre_tokenizer Sequence has no ByteLevel step; agpt supports byte-level BPE tokenizers only");
    return;
  }
  fail(where, ": pre_tokenizer \"", type,
       "\" is not supported (agpt reads byte-level BPE: ByteLevel, or Sequence of Split(Isolated) and ByteLevel)");
}

void parse_post_processor(const json& pp, Config& c, const std::string& where) {
  std::string type = get_string(pp, "type", where + " post_processor");
  if (type == "ByteLevel") return;  // offsets only
  if (type == "Sequence") {
    const json* list = member(pp, "processors");
    if (!list || !list->is_array()) fail(where, ": post_processor Sequence needs a \"processors\" list");
    for (auto& p : *list) parse_post_processor(p, c, where);
    return;
  }
  if (type == "TemplateProcessing") {
    if (!c.template_prefix.empty() || !c.template_suffix.empty())
      fail(where, ": post_processor holds two templates");
    std::unordered_map<std::string, std::vector<uint32_t>> specials;
    if (const json* st = member(pp, "special_tokens")) {
      if (!st->is_object()) fail(where, ": post_processor special_tokens must be an object");
      for (auto& [name, v] : st->items()) {
        const json* ids = member(v, "ids");
        if (!ids || !ids->is_array()) fail(where, ": post_processor special token \"", name, "\" has no \"ids\" list");
        for (auto& id : *ids) specials[name].push_back(get_id(id, where + " post_processor special_tokens"));
      }
    }
    const json* single = member(pp, "single");
    if (!single || !single->is_array()) fail(where, ": post_processor TemplateProcessing needs a \"single\" list");
    int sequences = 0;
    for (auto& item : *single) {
      if (const json* s = member(item, "SpecialToken")) {
        std::string id = get_string(*s, "id", where + " post_processor");
        auto it = specials.find(id);
        if (it == specials.end())
          fail(where, ": post_processor template names the special token \"", id, "\", which special_tokens lacks");
        auto& dst = sequences ? c.template_suffix : c.template_prefix;
        dst.insert(dst.end(), it->second.begin(), it->second.end());
      } else if (const json* q = member(item, "Sequence")) {
        if (get_string(*q, "id", where + " post_processor") != "A")
          fail(where, ": post_processor template \"single\" may only use sequence A");
        ++sequences;
      } else {
        fail(where, ": post_processor template item ", shorten(item.dump()), " is neither SpecialToken nor Sequence");
      }
    }
    if (sequences != 1) fail(where, ": post_processor template \"single\" must hold sequence A exactly once");
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    const json* cls = member(pp, "cls");
    const json* sep = member(pp, "sep");
    if (!cls || !sep || !cls->is_array() || !sep->is_array() || cls->size() != 2 || sep->size() != 2)
      fail(where, ": post_processor ", type, " needs \"cls\" and \"sep\" as [token, id]");
    c.template_prefix = {get_id((*cls)[1], where + " post_processor cls")};
    c.template_suffix = {get_id((*sep)[1], where + " post_processor sep")};
    return;
  }
  fail(where, ": post_processor \"", type,
       "\" is not supported (agpt supports TemplateProcessing, ByteLevel, Bert/RobertaProcessing and Sequence)");
}

}  // namespace

// ---- tiktoken -------------------------------------------------------------------------------

std::optional<TiktokenEncoding> tiktoken_encoding(std::string_view name) {
  // As tiktoken_ext/openai_public.py defines them.
  auto special = [](std::initializer_list<std::pair<const char*, uint32_t>> l) {
    std::vector<AddedToken> v;
    for (auto& [s, id] : l) v.push_back(AddedToken{s, id, true});
    return v;
  };
  if (name == "r50k_base" || name == "gpt2" || name == "p50k_base")
    return TiktokenEncoding{std::string(name), kGpt2Pattern, special({{"<|endoftext|>", 50256}})};
  if (name == "cl100k_base")
    return TiktokenEncoding{"cl100k_base", kCl100kPattern,
                            special({{"<|endoftext|>", 100257},
                                     {"<|fim_prefix|>", 100258},
                                     {"<|fim_middle|>", 100259},
                                     {"<|fim_suffix|>", 100260},
                                     {"<|endofprompt|>", 100276}})};
  if (name == "o200k_base")
    return TiktokenEncoding{"o200k_base", kO200kPattern,
                            special({{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}})};
  return std::nullopt;
}

Config parse_tiktoken_ranks(std::string_view data, const std::string& origin) {
  Config c;
  c.rule = Config::Rule::kRanks;
  c.description = origin;
  std::vector<uint32_t> line_of_rank;  // rank -> line (0: not seen); duplicate tokens are caught by the builder
  c.vocab.reserve(data.size() / 12);
  size_t line_no = 0, pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    std::string_view line = data.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? data.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos)
      fail(origin, ":", line_no, ": expected \"<base64 token> <rank>\", found \"", shorten(line),
           "\" (is this a tiktoken rank file? a truncated download?)");
    auto bytes = b64_decode(line.substr(0, sp));
    if (!bytes) fail(origin, ":", line_no, ": the token \"", shorten(line.substr(0, sp)), "\" is not valid base64");
    uint32_t rank;
    if (!parse_u32(line.substr(sp + 1), rank))
      fail(origin, ":", line_no, ": the rank \"", shorten(line.substr(sp + 1)), "\" is not a non-negative integer");
    if (rank >= (1u << 24))
      fail(origin, ":", line_no, ": rank ", rank, " is too large (agpt accepts ranks below 16777216); corrupt file?");
    if (rank >= line_of_rank.size()) line_of_rank.resize(std::max<size_t>(rank + 1, line_of_rank.size() * 2), 0);
    if (line_of_rank[rank])
      fail(origin, ":", line_no, ": rank ", rank, " was already given on line ", line_of_rank[rank]);
    line_of_rank[rank] = static_cast<uint32_t>(line_no);
    c.vocab.emplace_back(std::move(*bytes), rank);
  }
  if (c.vocab.empty()) fail(origin, ": no tokens (an empty tiktoken rank file)");
  return c;
}

// ---- GPT-2 vocab.json + merges.txt ----------------------------------------------------------

namespace {

std::vector<std::pair<std::string, std::string>> parse_merges_lines(std::string_view txt, const std::string& origin) {
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_no = 0, pos = 0;
  while (pos < txt.size()) {
    size_t nl = txt.find('\n', pos);
    std::string_view line = txt.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? txt.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string_view::npos)
      fail(origin, ":", line_no, ": expected a merge \"<left> <right>\", found \"", shorten(line), "\"");
    merges.emplace_back(token_string_bytes(std::string(line.substr(0, sp))),
                        token_string_bytes(std::string(line.substr(sp + 1))));
  }
  return merges;
}

json parse_json_text(std::string_view text, const std::string& origin) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    fail(origin, ": not valid JSON (", e.what(), "); is the file truncated?");
  }
}

void read_vocab_object(const json& vocab, Config& c, const std::string& where) {
  if (!vocab.is_object()) fail(where, ": the vocabulary must be a JSON object {\"token\": id, ...}");
  c.vocab.reserve(vocab.size());
  for (auto& [tok, id] : vocab.items()) {
    if (tok.empty()) fail(where, ": the vocabulary holds an empty token");
    c.vocab.emplace_back(token_string_bytes(tok), get_id(id, where + " token \"" + shorten(tok) + "\""));
  }
}

}  // namespace

Config parse_gpt2_vocab_merges(std::string_view vocab_json, std::string_view merges_txt, const std::string& origin) {
  Config c;
  c.description = origin;
  c.rule = Config::Rule::kMerges;
  json vocab = parse_json_text(vocab_json, origin + " (vocab)");
  read_vocab_object(vocab, c, origin + " (vocab)");
  c.merges = parse_merges_lines(merges_txt, origin + " (merges)");
  c.split_patterns = {kGpt2Pattern};
  // <|endoftext|> is an ordinary vocabulary entry in GPT-2's files; it is the special token.
  for (auto it = c.vocab.begin(); it != c.vocab.end(); ++it) {
    if (it->first == "<|endoftext|>") {
      c.added_tokens.push_back(AddedToken{it->first, it->second, true});
      c.eos_id = it->second;
      c.vocab.erase(it);
      break;
    }
  }
  return c;
}

// ---- tokenizer.json -------------------------------------------------------------------------

Config parse_tokenizer_json(std::string_view text, const std::string& origin) {
  json j = parse_json_text(text, origin);
  if (!j.is_object()) fail(origin, ": a tokenizer.json must hold a JSON object");
  Config c;
  c.description = origin;
  c.rule = Config::Rule::kMerges;

  const json* model = member(j, "model");
  if (!model || !model->is_object()) fail(origin, ": no \"model\" object; is this a Hugging Face tokenizer.json?");
  std::string type = get_string(*model, "type", origin + " model");
  if (type.empty() && member(*model, "merges")) type = "BPE";
  if (type != "BPE")
    fail(origin, ": model type \"", type, "\" is not supported (agpt reads byte-level BPE models only, not ",
         "WordPiece/Unigram/WordLevel)");
  if (get_bool(*model, "byte_fallback", false, origin + " model"))
    fail(origin, ": model.byte_fallback=true (SentencePiece-style BPE) is not supported; agpt reads byte-level BPE");
  if (!get_string(*model, "continuing_subword_prefix", origin + " model").empty() ||
      !get_string(*model, "end_of_word_suffix", origin + " model").empty())
    fail(origin, ": model.continuing_subword_prefix / end_of_word_suffix are not supported (not byte-level BPE)");
  if (const json* d = member(*model, "dropout")) {
    if (!d->is_number() || d->get<double>() != 0.0)
      fail(origin, ": model.dropout is set (", shorten(d->dump()), "); agpt encodes deterministically: set it to null");
  }
  c.ignore_merges = get_bool(*model, "ignore_merges", false, origin + " model");
  const json* vocab = member(*model, "vocab");
  if (!vocab) fail(origin, ": model.vocab is missing");
  read_vocab_object(*vocab, c, origin + " model.vocab");
  if (const json* merges = member(*model, "merges")) {
    if (!merges->is_array()) fail(origin, ": model.merges must be a list");
    c.merges.reserve(merges->size());
    for (size_t k = 0; k < merges->size(); ++k) {
      const json& m = (*merges)[k];
      std::string left, right;
      if (m.is_string()) {
        const std::string& s = m.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
          fail(origin, ": model.merges[", k, "] = \"", shorten(s), "\" is not \"<left> <right>\"");
        left = s.substr(0, sp);
        right = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        left = m[0].get<std::string>();
        right = m[1].get<std::string>();
      } else {
        fail(origin, ": model.merges[", k, "] = ", shorten(m.dump()), " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      c.merges.emplace_back(token_string_bytes(left), token_string_bytes(right));
    }
  }

  if (const json* added = member(j, "added_tokens")) {
    if (!added->is_array()) fail(origin, ": added_tokens must be a list");
    for (size_t k = 0; k < added->size(); ++k) {
      const json& t = (*added)[k];
      std::string where = cat(origin, " added_tokens[", k, "]");
      const json* id = member(t, "id");
      if (!id) fail(where, ": no \"id\"");
      AddedToken a;
      a.id = get_id(*id, where);
      a.content = get_string(t, "content", where);
      if (a.content.empty()) fail(where, ": empty \"content\"");
      a.special = get_bool(t, "special", false, where);
      a.lstrip = get_bool(t, "lstrip", false, where);
      a.rstrip = get_bool(t, "rstrip", false, where);
      a.single_word = get_bool(t, "single_word", false, where);
      c.added_tokens.push_back(std::move(a));
    }
  }
  // An added token may also sit in model.vocab (GPT-2's <|endoftext|>); it is then the added token.
  if (!c.added_tokens.empty()) {
    std::unordered_map<uint32_t, const std::string*> added_ids;
    for (auto& t : c.added_tokens) added_ids.emplace(t.id, &t.content);
    std::erase_if(c.vocab, [&](auto& e) {
      auto it = added_ids.find(e.second);
      return it != added_ids.end() && *it->second == e.first;
    });
  }

  if (const json* unk = member(*model, "unk_token")) {
    if (!unk->is_string()) fail(origin, ": model.unk_token must be a string or null");
    std::string u = unk->get<std::string>();
    for (auto& t : c.added_tokens)
      if (t.content == u) c.unk_id = t.id;
    if (!c.unk_id)
      for (auto& [bytes, id] : c.vocab)
        if (bytes == token_string_bytes(u)) c.unk_id = id;
    if (!c.unk_id) fail(origin, ": model.unk_token \"", shorten(u), "\" is not in the vocabulary");
  }

  if (const json* norm = member(j, "normalizer")) {
    std::string t = get_string(*norm, "type", origin + " normalizer");
    const json* list = member(*norm, "normalizers");
    if (!(t == "Sequence" && list && list->is_array() && list->empty()))
      fail(origin, ": normalizer \"", t, "\" is not supported (agpt's byte-level BPE takes the text as it is; ",
           "only \"normalizer\": null)");
  }
  const json* pre = member(j, "pre_tokenizer");
  if (!pre) fail(origin, ": no pre_tokenizer; agpt supports byte-level BPE tokenizers (pre_tokenizer ByteLevel)");
  parse_pre_tokenizer(*pre, c, origin);
  if (const json* post = member(j, "post_processor")) parse_post_processor(*post, c, origin);
  if (member(j, "truncation") || member(j, "padding"))
    log_info(origin, ": truncation/padding settings are ignored (agpt never truncates or pads when encoding)");
  find_bos_eos(c);
  return c;
}

// ---- load_tokenizer -------------------------------------------------------------------------

namespace {

std::string resolve_pattern(const std::string& p) {
  if (p == "gpt2" || p == "r50k" || p == "r50k_base" || p == "p50k_base") return kGpt2Pattern;
  if (p == "cl100k" || p == "cl100k_base") return kCl100kPattern;
  if (p == "o200k" || p == "o200k_base") return kO200kPattern;
  if (p == "llama3")
    return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  return p;
}

void apply_override(Config& c, const std::string& pattern_override) {
  if (pattern_override.empty()) return;
  std::string p = resolve_pattern(pattern_override);
  try {
    make_pretokenizer(p);  // compiles it: a bad pattern fails here, with the pattern in the message
  } catch (const Error& e) {
    fail("--pattern: ", e.what());
  }
  c.split_patterns = {p};
}

// tokenizer_config.json beside a tokenizer.json names bos_token / eos_token.
void read_tokenizer_config(const std::filesystem::path& dir, Config& c) {
  auto path = dir / "tokenizer_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return;
  json j;
  try {
    j = json::parse(read_file(path.string()));
  } catch (const json::exception& e) {
    log_warn(path.string(), ": ignored, not valid JSON (", e.what(), ")");
    return;
  }
  auto token_of = [&](const char* key) -> std::optional<uint32_t> {
    const json* v = member(j, key);
    if (!v) return std::nullopt;
    std::string s;
    if (v->is_string()) s = v->get<std::string>();
    else if (const json* content = member(*v, "content"); content && content->is_string()) s = content->get<std::string>();
    else return std::nullopt;
    for (auto& t : c.added_tokens)
      if (t.content == s) return t.id;
    for (auto& [bytes, id] : c.vocab)
      if (bytes == token_string_bytes(s)) return id;
    log_warn(path.string(), ": ", key, " \"", shorten(s), "\" is not a token; ignored");
    return std::nullopt;
  };
  if (auto b = token_of("bos_token")) c.bos_id = b;
  if (auto e = token_of("eos_token")) c.eos_id = e;
}

bool looks_like_tiktoken(std::string_view data) {
  size_t nl = data.find('\n');
  std::string_view line = data.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0) return false;
  for (char ch : line.substr(0, sp))
    if (b64_value(static_cast<unsigned char>(ch)) < 0 && ch != '=') return false;
  uint32_t r;
  return parse_u32(line.substr(sp + 1), r);
}

std::unique_ptr<Tokenizer> load_json_file(const std::filesystem::path& path, const std::string& pattern_override) {
  Config c = parse_tokenizer_json(read_file(path.string()), path.string());
  read_tokenizer_config(path.parent_path(), c);
  apply_override(c, pattern_override);
  return std::make_unique<Tokenizer>(std::move(c));
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path_str, const std::string& pattern_override) {
  namespace fs = std::filesystem;
  fs::path path(path_str);
  std::error_code ec;
  if (path_str.empty()) fail("no tokenizer given: pass a tokenizer.json, a tiktoken rank file or a GPT-2 directory");
  if (fs::is_directory(path, ec)) {
    if (fs::is_regular_file(path / "tokenizer.json", ec)) return load_json_file(path / "tokenizer.json", pattern_override);
    fs::path vocab, merges;
    for (const char* v : {"vocab.json", "encoder.json"})
      if (vocab.empty() && fs::is_regular_file(path / v, ec)) vocab = path / v;
    for (const char* m : {"merges.txt", "vocab.bpe"})
      if (merges.empty() && fs::is_regular_file(path / m, ec)) merges = path / m;
    if (vocab.empty() || merges.empty())
      fail("tokenizer directory ", path_str,
           " holds neither tokenizer.json nor a GPT-2 pair vocab.json|encoder.json + merges.txt|vocab.bpe");
    Config c = parse_gpt2_vocab_merges(read_file(vocab.string()), read_file(merges.string()), path_str);
    apply_override(c, pattern_override);
    return std::make_unique<Tokenizer>(std::move(c));
  }
  if (!fs::exists(path, ec)) fail("tokenizer ", path_str, " does not exist");
  std::string data = read_file(path_str);
  size_t first = data.find_first_not_of(" \t\r\n");
  if (path.extension() == ".json" || (first != std::string::npos && data[first] == '{')) {
    Config c = parse_tokenizer_json(data, path_str);
    read_tokenizer_config(path.parent_path(), c);
    apply_override(c, pattern_override);
    return std::make_unique<Tokenizer>(std::move(c));
  }
  if (!looks_like_tiktoken(data))
    fail(path_str, " is not a tokenizer: expected a Hugging Face tokenizer.json, a tiktoken rank file (lines ",
         "\"<base64 token> <rank>\"), or a directory with vocab.json + merges.txt");
  Config c = parse_tiktoken_ranks(data, path_str);
  std::string file = path.filename().string();
  std::optional<TiktokenEncoding> enc;
  for (const char* name : {"r50k_base", "p50k_base", "cl100k_base", "o200k_base"})
    if (file.find(name) != std::string::npos) enc = tiktoken_encoding(name);
  if (enc) {
    c.split_patterns = {enc->pattern};
    // Special tokens whose id the rank file already uses would clash: keep the file's tokens then.
    std::unordered_set<uint32_t> used;
    for (auto& [bytes, id] : c.vocab) used.insert(id);
    for (auto& t : enc->special_tokens)
      if (!used.count(t.id)) c.added_tokens.push_back(t);
    for (auto& t : c.added_tokens)
      if (t.content == "<|endoftext|>") c.eos_id = t.id;
    c.description = cat("tiktoken ", enc->name, " (", path_str, ")");
  } else if (pattern_override.empty()) {
    fail(path_str, ": cannot tell which pre-tokenizer pattern this tiktoken file needs: name the file after its ",
         "encoding (r50k_base, p50k_base, cl100k_base, o200k_base) or pass a pattern (--pattern)");
  }
  apply_override(c, pattern_override);
  return std::make_unique<Tokenizer>(std::move(c));
}

}  // namespace agpt::text
