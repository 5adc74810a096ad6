// Progress reporting for long work: a redrawn bar with rate and ETA when stderr is a terminal,
// otherwise a plain log line every few seconds (batch jobs, CI logs).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace agpt {

class Progress {
 public:
  // total may be 0 when unknown (then no ETA or percentage is shown).
  // unit names what is counted ("B" is shown as kB/MB/GB with rates in MB/s).
  Progress(std::string label, uint64_t total, std::string unit);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t n);  // thread-safe
  void set_total(uint64_t total) { total_ = total; }
  void finish();  // prints the final line once

  static void set_enabled(bool enabled);  // --quiet turns progress output off

 private:
  void draw(bool final_line);
  std::string format_amount(double v) const;

  std::string label_, unit_;
  std::atomic<uint64_t> done_{0};
  std::atomic<uint64_t> total_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mutex_;
  bool terminal_;
  bool finished_ = false;
};

}  // namespace agpt
