// Errors that reach the user: what went wrong, where, and what to do about it.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace agpt {

// Concatenates any streamable values into one string: cat("line ", 3, ": bad").
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// The one exception type agpt throws for bad input, bad configuration or failed I/O.
// Messages name the place (file:line, key) and, where possible, the fix.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace agpt
