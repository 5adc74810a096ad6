// Plain log lines on stderr. Quiet mode silences info lines, never warnings or errors.
#pragma once
#include <string>

#include "base/error.h"

namespace agpt {

enum class LogLevel { kQuiet = 0, kInfo = 1, kDebug = 2 };

void set_log_level(LogLevel level);
LogLevel log_level();

void log_line(const char* tag, const std::string& message);

template <typename... Args>
void log_info(const Args&... args) {
  if (log_level() >= LogLevel::kInfo) log_line("info", cat(args...));
}
template <typename... Args>
void log_debug(const Args&... args) {
  if (log_level() >= LogLevel::kDebug) log_line("debug", cat(args...));
}
template <typename... Args>
void log_warn(const Args&... args) {
  log_line("warning", cat(args...));
}

// True when stderr is an interactive terminal (progress bars instead of log lines).
bool stderr_is_terminal();

}  // namespace agpt
