#include "eval/task.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "base/file.h"
#include "eval/regex.h"
#include "eval/sha256.h"

namespace agpt::eval {
namespace fs = std::filesystem;

const char* output_type_name(OutputType t) {
  switch (t) {
    case OutputType::kMultipleChoice: return "multiple_choice";
    case OutputType::kGenerateUntil: return "generate_until";
    case OutputType::kLoglikelihoodRolling: return "loglikelihood_rolling";
  }
  return "?";
}

namespace {

// Error messages start with "FILE:LINE: field 'NAME'".
struct Ctx {
  std::string file;
  std::string where(const YAML::Node& n, const std::string& field) const {
    std::string s = file;
    if (n.Mark().line >= 0) s += cat(":", n.Mark().line + 1);
    return s + ": field '" + field + "'";
  }
};

std::string scalar(const Ctx& c, const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) fail(c.where(n, field), ": expected a single value (text or number), got a ", n.IsSequence() ? "list" : n.IsMap() ? "mapping" : "null");
  if (n.Tag() == "!function")
    fail(c.where(n, field), ": '!function' (a Python function) cannot run in agpt; write a {{field}} template instead");
  return n.Scalar();
}

int64_t integer(const Ctx& c, const YAML::Node& n, const std::string& field, int64_t lo, int64_t hi) {
  std::string s = scalar(c, n, field);
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != s.size()) fail(c.where(n, field), ": expected an integer, got '", s, "'");
  if (v < lo || v > hi) fail(c.where(n, field), ": ", v, " is outside [", lo, ", ", hi, "]");
  return v;
}

double number(const Ctx& c, const YAML::Node& n, const std::string& field) {
  std::string s = scalar(c, n, field);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != s.size() || !std::isfinite(v)) fail(c.where(n, field), ": expected a number, got '", s, "'");
  return v;
}

bool boolean(const Ctx& c, const YAML::Node& n, const std::string& field) {
  std::string s = scalar(c, n, field);
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (l == "true" || l == "yes") return true;
  if (l == "false" || l == "no") return false;
  fail(c.where(n, field), ": expected true or false, got '", s, "'");
}

std::vector<std::string> string_list(const Ctx& c, const YAML::Node& n, const std::string& field) {
  std::vector<std::string> out;
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) out.push_back(scalar(c, n[i], cat(field, "[", i, "]")));
  } else {
    out.push_back(scalar(c, n, field));
  }
  return out;
}

void check_keys(const Ctx& c, const YAML::Node& map, const std::string& field, const std::set<std::string>& known) {
  if (!map.IsMap()) fail(c.where(map, field), ": expected a mapping (key: value lines)");
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string k = it->first.Scalar();
    if (!known.count(k)) {
      std::string list;
      for (const auto& s : known) list += (list.empty() ? "" : ", ") + s;
      fail(c.where(it->first, field.empty() ? k : field + "." + k), ": unknown field; known fields: ", list);
    }
  }
}

