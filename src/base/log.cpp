#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace agpt {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::mutex g_mutex;
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(const char* tag, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "agpt %s: %s\n", tag, message.c_str());
  std::fflush(stderr);
}

bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

}  // namespace agpt
