// What every benchmark reports about the machine and its own cost (header-only, bench/ only).
#pragma once
#include <sys/resource.h>
#include <time.h>

#include <fstream>
#include <string>

namespace agpt::bench {

// The CPU model from /proc/cpuinfo ("unknown" where it is not there).
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

// A field of /proc/self/status in kB (VmHWM: peak resident; RssAnon: private memory; RssFile:
// mapped file pages, which the kernel can drop at any time); -1 if absent.
inline long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  return -1;
}

// CPU time of the calling thread: unlike wall time, not inflated when other processes share the cores.
inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// CPU time of the whole process (user + system, all threads).
inline double process_cpu_seconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

}  // namespace agpt::bench
