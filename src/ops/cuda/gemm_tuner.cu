// GemmTuner (see gemm_tuner.cuh): cuBLASLt descriptors per product, candidate timing with CUDA
// events, and the results file shared through an flock.
#include "ops/cuda/gemm_tuner.cuh"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "ops/cuda/cuda_common.cuh"

namespace agpt::ops::cuda {
namespace {

using Key = GemmTuner::Key;
using Stored = GemmTuner::Stored;

constexpr std::string_view kFormat = "agpt-gemm-tuning";  // the header's first word
// v2: choices keep the heuristic's first candidate unless another is kMinGain faster (v1 files
// hold choices made without that rule, so they are re-tuned).
constexpr std::string_view kVersion = "v2";
constexpr int kCandidates = 16;  // asked of the heuristic; the file's indices refer to this list
constexpr int kWarmupCalls = 2;
constexpr int kTimedCalls = 5;
constexpr double kMinGain = 0.03;  // see choose_candidate
// cuBLASLt's heuristic assumes 256-byte aligned matrices unless told otherwise
// (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES); its candidates may need it.
constexpr uintptr_t kAlignment = 256;
constexpr size_t kMaxFileBytes = size_t{16} << 20;  // a real file holds a few hundred short lines

void check_lt(cublasStatus_t st, const char* call) {
  if (st != CUBLAS_STATUS_SUCCESS) fail("cuBLASLt error in ", call, ": ", cublasGetStatusString(st));
}
#define AGPT_LT_CHECK(call) check_lt((call), #call)

// "T N m=... beta=zero": the key as the file writes it (and as messages name the product).
std::string describe(const Key& k) {
  return cat(k.opa, ' ', k.opb, " m=", k.m, " n=", k.n, " k=", k.k, " lda=", k.lda, " ldb=", k.ldb, " ldc=", k.ldc,
             " c=", k.c_bf16 ? "bf16" : "fp32", " beta=", k.beta_zero ? "zero" : "nonzero");
}

std::string entry_line(const Key& k, const Stored& s) {
  return cat(describe(k), " algo=", s.index, " config=", s.config, " ms=", s.ms);
}

// The algorithm's full configuration (the attributes that define a cuBLASLt algorithm), as
// "id.tile.splitk.reduction.swizzle.custom.stages.inner.cluster": what identifies it across runs.
std::string algo_config(const cublasLtMatmulAlgo_t& algo) {
  static constexpr cublasLtMatmulAlgoConfigAttributes_t kAttributes[] = {
      CUBLASLT_ALGO_CONFIG_ID,           CUBLASLT_ALGO_CONFIG_TILE_ID,        CUBLASLT_ALGO_CONFIG_SPLITK_NUM,
      CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION,
      CUBLASLT_ALGO_CONFIG_STAGES_ID,    CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID};
  std::string s;
  for (cublasLtMatmulAlgoConfigAttributes_t attribute : kAttributes) {
    size_t size = 0;
    AGPT_LT_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, attribute, nullptr, 0, &size));
    uint64_t value = 0;  // the attributes are 2- or 4-byte integers: they fill the low bytes
    if (size == 0 || size > sizeof value) fail("cuBLASLt algorithm attribute ", attribute, " has ", size, " bytes");
    AGPT_LT_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, attribute, &value, size, &size));
    if (!s.empty()) s += '.';
    s += std::to_string(value);
  }
  return s;
}

// ---- the file's entry lines ----

bool parse_int(std::string_view s, int& out) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0 || v > INT32_MAX) return false;
  out = static_cast<int>(v);
  return true;
}

// "name=value" -> value, or false.
bool field(std::string_view token, std::string_view name, std::string_view& value) {
  if (token.size() <= name.size() || token.substr(0, name.size()) != name || token[name.size()] != '=') return false;
  value = token.substr(name.size() + 1);
  return true;
}

