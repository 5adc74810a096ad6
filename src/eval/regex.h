// A compiled PCRE2 regular expression (Perl/Python syntax, UTF-8) for answer extraction and
// normalisation, with the two operations task files need.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace agpt::eval {

class Regex {
 public:
  // Fails (agpt::Error) with PCRE2's message and the offset on a bad pattern.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Every non-overlapping match, as Python's re.findall gives it: the whole match without groups,
  // otherwise the first non-empty group of each match ("" when all are empty).
  std::vector<std::string> find_all(std::string_view text) const;
  std::string replace_all(std::string_view text, std::string_view with) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agpt::eval
