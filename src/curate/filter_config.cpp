#include "curate/filter_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "curate/langid.h"
#include "curate/text_stats.h"

namespace agpt::curate {

const std::vector<FilterRule>& filter_rules() {
  // Defaults: Gopher (Rae et al. 2021, appendix A.1.1) for length, quality and repetition; C4
  // (Raffel et al. 2020) for the c4 section. Stop words are English only: off by default.
  static const std::vector<FilterRule> rules = [] {
    std::vector<FilterRule> r = {
        {"length.min_words", attr::kWordCount, false, 50, "fewer words (CJK characters count one each)"},
        {"length.max_words", attr::kWordCount, true, 100000, "more words"},
        {"length.min_chars", attr::kCharCount, false, -1, "fewer characters (code points)"},
        {"length.max_chars", attr::kCharCount, true, -1, "more characters (code points)"},
        {"quality.min_mean_word_length", attr::kMeanWordLength, false, 3, "shorter mean word length (non-CJK words)"},
        {"quality.max_mean_word_length", attr::kMeanWordLength, true, 10, "longer mean word length (non-CJK words)"},
        {"quality.max_hash_ratio", attr::kHashRatio, true, 0.1, "more '#' per word"},
        {"quality.max_ellipsis_ratio", attr::kEllipsisRatio, true, 0.1, "more '...' or U+2026 per word"},
        {"quality.max_bullet_lines_ratio", attr::kBulletLines, true, 0.9, "more lines starting with a bullet"},
        {"quality.max_ellipsis_lines_ratio", attr::kEllipsisLines, true, 0.3, "more lines ending with an ellipsis"},
        {"quality.min_alpha_words_ratio", attr::kAlphaWords, false, 0.8, "fewer words with a letter"},
        {"quality.min_stop_words", attr::kStopWords, false, -1,
         "fewer distinct English stop words (the be to of and that have with; Gopher: 2)"},
        {"repetition.max_dup_line_frac", attr::kDupLineFrac, true, 0.3, "more duplicate lines"},
        {"repetition.max_dup_para_frac", attr::kDupParaFrac, true, 0.3, "more duplicate paragraphs"},
        {"repetition.max_dup_line_char_frac", attr::kDupLineCharFrac, true, 0.2, "more bytes in duplicate lines"},
        {"repetition.max_dup_para_char_frac", attr::kDupParaCharFrac, true, 0.2, "more bytes in duplicate paragraphs"},
    };
    static const char* top_keys[] = {"", "", "repetition.max_top_2gram_char_frac", "repetition.max_top_3gram_char_frac",
                                     "repetition.max_top_4gram_char_frac"};
    const double top_def[] = {0, 0, 0.20, 0.18, 0.16};
    for (int n = 2; n <= 4; ++n)
      r.push_back({top_keys[n], attr::top_ngram(n), true, top_def[n], "more bytes in the most frequent n-gram"});
    static const char* dup_keys[] = {"repetition.max_dup_5gram_char_frac", "repetition.max_dup_6gram_char_frac",
                                     "repetition.max_dup_7gram_char_frac", "repetition.max_dup_8gram_char_frac",
                                     "repetition.max_dup_9gram_char_frac", "repetition.max_dup_10gram_char_frac"};
    for (int n = 5; n <= 10; ++n)
      r.push_back({dup_keys[n - 5], attr::dup_ngram(n), true, 0.15 - 0.01 * (n - 5), "more bytes in repeated n-grams"});
    r.push_back({"c4.drop_lorem_ipsum", attr::kC4LoremIpsum, true, 0, "contains \"lorem ipsum\" (C4)"});
    r.push_back({"c4.drop_curly_bracket", attr::kC4CurlyBracket, true, 0, "contains '{' (C4)"});
    r.push_back({"c4.min_sentences", attr::kC4Sentences, false, 5, "fewer sentences (C4)"});
    return r;
  }();
  return rules;
}

FilterConfig::FilterConfig() {
  for (const auto& r : filter_rules()) thresholds.push_back(r.default_value);
}

namespace {

const char* type_name(const ConfigValue& v) {
  switch (v.index()) {
    case 0: return "a number";
    case 1: return "a boolean";
    case 2: return "a string";
    default: return "a list of strings";
  }
}

double as_number(const ConfigValue& v, std::string_view key, const std::string& where) {
  if (const double* d = std::get_if<double>(&v)) {
    if (!std::isfinite(*d)) fail(where, ": ", key, " must be a finite number");
    return *d;
  }
  fail(where, ": ", key, " must be a number (got ", type_name(v), ")");
}

bool as_bool(const ConfigValue& v, std::string_view key, const std::string& where) {
  if (const bool* b = std::get_if<bool>(&v)) return *b;
  fail(where, ": ", key, " must be true or false (got ", type_name(v), ")");
}

std::string known_keys() {
  std::string s;
  for (const auto& r : filter_rules()) {
    if (std::string_view(r.key).starts_with("c4.drop_lorem") || std::string_view(r.key).starts_with("c4.drop_curly")) {
      s += std::string(r.key) + " (boolean), ";
      continue;
    }
    s += std::string(r.key) + ", ";
  }
  s += "c4.enabled, c4.drop_no_terminal_punct, c4.drop_javascript, c4.drop_policy, c4.min_words_per_line, "
       "c4.max_word_length, langid.languages, langid.min_score, langid.model";
  return s;
}

}  // namespace

void FilterConfig::set(std::string_view key, const ConfigValue& value, const std::string& where) {
  const auto& rules = filter_rules();
  for (size_t i = 0; i < rules.size(); ++i) {
    if (key != rules[i].key) continue;
    if (key == "c4.drop_lorem_ipsum" || key == "c4.drop_curly_bracket") {
      // A boolean in the config; as a rule: maximum 0 (on) or off.
      thresholds[i] = as_bool(value, key, where) ? 0.0 : -1.0;
    } else {
      thresholds[i] = as_number(value, key, where);
    }
    return;
  }
  if (key == "c4.enabled") c4 = as_bool(value, key, where);
  else if (key == "c4.drop_no_terminal_punct") c4_drop_no_terminal_punct = as_bool(value, key, where);
  else if (key == "c4.drop_javascript") c4_drop_javascript = as_bool(value, key, where);
  else if (key == "c4.drop_policy") c4_drop_policy = as_bool(value, key, where);
  else if (key == "c4.min_words_per_line") {
    c4_min_words_per_line = as_number(value, key, where);
    if (c4_min_words_per_line > kC4FewWordsCeiling)
      fail(where, ": c4.min_words_per_line can be at most ", kC4FewWordsCeiling,
           " (the attributes record the word counts of shorter lines only)");
  } else if (key == "c4.max_word_length") {
    c4_max_word_length = as_number(value, key, where);
    if (c4_max_word_length >= 0 && c4_max_word_length < kC4LongWordFloor)
      fail(where, ": c4.max_word_length must be at least ", kC4LongWordFloor,
           " (the attributes record longer words only), or negative for off");
  } else if (key == "langid.languages") {
    languages.clear();
    if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
      languages = *list;
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      size_t start = 0;  // "en,fr" as well as ["en", "fr"]
      while (start <= s->size()) {
        size_t comma = s->find(',', start);
        if (comma == std::string::npos) comma = s->size();
        if (comma > start) languages.push_back(s->substr(start, comma - start));
        start = comma + 1;
      }
    } else {
      fail(where, ": langid.languages must be a list of language codes such as [\"en\", \"fr\"] (got ",
           type_name(value), ")");
    }
    for (const auto& l : languages) check_language_code(l, where);
  } else if (key == "langid.min_score") {
    min_language_score = as_number(value, key, where);
    if (min_language_score < 0 || min_language_score > 1) fail(where, ": langid.min_score must be within [0, 1]");
  } else if (key == "langid.model") {
    const auto* s = std::get_if<std::string>(&value);
    if (!s) fail(where, ": langid.model must be a path (got ", type_name(value), ")");
    langid_model = *s;
  } else {
    fail(where, ": unknown filter setting '", key, "'. Known: ", known_keys());
  }
}