bool valid_config(std::string_view c) {
  int fields = 1;
  size_t digits = 0;
  for (char ch : c) {
    if (ch == '.') {
      if (digits == 0) return false;
      ++fields, digits = 0;
    } else if (ch < '0' || ch > '9' || ++digits > 10) {
      return false;
    }
  }
  return digits > 0 && fields == 9;
}

// One entry line (see gemm_tuner.cuh); on failure `why` says what is wrong.
bool parse_entry(std::string_view line, Key& key, Stored& stored, std::string& why) {
  std::vector<std::string_view> t;
  for (size_t pos = 0; pos <= line.size() && t.size() <= 13;) {
    size_t sp = line.find(' ', pos);
    if (sp == std::string_view::npos) sp = line.size();
    t.push_back(line.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (t.size() != 13) {
    why = cat("expected 13 space-separated fields, found ", t.size());
    return false;
  }
  auto op = [](std::string_view s, char& out) {
    if (s != "N" && s != "T") return false;
    out = s[0];
    return true;
  };
  if (!op(t[0], key.opa) || !op(t[1], key.opb)) {
    why = "the operations must be N or T";
    return false;
  }
  static constexpr std::string_view kIntNames[] = {"m", "n", "k", "lda", "ldb", "ldc"};
  int* ints[] = {&key.m, &key.n, &key.k, &key.lda, &key.ldb, &key.ldc};
  std::string_view v;
  for (size_t i = 0; i < 6; ++i)
    if (!field(t[2 + i], kIntNames[i], v) || !parse_int(v, *ints[i]) || *ints[i] < 1) {
      why = cat("expected ", kIntNames[i], "=<positive integer>, found '", t[2 + i].substr(0, 40), "'");
      return false;
    }
  if (key.lda < (key.opa == 'N' ? key.m : key.k) || key.ldb < (key.opb == 'N' ? key.k : key.n) || key.ldc < key.m) {
    why = "a leading dimension is smaller than its matrix's rows";
    return false;
  }
  if (!field(t[8], "c", v) || (v != "bf16" && v != "fp32")) {
    why = "expected c=bf16 or c=fp32";
    return false;
  }
  key.c_bf16 = v == "bf16";
  if (!field(t[9], "beta", v) || (v != "zero" && v != "nonzero")) {
    why = "expected beta=zero or beta=nonzero";
    return false;
  }
  key.beta_zero = v == "zero";
  if (!field(t[10], "algo", v) || !parse_int(v, stored.index) || stored.index >= kCandidates) {
    why = cat("expected algo=<0..", kCandidates - 1, ">");
    return false;
  }
  if (!field(t[11], "config", v) || !valid_config(v)) {
    why = "expected config=<9 dot-separated integers>";
    return false;
  }
  stored.config = std::string(v);
  double ms = -1;
  if (!field(t[12], "ms", v) || std::from_chars(v.data(), v.data() + v.size(), ms).ptr != v.data() + v.size() ||
      !std::isfinite(ms) || ms < 0) {
    why = "expected ms=<milliseconds>";
    return false;
  }
  stored.ms = ms;
  return true;
}

// ---- the file itself ----

// An exclusive flock for the scope (every reader and writer of the file takes it). Where the file
// system cannot lock, warns once and goes on unlocked.
class FileLock {
 public:
  FileLock(int fd, const std::string& path, bool& warned) : fd_(fd) {
    if (fd_ < 0) return;
    int r;
    while ((r = ::flock(fd_, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (r != 0) {
      if (!warned)
        log_warn(path, ": cannot be locked (", std::strerror(errno),
                 "): processes sharing it may tune the same product differently");
      warned = true;
      fd_ = -1;
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::flock(fd_, LOCK_UN);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// Bytes [from, to) of the file, or false (errno set).
bool read_range(int fd, size_t from, size_t to, std::string& out) {
  out.resize(to - from);
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t r = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(from + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;  // shorter than fstat said: truncated under us without the lock
      return false;
    }
    done += static_cast<size_t>(r);
  }
  return true;
}

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t r = ::write(fd, s.data(), s.size());
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return false;
    }
    s.remove_prefix(static_cast<size_t>(r));
  }
  return true;
}

// ---- timing ----

// cublasLtMatmul of one product with everything but the algorithm and the output fixed (C and D
// are the same matrix, as in the real call, unless the product has a separate addend).
struct LtCall {
  cublasLtHandle_t lt;
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t a, b, c;
  const void* A;
  const void* B;
  float beta;
  void* workspace;
  size_t workspace_bytes;
  cudaStream_t stream;
  const void* addend = nullptr;  // C's input when it is not the output
  cublasStatus_t operator()(const cublasLtMatmulAlgo_t& algo, void* out) const {
    const float one = 1.0f;
    return cublasLtMatmul(lt, desc, &one, A, a, B, b, &beta, addend ? addend : out, c, out, c, &algo, workspace,
                          workspace_bytes, stream);
  }
};

// Where the timing calls write. With beta 0: C itself (not read, and the real product overwrites
// it next). Otherwise the calls would accumulate into C: a device copy of C (so the timed calls read
// C's real values), or, where device memory is short (a 7B lm_head's fp32 gradient is 2 GiB), C
// itself with its bytes saved on the host and put back by restore().
class TimingOutput {
 public:
  TimingOutput(void* c, size_t bytes, bool beta_zero, cudaStream_t s) : c_(c), out_(c), bytes_(bytes), s_(s) {
    if (beta_zero) return;
    if (cudaMallocAsync(&scratch_, bytes_, s_) == cudaSuccess) {
      out_ = scratch_;
      AGPT_CUDA_CHECK(cudaMemcpyAsync(scratch_, c_, bytes_, cudaMemcpyDeviceToDevice, s_));
      return;
    }
    cudaGetLastError();  // the failed allocation's error; not sticky
    scratch_ = nullptr;
    log_debug("GEMM tuning: no device memory for a ", bytes_, "-byte scratch output: saving C on the host instead");
    saved_.resize(bytes_);
    AGPT_CUDA_CHECK(cudaMemcpyAsync(saved_.data(), c_, bytes_, cudaMemcpyDeviceToHost, s_));
    AGPT_CUDA_CHECK(cudaStreamSynchronize(s_));
  }
  ~TimingOutput() {
    if (scratch_) cudaFreeAsync(scratch_, s_);
  }
  TimingOutput(const TimingOutput&) = delete;
  TimingOutput& operator=(const TimingOutput&) = delete;
  void* get() const { return out_; }
  void restore() {
    if (saved_.empty()) return;
    AGPT_CUDA_CHECK(cudaMemcpyAsync(c_, saved_.data(), bytes_, cudaMemcpyHostToDevice, s_));
    AGPT_CUDA_CHECK(cudaStreamSynchronize(s_));  // before saved_ goes
  }

 private:
  void* c_;
  void* out_;
  size_t bytes_;
  cudaStream_t s_;
  void* scratch_ = nullptr;
  std::vector<char> saved_;
};

class Events {
 public:
  explicit Events(size_t n) {
    e_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      cudaEvent_t e;
      AGPT_CUDA_CHECK(cudaEventCreate(&e));
      e_.push_back(e);
    }
  }
  ~Events() {
    for (cudaEvent_t e : e_) cudaEventDestroy(e);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  cudaEvent_t operator[](size_t i) const { return e_[i]; }
  size_t size() const { return e_.size(); }

 private:
  std::vector<cudaEvent_t> e_;
};

struct Timing {
  int index = -1;        // the fastest candidate; -1: none could run
  float ms = 0;          // its median
  float first_ms = -1;   // the heuristic's first choice's median (for the log)
};

// Each candidate that runs: kWarmupCalls calls, then kTimedCalls rounds in which every candidate
// runs once (taking turns, so clock and temperature drift touch all alike), one event between
// consecutive calls; the median per candidate; choose_candidate picks.
Timing time_candidates(const LtCall& call, const cublasLtMatmulHeuristicResult_t* candidates, int count, void* out) {
  std::vector<int> live;
  for (int j = 0; j < count; ++j) {
    const cublasLtMatmulHeuristicResult_t& c = candidates[j];
    if (c.state != CUBLAS_STATUS_SUCCESS || c.workspaceSize > call.workspace_bytes) continue;
    bool ok = true;
    for (int w = 0; w < kWarmupCalls && ok; ++w) ok = call(c.algo, out) == CUBLAS_STATUS_SUCCESS;
    if (ok) live.push_back(j);
    else log_debug("GEMM tuning: candidate ", j, " does not run (left out)");
  }
  Timing t;
  if (live.empty()) return t;
  const size_t n = live.size();
  Events ev(1 + kTimedCalls * n);
  AGPT_CUDA_CHECK(cudaEventRecord(ev[0], call.stream));
  for (size_t i = 0; i < kTimedCalls * n; ++i) {
    AGPT_LT_CHECK(call(candidates[live[i % n]].algo, out));
    AGPT_CUDA_CHECK(cudaEventRecord(ev[i + 1], call.stream));
  }
  AGPT_CUDA_CHECK(cudaEventSynchronize(ev[ev.size() - 1]));
  std::vector<TimedCandidate> timed(n);
  for (size_t j = 0; j < n; ++j) {
    std::vector<float> ms(kTimedCalls);
    for (size_t r = 0; r < kTimedCalls; ++r)
      AGPT_CUDA_CHECK(cudaEventElapsedTime(&ms[r], ev[r * n + j], ev[r * n + j + 1]));
    std::sort(ms.begin(), ms.end());
    timed[j] = {live[j], ms[kTimedCalls / 2]};
    if (live[j] == 0) t.first_ms = timed[j].ms;
  }
  t.index = choose_candidate(timed, kMinGain);
  for (const TimedCandidate& c : timed)
    if (c.index == t.index) t.ms = c.ms;
  return t;
}

Key make_key(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, int lda, int ldb, float beta,
             bool c_bf16, int ldc) {
  auto op = [](cublasOperation_t o) { return o == CUBLAS_OP_N ? 'N' : o == CUBLAS_OP_T ? 'T' : '?'; };
  return Key{op(opa), op(opb), m, n, k, lda, ldb, ldc, c_bf16, beta == 0.0f};
}

}  // namespace

struct GemmTuner::Product {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  int index = -1;  // in the heuristic's list; -1: no algorithm (the caller uses cublasGemmEx)

  Product() = default;
  Product(const Product&) = delete;
  Product& operator=(const Product&) = delete;
  ~Product() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

// A plain array, not a std::vector: nvcc's front end (CUDA 13.0) crashes instantiating a vector of
// this anonymous-struct typedef.
struct GemmTuner::Candidates {
  std::array<cublasLtMatmulHeuristicResult_t, kCandidates> list{};
  int size = 0;
  const cublasLtMatmulHeuristicResult_t& operator[](int i) const { return list[static_cast<size_t>(i)]; }
};

GemmTuner::GemmTuner(std::string path, void* workspace, size_t workspace_bytes)
    : path_(std::move(path)), workspace_(workspace), workspace_bytes_(workspace ? workspace_bytes : 0) {
  int device = 0, runtime = 0;
  AGPT_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  AGPT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  AGPT_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  header_ = cat(kFormat, ' ', kVersion, " gpu=\"", prop.name, "\" cublaslt=", cublasLtGetVersion(), " cudart=", runtime,
                " workspace=", workspace_bytes_);
  try {
    AGPT_LT_CHECK(cublasLtCreate(&lt_));
    AGPT_LT_CHECK(cublasLtMatmulPreferenceCreate(&pref_));
    const uint64_t ws = workspace_bytes_;
    AGPT_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  } catch (...) {
    if (pref_) cublasLtMatmulPreferenceDestroy(pref_);
    if (lt_) cublasLtDestroy(lt_);
    throw;
  }

  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    warn_unwritable(std::strerror(errno));
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);  // results may still be read
  }
  struct stat st {};
  if (fd_ >= 0 && (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode))) {
    log_warn(path_, ": not a regular file: GEMM tuning results are kept in memory only");
    ::close(fd_);
    fd_ = -1;
  }
  FileLock lock(fd_, path_, warned_lock_);
  refresh();
}

GemmTuner::~GemmTuner() {
  products_.clear();
  if (pref_) cublasLtMatmulPreferenceDestroy(pref_);
  if (lt_) cublasLtDestroy(lt_);
  if (fd_ >= 0) ::close(fd_);
}

void GemmTuner::warn_unwritable(const std::string& why) {
  if (writable_) log_warn(path_, ": cannot be written (", why, "): GEMM tuning results are kept in memory only");
  writable_ = false;
}

void GemmTuner::refresh() {
  if (fd_ < 0 || state_ == FileState::kForeign) return;
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return;
  const size_t size = static_cast<size_t>(st.st_size);
  if (size > kMaxFileBytes) {
    log_warn(path_, ": ", size, " bytes, too large for a GEMM tuning file: left untouched, results kept in memory");
    state_ = FileState::kForeign;
    return;
  }
  // Only what was appended since the last read, unless the header must be (re)checked: at the
  // first read, while it is another machine's (another process may have rewritten it since), or
  // when the file shrank (rewritten by another process).
  const bool incremental = state_ == FileState::kOurs && size >= offset_;
  const size_t from = incremental ? offset_ : 0;
  std::string text;
  if (!read_range(fd_, from, size, text)) {
    log_warn(path_, ": cannot be read (", std::strerror(errno), "): GEMM tuning results are kept in memory only");
    state_ = FileState::kForeign;
    return;
  }
  size_t base = from;  // the file offset of text[0]
  if (!incremental) {
    offset_ = 0, lines_read_ = 0;
    if (text.empty()) {
      state_ = FileState::kFresh;
      return;
    }
    size_t eol = text.find('\n');
    std::string_view first(text.data(), eol == std::string::npos ? text.size() : eol);
    if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
    if (first != header_) {
      if (first.substr(0, kFormat.size() + 1) == cat(kFormat, ' ')) {
        if (!warned_stale_)
          log_warn(path_, ": GEMM tuning results of another GPU, library or format (", first.substr(0, 200),
                   "; this machine: ", header_, "): ignored; products are re-tuned",
                   writable_ ? " and the file rewritten" : "");
        warned_stale_ = true;
        state_ = FileState::kStale;
      } else {
        log_warn(path_, ": not a GEMM tuning file (its first line is no ", kFormat,
                 " header): left untouched; tuning results are kept in memory only");
        state_ = FileState::kForeign;
      }
      return;
    }
    state_ = FileState::kOurs;
    lines_read_ = 1;
    if (eol == std::string::npos) {  // the header alone, without its newline
      offset_ = size;
      return;
    }
    text.erase(0, eol + 1);
    base = eol + 1;
    offset_ = base;
  }
  // Whole lines only: a last line without its newline is still being written, or a crash's remnant
  // (it is read, and warned about, once a later line completes it).
  const size_t end = text.rfind('\n');
  if (end == std::string::npos) return;
  text.resize(end + 1);
  parse(text, lines_read_ + 1);
  lines_read_ += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  offset_ = base + end + 1;
}

void GemmTuner::parse(const std::string& text, size_t first_line) {
  size_t line_no = first_line;
  for (size_t pos = 0; pos < text.size(); ++line_no) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    Key key{};
    Stored stored;
    std::string why;
    if (!parse_entry(line, key, stored, why)) {
      log_warn(path_, ":", line_no, ": not a GEMM tuning entry (", why, "): skipped");
      continue;
    }
    if (products_.count(key)) continue;  // in use: a choice never changes within a run
    stored_[key] = std::move(stored);    // a later line replaces an earlier one
    ++loaded_;
  }
}

