// cuDNN fused flash attention through the backend (graph) API (see attention_cudnn.cuh for the
// contract).
//
// The graphs are the operation patterns cuDNN 9's fused attention engines match (the ones
// cudnn-frontend's SDPA nodes lower to), written here with the C descriptors of cudnn_graph.h.
// Shapes in cuDNN's [B, heads, rows, cols] order; Q [B,H,T,hd] has strides [T*H*hd, hd, H*hd, 1]
// (agpt's [B,T,H,hd] memory, no transposes), Kᵀ and Vᵀ are [B,KV,hd,T] views of K and V, the
// statistics [B,H,T,1] are agpt's lse [B,H,T].
//
// Forward:   S = Q·Kᵀ (fp32) → S·scale → causal mask (row >= col keeps, else -max float) →
//            M = max_row, E = exp(S - M), Z = sum_row E, stats = M + log Z,
//            P = E / Z (bf16) → O = P·V.
// Backward:  D = sum_row(dO ∘ O) (→ fp32 buffer "softmax_sum"), S = Q·Kᵀ·scale, P = exp(S - stats)
//            masked, dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ∘ (dP - D) · scale, dK = dSᵀ·Q, dQ = dS·K.
//            With GQA (H > KV) dV and dK are products over all H heads (virtual [B,H,T,hd])
//            reduced (summed) over each group onto the KV heads: cuDNN fuses that.
//            dQ goes either straight to the bf16 output (deterministic form) or into an fp32
//            accumulator that an identity op converts (atomic form); see the header.
// By-value scalars (scale, the mask value, 1) are host floats in the variant pack.
//
// Plans are built once per (device, shape, direction, form) and cached; cuDNN's heuristics (mode A,
// then fallback) rank the engine configurations and the first that finalizes is kept. A graph
// cuDNN refuses is cached as refused.
#include "ops/cuda/attention_cudnn.cuh"

#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "base/error.h"
#include "ops/cuda/cuda_common.cuh"

#if AGPT_HAVE_CUDNN
#include <cudnn_graph.h>
#endif

namespace agpt::ops::cuda {
namespace {

std::atomic<bool> g_allow_nondeterministic{false};
thread_local bool t_last_backward_deterministic = false;
std::mutex g_refusal_mutex;
std::string g_last_refusal;

}  // namespace

#if AGPT_HAVE_CUDNN
namespace {

void note_refusal(const std::string& why) {
  std::lock_guard<std::mutex> lock(g_refusal_mutex);
  g_last_refusal = why;
  if (const char* v = std::getenv("AGPT_CUDNN_VERBOSE"); v && *v && *v != '0')
    std::fprintf(stderr, "agpt cudnn attention: %s\n", why.c_str());
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

using Dims = std::array<int64_t, 4>;

// Owns one backend descriptor.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type) { status_ = cudnnBackendCreateDescriptor(type, &d_); }
  ~Desc() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return status_ == CUDNN_STATUS_SUCCESS ? d_ : nullptr; }
  cudnnStatus_t status() const { return status_; }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
  cudnnStatus_t status_ = CUDNN_STATUS_SUCCESS;
};

std::string status_text(cudnnStatus_t st) {
  char buf[1024] = {0};
  cudnnGetLastErrorString(buf, sizeof buf);
  std::string s = cudnnGetErrorString(st);
  if (buf[0]) s += cat(" (", buf, ")");
  return s;
}

// Fixed unique ids of the tensors the caller supplies; virtual tensors count up from kFirstVirtual.
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kO,
  kStats,
  kDO,
  kDQ,
  kDK,
  kDV,
  kScale,
  kMaskValue,
  kOne,
  kSoftmaxSum,
  kDQAccum,
  kFirstVirtual = 100
};

struct Ten {
  cudnnBackendDescriptor_t d = nullptr;
  int64_t uid = 0;
};

// Builds one operation graph; the first failing call records the error and turns the rest into
// no-ops, so a whole graph is written straight through and checked once.
class Graph {
 public:
  bool ok() const { return err_.empty(); }
  const std::string& error() const { return err_; }
  std::vector<std::unique_ptr<Desc>>& descriptors() { return keep_; }
  const std::vector<cudnnBackendDescriptor_t>& ops() const { return ops_; }

