#include "base/progress.h"

#include <cstdio>

#include "base/log.h"

namespace agpt {
namespace {
std::atomic<bool> g_enabled{true};
constexpr double kTerminalRedrawSeconds = 0.1;
constexpr double kLogLineSeconds = 10.0;

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}
}  // namespace

void Progress::set_enabled(bool enabled) { g_enabled = enabled; }

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      start_(std::chrono::steady_clock::now()), last_draw_(start_),
      terminal_(stderr_is_terminal()) {}

Progress::~Progress() { finish(); }

std::string Progress::format_amount(double v) const {
  char buf[64];
  if (unit_ == "B") {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (v >= 1000 && i < 4) { v /= 1000; ++i; }
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[i]);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM %s", v / 1e6, unit_.c_str());
  } else if (v >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fk %s", v / 1e3, unit_.c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, unit_.c_str());
  }
  return buf;
}

void Progress::add(uint64_t n) {
  done_ += n;
  if (!g_enabled) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since < (terminal_ ? kTerminalRedrawSeconds : kLogLineSeconds)) return;
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (g_enabled) draw(true);
}

void Progress::draw(bool final_line) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double done = static_cast<double>(done_.load());
  double total = static_cast<double>(total_.load());
  double rate = elapsed > 0 ? done / elapsed : 0;
  std::string line = label_ + " " + format_amount(done);
  if (total > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " %5.1f%%", 100.0 * done / total);
    line += "/" + format_amount(total) + pct;
  }
  line += " " + format_amount(rate) + "/s";
  if (final_line) {
    line += " in " + format_duration(elapsed);
  } else if (total > 0 && rate > 0) {
    line += " ETA " + format_duration((total - done) / rate);
  }
  if (terminal_) {
    std::string bar;
    if (total > 0) {
      int width = 24, filled = static_cast<int>(width * std::min(1.0, done / total));
      bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    }
    std::fprintf(stderr, "\r\033[K%s%s%s", bar.c_str(), line.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
  } else {
    log_line("progress", line);
  }
}

}  // namespace agpt
