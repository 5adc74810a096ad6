#include "dist/watchdog.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace agpt::dist {

Watchdog::Watchdog(const Communicator& comm, double timeout_s) : timeout_s_(timeout_s) {
  rank_label_ = "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) + " (host " + comm.host() + ")";
  if (timeout_s_ > 0) thread_ = std::thread([this] { watch(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Watchdog::Guard Watchdog::guard(std::string what) {
  if (timeout_s_ <= 0) return Guard(nullptr);
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::move(what);
  started_ = std::chrono::steady_clock::now();
  return Guard(this);
}

void Watchdog::end() {
  std::lock_guard<std::mutex> lock(mutex_);
  current_.clear();
}

void Watchdog::watch() {
  // Checks a few times per timeout (at least every second), so the exit comes soon after it.
  const auto tick = std::chrono::duration<double>(std::min(1.0, timeout_s_ / 8));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    cv_.wait_for(lock, tick);
    if (stop_ || current_.empty()) continue;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (waited < timeout_s_) continue;
    std::fprintf(stderr,
                 "agpt error: %s: %s has not completed after %.0f s (dist.timeout = %g s): another rank is hung, "
                 "dead or far behind. Exiting with code %d so the job can restart from the last checkpoint "
                 "(agpt train ... --resume).\n",
                 rank_label_.c_str(), current_.c_str(), waited, timeout_s_, kHangExitCode);
    std::fflush(stderr);
    std::fflush(stdout);
    // Not MPI_Abort: this thread is not allowed to call MPI (FUNNELED); the launcher ends the
    // other ranks when one exits without finalising.
    std::_Exit(kHangExitCode);
  }
}

}  // namespace agpt::dist
