#include "eval/template.h"

#include <cctype>

#include "base/error.h"

namespace agpt::eval {
namespace {

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_ident(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string field_list(const Json& doc) {
  if (!doc.is_object()) return "(not an object)";
  std::string out;
  for (auto it = doc.begin(); it != doc.end(); ++it) out += (out.empty() ? "" : ", ") + it.key();
  return out.empty() ? "(none)" : out;
}

}  // namespace

std::string value_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  return v.dump();
}

Template::Template(std::string source, std::string what) : source_(std::move(source)), what_(std::move(what)) {
  const std::string& s = source_;
  if (s.find("{%") != std::string::npos)
    fail(what_, ": Jinja statements ({% ... %}) are not supported in agpt task files; use {{field}} "
                "holes only (template: \"", s, "\")");
  size_t pos = 0;
  while (pos < s.size()) {
    size_t open = s.find("{{", pos);
    if (open == std::string::npos) {
      parts_.push_back({false, s.substr(pos), {}});
      break;
    }
    if (open > pos) parts_.push_back({false, s.substr(pos, open - pos), {}});
    size_t close = s.find("}}", open + 2);
    if (close == std::string::npos) fail(what_, ": '{{' at character ", open, " is never closed with '}}'");
    std::string expr = trim(std::string_view(s).substr(open + 2, close - open - 2));
    auto bad = [&](const std::string& why) -> void {
      fail(what_, ": {{", expr, "}}: ", why,
           "; agpt templates take a field path only, e.g. {{question}}, {{choices[0]}}, {{meta.source}}");
    };
    Part part{true, expr, {}};
    size_t i = 0;
    if (expr.empty() || !is_ident_start(expr[0])) bad("an expression must start with a field name");
    while (i < expr.size()) {
      if (std::isspace(static_cast<unsigned char>(expr[i]))) {
        ++i;
        continue;
      }
      if (part.path.empty() || expr[i] == '.') {
        if (expr[i] == '.') ++i;
        size_t b = i;
        while (i < expr.size() && is_ident(expr[i])) ++i;
        if (i == b) bad("a name is missing after '.'");
        part.path.push_back({false, 0, expr.substr(b, i - b)});
      } else if (expr[i] == '[') {
        size_t e = expr.find(']', i);
        if (e == std::string::npos) bad("'[' is never closed");
        std::string inner = trim(std::string_view(expr).substr(i + 1, e - i - 1));
        Step step;
        if (inner.size() >= 2 && (inner.front() == '\'' || inner.front() == '"') && inner.back() == inner.front()) {
          step.key = inner.substr(1, inner.size() - 2);
        } else if (!inner.empty() && inner.size() <= 9 &&
                   inner.find_first_not_of("0123456789") == std::string::npos) {
          step.is_index = true;
          step.index = std::stoul(inner);
        } else {
          bad("an index must be a non-negative integer or a quoted key, not '" + inner + "'");
        }
        part.path.push_back(step);
        i = e + 1;
      } else if (expr[i] == '|') {
        bad("Jinja filters ('|') are not supported");
      } else if (expr[i] == '(') {
        bad("calls are not supported");
      } else {
        bad(std::string("unexpected character '") + expr[i] + "'");
      }
    }
    parts_.push_back(std::move(part));
    pos = close + 2;
  }
}

const Json& Template::resolve(const Part& part, const Json& doc) const {
  const Json* v = &doc;
  std::string walked;
  for (const Step& step : part.path) {
    if (step.is_index) {
      if (!v->is_array() || step.index >= v->size())
        fail(what_, ": {{", part.text, "}}: ", walked, " is ",
             v->is_array() ? cat("a list of ", v->size(), " items") : std::string("not a list"),
             ", so [", step.index, "] does not exist");
      v = &(*v)[step.index];
      walked += cat("[", step.index, "]");
    } else {
      if (!v->is_object() || !v->contains(step.key))
        fail(what_, ": {{", part.text, "}}: the document has no field '", walked.empty() ? "" : walked + ".",
             step.key, "' (its fields: ", field_list(*v), ")");
      v = &(*v)[step.key];
      walked += (walked.empty() ? "" : ".") + step.key;
    }
  }
  return *v;
}

std::string Template::render(const Json& doc, bool field_shortcut) const {
  if (field_shortcut && parts_.size() == 1 && !parts_[0].is_expr && doc.is_object() && doc.contains(source_))
    return value_text(doc[source_]);
  std::string out;
  for (const Part& p : parts_) out += p.is_expr ? value_text(resolve(p, doc)) : p.text;
  return out;
}

Json Template::value(const Json& doc) const {
  if (is_single_expression()) return resolve(parts_[0], doc);
  if (parts_.size() == 1 && doc.is_object() && doc.contains(source_)) return doc[source_];
  return render(doc);
}

}  // namespace agpt::eval