  void check(cudnnStatus_t st, const char* what) {
    if (st != CUDNN_STATUS_SUCCESS && err_.empty()) err_ = cat(what, ": ", status_text(st));
  }
  cudnnBackendDescriptor_t make(cudnnBackendDescriptorType_t type, const char* what) {
    keep_.push_back(std::make_unique<Desc>(type));
    check(keep_.back()->status(), what);
    return keep_.back()->get();
  }
  template <typename V>
  void set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t n,
           const V* value, const char* what) {
    if (!ok() || !d) return;
    check(cudnnBackendSetAttribute(d, name, type, n, value), what);
  }
  void finalize(cudnnBackendDescriptor_t d, const char* what) {
    if (!ok() || !d) return;
    check(cudnnBackendFinalize(d), what);
  }

  Ten tensor(int64_t uid, cudnnDataType_t type, const Dims& dims, const Dims& strides, bool is_virtual,
           bool by_value = false) {
    cudnnBackendDescriptor_t d = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
    const int64_t alignment = 16;
    set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor uid");
    set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type");
    set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims.data(), "tensor dims");
    set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides.data(), "tensor strides");
    set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment, "tensor alignment");
    if (is_virtual) set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
    if (by_value) set(d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by value");
    finalize(d, "tensor finalize");
    return {d, uid};
  }
  // A virtual (never stored) tensor, packed row-major.
  Ten virt(cudnnDataType_t type, const Dims& dims) {
    return tensor(next_uid_++, type, dims, packed(dims), true);
  }
  Ten virt(cudnnDataType_t type, const Dims& dims, const Dims& strides) {
    return tensor(next_uid_++, type, dims, strides, true);
  }
  Ten scalar(int64_t uid) { return tensor(uid, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true); }

  static Dims packed(const Dims& d) { return {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1}; }

  void matmul(Ten a, Ten b, Ten c) {
    cudnnBackendDescriptor_t m = make(CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul");
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    set(m, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "matmul comp type");
    finalize(m, "matmul finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "matmul op");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a.d, "matmul A");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b.d, "matmul B");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c.d, "matmul C");
    set(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &m, "matmul desc");
    finalize(op, "matmul op finalize");
    ops_.push_back(op);
  }

  // y = mode(x[, b[, t]]) computed in `prec`; `axis` for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, Ten x, const Ten* b, const Ten* t, Ten y, cudnnDataType_t prec = CUDNN_DATA_FLOAT,
                 int64_t axis = -1) {
    cudnnBackendDescriptor_t pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise");
    set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pointwise precision");
    if (axis >= 0) set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pointwise axis");
    finalize(pw, "pointwise finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pointwise op");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, "pointwise desc");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x.d, "pointwise x");
    if (b) set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b->d, "pointwise b");
    if (t) set(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t->d, "pointwise t");
    set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y.d, "pointwise y");
    finalize(op, "pointwise op finalize");
    ops_.push_back(op);
  }
  Ten unary(cudnnPointwiseMode_t mode, Ten x, const Dims& dims, cudnnDataType_t out = CUDNN_DATA_FLOAT) {
    Ten y = virt(out, dims);
    pointwise(mode, x, nullptr, nullptr, y);
    return y;
  }
  Ten binary(cudnnPointwiseMode_t mode, Ten x, Ten b, const Dims& dims, cudnnDataType_t out = CUDNN_DATA_FLOAT) {
    Ten y = virt(out, dims);
    pointwise(mode, x, &b, nullptr, y);
    return y;
  }

  void reduction(cudnnReduceTensorOp_t mode, Ten x, Ten y) {
    cudnnBackendDescriptor_t r = make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction");
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    set(r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode, "reduction operator");
    set(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp, "reduction comp type");
    finalize(r, "reduction finalize");
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "reduction op");
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x.d, "reduction x");
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y.d, "reduction y");
    set(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &r, "reduction desc");
    finalize(op, "reduction op finalize");
    ops_.push_back(op);
  }

  void reshape(Ten x, Ten y) {
    cudnnBackendDescriptor_t op = make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, "reshape op");
    set(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x.d, "reshape x");
    set(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y.d, "reshape y");
    finalize(op, "reshape op finalize");
    ops_.push_back(op);
  }

  // Causal mask on scores `s` [B,H,T,T]: keeps row >= col (top-left aligned), else the mask value.
  Ten causal_mask(Ten s, const Dims& dims, Ten mask_value) {
    Ten row = virt(CUDNN_DATA_INT32, dims), col = virt(CUDNN_DATA_INT32, dims);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, row, CUDNN_DATA_INT32, 2);
    pointwise(CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, CUDNN_DATA_INT32, 3);
    Ten keep = virt(CUDNN_DATA_BOOLEAN, dims);
    pointwise(CUDNN_POINTWISE_CMP_GE, row, &col, nullptr, keep, CUDNN_DATA_BOOLEAN);
    Ten out = virt(CUDNN_DATA_FLOAT, dims);
    pointwise(CUDNN_POINTWISE_BINARY_SELECT, s, &mask_value, &keep, out);
    return out;
  }

 private:
  std::vector<std::unique_ptr<Desc>> keep_;
  std::vector<cudnnBackendDescriptor_t> ops_;
  std::string err_;
  int64_t next_uid_ = kFirstVirtual;
};

