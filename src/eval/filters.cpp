#include "eval/filters.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "base/error.h"

namespace agpt::eval {
namespace {
std::string strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}
}  // namespace

Filter::Filter(const FilterChain& chain) : name_(chain.name), steps_(chain.steps) {
  for (const FilterStep& s : steps_) {
    if (s.function != "regex") continue;
    try {
      regexes_.emplace_back(s.regex_pattern);
    } catch (const Error& e) {
      fail("filter '", name_, "': ", e.what());
    }
  }
}

std::string Filter::apply(std::vector<std::string> r) const {
  size_t next_regex = 0;
  for (const FilterStep& s : steps_) {
    if (s.function == "regex") {
      const Regex& re = regexes_[next_regex++];
      for (std::string& x : r) {
        std::vector<std::string> m = re.find_all(x);
        long idx = s.group_select < 0 ? static_cast<long>(m.size()) + s.group_select : s.group_select;
        x = idx >= 0 && idx < static_cast<long>(m.size()) ? strip(m[static_cast<size_t>(idx)]) : s.fallback;
      }
    } else if (s.function == "take_first") {
      if (r.size() > 1) r.resize(1);
    } else if (s.function == "majority_vote") {
      if (r.empty()) continue;
      std::map<std::string, size_t> count;
      for (const std::string& x : r) ++count[x];
      std::string best = r[0];
      for (const std::string& x : r)
        if (count[x] > count[best]) best = x;
      r = {best};
    } else if (s.function == "lowercase" || s.function == "uppercase") {
      bool lower = s.function == "lowercase";
      for (std::string& x : r)
        std::transform(x.begin(), x.end(), x.begin(), [lower](unsigned char c) { return lower ? std::tolower(c) : std::toupper(c); });
    } else if (s.function == "strip") {
      for (std::string& x : r) x = strip(x);
    } else if (s.function == "remove_whitespace") {
      for (std::string& x : r)
        if (!x.empty() && x[0] == ' ') x.erase(0, 1);
    } else {
      fail("unknown filter function '", s.function, "'");
    }
  }
  return r.empty() ? std::string() : r[0];
}

}  // namespace agpt::eval
