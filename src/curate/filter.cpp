#include "curate/filter.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "corpus/json.h"
#include "corpus/stream.h"

namespace agpt::curate {

namespace {
constexpr std::string_view kLangPrefix = "agpt_langid__";
}

std::string langid_attribute(std::string_view lang) { return std::string(kLangPrefix) + std::string(lang); }

void compute_langid_attributes(const LangIdModel& model, std::string_view text, DocAttributes& out) {
  thread_local std::vector<double> s;
  model.scores(text, s);
  for (size_t l = 0; l < s.size(); ++l)
    if (s[l] >= 0.001) out.add_value(langid_attribute(model.languages()[l]), text.size(), s[l]);
}

FilterDecision decide(const FilterConfig& config, const DocAttributes& attrs) {
  FilterDecision d;
  if (!config.languages.empty()) {
    const Attribute* best = nullptr;
    bool any = false;
    for (const auto& a : attrs.items) {
      if (!std::string_view(a.name).starts_with(kLangPrefix) || a.spans.empty()) continue;
      any = true;
      if (!best || a.spans[0].value > best->spans[0].value) best = &a;
    }
    if (!any)
      fail("the language rule (langid.languages) needs language scores, and these attributes hold none "
           "(agpt_langid__*): compute them with --langid-model MODEL");
    const std::string lang = best->name.substr(kLangPrefix.size());
    const bool wanted = std::find(config.languages.begin(), config.languages.end(), lang) != config.languages.end();
    if (!wanted || best->spans[0].value < config.min_language_score) {
      d.language_failed = true;
      d.keep = false;
      d.reason = kReasonLanguage;
    }
  }
  const auto& rules = filter_rules();
  for (size_t i = 0; i < rules.size(); ++i) {
    const double thr = config.thresholds[i];
    if (thr < 0) continue;
    if (!config.c4 && std::string_view(rules[i].key).starts_with("c4.")) continue;
    const double* v = attrs.value(rules[i].attribute);
    if (!v) continue;
    if (rules[i].is_max ? *v > thr : *v < thr) {
      d.failing_rules.push_back(i);
      if (d.keep) {
        d.keep = false;
        d.reason = rules[i].key;
      }
    }
  }
  if (!config.c4 || !d.keep) return d;
  auto collect = [&](const char* name, const char* rule, auto&& pred) {
    const Attribute* a = attrs.find(name);
    if (!a) return;
    for (const auto& s : a->spans) {
      if (!pred(s.value)) continue;
      d.cut_lines.emplace_back(s.begin, s.end);
      ++d.lines_by_rule[rule];
    }
  };
  auto always = [](double) { return true; };
  if (config.c4_drop_no_terminal_punct) collect(attr::kC4NoTerminalPunct, "c4.drop_no_terminal_punct", always);
  if (config.c4_drop_javascript) collect(attr::kC4Javascript, "c4.drop_javascript", always);
  if (config.c4_drop_policy) collect(attr::kC4Policy, "c4.drop_policy", always);
  if (config.c4_min_words_per_line >= 0)
    collect(attr::kC4FewWords, "c4.min_words_per_line", [&](double v) { return v < config.c4_min_words_per_line; });
  if (config.c4_max_word_length >= 0)
    collect(attr::kC4LongWord, "c4.max_word_length", [&](double v) { return v > config.c4_max_word_length; });
  std::sort(d.cut_lines.begin(), d.cut_lines.end());
  d.cut_lines.erase(std::unique(d.cut_lines.begin(), d.cut_lines.end()), d.cut_lines.end());
  return d;
}

std::string remove_lines(std::string_view text, const std::vector<std::pair<uint64_t, uint64_t>>& cut) {
  std::string out;
  out.reserve(text.size());
  uint64_t pos = 0;
  for (auto [b, e] : cut) {
    if (b < pos || b > text.size()) continue;  // overlapping or out of range: nothing more to cut
    e = std::min<uint64_t>(e, text.size());
    out.append(text.substr(pos, b - pos));
    pos = e < text.size() && text[e] == '\n' ? e + 1 : e;  // the line's break goes with it
  }
  out.append(text.substr(std::min<uint64_t>(pos, text.size())));
  if (out.find_first_not_of(" \t\r\n\f\v") == std::string::npos) return {};
  return out;
}

namespace {

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) v = 0;  // never produced by the statistics; keeps the JSON valid
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace

void append_attributes_json(std::string& out, std::string_view id, const DocAttributes& attrs) {
  out += "{\"id\":";
  corpus::append_json_string(out, id);
  out += ",\"attributes\":{";
  bool first = true;
  for (const auto& a : attrs.items) {
    if (!first) out += ',';
    first = false;
    corpus::append_json_string(out, a.name);
    out += ":[";
    for (size_t i = 0; i < a.spans.size(); ++i) {
      if (i) out += ',';
      out += '[';
      append_number(out, static_cast<double>(a.spans[i].begin));
      out += ',';
      append_number(out, static_cast<double>(a.spans[i].end));
      out += ',';
      append_number(out, a.spans[i].value);
      out += ']';
    }
    out += ']';
  }
  out += "}}";
}

void parse_attributes_json(std::string_view line, std::string& id, DocAttributes& attrs, const std::string& where) {
  attrs.items.clear();
  nlohmann::ordered_json j;  // keeps the attributes in their written order
  try {
    j = nlohmann::ordered_json::parse(line);
  } catch (const nlohmann::ordered_json::exception& e) {
    fail(where, ": not a valid attributes line (", e.what(), ")");
  }
  if (!j.is_object() || !j.contains("attributes") || !j["attributes"].is_object())
    fail(where, ": an attributes line must be an object with an \"attributes\" object");
  const auto& jid = j.contains("id") ? j["id"] : nlohmann::ordered_json();
  id = jid.is_string() ? jid.get<std::string>() : (jid.is_null() ? std::string() : jid.dump());
  for (const auto& [name, spans] : j["attributes"].items()) {
    if (!spans.is_array()) fail(where, ": attribute '", name, "' must be a list of [begin, end, value]");
    Attribute a{name, {}};
    for (const auto& s : spans) {
      if (!s.is_array() || s.size() != 3 || !s[0].is_number() || !s[1].is_number() || !s[2].is_number())
        fail(where, ": attribute '", name, "' must be a list of [begin, end, value] numbers");
      const double b = s[0].get<double>(), e = s[1].get<double>();
      if (b < 0 || e < b || e > 9.0e15) fail(where, ": attribute '", name, "' has a bad span [", b, ", ", e, "]");
      a.spans.push_back({static_cast<uint64_t>(b), static_cast<uint64_t>(e), s[2].get<double>()});
    }
    attrs.items.push_back(std::move(a));
  }
}

std::string attributes_path(const std::string& dir, const corpus::InputFile& input) {
  std::string name(corpus::strip_compression_suffix(input.name));
  const bool absolute = !name.empty() && name[0] == '/';
  if (absolute || name.find("..") != std::string::npos) {
    auto slash = name.find_last_of('/');
    if (slash != std::string::npos) name = name.substr(slash + 1);
  }
  if (!name.ends_with(".jsonl")) name += ".jsonl";
  std::string d = dir;
  if (!d.empty() && d.back() != '/') d += '/';
  return d + name + ".zst";
}

std::string FilterReport::to_json() const {
  nlohmann::ordered_json j;
  j["documents_in"] = documents_in;
  j["bytes_in"] = bytes_in;
  j["documents_kept"] = documents_kept;
  j["bytes_kept"] = bytes_kept;
  j["documents_removed"] = documents_in - documents_kept;
  j["documents_removed_by_reason"] = removed_by_reason;
  j["documents_failing_by_rule"] = failing_by_rule;
  j["c4_lines"] = {{"documents_cut", documents_cut}, {"bytes_cut", bytes_cut}, {"lines_removed_by_rule", lines_removed_by_rule}};
  j["top_language"] = top_language;
  j["from_attributes"] = from_attributes;
  j["attribute_files"] = attribute_files;
  j["config"] = nlohmann::ordered_json::parse(config_json.empty() ? "{}" : config_json);
  nlohmann::ordered_json rd;
  rd["files"] = read.files;
  rd["lines"] = read.lines;
  rd["blank_lines"] = read.blank_lines;
  rd["skipped"] = read.skipped;
  rd["skipped_by_reason"] = read.skipped_by_reason;
  j["read"] = rd;
  j["seconds"] = seconds;
  return j.dump(2) + "\n";
}

std::string FilterReport::table() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "  %-50s %14s %16s\n", "", "documents", "bytes");
  out += line;
  std::snprintf(line, sizeof line, "  %-50s %14llu %16llu\n", "read", static_cast<unsigned long long>(documents_in),
                static_cast<unsigned long long>(bytes_in));
  out += line;
  for (const auto& [reason, n] : removed_by_reason) {
    std::snprintf(line, sizeof line, "  removed: %-41s %14llu\n", reason.c_str(), static_cast<unsigned long long>(n));
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-50s %14llu %16llu\n", "kept", static_cast<unsigned long long>(documents_kept),
                static_cast<unsigned long long>(bytes_kept));
  out += line;
  if (documents_cut > 0) {
    std::snprintf(line, sizeof line, "  C4 line cleanup: %llu kept documents lost %llu bytes\n",
                  static_cast<unsigned long long>(documents_cut), static_cast<unsigned long long>(bytes_cut));
    out += line;
  }
  if (files_resumed > 0)
    out += "  resumed: " + std::to_string(files_resumed) + " input files were done by the interrupted run\n";
  if (!top_language.empty()) {
    out += "  most probable language of the documents read:";
    for (const auto& [l, n] : top_language) out += " " + l + " " + std::to_string(n);
    out += "\n";
  }
  return out;
}

}  // namespace agpt::curate