struct Shape {
  int64_t B, T, H, KV, hd;
};

Dims q_dims(const Shape& s) { return {s.B, s.H, s.T, s.hd}; }
Dims q_strides(const Shape& s) { return {s.T * s.H * s.hd, s.hd, s.H * s.hd, 1}; }
Dims kv_dims(const Shape& s) { return {s.B, s.KV, s.T, s.hd}; }
Dims kv_strides(const Shape& s) { return {s.T * s.KV * s.hd, s.hd, s.KV * s.hd, 1}; }
// Kᵀ / Vᵀ: [B, KV, hd, T] views of the same memory.
Dims kvt_dims(const Shape& s) { return {s.B, s.KV, s.hd, s.T}; }
Dims kvt_strides(const Shape& s) { return {s.T * s.KV * s.hd, s.hd, 1, s.KV * s.hd}; }
Dims stats_dims(const Shape& s) { return {s.B, s.H, s.T, 1}; }
Dims stats_strides(const Shape& s) { return {s.H * s.T, s.T, 1, 1}; }

void build_forward(Graph& g, const Shape& s) {
  const Dims sc = {s.B, s.H, s.T, s.T}, row = stats_dims(s);
  Ten q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, q_dims(s), q_strides(s), false);
  Ten kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, kvt_dims(s), kvt_strides(s), false);
  Ten v = g.tensor(kV, CUDNN_DATA_BFLOAT16, kv_dims(s), kv_strides(s), false);
  Ten o = g.tensor(kO, CUDNN_DATA_BFLOAT16, q_dims(s), q_strides(s), false);
  Ten stats = g.tensor(kStats, CUDNN_DATA_FLOAT, row, stats_strides(s), false);
  Ten scale = g.scalar(kScale), mask_value = g.scalar(kMaskValue);

  Ten scores = g.virt(CUDNN_DATA_FLOAT, sc);
  g.matmul(q, kt, scores);
  Ten scaled = g.binary(CUDNN_POINTWISE_MUL, scores, scale, sc);
  Ten masked = g.causal_mask(scaled, sc, mask_value);
  Ten mx = g.virt(CUDNN_DATA_FLOAT, row);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, masked, mx);
  Ten shifted = g.binary(CUDNN_POINTWISE_SUB, masked, mx, sc);
  Ten e = g.unary(CUDNN_POINTWISE_EXP, shifted, sc);
  Ten z = g.virt(CUDNN_DATA_FLOAT, row);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, z);
  Ten logz = g.unary(CUDNN_POINTWISE_LOG, z, row);
  g.pointwise(CUDNN_POINTWISE_ADD, mx, &logz, nullptr, stats);
  Ten p = g.binary(CUDNN_POINTWISE_DIV, e, z, sc, CUDNN_DATA_BFLOAT16);
  g.matmul(p, v, o);
}

