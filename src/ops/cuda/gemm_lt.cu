#include "ops/cuda/gemm_lt.cuh"

#include "base/error.h"

namespace agpt::ops::cuda {

namespace {
void check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) fail("cuBLASLt error in ", what, ": ", cublasGetStatusString(st));
}
}  // namespace

struct LtGemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    for (cublasLtMatrixLayout_t l : {a, b, c})
      if (l) cublasLtMatrixLayoutDestroy(l);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

LtGemm::LtGemm(void* workspace, size_t workspace_bytes) : workspace_(workspace), workspace_bytes_(workspace_bytes) {
  check(cublasLtCreate(&lt_), "cublasLtCreate");
}

LtGemm::~LtGemm() {
  plans_.clear();
  if (lt_) cublasLtDestroy(lt_);
}

LtGemm::Plan& LtGemm::plan(const Key& key) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  const auto [opa_i, opb_i, m, n, k, lda, ldb, ldc, c_bf16, beta_zero] = key;
  const auto opa = static_cast<cublasOperation_t>(opa_i), opb = static_cast<cublasOperation_t>(opb_i);
  auto p = std::make_unique<Plan>();
  check(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  check(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)), "set TRANSA");
  check(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)), "set TRANSB");
  // Stored shapes: op(A) is m×k, so A itself is m×k (N) or k×m (T); likewise B.
  const bool ta = opa != CUBLAS_OP_N, tb = opb != CUBLAS_OP_N;
  check(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, ta ? k : m, ta ? m : k, lda), "layout A");
  check(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, tb ? n : k, tb ? k : n, ldb), "layout B");
  check(cublasLtMatrixLayoutCreate(&p->c, c_bf16 ? CUDA_R_16BF : CUDA_R_32F, m, n, ldc), "layout C");
  cublasLtMatmulPreference_t pref = nullptr;
  check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  uint64_t ws = workspace_bytes_;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_, p->desc, p->a, p->b, p->c, p->c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  check(st, "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0)
    fail("cuBLASLt has no algorithm for the ", m, "x", n, "x", k, " bf16 product with a separate output",
         beta_zero ? "" : " and an addend");
  p->algo = result.algo;
  return *plans_.emplace(key, std::move(p)).first->second;
}

void LtGemm::matmul(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, const void* A, int lda,
                    const void* B, int ldb, float beta, const void* C, void* D, bool c_bf16, int ldc,
                    cudaStream_t stream) {
  Plan& p = plan(Key{static_cast<int>(opa), static_cast<int>(opb), m, n, k, lda, ldb, ldc, c_bf16, beta == 0.0f});
  const float one = 1.0f;
  check(cublasLtMatmul(lt_, p.desc, &one, A, p.a, B, p.b, &beta, C, p.c, D, p.c, &p.algo, workspace_,
                       workspace_bytes_, stream),
        "cublasLtMatmul");
}

}  // namespace agpt::ops::cuda