void GemmTuner::append(const std::string& line) {
  if (fd_ < 0 || !writable_ || state_ == FileState::kForeign) return;
  std::string out;
  if (state_ == FileState::kFresh || state_ == FileState::kStale) {
    if (state_ == FileState::kStale && ::ftruncate(fd_, 0) != 0) return warn_unwritable(std::strerror(errno));
    out = header_ + '\n';
  } else {
    // Start a line of our own where the file ends mid-line (a crash's remnant).
    struct stat st {};
    char last = '\n';
    if (::fstat(fd_, &st) == 0 && st.st_size > 0 && ::pread(fd_, &last, 1, st.st_size - 1) == 1 && last != '\n')
      out = "\n";
  }
  out += line;
  out += '\n';
  if (!write_all(fd_, out)) return warn_unwritable(std::strerror(errno));
  if (state_ != FileState::kOurs) {  // our header is in: read on from after it
    state_ = FileState::kOurs;
    offset_ = header_.size() + 1, lines_read_ = 1;
  }
}

// Takes the file's result for `key` into p if its algorithm is among the candidates. The index
// is checked against the configuration; where the list moved, the configuration wins (the same
// algorithm rounds the same).
bool GemmTuner::adopt(const Key& key, const Candidates& candidates, Product& p) {
  auto it = stored_.find(key);
  if (it == stored_.end()) return false;
  const Stored s = std::move(it->second);
  stored_.erase(it);
  int found = -1;
  if (s.index < candidates.size && algo_config(candidates[s.index].algo) == s.config) found = s.index;
  for (int j = 0; found < 0 && j < candidates.size; ++j)
    if (algo_config(candidates[j].algo) == s.config) found = j;
  if (found < 0) {
    log_warn(path_, ": the algorithm stored for ", describe(key), " (config ", s.config,
             ") is not among cuBLASLt's candidates here: ignored");
    return false;
  }
  if (found != s.index) log_debug("GEMM tuning: ", describe(key), ": stored candidate ", s.index, " is now ", found);
  p.index = found;
  p.algo = candidates[found].algo;
  return true;
}