// `mask_before_stats`: the order of the causal mask and the subtraction of the statistics (cuDNN
// versions have matched one or the other; both are tried).
void build_backward(Graph& g, const Shape& s, bool deterministic, bool mask_before_stats) {
  const Dims sc = {s.B, s.H, s.T, s.T}, row = stats_dims(s), qd = q_dims(s);
  const Dims sct_strides = {s.H * s.T * s.T, s.T * s.T, 1, s.T};  // [B,H,Tk,Tq] view of [B,H,Tq,Tk]
  const bool gqa = s.H != s.KV;
  Ten q = g.tensor(kQ, CUDNN_DATA_BFLOAT16, qd, q_strides(s), false);
  Ten kt = g.tensor(kK, CUDNN_DATA_BFLOAT16, kvt_dims(s), kvt_strides(s), false);
  Ten vt = g.tensor(kV, CUDNN_DATA_BFLOAT16, kvt_dims(s), kvt_strides(s), false);
  Ten o = g.tensor(kO, CUDNN_DATA_BFLOAT16, qd, q_strides(s), false);
  Ten d_o = g.tensor(kDO, CUDNN_DATA_BFLOAT16, qd, q_strides(s), false);
  Ten stats = g.tensor(kStats, CUDNN_DATA_FLOAT, row, stats_strides(s), false);
  Ten dq = g.tensor(kDQ, CUDNN_DATA_BFLOAT16, qd, q_strides(s), false);
  Ten dk = g.tensor(kDK, CUDNN_DATA_BFLOAT16, kv_dims(s), kv_strides(s), false);
  Ten dv = g.tensor(kDV, CUDNN_DATA_BFLOAT16, kv_dims(s), kv_strides(s), false);
  Ten scale = g.scalar(kScale), mask_value = g.scalar(kMaskValue), one = g.scalar(kOne);

  // D = rowsum(dO ∘ O), stored (fp32 scratch the caller provides).
  Ten dodo = g.binary(CUDNN_POINTWISE_MUL, d_o, o, qd);
  Ten dsum = g.virt(CUDNN_DATA_FLOAT, row);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, dodo, dsum);
  Ten softmax_sum = g.tensor(kSoftmaxSum, CUDNN_DATA_FLOAT, row, stats_strides(s), false);
  g.pointwise(CUDNN_POINTWISE_MUL, dsum, &one, nullptr, softmax_sum);

  // P = exp(Q·Kᵀ·scale - stats), masked.
  Ten scores = g.virt(CUDNN_DATA_FLOAT, sc);
  g.matmul(q, kt, scores);
  Ten scaled = g.binary(CUDNN_POINTWISE_MUL, scores, scale, sc);
  Ten logits;
  if (mask_before_stats) {
    Ten masked = g.causal_mask(scaled, sc, mask_value);
    logits = g.binary(CUDNN_POINTWISE_SUB, masked, stats, sc);
  } else {
    Ten shifted = g.binary(CUDNN_POINTWISE_SUB, scaled, stats, sc);
    logits = g.causal_mask(shifted, sc, mask_value);
  }
  Ten p = g.unary(CUDNN_POINTWISE_EXP, logits, sc);

  // dV = Pᵀ·dO (summed over each group's query heads with GQA).
  Ten pt = g.virt(CUDNN_DATA_BFLOAT16, {s.B, s.H, s.T, s.T}, sct_strides);
  g.reshape(p, pt);
  if (gqa) {
    Ten dv_full = g.virt(CUDNN_DATA_BFLOAT16, {s.B, s.H, s.T, s.hd});
    g.matmul(pt, d_o, dv_full);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dv_full, dv);
  } else {
    g.matmul(pt, d_o, dv);
  }

  // dS = P ∘ (dO·Vᵀ - D) · scale.
  Ten dp = g.virt(CUDNN_DATA_FLOAT, sc);
  g.matmul(d_o, vt, dp);
  Ten dp_minus = g.binary(CUDNN_POINTWISE_SUB, dp, softmax_sum, sc);
  Ten ds_raw = g.binary(CUDNN_POINTWISE_MUL, dp_minus, p, sc);
  Ten ds = g.binary(CUDNN_POINTWISE_MUL, ds_raw, scale, sc);

  // dK = dSᵀ·Q.
  Ten dst = g.virt(CUDNN_DATA_BFLOAT16, {s.B, s.H, s.T, s.T}, sct_strides);
  g.reshape(ds, dst);
  if (gqa) {
    Ten dk_full = g.virt(CUDNN_DATA_BFLOAT16, {s.B, s.H, s.T, s.hd});
    g.matmul(dst, q, dk_full);
    g.reduction(CUDNN_REDUCE_TENSOR_ADD, dk_full, dk);
  } else {
    g.matmul(dst, q, dk);
  }

  // dQ = dS·K, K as a [B,KV,T,hd] view of Kᵀ.
  Ten kn = g.virt(CUDNN_DATA_BFLOAT16, kv_dims(s), kv_strides(s));
  g.reshape(kt, kn);
  if (deterministic) {
    g.matmul(ds, kn, dq);
  } else {
    Ten acc = g.tensor(kDQAccum, CUDNN_DATA_FLOAT, qd, Graph::packed(qd), false);
    g.matmul(ds, kn, acc);
    g.pointwise(CUDNN_POINTWISE_IDENTITY, acc, nullptr, nullptr, dq);
  }
}

