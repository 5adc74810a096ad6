// Prompt templates of evaluation task files: text with `{{ expression }}` holes filled from one
// document (a JSON object), the small subset of Jinja that lm-evaluation-harness task files use most.
//
//   Template t("Question: {{question}}\nAnswer:", "doc_to_text");
//   std::string prompt = t.render(doc);               // doc = {"question": "...", ...}
//
// An expression is a path: a field name, then `.name`, `[3]` or `['key']` steps, e.g.
// `{{choices[0]}}`, `{{meta.source}}`, `{{ answer }}`. Strings are inserted as they are, numbers in
// their JSON form, true/false/null as Python prints them (True, False, None). Jinja statements
// (`{% ... %}`), filters (`|`) and calls are rejected when the template is parsed, with the reason.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace agpt::eval {

using Json = nlohmann::json;

class Template {
 public:
  Template() = default;
  // what names the template in errors (e.g. "doc_to_text"). Fails (agpt::Error) on bad syntax.
  Template(std::string source, std::string what);

  const std::string& source() const { return source_; }
  bool empty() const { return source_.empty(); }
  // True when the whole template is one expression ("{{choices}}"), so it may stand for a value
  // that is not text (a list of choices, an integer label).
  bool is_single_expression() const { return parts_.size() == 1 && parts_[0].is_expr; }

  // The text; fails naming the template, the expression and the document's fields when a path
  // does not resolve. lm-evaluation-harness shortcut: a template without `{{` that is exactly the
  // name of a field of the document stands for that field.
  std::string render(const Json& doc, bool field_shortcut = true) const;
  // The value of a single-expression template (or of the field-name shortcut); otherwise the
  // rendered text as a JSON string.
  Json value(const Json& doc) const;

 private:
  struct Step {
    bool is_index = false;
    size_t index = 0;
    std::string key;
  };
  struct Part {
    bool is_expr = false;
    std::string text;  // literal text, or the expression as written
    std::vector<Step> path;
  };
  const Json& resolve(const Part& part, const Json& doc) const;

  std::string source_, what_;
  std::vector<Part> parts_;
};

// How a value is written into prompt text (strings as is, numbers as JSON, True/False/None).
std::string value_text(const Json& v);

}  // namespace agpt::eval