// A YAML file as a map, following `include:` (the base's fields first, this file's override them).
// dir_of: for each top-level field, the folder of the file that set it (its relative paths' base).
YAML::Node load_map(const std::string& path, int depth, std::map<std::string, fs::path>& dir_of) {
  if (depth > 8) fail(path, ": more than 8 nested 'include:' files (is there a cycle?)");
  if (!file_exists(path)) fail("task file ", path, " does not exist");
  YAML::Node root;
  try {
    root = YAML::Load(read_file(path));
  } catch (const YAML::Exception& e) {
    fail(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
  }
  if (!root.IsMap()) fail(path, ": a task file must be a YAML mapping (lines like `task: NAME`)");
  const fs::path dir = fs::path(path).parent_path();
  if (!root["include"]) {
    for (auto it = root.begin(); it != root.end(); ++it) dir_of[it->first.Scalar()] = dir;
    return root;
  }
  Ctx c{path};
  std::string base = scalar(c, root["include"], "include");
  YAML::Node merged = load_map((dir / base).string(), depth + 1, dir_of);
  for (auto it = root.begin(); it != root.end(); ++it)
    if (it->first.Scalar() != "include") {
      merged[it->first.Scalar()] = it->second;
      dir_of[it->first.Scalar()] = dir;
    }
  return merged;
}

// Compiles a pattern now, so a bad one is reported with its place before a model is loaded.
void check_regex(const Ctx& c, const YAML::Node& n, const std::string& field, const std::string& pattern) {
  try {
    Regex re(pattern);
  } catch (const Error& e) {
    fail(c.where(n, field), ": ", e.what());
  }
}

MetricSpec named_metric(const std::string& name) {
  MetricSpec m;
  m.name = name;
  return m;
}

Template make_template(const Ctx& c, const YAML::Node& n, const std::string& field) {
  try {
    return Template(scalar(c, n, field), field);
  } catch (const Error& e) {
    fail(c.where(n, field), ": ", e.what());
  }
}

// The prompt fields of a mapping (the task's top level or one entry of `prompts`) over `base`.
Prompt read_prompt(const Ctx& c, const YAML::Node& m, Prompt p) {
  if (m["description"]) p.description = make_template(c, m["description"], "description");
  if (m["doc_to_text"]) p.doc_to_text = make_template(c, m["doc_to_text"], "doc_to_text");
  if (m["doc_to_target"]) p.doc_to_target = make_template(c, m["doc_to_target"], "doc_to_target");
  if (m["target_delimiter"]) p.target_delimiter = scalar(c, m["target_delimiter"], "target_delimiter");
  if (m["fewshot_delimiter"]) p.fewshot_delimiter = scalar(c, m["fewshot_delimiter"], "fewshot_delimiter");
  if (YAML::Node ch = m["doc_to_choice"]) {
    p.choice_list.clear();
    p.choice_expr = Template();
    if (ch.IsSequence()) {
      if (ch.size() < 2) fail(c.where(ch, "doc_to_choice"), ": a list of choices needs at least 2 entries");
      for (size_t i = 0; i < ch.size(); ++i)
        p.choice_list.push_back(make_template(c, ch[i], cat("doc_to_choice[", i, "]")));
    } else {
      p.choice_expr = make_template(c, ch, "doc_to_choice");
    }
  }
  return p;
}

MetricSpec read_metric(const Ctx& c, const YAML::Node& n, size_t i, OutputType type) {
  const std::string field = cat("metric_list[", i, "]");
  check_keys(c, n, field,
             {"metric", "aggregation", "higher_is_better", "ignore_case", "ignore_punctuation", "ignore_numbers",
              "ignore_whitespace", "regexes_to_ignore"});
  if (!n["metric"]) fail(c.where(n, field), ": each entry needs `metric: NAME`");
  MetricSpec m;
  m.name = scalar(c, n["metric"], field + ".metric");
  std::set<std::string> allowed;
  switch (type) {
    case OutputType::kMultipleChoice: allowed = {"acc", "acc_norm", "acc_bytes", "is_greedy"}; break;
    case OutputType::kGenerateUntil: allowed = {"exact_match"}; break;
    case OutputType::kLoglikelihoodRolling:
      allowed = {"word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"};
      break;
  }
  if (!allowed.count(m.name)) {
    std::string list;
    for (const auto& s : allowed) list += (list.empty() ? "" : ", ") + s;
    fail(c.where(n["metric"], field + ".metric"), ": '", m.name, "' is not a metric of ", output_type_name(type),
         " tasks; use one of ", list);
  }
  if (n["ignore_case"]) m.ignore_case = boolean(c, n["ignore_case"], field + ".ignore_case");
  if (n["ignore_punctuation"]) m.ignore_punctuation = boolean(c, n["ignore_punctuation"], field + ".ignore_punctuation");
  if (n["ignore_numbers"]) m.ignore_numbers = boolean(c, n["ignore_numbers"], field + ".ignore_numbers");
  if (n["ignore_whitespace"]) m.ignore_whitespace = boolean(c, n["ignore_whitespace"], field + ".ignore_whitespace");
  if (n["regexes_to_ignore"]) {
    m.regexes_to_ignore = string_list(c, n["regexes_to_ignore"], field + ".regexes_to_ignore");
    for (const std::string& re : m.regexes_to_ignore) check_regex(c, n["regexes_to_ignore"], field + ".regexes_to_ignore", re);
  }
  if (n["higher_is_better"]) boolean(c, n["higher_is_better"], field + ".higher_is_better");  // checked, fixed per metric
  return m;
}

FilterChain read_filter(const Ctx& c, const YAML::Node& n, size_t i) {
  const std::string field = cat("filter_list[", i, "]");
  check_keys(c, n, field, {"name", "filter"});
  FilterChain chain;
  if (!n["name"] || !n["filter"] || !n["filter"].IsSequence())
    fail(c.where(n, field), ": each filter chain needs `name:` and `filter:` (a list of {function: ...} steps)");
  chain.name = scalar(c, n["name"], field + ".name");
  const YAML::Node steps = n["filter"];
  for (size_t k = 0; k < steps.size(); ++k) {
    const std::string sf = cat(field, ".filter[", k, "]");
    check_keys(c, steps[k], sf, {"function", "regex_pattern", "group_select", "fallback"});
    FilterStep s;
    if (!steps[k]["function"]) fail(c.where(steps[k], sf), ": a filter step needs `function:`");
    s.function = scalar(c, steps[k]["function"], sf + ".function");
    static const std::set<std::string> known = {"regex",     "take_first", "majority_vote",    "lowercase",
                                                "uppercase", "strip",      "remove_whitespace"};
    if (!known.count(s.function))
      fail(c.where(steps[k]["function"], sf + ".function"), ": unknown filter '", s.function,
           "'; use regex, take_first, majority_vote, lowercase, uppercase, strip or remove_whitespace");
    if (s.function == "regex") {
      if (!steps[k]["regex_pattern"]) fail(c.where(steps[k], sf), ": the regex filter needs `regex_pattern:`");
      s.regex_pattern = scalar(c, steps[k]["regex_pattern"], sf + ".regex_pattern");
      check_regex(c, steps[k]["regex_pattern"], sf + ".regex_pattern", s.regex_pattern);
      if (steps[k]["group_select"]) s.group_select = static_cast<int>(integer(c, steps[k]["group_select"], sf + ".group_select", -1000, 1000));
      if (steps[k]["fallback"]) s.fallback = scalar(c, steps[k]["fallback"], sf + ".fallback");
    }
    chain.steps.push_back(std::move(s));
  }
  return chain;
}

}  // namespace