GemmTuner::Product& GemmTuner::prepare(const Key& key, const void* A, const void* B, float beta, const void* addend, void* C,
                                       cudaStream_t stream) {
  auto owned = std::make_unique<Product>();
  Product& p = *owned;
  const cublasOperation_t opa = key.opa == 'N' ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t opb = key.opb == 'N' ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cudaDataType_t ctype = key.c_bf16 ? CUDA_R_16BF : CUDA_R_32F;
  // cublasGemmEx's product: fp32 compute and scale; layouts of the stored (column-major) matrices,
  // rows × columns before op(); C and D are one matrix.
  AGPT_LT_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  AGPT_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  AGPT_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  const bool an = key.opa == 'N', bn = key.opb == 'N';
  AGPT_LT_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, an ? key.m : key.k, an ? key.k : key.m, key.lda));
  AGPT_LT_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, bn ? key.k : key.n, bn ? key.n : key.k, key.ldb));
  AGPT_LT_CHECK(cublasLtMatrixLayoutCreate(&p.c, ctype, key.m, key.n, key.ldc));

  Candidates candidates;
  int returned = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.c, p.c, pref_, kCandidates,
                                                           candidates.list.data(), &returned);
  // NOT_SUPPORTED: no algorithm for this product (the caller uses cublasGemmEx).
  if (hs != CUBLAS_STATUS_NOT_SUPPORTED) check_lt(hs, "cublasLtMatmulAlgoGetHeuristic");
  candidates.size = hs == CUBLAS_STATUS_SUCCESS ? std::clamp(returned, 0, kCandidates) : 0;

  if (candidates.size > 0) {
    {
      FileLock lock(fd_, path_, warned_lock_);
      refresh();  // another process may have tuned it since this one read the file
    }
    if (!adopt(key, candidates, p)) {
      cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
      AGPT_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
      if (capture != cudaStreamCaptureStatusNone)
        fail("GEMM tuning: the product ", describe(key),
             " is not tuned yet and cannot be while its stream is captured into a CUDA graph; run it once outside "
             "capture");
      const LtCall call{lt_, p.desc, p.a, p.b, p.c, A, B, beta, workspace_, workspace_bytes_, stream, addend};
      const size_t c_bytes = (static_cast<size_t>(key.ldc) * static_cast<size_t>(key.n - 1) + static_cast<size_t>(key.m)) *
                             (key.c_bf16 ? 2 : 4);
      // With a separate addend C is not read: the timing calls may write it, as with beta 0.
      TimingOutput out(C, c_bytes, key.beta_zero || addend != nullptr, stream);
      const Timing t = time_candidates(call, candidates.list.data(), candidates.size, out.get());
      out.restore();
      ++tuned_;
      if (t.index >= 0) {
        FileLock lock(fd_, path_, warned_lock_);
        refresh();
        if (!adopt(key, candidates, p)) {  // no other process was quicker: ours goes in
          p.index = t.index;
          p.algo = candidates[t.index].algo;
          append(entry_line(key, Stored{t.index, algo_config(p.algo), t.ms}));
        }
        log_debug("GEMM tuning: ", describe(key), ": candidate ", t.index, " of ", candidates.size, ", ", t.ms,
                  " ms (the first: ", t.first_ms, " ms); using ", p.index);
      }
    }
  }
  return *products_.emplace(key, std::move(owned)).first->second;
}