// A finalized execution plan with everything it references kept alive.
struct Plan {
  std::vector<std::unique_ptr<Desc>> keep;
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t workspace = 0;
  bool nondeterministic_note = false;  // the engine carries CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC
  std::string info;                    // engine index and notes, for logs
};

const char* note_name(cudnnBackendNumericalNote_t n) {
  switch (n) {
    case CUDNN_NUMERICAL_NOTE_TENSOR_CORE: return "tensor_core";
    case CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS: return "down_convert_inputs";
    case CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION: return "reduced_precision_reduction";
    case CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC: return "nondeterministic";
    case CUDNN_NUMERICAL_NOTE_STRICT_NAN_PROP: return "strict_nan_prop";
    default: return "other";
  }
}

// Finalizes the graph and picks the first engine configuration (heuristics mode A, then fallback)
// that builds. nullptr with *why set when cuDNN refuses.
std::unique_ptr<Plan> make_plan(Graph& g, cudnnHandle_t handle, std::string* why) {
  if (!g.ok()) {
    *why = g.error();
    return nullptr;
  }
  cudnnBackendDescriptor_t graph = g.make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
  const auto& ops = g.ops();
  g.set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops.size()),
        ops.data(), "graph ops");
  g.set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "graph handle");
  g.finalize(graph, "operation graph finalize");
  if (!g.ok()) {
    *why = g.error();
    return nullptr;
  }
  std::string last = "no engine configuration";
  // AGPT_CUDNN_ATTENTION_SKIP=k: pass over the first k configurations that build (for comparing
  // cuDNN's candidates; bench/train_attention_bench).
  int64_t skip = 0;
  if (const char* e = std::getenv("AGPT_CUDNN_ATTENTION_SKIP"); e && *e) skip = std::atoll(e);
  for (cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    if (!heur.get()) return nullptr;
    cudnnStatus_t st = cudnnBackendSetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                                CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph);
    if (st == CUDNN_STATUS_SUCCESS)
      st = cudnnBackendSetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(heur.get());
    int64_t count = 0;
    if (st == CUDNN_STATUS_SUCCESS)
      st = cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0,
                                    &count, nullptr);
    if (st != CUDNN_STATUS_SUCCESS) {
      last = cat("heuristics: ", status_text(st));
      continue;
    }
    if (count <= 0) continue;
    std::vector<std::unique_ptr<Desc>> cfgs;
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i) {
      cfgs.push_back(std::make_unique<Desc>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw.push_back(cfgs.back()->get());
    }
    int64_t got = 0;
    st = cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                  &got, raw.data());
    if (st != CUDNN_STATUS_SUCCESS) {
      last = cat("heuristics results: ", status_text(st));
      continue;
    }
    for (int64_t i = 0; i < got; ++i) {
      auto plan = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      cudnnBackendDescriptor_t p = plan->get();
      if (!p) continue;
      st = cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
      if (st == CUDNN_STATUS_SUCCESS)
        st = cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                      &raw[i]);
      if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(p);
      if (st != CUDNN_STATUS_SUCCESS) {
        last = cat("execution plan (config ", i, " of ", got, "): ", status_text(st));
        continue;
      }
      if (skip > 0) {
        --skip;
        last = "configurations skipped (AGPT_CUDNN_ATTENTION_SKIP)";
        continue;
      }
      auto out = std::make_unique<Plan>();
      int64_t n = 0;
      if (cudnnBackendGetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                   &out->workspace) != CUDNN_STATUS_SUCCESS)
        out->workspace = 0;
      // Engine identity and numerical notes, for logs and the determinism report.
      Desc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
      cudnnBackendDescriptor_t e = engine.get();
      int64_t index = -1;
      std::string notes;
      if (e && cudnnBackendGetAttribute(raw[i], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                                        &e) == CUDNN_STATUS_SUCCESS) {
        cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index);
        cudnnBackendNumericalNote_t list[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
        int64_t nn = 0;
        if (cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                     CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &nn, list) == CUDNN_STATUS_SUCCESS) {
          for (int64_t j = 0; j < nn; ++j) {
            if (list[j] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) out->nondeterministic_note = true;
            notes += cat(j ? "," : "", note_name(list[j]));
          }
        }
      }
      out->info = cat("engine ", index, " (config ", i, " of ", got, ", heuristics ",
                      mode == CUDNN_HEUR_MODE_A ? "A" : "fallback", "), notes [", notes, "], workspace ",
                      out->workspace, " bytes");
      out->plan = p;
      out->keep = std::move(g.descriptors());
      out->keep.push_back(std::move(plan));
      for (auto& c : cfgs) out->keep.push_back(std::move(c));
      return out;
    }
  }
  *why = last;
  return nullptr;
}

