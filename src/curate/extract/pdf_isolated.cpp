#include "curate/extract/pdf_isolated.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/log.h"

namespace agpt::curate::extract {
namespace {

constexpr char kMagic[8] = {'A', 'G', 'P', 'T', 'P', 'D', 'F', '1'};
constexpr int kResultFd = 3;  // the child's end of the pipe

// A one-page PDF with one line of text (a cross-reference table is not needed: poppler rebuilds it).
constexpr std::string_view kWarmUpPdf =
    "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R"
    "/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    "4 0 obj<</Length 37>>stream\nBT /F1 12 Tf 20 100 Td (warm up) Tj ET\nendstream endobj\n"
    "5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    "trailer<</Root 1 0 R>>\n%%EOF\n";

void put_u64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}
void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

struct Cursor {
  std::string_view in;
  bool ok = true;
  uint64_t u64() {
    if (in.size() < 8) {
      ok = false;
      return 0;
    }
    uint64_t v;
    std::memcpy(&v, in.data(), 8);
    in.remove_prefix(8);
    return v;
  }
  std::string str() {
    uint64_t n = u64();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

// The signal's name ("SIGSEGV"), or its number.
std::string signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    default: return "signal " + std::to_string(sig);
  }
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// In the child: keep only the result pipe (as fd 3) and the standard streams, so the child holds no
// other thread's pipe (their reader would wait for it) and cannot touch the run's output files.
void close_other_fds(int result_fd) {
  if (result_fd != kResultFd) {
    ::dup2(result_fd, kResultFd);
    ::close(result_fd);
  }
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, kResultFd + 1, ~0U, 0) == 0) return;
#endif
  long max = ::sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = kResultFd + 1; fd < max; ++fd) ::close(fd);
}

// The test hook (see the header): crash or hang when asked for this PDF.
void test_hook(std::string_view data) {
  const char* v = std::getenv("AGPT_TEST_PDF_CHILD");
  if (!v || !*v) return;
  std::string_view spec(v);
  std::string_view what = spec.substr(0, spec.find(':'));
  if (spec.find(':') != std::string_view::npos) {
    std::string_view marker = spec.substr(spec.find(':') + 1);
    if (data.find(marker) == std::string_view::npos) return;
  }
  if (what == "crash") std::abort();
  if (what == "hang")
    while (true) ::pause();
}

[[noreturn]] void child_main(int result_fd, std::string_view data, PdfLayout layout) {
  close_other_fds(result_fd);
  test_hook(data);
  std::string msg = encode_pdf_text(read_pdf(data, layout));
  _exit(write_all(kResultFd, msg) ? 0 : 3);
}

PdfText failed(const char* failure, std::string detail) {
  PdfText t;
  t.failure = failure;
  t.detail = std::move(detail);
  return t;
}

}  // namespace

std::string encode_pdf_text(const PdfText& t) {
  std::string out(kMagic, sizeof kMagic);
  put_u64(out, 0);  // total length, set below
  put_str(out, t.failure);
  put_str(out, t.detail);
  put_str(out, t.title);
  put_str(out, t.author);
  put_u64(out, t.warnings.size());
  for (const auto& w : t.warnings) put_str(out, w);
  put_u64(out, t.pages.size());
  for (const auto& p : t.pages) put_str(out, p);
  const uint64_t total = out.size();
  std::memcpy(out.data() + sizeof kMagic, &total, 8);
  return out;
}

bool decode_pdf_text(std::string_view bytes, PdfText& t) {
  if (bytes.size() < sizeof kMagic + 8 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return false;
  Cursor c{bytes.substr(sizeof kMagic)};
  if (c.u64() != bytes.size()) return false;
  t = PdfText{};
  t.failure = c.str();
  t.detail = c.str();
  t.title = c.str();
  t.author = c.str();
  uint64_t n = c.u64();
  for (uint64_t i = 0; c.ok && i < n; ++i) t.warnings.push_back(c.str());
  n = c.u64();
  for (uint64_t i = 0; c.ok && i < n; ++i) t.pages.push_back(c.str());
  return c.ok && c.in.empty();
}

PdfText read_pdf_isolated(std::string_view data, PdfLayout layout, const PdfIsolation& iso) {
  // poppler's global state (built once per process) is set up here, on a small PDF of our own,
  // so that each child starts with it instead of building it again.
  static std::once_flag warm;
  std::call_once(warm, [] { read_pdf(kWarmUpPdf, PdfLayout::kRaw); });
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    static std::once_flag once;
    std::call_once(once, [] { log_warn("cannot create a pipe (", std::strerror(errno), "): PDFs are read in this process"); });
    return read_pdf(data, layout);
  }
  const pid_t pid = ::fork();
  if (pid == 0) child_main(p[1], data, layout);
  ::close(p[1]);
  if (pid < 0) {
    int err = errno;
    ::close(p[0]);
    static std::once_flag once;
    std::call_once(once, [err] { log_warn("cannot start a process (", std::strerror(err), "): PDFs are read in this process"); });
    return read_pdf(data, layout);
  }

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(iso.timeout_s > 0 ? iso.timeout_s : 1e9));
  auto ms_left = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1000));
  };
  std::string msg;
  bool timed_out = false;
  char buf[1 << 16];
  while (true) {
    if (Clock::now() >= deadline) {
      timed_out = true;
      break;
    }
    pollfd pf{p[0], POLLIN, 0};
    int r = ::poll(&pf, 1, ms_left());
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n > 0) msg.append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) break;  // EOF: the child is done (or dead)
  }
  ::close(p[0]);
  // Reap the child: after EOF it is exiting; wait for it up to the deadline, then kill it.
  int status = 0;
  if (timed_out) ::kill(pid, SIGKILL);
  while (true) {
    pid_t w = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (Clock::now() >= deadline) {  // the pipe closed but the child lives on
      timed_out = true;
      ::kill(pid, SIGKILL);
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (timed_out) {
    return failed("timed out", cat("poppler took more than ", iso.timeout_s,
                                   " s on it and was stopped (a hostile or pathological PDF?); "
                                   "raise --pdf-timeout if the file is only large"));
  }
  PdfText t;
  if (WIFSIGNALED(status))
    return failed("crashed", cat("poppler crashed on it (", signal_name(WTERMSIG(status)),
                                 "); the file is damaged or hostile, and was skipped"));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !decode_pdf_text(msg, t))
    return failed("crashed", cat("the poppler process ended without a complete result (exit status ",
                                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, ", ", msg.size(), " bytes sent)"));
  return t;
}

}  // namespace agpt::curate::extract