bool GemmTuner::matmul(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, const void* A, int lda,
                       const void* B, int ldb, float beta, void* C, bool c_bf16, int ldc, cudaStream_t stream,
                       const void* addend) {
  if ((opa != CUBLAS_OP_N && opa != CUBLAS_OP_T) || (opb != CUBLAS_OP_N && opb != CUBLAS_OP_T)) return false;
  if (m < 1 || n < 1 || k < 1 || !A || !B || !C) return false;
  if (lda < (opa == CUBLAS_OP_N ? m : k) || ldb < (opb == CUBLAS_OP_N ? k : n) || ldc < m) return false;
  if (addend == C) addend = nullptr;
  if (addend && beta == 0.0f) return false;  // the caller's cuBLAS path handles the degenerate case
  if ((reinterpret_cast<uintptr_t>(A) | reinterpret_cast<uintptr_t>(B) | reinterpret_cast<uintptr_t>(C) |
       reinterpret_cast<uintptr_t>(addend)) % kAlignment)
    return false;
  const Key key = make_key(opa, opb, m, n, k, lda, ldb, beta, c_bf16, ldc);
  auto it = products_.find(key);
  Product& p = it != products_.end() ? *it->second : prepare(key, A, B, beta, addend, C, stream);
  if (p.index < 0) return false;
  const LtCall call{lt_, p.desc, p.a, p.b, p.c, A, B, beta, workspace_, workspace_bytes_, stream, addend};
  if (const cublasStatus_t st = call(p.algo, C); st != CUBLAS_STATUS_SUCCESS)
    fail("cuBLASLt matmul ", describe(key), " with tuned candidate ", p.index, " failed: ", cublasGetStatusString(st));
  return true;
}

int GemmTuner::choice(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, int lda, int ldb, float beta,
                      bool c_bf16, int ldc) const {
  const Key key = make_key(opa, opb, m, n, k, lda, ldb, beta, c_bf16, ldc);
  if (auto it = products_.find(key); it != products_.end()) return it->second->index;
  if (auto it = stored_.find(key); it != stored_.end()) return it->second.index;
  return -1;
}

int choose_candidate(std::span<const TimedCandidate> timed, double min_gain) {
  const TimedCandidate* fastest = nullptr;
  const TimedCandidate* first = nullptr;
  for (const TimedCandidate& c : timed) {
    if (!fastest || c.ms < fastest->ms || (c.ms == fastest->ms && c.index < fastest->index)) fastest = &c;
    if (c.index == 0) first = &c;
  }
  if (!fastest) return -1;
  if (first && fastest->ms > first->ms * (1.0 - min_gain)) return 0;
  return fastest->index;
}

}  // namespace agpt::ops::cuda