// One handle per device, plans per (device, shape, kind). Guarded by one mutex, which is also held
// while a plan is executed (the handle's stream is per call).
struct Key {
  int device;
  int kind;  // 0 forward, 1 backward deterministic, 2 backward atomic dQ
  int64_t B, T, H, KV, hd;
  bool operator<(const Key& o) const {
    return std::tie(device, kind, B, T, H, KV, hd) < std::tie(o.device, o.kind, o.B, o.T, o.H, o.KV, o.hd);
  }
};

struct State {
  std::mutex mutex;
  std::map<int, cudnnHandle_t> handles;
  std::map<Key, std::shared_ptr<Plan>> plans;  // nullptr = refused
  std::string last_plan_info;
};

State& state() {
  static State* s = new State();  // never destroyed: handles may outlive static destruction order
  return *s;
}

cudnnHandle_t handle_for(State& st, int device, std::string* why) {
  auto it = st.handles.find(device);
  if (it != st.handles.end()) return it->second;
  cudnnHandle_t h = nullptr;
  cudnnStatus_t status = cudnnCreate(&h);
  if (status != CUDNN_STATUS_SUCCESS) {
    *why = cat("cudnnCreate: ", status_text(status));
    st.handles[device] = nullptr;
    return nullptr;
  }
  st.handles[device] = h;
  return h;
}