void FilterConfig::merge_json(std::string_view json_text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(where, ": a filter config must be a JSON object of sections");
  for (const auto& [section, body] : j.items()) {
    if (!body.is_object()) fail(where, ": section '", section, "' must be an object");
    for (const auto& [name, v] : body.items()) {
      const std::string key = section + "." + name;
      ConfigValue cv;
      if (v.is_boolean()) cv = v.get<bool>();
      else if (v.is_number()) cv = v.get<double>();
      else if (v.is_string()) cv = v.get<std::string>();
      else if (v.is_array()) {
        std::vector<std::string> list;
        for (const auto& e : v) {
          if (!e.is_string()) fail(where, ": ", key, " must be a list of strings");
          list.push_back(e.get<std::string>());
        }
        cv = list;
      } else {
        fail(where, ": ", key, " has an unsupported value (", v.dump(), ")");
      }
      set(key, cv, where);
    }
  }
}

double FilterConfig::threshold(std::string_view key) const {
  const auto& rules = filter_rules();
  for (size_t i = 0; i < rules.size(); ++i)
    if (key == rules[i].key) return thresholds[i];
  fail("unknown filter rule '", key, "'");
}

std::string FilterConfig::to_json() const {
  nlohmann::ordered_json j;
  const auto& rules = filter_rules();
  for (size_t i = 0; i < rules.size(); ++i) {
    std::string_view k = rules[i].key;
    auto dot = k.find('.');
    j[std::string(k.substr(0, dot))][std::string(k.substr(dot + 1))] = thresholds[i];
  }
  j["c4"]["enabled"] = c4;
  j["c4"]["drop_no_terminal_punct"] = c4_drop_no_terminal_punct;
  j["c4"]["drop_javascript"] = c4_drop_javascript;
  j["c4"]["drop_policy"] = c4_drop_policy;
  j["c4"]["min_words_per_line"] = c4_min_words_per_line;
  j["c4"]["max_word_length"] = c4_max_word_length;
  j["langid"]["languages"] = languages;
  j["langid"]["min_score"] = min_language_score;
  j["langid"]["model"] = langid_model;
  return j.dump(2);
}

}  // namespace agpt::curate
