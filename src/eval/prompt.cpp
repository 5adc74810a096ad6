#include "eval/prompt.h"

#include <algorithm>
#include <numeric>

#include "base/error.h"
#include "infer/sampler.h"

namespace agpt::eval {

Answer read_answer(const Task& task, const Prompt& prompt, const Doc& doc) {
  Answer a;
  try {
    if (task.output_type == OutputType::kLoglikelihoodRolling) {
      a.targets = {prompt.doc_to_target.render(doc.value)};
      return a;
    }
    if (prompt.has_choices()) {
      if (!prompt.choice_list.empty()) {
        for (const Template& t : prompt.choice_list) a.choices.push_back(t.render(doc.value));
      } else {
        Json v = prompt.choice_expr.value(doc.value);
        if (!v.is_array() || v.size() < 2)
          fail("doc_to_choice \"", prompt.choice_expr.source(), "\" must give a list of at least 2 choices, got ",
               v.is_array() ? cat("a list of ", v.size()) : std::string(v.type_name()));
        for (const Json& c : v) a.choices.push_back(value_text(c));
      }
    }
    Json target = prompt.doc_to_target.value(doc.value);
    auto index_of = [&](const Json& t) -> int {
      std::string s = value_text(t);
      // As lm-evaluation-harness: a target that is all digits is an index into the choices.
      const bool digits = !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
      if (t.is_number_integer() || (t.is_string() && digits)) {
        int64_t i = t.is_number_integer() ? t.get<int64_t>() : std::stoll(s);
        if (i < 0 || i >= static_cast<int64_t>(a.choices.size()))
          fail("doc_to_target gives index ", i, ", but there are ", a.choices.size(), " choices");
        return static_cast<int>(i);
      }
      auto it = std::find(a.choices.begin(), a.choices.end(), s);
      if (it == a.choices.end()) fail("doc_to_target gives '", s, "', which is not one of the choices");
      return static_cast<int>(it - a.choices.begin());
    };
    if (task.output_type == OutputType::kMultipleChoice) {
      if (target.is_array()) {
        for (const Json& t : target) a.gold.push_back(index_of(t));
        if (a.gold.empty()) fail("doc_to_target gives an empty list");
      } else {
        a.gold.push_back(index_of(target));
      }
    } else if (target.is_array()) {
      for (const Json& t : target) a.targets.push_back(value_text(t));
      if (a.targets.empty()) fail("doc_to_target gives an empty list");
    } else if (prompt.has_choices() && (target.is_number_integer())) {
      a.targets.push_back(a.choices.at(static_cast<size_t>(index_of(target))));
    } else {
      a.targets.push_back(value_text(target));
    }
  } catch (const Error& e) {
    fail(doc.where, ": task ", task.name, ", prompt ", prompt.name, ": ", e.what());
  }
  return a;
}

std::vector<size_t> sample_shots(size_t pool_size, size_t k, uint64_t seed, size_t doc_index, std::optional<size_t> exclude) {
  size_t available = pool_size - (exclude && *exclude < pool_size ? 1 : 0);
  if (k > available) fail(k, "-shot prompts need ", k, " few-shot documents, but only ", available, " are available");
  std::vector<size_t> pool(pool_size);
  std::iota(pool.begin(), pool.end(), 0);
  if (exclude && *exclude < pool_size) pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(*exclude));
  infer::Rng rng(seed ^ (0x9E3779B97F4A7C15ull * (doc_index + 1)));
  // Partial Fisher-Yates: the first k positions become a uniform sample without replacement.
  for (size_t i = 0; i < k; ++i) {
    size_t j = i + static_cast<size_t>(rng.next() % (pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(k);
  return pool;
}

Instance build_instance(const Task& task, const Prompt& prompt, const Doc& doc, const std::vector<const Doc*>& shots) {
  Instance in;
  Answer a = read_answer(task, prompt, doc);
  in.choices = std::move(a.choices);
  in.gold = std::move(a.gold);
  in.targets = std::move(a.targets);
  if (task.output_type == OutputType::kLoglikelihoodRolling) return in;
  std::string ctx;
  try {
    ctx = prompt.description.render(doc.value, /*field_shortcut=*/false);
  } catch (const Error& e) {
    fail(doc.where, ": task ", task.name, ", prompt ", prompt.name, ": ", e.what());
  }
  for (const Doc* s : shots) {
    try {
      ctx += prompt.doc_to_text.render(s->value) + prompt.target_delimiter + read_answer(task, prompt, *s).shot_text() +
             prompt.fewshot_delimiter;
    } catch (const Error& e) {
      if (std::string_view(e.what()).starts_with(s->where)) throw;
      fail(s->where, ": task ", task.name, " (few-shot example): ", e.what());
    }
  }
  try {
    in.context = ctx + prompt.doc_to_text.render(doc.value);
  } catch (const Error& e) {
    fail(doc.where, ": task ", task.name, ", prompt ", prompt.name, ": ", e.what());
  }
  return in;
}

}  // namespace agpt::eval
