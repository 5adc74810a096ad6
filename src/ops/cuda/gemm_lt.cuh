// LtGemm: bf16 matrix products through cuBLASLt for what cublasGemmEx cannot express: an output D
// apart from the addend C (D = op(A)·op(B) + beta·C). The model's residual adds then happen in
// the product's epilogue (mid = x + attention·Woᵀ) instead of in a separate pass over memory.
// The algorithm is cuBLASLt's first heuristic answer, the one cublasGemmEx's CUBLAS_GEMM_DEFAULT
// takes. Descriptors are built once per product shape.
// Not thread-safe: one per backend, used from its thread.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <tuple>

namespace agpt::ops::cuda {

class LtGemm {
 public:
  // workspace: device memory that cuBLASLt may use (the backend's cuBLAS workspace: its products
  // run on one stream, so sharing is safe).
  LtGemm(void* workspace, size_t workspace_bytes);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Column-major D (m×n, ldc) = op(A)·op(B) + beta·C (C m×n, ldc; C may be D), A and B bf16, fp32
  // accumulation, C and D bf16 (c_bf16) or fp32. Fails (agpt::Error) when cuBLASLt fails or has
  // no algorithm for the product.
  // Pointers must be 256-byte aligned (the heuristic's algorithm assumes it): see aligned().
  void matmul(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, const void* A, int lda, const void* B,
              int ldb, float beta, const void* C, void* D, bool c_bf16, int ldc, cudaStream_t stream);
  static bool aligned(std::initializer_list<const void*> pointers) {
    for (const void* p : pointers)
      if (reinterpret_cast<uintptr_t>(p) % 256 != 0) return false;
    return true;
  }

 private:
  struct Plan;
  using Key = std::tuple<int, int, int, int, int, int, int, int, bool, bool>;
  Plan& plan(const Key& key);
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_;
  size_t workspace_bytes_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace agpt::ops::cuda
