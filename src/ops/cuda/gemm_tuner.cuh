// GemmTuner: opt-in autotuning of the bf16 matrix products, persisted in a results file (in the
// spirit of PyTorch's TunableOp). cuBLAS's default choice (cublasGemmEx, CUBLAS_GEMM_DEFAULT, i.e.
// cuBLASLt's first heuristic answer) leaves 4-9% of matrix-product time on an H100 unused
// (bench/train_matmul_bench.cpp); timing the heuristic's candidates and keeping the fastest wins
// it back. Algorithms round differently, and agpt promises the same bytes for the same inputs and
// bit-exact resume, so a product's choice, once in the file, is used by every later run on the
// same GPU model, cuBLASLt and CUDA runtime.
//
// The file: plain text. A header line names the format, the GPU, the cuBLASLt and CUDA runtime
// versions and the workspace size (the heuristic's candidates depend on all of them); then one line
// per product:
//   T N m=768 n=4096 k=768 lda=768 ldb=768 ldc=768 c=bf16 beta=zero algo=3 config=66.18.1.0.0.0.35.0.0 ms=0.0213
// algo is the index in the candidate list cublasLtMatmulAlgoGetHeuristic returns for the product
// (16 requested; reproducible for the same GPU and library), config the chosen algorithm's
// cuBLASLt configuration (checked on load, so a changed list cannot silently swap algorithms), ms
// its measured time (for information). A later line for a product replaces an earlier one.
//   - A header of another GPU or library: warned once, entries ignored, products re-tuned and the
//     file rewritten with this machine's header on the first new result.
//   - A file that is not a tuning file at all: warned once and never written (it may be anything
//     the path pointed at by mistake); tuning happens in memory.
//   - A malformed line: warned (file:line) and skipped. An unwritable file: warned once; tuning
//     goes on in memory.
// Processes sharing a file (ranks of one job) coordinate through an flock held only while reading
// or appending: a product tuned by one is adopted by the others (a late one re-reads the file after
// its own timing and takes the first result written), so all use the same algorithm. Lines are
// appended whole, with one write.
//
// Pointers must be 256-byte aligned (cuBLASLt's heuristic assumes it); other products, and those
// cuBLASLt offers no algorithm for, are left to the caller (matmul returns false).
// Not thread-safe: one tuner per backend, used from its thread.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <compare>
#include <cstddef>
#include <map>
#include <memory>
#include <span>
#include <string>

namespace agpt::ops::cuda {

// A candidate algorithm's measured time: its index in the heuristic's list and its median.
struct TimedCandidate {
  int index;
  float ms;
};
// The tuner's choice among timed candidates: the fastest, but the heuristic's first choice (index
// 0, cuBLAS's default) unless the fastest beats it by at least min_gain (a fraction). Timing in
// isolation cannot tell apart algorithms within a few percent: in a 1B training step on an H100,
// choices 0.6% faster alone ran 4% slower among the other kernels, while those 5-12% faster alone
// kept their gain. Ties go to the earlier candidate; -1 when `timed` is empty.
int choose_candidate(std::span<const TimedCandidate> timed, double min_gain);

class GemmTuner {
 public:
  // path: the results file (read now if it exists; new results appended). workspace: device memory
  // of workspace_bytes that cuBLASLt may use (the backend's cuBLAS workspace: products run on one
  // stream, so sharing it is safe). Uses the current CUDA device.
  GemmTuner(std::string path, void* workspace, size_t workspace_bytes);
  ~GemmTuner();
  GemmTuner(const GemmTuner&) = delete;
  GemmTuner& operator=(const GemmTuner&) = delete;

  // Column-major C (m×n, ldc) = op(A)·op(B) + beta·C, A and B bf16, fp32 accumulation, C bf16
  // (c_bf16) or fp32: the semantics of cublasGemmEx(..., &one, A, CUDA_R_16BF, lda, B, CUDA_R_16BF,
  // ldb, &beta, C, ctype, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT). Runs the product on
  // `stream` with the tuned algorithm, tuning it first if the product is new (each candidate timed
  // with CUDA events on `stream`, 2 warm-up and 5 timed calls, median; with beta ≠ 0 they write a
  // copy of C, never C; with beta 0 they may write C, which the real product then overwrites).
  // Returns false, having done nothing, when the product is not for the tuner (see above); the
  // caller then uses cublasGemmEx. Fails (agpt::Error) when CUDA or cuBLASLt fails, and
  // when a new product must be tuned while `stream` is being captured into a CUDA graph.
  // addend (beta ≠ 0): C's input when it is not C itself (C = op(A)·op(B) + beta·addend, cuBLASLt's
  // separate C and D; the residual adds); the same tuned choice serves both forms.
  bool matmul(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, const void* A, int lda, const void* B,
              int ldb, float beta, void* C, bool c_bf16, int ldc, cudaStream_t stream, const void* addend = nullptr);

  size_t tuned() const { return tuned_; }    // products timed by this tuner
  size_t loaded() const { return loaded_; }  // results read from the file (not counting its own)
  // For tests: the candidate index in use (or waiting in the file) for a product, -1 if none.
  int choice(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, int lda, int ldb, float beta,
             bool c_bf16, int ldc) const;

  // What identifies a product (beta only as zero or not: cuBLASLt may prefer other kernels when C
  // is not read).
  struct Key {
    char opa, opb;  // 'N' or 'T'
    int m, n, k, lda, ldb, ldc;
    bool c_bf16, beta_zero;
    auto operator<=>(const Key&) const = default;
  };
  // A result as the file holds it.
  struct Stored {
    int index = -1;
    std::string config;
    double ms = 0;
  };

 private:
  struct Product;     // descriptors and algorithm of a product in use (gemm_tuner.cu)
  struct Candidates;  // the heuristic's list for a product
  enum class FileState {
    kFresh,    // missing or empty: the header goes first
    kOurs,     // this machine's header; offset_ bytes read
    kStale,    // another GPU's, library's or format's header: truncated before the first new result
    kForeign,  // not a tuning file, too large or unreadable: never read again, never written
  };

  Product& prepare(const Key& key, const void* A, const void* B, float beta, const void* addend, void* C,
                   cudaStream_t stream);
  bool adopt(const Key& key, const Candidates& candidates, Product& p);
  void refresh();  // with the lock held: reads what was added to the file since the last read
  void parse(const std::string& text, size_t first_line);
  void append(const std::string& line);  // with the lock held, after refresh()
  void warn_unwritable(const std::string& why);

  std::string path_, header_;
  void* workspace_;
  size_t workspace_bytes_;
  cublasLtHandle_t lt_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  int fd_ = -1;
  FileState state_ = FileState::kFresh;
  bool writable_ = true;
  size_t offset_ = 0;      // bytes of the file read (whole lines)
  size_t lines_read_ = 0;  // lines before offset_, for warnings that name file:line
  bool warned_stale_ = false, warned_lock_ = false;
  std::map<Key, Stored> stored_;                      // read from the file, not in use yet
  std::map<Key, std::unique_ptr<Product>> products_;  // in use (or known to have no algorithm)
  size_t tuned_ = 0, loaded_ = 0;
};

}  // namespace agpt::ops::cuda