// Returns the plan for `key` (building it on first use), nullptr when refused. st.mutex held.
std::shared_ptr<Plan> plan_for(State& st, const Key& key, cudnnHandle_t h, bool mask_order_variants) {
  auto it = st.plans.find(key);
  if (it != st.plans.end()) return it->second;
  const Shape s{key.B, key.T, key.H, key.KV, key.hd};
  std::unique_ptr<Plan> plan;
  std::string why, all;
  for (int variant = 0; variant < (mask_order_variants ? 2 : 1) && !plan; ++variant) {
    Graph g;
    if (key.kind == 0)
      build_forward(g, s);
    else
      build_backward(g, s, key.kind == 1, variant == 0);
    plan = make_plan(g, h, &why);
    if (!plan) all += cat(all.empty() ? "" : "; ", "variant ", variant, ": ", why);
  }
  const char* what = key.kind == 0 ? "forward" : key.kind == 1 ? "backward (deterministic)" : "backward (atomic dQ)";
  if (!plan) {
    note_refusal(cat("cuDNN refused the ", what, " graph for B=", s.B, " T=", s.T, " H=", s.H, " KV=", s.KV,
                     " hd=", s.hd, ": ", all));
  } else if (const char* v = std::getenv("AGPT_CUDNN_VERBOSE"); v && *v && *v != '0') {
    std::fprintf(stderr, "agpt cudnn attention: %s B=%lld T=%lld H=%lld KV=%lld hd=%lld: %s\n", what,
                 static_cast<long long>(s.B), static_cast<long long>(s.T), static_cast<long long>(s.H),
                 static_cast<long long>(s.KV), static_cast<long long>(s.hd), plan->info.c_str());
  }
  std::shared_ptr<Plan> shared(std::move(plan));
  st.plans[key] = shared;
  return shared;
}

constexpr size_t kAlign = 256;
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Runs `plan` on stream `s` with the given tensors plus `extra` bytes of scratch after cuDNN's
// workspace (handed to `place_extra`). st.mutex held.
template <typename Place>
void execute(cudnnHandle_t h, const Plan& plan, cudaStream_t s, std::vector<int64_t> uids,
             std::vector<void*> ptrs, size_t extra, Place place_extra, const char* what) {
  const size_t ws = round_up(static_cast<size_t>(plan.workspace));
  const size_t total = ws + extra;
  void* buffer = nullptr;
  if (total > 0) AGPT_CUDA_CHECK(cudaMallocAsync(&buffer, total, s));
  place_extra(static_cast<char*>(buffer) + ws, uids, ptrs);
  void* workspace = plan.workspace > 0 ? buffer : nullptr;
  Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  cudnnStatus_t st = pack.status();
  cudnnBackendDescriptor_t vp = pack.get();
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                  static_cast<int64_t>(uids.size()), uids.data());
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                  static_cast<int64_t>(ptrs.size()), ptrs.data());
  if (st == CUDNN_STATUS_SUCCESS)
    st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendFinalize(vp);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnSetStream(h, s);
  if (st == CUDNN_STATUS_SUCCESS) st = cudnnBackendExecute(h, plan.plan, vp);
  if (buffer) {
    cudaError_t err = cudaFreeAsync(buffer, s);
    if (st == CUDNN_STATUS_SUCCESS) AGPT_CUDA_CHECK(err);
  }
  if (st != CUDNN_STATUS_SUCCESS) ::agpt::fail("cuDNN attention ", what, " failed: ", status_text(st));
}

bool supported(const void* const* ptrs, int n, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t hd, int* device,
               std::string* why) {
  if (B <= 0 || T <= 0 || H <= 0 || KV <= 0 || H % KV != 0) {
    *why = "bad head counts";
    return false;
  }
  if (hd % 8 != 0 || hd <= 0 || hd > 256) {
    *why = cat("head size ", hd, " (needs a multiple of 8 up to 256)");
    return false;
  }
  for (int i = 0; i < n; ++i)
    if (!aligned16(ptrs[i])) {
      *why = "pointer not 16-byte aligned";
      return false;
    }
  if (cudaGetDevice(device) != cudaSuccess) {
    *why = "no current device";
    return false;
  }
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, *device) != cudaSuccess || major < 8) {
    *why = "compute capability below 8.0";
    return false;
  }
  return true;
}

}  // namespace

