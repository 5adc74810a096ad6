// The thresholds of `agpt data filter`: one table of rules (name, attribute, bound, default), so
// that the config file, the decision, the report and the docs all speak of the same names.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace agpt::curate {

// A document rule: the document is removed when its attribute is below a minimum (is_max false)
// or above a maximum. A threshold below 0 turns the rule off. Rules of section "c4" apply only
// when C4 cleanup is on. A document whose attribute is absent passes the rule (e.g. the mean word
// length of a text without a non-CJK word).
struct FilterRule {
  const char* key;        // "section.name", also the removal reason: "repetition.max_dup_line_frac"
  std::string attribute;  // "agpt_gopher__dup_line_frac"
  bool is_max;
  double default_value;   // Gopher's (or C4's) published threshold; < 0: off by default
  const char* what;       // one line for --help and the docs
};
const std::vector<FilterRule>& filter_rules();

// A value from a config file: a number, a boolean, a string or a list of strings.
using ConfigValue = std::variant<double, bool, std::string, std::vector<std::string>>;

struct FilterConfig {
  std::vector<double> thresholds;  // one per filter_rules() entry
  // C4-style line cleanup: off by default. When on, the line rules below remove lines and the c4
  // document rules apply.
  bool c4 = false;
  bool c4_drop_no_terminal_punct = true;
  bool c4_drop_javascript = true;
  bool c4_drop_policy = true;
  double c4_min_words_per_line = 3;  // lines with fewer words are removed (at most 10; < 0: off)
  double c4_max_word_length = 1000;  // lines with a longer word are removed (at least 100; < 0: off)
  // Language: keep a document when its most probable language is in languages and its score is
  // at least min_language_score. Empty: no language rule.
  std::vector<std::string> languages;
  double min_language_score = 0.5;
  std::string langid_model;  // path; needed to compute langid attributes

  FilterConfig();

  // Sets "section.key" (or "key" for top-level keys); throws agpt::Error naming where, listing the
  // known keys when key is unknown, and saying the expected type when value has another.
  void set(std::string_view key, const ConfigValue& value, const std::string& where);
  // Reads a JSON object of sections ({"length": {"min_words": 20}, "c4": {"enabled": true}}).
  void merge_json(std::string_view json_text, const std::string& where);

  double threshold(std::string_view key) const;  // by rule key; throws for an unknown one
  // The effective settings as JSON (for the report).
  std::string to_json() const;
};

}  // namespace agpt::curate
