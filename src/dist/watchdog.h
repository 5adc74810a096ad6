// Watchdog: turns a collective that hangs into a clear error and a non-zero exit, so a job script
// can restart from the last checkpoint instead of burning its allocation. A collective that waits
// for a dead, hung or far-behind rank never returns; the watchdog thread sees how long the current
// guarded operation has run and, past the timeout, names the rank, host and operation on stderr
// and ends the process (the launcher then ends the others).
//
//   Watchdog dog(comm, 600);
//   { auto g = dog.guard("reduce-scatter of the gradients, step 12"); comm.reduce_scatter_sum(...); }
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "dist/communicator.h"

namespace agpt::dist {

// Exit code of a process ended by the watchdog.
constexpr int kHangExitCode = 3;

class Watchdog {
 public:
  // timeout_s <= 0: no watchdog (guard() does nothing).
  Watchdog(const Communicator& comm, double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  class Guard {
   public:
    explicit Guard(Watchdog* dog) : dog_(dog) {}
    Guard(Guard&& o) noexcept : dog_(o.dog_) { o.dog_ = nullptr; }
    ~Guard() {
      if (dog_) dog_->end();
    }

   private:
    Watchdog* dog_;
  };
  // Marks `what` as running until the guard is destroyed.
  [[nodiscard]] Guard guard(std::string what);
  double timeout() const { return timeout_s_; }

 private:
  void end();
  void watch();

  std::string rank_label_;
  double timeout_s_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string current_;  // the guarded operation ("" when none)
  std::chrono::steady_clock::time_point started_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace agpt::dist