bool attention_forward_cudnn(void* out, float* lse, const void* q, const void* k, const void* v, int64_t B, int64_t T,
                             int64_t H, int64_t KV, int64_t hd, cudaStream_t s) {
  const void* ptrs[] = {out, lse, q, k, v};
  int device = 0;
  std::string why;
  if (!supported(ptrs, 5, B, T, H, KV, hd, &device, &why)) {
    note_refusal(cat("forward not attempted: ", why));
    return false;
  }
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  cudnnHandle_t h = handle_for(st, device, &why);
  if (!h) {
    note_refusal(why);
    return false;
  }
  std::shared_ptr<Plan> plan = plan_for(st, Key{device, 0, B, T, H, KV, hd}, h, false);
  if (!plan) return false;
  float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  float mask_value = std::numeric_limits<float>::lowest();
  execute(h, *plan, s, {kQ, kK, kV, kO, kStats, kScale, kMaskValue},
          {const_cast<void*>(q), const_cast<void*>(k), const_cast<void*>(v), out, lse, &scale, &mask_value}, 0,
          [](char*, std::vector<int64_t>&, std::vector<void*>&) {}, "forward");
  return true;
}

bool attention_backward_cudnn(void* dq, void* dk, void* dv, const void* dout, const void* q, const void* k,
                              const void* v, const void* out, const float* lse, int64_t B, int64_t T, int64_t H,
                              int64_t KV, int64_t hd, cudaStream_t s, bool allow_atomic_here) {
  const void* ptrs[] = {dq, dk, dv, dout, q, k, v, out, lse};
  int device = 0;
  std::string why;
  if (!supported(ptrs, 9, B, T, H, KV, hd, &device, &why)) {
    note_refusal(cat("backward not attempted: ", why));
    return false;
  }
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mutex);
  cudnnHandle_t h = handle_for(st, device, &why);
  if (!h) {
    note_refusal(why);
    return false;
  }
  const bool allow_atomic = allow_atomic_here || g_allow_nondeterministic.load();
  std::shared_ptr<Plan> plan;
  bool deterministic = false;
  if (!allow_atomic) {
    plan = plan_for(st, Key{device, 1, B, T, H, KV, hd}, h, true);
    deterministic = plan != nullptr;
  }
  if (!plan) plan = plan_for(st, Key{device, 2, B, T, H, KV, hd}, h, true);
  if (!plan) return false;
  float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  float mask_value = std::numeric_limits<float>::lowest();
  float one = 1.0f;
  const size_t sum_bytes = round_up(static_cast<size_t>(B * H * T) * sizeof(float));
  const size_t acc_bytes = deterministic ? 0 : round_up(static_cast<size_t>(B * H * T * hd) * sizeof(float));
  execute(h, *plan, s, {kQ, kK, kV, kO, kDO, kStats, kDQ, kDK, kDV, kScale, kMaskValue, kOne},
          {const_cast<void*>(q), const_cast<void*>(k), const_cast<void*>(v), const_cast<void*>(out),
           const_cast<void*>(dout), const_cast<float*>(lse), dq, dk, dv, &scale, &mask_value, &one},
          sum_bytes + acc_bytes,
          [&](char* extra, std::vector<int64_t>& uids, std::vector<void*>& ptrs_out) {
            uids.push_back(kSoftmaxSum);
            ptrs_out.push_back(extra);
            if (!deterministic) {
              uids.push_back(kDQAccum);
              ptrs_out.push_back(extra + sum_bytes);
            }
          },
          "backward");
  t_last_backward_deterministic = deterministic && !plan->nondeterministic_note;
  return true;
}

int64_t attention_cudnn_version() { return static_cast<int64_t>(cudnnGetVersion()); }

#else  // !AGPT_HAVE_CUDNN

bool attention_forward_cudnn(void*, float*, const void*, const void*, const void*, int64_t, int64_t, int64_t, int64_t,
                             int64_t, cudaStream_t) {
  return false;
}

bool attention_backward_cudnn(void*, void*, void*, const void*, const void*, const void*, const void*, const void*,
                              const float*, int64_t, int64_t, int64_t, int64_t, int64_t, cudaStream_t, bool) {
  return false;
}

int64_t attention_cudnn_version() { return 0; }

#endif  // AGPT_HAVE_CUDNN

bool attention_backward_cudnn_deterministic() { return t_last_backward_deterministic; }

void attention_cudnn_allow_nondeterministic(bool allow) { g_allow_nondeterministic.store(allow); }

std::string attention_cudnn_last_refusal() {
  std::lock_guard<std::mutex> lock(g_refusal_mutex);
  return g_last_refusal;
}

}  // namespace agpt::ops::cuda
