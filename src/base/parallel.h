// Minimal data parallelism: run fn(i) for i in [0, n) on a number of threads.
// Results must not depend on the thread count: callers write into slot i, never append.
#pragma once
#include <cstddef>
#include <functional>

namespace agpt {

// Threads to use when the user gives 0 ("all cores").
int default_threads();

// Runs fn(i) for every i in [0, n) on up to `threads` threads (work-stealing by an atomic counter).
// The first exception thrown by fn is rethrown in the caller after all threads stop.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn);

}  // namespace agpt