namespace {
Task load_task_checked(const std::string& path) {
  Ctx c{path};
  std::map<std::string, fs::path> dir_of;
  const YAML::Node m = load_map(path, 0, dir_of);
  for (const char* f : {"process_docs", "process_results", "doc_to_image", "doc_to_audio"})
    if (m[f]) fail(c.where(m[f], f), ": Python hooks and multimodal fields are not supported; use {{field}} templates");
  check_keys(c, m, "",
             {"task", "tag", "group", "dataset_path", "dataset_name", "dataset_kwargs", "test_split", "validation_split",
              "training_split", "fewshot_split", "output_type", "doc_to_text", "doc_to_choice", "doc_to_target",
              "description", "target_delimiter", "fewshot_delimiter", "num_fewshot", "metric_list",
              "generation_kwargs", "filter_list", "repeats", "metadata", "prompts", "should_decontaminate",
              "doc_to_decontamination_query", "include"});
  Task t;
  t.file = path;
  t.sha256 = sha256_hex(read_file(path));
  if (!m["task"]) fail(path, ": the task has no name; add `task: NAME`");
  t.name = scalar(c, m["task"], "task");
  if (t.name.empty() || t.name.find_first_of(" ,/\\\t\n") != std::string::npos)
    fail(c.where(m["task"], "task"), ": '", t.name, "' must be non-empty, without spaces, commas or slashes");

  // ---- output type ----
  std::string type = m["output_type"] ? scalar(c, m["output_type"], "output_type") : "multiple_choice";
  if (type == "multiple_choice") t.output_type = OutputType::kMultipleChoice;
  else if (type == "generate_until") t.output_type = OutputType::kGenerateUntil;
  else if (type == "loglikelihood_rolling") t.output_type = OutputType::kLoglikelihoodRolling;
  else
    fail(c.where(m["output_type"], "output_type"), ": '", type,
         "' is not supported; use multiple_choice, generate_until or loglikelihood_rolling");

  // ---- data ----
  if (!m["dataset_path"]) fail(path, ": no data; add `dataset_path: json` with dataset_kwargs.data_files, or a directory of SPLIT.jsonl files");
  std::string dpath = scalar(c, m["dataset_path"], "dataset_path");
  std::string test_split = m["test_split"] ? scalar(c, m["test_split"], "test_split") : "";
  std::string valid_split = m["validation_split"] ? scalar(c, m["validation_split"], "validation_split") : "";
  std::string train_split = m["training_split"] ? scalar(c, m["training_split"], "training_split") : "";
  if (dpath == "json" || dpath == "jsonl") {
    YAML::Node files = m["dataset_kwargs"] ? m["dataset_kwargs"]["data_files"] : YAML::Node();
    if (!files || !files.IsMap())
      fail(c.where(m["dataset_path"], "dataset_path"),
           ": with `dataset_path: json`, give dataset_kwargs.data_files, a mapping from split to a JSONL file");
    for (auto it = files.begin(); it != files.end(); ++it) {
      std::string split = it->first.Scalar();
      std::vector<std::string> list = string_list(c, it->second, "dataset_kwargs.data_files." + split);
      if (list.size() != 1) fail(c.where(it->second, "dataset_kwargs.data_files." + split), ": give exactly one file per split");
      t.data_files[split] = (dir_of["dataset_kwargs"] / list[0]).lexically_normal().string();
    }
  } else {
    fs::path dir = dir_of["dataset_path"] / dpath;
    if (!fs::is_directory(dir))
      fail(c.where(m["dataset_path"], "dataset_path"), ": '", dpath,
           "' is neither `json` (with dataset_kwargs.data_files) nor a directory of SPLIT.jsonl files next to the task file"
           " (Hugging Face hub datasets are not downloaded; convert the data to JSONL)");
    for (const std::string& s : {test_split, valid_split, train_split, std::string(m["fewshot_split"] ? m["fewshot_split"].Scalar() : "")})
      if (!s.empty()) t.data_files[s] = (dir / (s + ".jsonl")).lexically_normal().string();
  }
  t.eval_split = !test_split.empty() ? test_split : valid_split;
  if (t.eval_split.empty()) fail(path, ": say which split to evaluate: add `test_split: NAME` (or validation_split)");
  if (m["fewshot_split"]) t.fewshot_split = scalar(c, m["fewshot_split"], "fewshot_split");
  else if (!train_split.empty()) t.fewshot_split = train_split;
  else if (!valid_split.empty()) t.fewshot_split = valid_split;
  for (const std::string& s : {t.eval_split, t.fewshot_split}) {
    if (s.empty()) continue;
    auto it = t.data_files.find(s);
    if (it == t.data_files.end()) fail(path, ": split '", s, "' has no data file (dataset_kwargs.data_files lists none)");
    if (!file_exists(it->second)) fail(path, ": split '", s, "': data file ", it->second, " does not exist");
  }
  if (m["num_fewshot"]) t.num_fewshot = static_cast<int>(integer(c, m["num_fewshot"], "num_fewshot", 0, 1000));

  // ---- prompts ----
  t.prompt = read_prompt(c, m, Prompt{});
  if (t.prompt.doc_to_text.empty() && t.output_type != OutputType::kLoglikelihoodRolling)
    fail(path, ": add `doc_to_text:`, the template of the question, e.g. \"Question: {{question}}\\nAnswer:\"");
  if (t.output_type == OutputType::kLoglikelihoodRolling) {
    if (t.prompt.doc_to_target.empty())
      fail(path, ": a loglikelihood_rolling task needs `doc_to_target:`, the document text, e.g. \"{{text}}\"");
  } else if (t.prompt.doc_to_target.empty()) {
    fail(path, ": add `doc_to_target:`, the answer (a choice index, the choice text, or the expected text)");
  }
  if (t.output_type == OutputType::kMultipleChoice && !t.prompt.has_choices())
    fail(path, ": a multiple_choice task needs `doc_to_choice:` (a list of templates or e.g. \"{{choices}}\")");
  if (YAML::Node ps = m["prompts"]) {
    if (!ps.IsSequence()) fail(c.where(ps, "prompts"), ": expected a list of prompt variants");
    std::set<std::string> names = {"default"};
    for (size_t i = 0; i < ps.size(); ++i) {
      const std::string f = cat("prompts[", i, "]");
      check_keys(c, ps[i], f,
                 {"name", "description", "doc_to_text", "doc_to_choice", "doc_to_target", "target_delimiter",
                  "fewshot_delimiter"});
      Prompt p = read_prompt(c, ps[i], t.prompt);
      p.name = ps[i]["name"] ? scalar(c, ps[i]["name"], f + ".name") : cat("prompt", i + 1);
      if (!names.insert(p.name).second) fail(c.where(ps[i], f), ": the name '", p.name, "' is used twice");
      t.extra_prompts.push_back(std::move(p));
    }
  }

  // ---- metrics, filters, generation ----
  if (YAML::Node ml = m["metric_list"]) {
    if (!ml.IsSequence() || ml.size() == 0) fail(c.where(ml, "metric_list"), ": expected a non-empty list of {metric: NAME}");
    for (size_t i = 0; i < ml.size(); ++i) t.metrics.push_back(read_metric(c, ml[i], i, t.output_type));
  } else if (t.output_type == OutputType::kMultipleChoice) {
    t.metrics = {named_metric("acc"), named_metric("acc_norm")};
  } else if (t.output_type == OutputType::kGenerateUntil) {
    t.metrics = {named_metric("exact_match")};
  } else {
    t.metrics = {named_metric("word_perplexity"), named_metric("byte_perplexity"), named_metric("bits_per_byte")};
  }
  if (YAML::Node fl = m["filter_list"]) {
    if (t.output_type != OutputType::kGenerateUntil) fail(c.where(fl, "filter_list"), ": filters apply to generate_until tasks only");
    if (!fl.IsSequence() || fl.size() == 0) fail(c.where(fl, "filter_list"), ": expected a non-empty list of filter chains");
    for (size_t i = 0; i < fl.size(); ++i) t.filters.push_back(read_filter(c, fl[i], i));
  } else {
    FilterStep first;
    first.function = "take_first";
    t.filters = {FilterChain{"none", {first}}};
  }
  t.generation.until = {t.prompt.fewshot_delimiter};
  if (YAML::Node g = m["generation_kwargs"]) {
    check_keys(c, g, "generation_kwargs", {"until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k"});
    if (g["until"]) t.generation.until = string_list(c, g["until"], "generation_kwargs.until");
    for (const std::string& s : t.generation.until)
      if (s.empty()) fail(c.where(g["until"], "generation_kwargs.until"), ": a stop string is empty");
    if (g["max_gen_toks"]) t.generation.max_gen_toks = integer(c, g["max_gen_toks"], "generation_kwargs.max_gen_toks", 1, 1 << 20);
    if (g["do_sample"]) t.generation.do_sample = boolean(c, g["do_sample"], "generation_kwargs.do_sample");
    if (g["temperature"]) t.generation.temperature = number(c, g["temperature"], "generation_kwargs.temperature");
    if (g["top_p"]) t.generation.top_p = number(c, g["top_p"], "generation_kwargs.top_p");
    if (g["top_k"]) t.generation.top_k = integer(c, g["top_k"], "generation_kwargs.top_k", 0, 1 << 30);
    if (t.generation.temperature < 0) fail(c.where(g["temperature"], "generation_kwargs.temperature"), ": must be >= 0");
    if (!(t.generation.top_p > 0 && t.generation.top_p <= 1)) fail(c.where(g["top_p"], "generation_kwargs.top_p"), ": must be in (0, 1]");
  }
  if (m["repeats"]) t.repeats = static_cast<int>(integer(c, m["repeats"], "repeats", 1, 1000));
  if (t.repeats > 1 && t.output_type != OutputType::kGenerateUntil)
    fail(c.where(m["repeats"], "repeats"), ": repeats are for generate_until tasks (maj@k); log-likelihoods do not change");
  if (YAML::Node md = m["metadata"]; md && md.IsMap() && md["version"]) t.version = scalar(c, md["version"], "metadata.version");
  return t;
}
}  // namespace

Task load_task(const std::string& path) {
  try {
    return load_task_checked(path);
  } catch (const YAML::Exception& e) {  // a shape the checks above did not foresee
    fail(path, ":", e.mark.line + 1, ": ", e.msg, " (see docs/eval.md for the task file format)");
  }
}

std::vector<std::string> resolve_task_files(const std::string& spec, const std::vector<std::string>& search_dirs) {
  auto yaml_files_below = [](const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::string ext = it->path().extension().string();
      if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml")) out.push_back(it->path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  // The name a file declares (task:), without a full check; "" when unreadable.
  auto declared_name = [](const std::string& file) -> std::string {
    try {
      YAML::Node n = YAML::LoadFile(file);
      if (n.IsMap() && n["task"] && n["task"].IsScalar()) return n["task"].Scalar();
    } catch (...) {
    }
    return "";
  };
  // The same folder may be reached twice (./examples/tasks and the binary's source tree).
  std::vector<std::string> dirs_seen;
  std::vector<std::string> search;
  for (const std::string& d : search_dirs) {
    std::error_code ec;
    std::string canon = fs::weakly_canonical(d, ec).string();
    if (ec || std::find(dirs_seen.begin(), dirs_seen.end(), canon) != dirs_seen.end()) continue;
    dirs_seen.push_back(canon);
    search.push_back(d);
  }
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    if (item.empty()) continue;
    if (fs::is_regular_file(item)) {
      out.push_back(item);
      continue;
    }
    if (fs::is_directory(item)) {
      auto files = yaml_files_below(item);
      if (files.empty()) fail("--tasks: directory ", item, " holds no .yaml task files");
      out.insert(out.end(), files.begin(), files.end());
      continue;
    }
    // A folder of a search dir ("science" for examples/tasks/science): every task file below it.
    bool folder = false;
    for (const std::string& d : search)
      if (item.find("..") == std::string::npos && fs::is_directory(fs::path(d) / item)) {
        auto files = yaml_files_below(fs::path(d) / item);
        out.insert(out.end(), files.begin(), files.end());
        folder = !files.empty();
        if (folder) break;
      }
    if (folder) continue;
    std::vector<std::string> found;
    std::set<std::string> known;
    for (const std::string& d : search) {
      if (!fs::is_directory(d)) continue;
      for (const std::string& f : yaml_files_below(d)) {
        std::string name = declared_name(f);
        if (!name.empty()) known.insert(name);
        if (name == item || (name.empty() && fs::path(f).stem() == item)) found.push_back(f);
      }
    }
    if (found.empty()) {
      std::string dirs, names;
      for (const auto& d : search) dirs += (dirs.empty() ? "" : ", ") + d;
      for (const auto& n : known) names += (names.empty() ? "" : ", ") + n;
      fail("--tasks: '", item, "' is not a task file, a directory, or a task name found in ", dirs.empty() ? "(no task dirs)" : dirs,
           names.empty() ? std::string() : "; known tasks: " + names);
    }
    if (found.size() > 1) fail("--tasks: the task name '", item, "' is declared by more than one file: ", found[0], " and ", found[1]);
    out.push_back(found[0]);
  }
  if (out.empty()) fail("--tasks: no task given");
  return out;
}

}  // namespace agpt::eval
