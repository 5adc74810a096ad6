// CudaBackend: memory, copies, cuBLAS matrix products and dispatch to the kernels in this folder.
#include "ops/cuda/cuda_backend.h"

#include <cublas_v2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>
#include <vector>

#include "base/log.h"
#include "ops/cuda/attention_cudnn.cuh"
#include "ops/cuda/attention_mma.cuh"
#include "ops/cuda/attention_tiled.cuh"
#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/gemm_lt.cuh"
#include "ops/cuda/gemm_tuner.cuh"
#include "ops/cuda/host_moments.cuh"
#include "ops/cuda/pinned_host.cuh"
#include "ops/cuda/sm90/gemm.cuh"
#include "ops/cuda/upload_staging.cuh"
#include "ops/cuda/kernels.cuh"

namespace agpt::ops {
namespace {

using namespace agpt::ops::cuda;

#define AGPT_CUBLAS_CHECK(call)                                                                     \
  do {                                                                                              \
    cublasStatus_t agpt_st_ = (call);                                                               \
    if (agpt_st_ != CUBLAS_STATUS_SUCCESS)                                                          \
      ::agpt::fail("cuBLAS error in ", #call, ": ", cublasGetStatusString(agpt_st_));               \
  } while (0)

// Device memory from the stream-ordered pool: freeing is queued behind the work that uses it.
class CudaStorage : public Storage {
 public:
  CudaStorage(void* data, size_t bytes, cudaStream_t stream) : Storage(Device::kCuda, data, bytes), stream_(stream) {}
  ~CudaStorage() override { cudaFreeAsync(data(), stream_); }

 private:
  cudaStream_t stream_;
};

// AGPT_CUDA_PROFILE=1: CUDA events around every op, summed by name (matrix products by shape);
// the table goes to stderr when the backend is destroyed. Events do not synchronize, so the
// times are GPU times (plus any launch gaps inside an op), close to an unprofiled run. The host's
// own time inside each op is summed too: where the GPU waits for the host (after a
// synchronization), it shows as GPU time of the op that follows.
#define AGPT_PROFILE_OP(name) OpTimer agpt_op_timer_(profile_.get(), stream_, [&] { return std::string(name); })

class OpProfile {
 public:
  ~OpProfile() {
    harvest();
    for (cudaEvent_t e : spare_) cudaEventDestroy(e);
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (auto& [name, v] : ops_) rows.push_back({v.gpu_s, name}), total += v.gpu_s;
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "CUDA op profile (GPU time between events around each op; host time inside the op):\n");
    for (auto& [sec, name] : rows) {
      const Sums& v = ops_[name];
      std::fprintf(stderr, "  %-40s %9.2f ms  %5.1f%%  %8lld calls  host %8.2f ms\n", name.c_str(), sec * 1e3,
                   100 * sec / total, static_cast<long long>(v.calls), v.host_s * 1e3);
    }
  }
  void clear() {
    harvest();
    ops_.clear();
  }
  cudaEvent_t record(cudaStream_t s) {
    cudaEvent_t e;
    if (spare_.empty()) AGPT_CUDA_CHECK(cudaEventCreate(&e));
    else e = spare_.back(), spare_.pop_back();
    AGPT_CUDA_CHECK(cudaEventRecord(e, s));
    return e;
  }
  void finish(std::string name, cudaEvent_t begin, cudaEvent_t end, double host_s) {
    pending_.push_back({std::move(name), begin, end, host_s});
    if (pending_.size() >= 4096) harvest();  // bounds the events alive; one wait per 4096 ops
  }

 private:
  struct Pending {
    std::string name;
    cudaEvent_t begin, end;
    double host_s;
  };
  struct Sums {
    double gpu_s = 0, host_s = 0;
    int64_t calls = 0;
  };
  void harvest() {
    for (auto& p : pending_) {
      float ms = 0;
      if (cudaEventSynchronize(p.end) == cudaSuccess && cudaEventElapsedTime(&ms, p.begin, p.end) == cudaSuccess) {
        Sums& e = ops_[p.name];
        e.gpu_s += ms * 1e-3;
        e.host_s += p.host_s;
        e.calls++;
      }
      spare_.push_back(p.begin), spare_.push_back(p.end);
    }
    pending_.clear();
  }
  std::map<std::string, Sums> ops_;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> spare_;
};

class OpTimer {
 public:
  template <class NameFn>
  OpTimer(OpProfile* p, cudaStream_t s, NameFn&& name) : p_(p), s_(s) {
    if (!p_) return;
    name_ = name();
    begin_ = p_->record(s_);
    host_begin_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() {
    if (!p_) return;
    const double host_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - host_begin_).count();
    p_->finish(std::move(name_), begin_, p_->record(s_), host_s);
  }

 private:
  OpProfile* p_;
  cudaStream_t s_;
  std::string name_;
  cudaEvent_t begin_{};
  std::chrono::steady_clock::time_point host_begin_;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, const CudaOptions& options) : device_(device) {
    int count = cuda_device_count();
    if (device < 0 || device >= count)
      fail("CUDA device ", device, " does not exist (", count, " visible). Check CUDA_VISIBLE_DEVICES, or use --device cpu");
    AGPT_CUDA_CHECK(cudaSetDevice(device));
    AGPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // Keep freed blocks in the pool instead of returning them to the driver after each sync.
    cudaMemPool_t pool;
    AGPT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t threshold = UINT64_MAX;
    AGPT_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    AGPT_CUBLAS_CHECK(cublasCreate(&blas_));
    AGPT_CUBLAS_CHECK(cublasSetStream(blas_, stream_));
    // Hopper's fastest GEMM kernels need workspace; cuBLAS's default is small (NVIDIA recommends
    // 32 MiB on sm_90).
    AGPT_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
    AGPT_CUBLAS_CHECK(cublasSetWorkspace(blas_, workspace_, kWorkspaceBytes));
    // fp32 means fp32 unless TF32 is asked for (the reference must not lose mantissa bits silently).
    if (options.matmul == "fp32") AGPT_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_PEDANTIC_MATH));
    else if (options.matmul == "tf32") AGPT_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_TF32_TENSOR_OP_MATH));
    else if (options.matmul == "bf16") AGPT_CUBLAS_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
    else fail("CUDA matmul precision '", options.matmul, "': expected fp32, tf32 or bf16");
    matmul_ = options.matmul;
    if (options.attention == "cudnn" || options.attention == "auto") {
      use_cudnn_attention_ = true;
    } else if (options.attention == "cudnn-atomic") {
      // cuDNN's backward with dQ summed by atomics: faster, not bit-reproducible.
      use_cudnn_attention_ = atomic_attention_ = true;
    } else if (options.attention != "agpt") {
      fail("CUDA attention '", options.attention, "': expected auto, cudnn, cudnn-atomic or agpt");
    }
    if (options.activations == "bf16") act_ = DType::kBF16;
    else if (options.activations != "fp32") fail("CUDA activations '", options.activations, "': expected fp32 or bf16");
    if (act_ == DType::kBF16 && matmul_ != "bf16") fail("bf16 activations need bf16 matrix products");
    cudaDeviceProp prop{};
    AGPT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    device_name_ = prop.name;
    if (options.products != "auto" && options.products != "cublas")
      fail("CUDA products '", options.products, "': expected auto or cublas");
    own_products_ = options.products == "auto" && act_ == DType::kBF16 && sm90::device_supported();
    // AGPT_CUDA_GEMM_TUNE=<file>: bf16 products use the fastest of cuBLASLt's candidate algorithms,
    // timed once and kept in <file> (gemm_tuner.cuh), as PyTorch's TunableOp. Opt-in: algorithms
    // round differently, so runs are bit-identical only with the same file.
    if (const char* e = std::getenv("AGPT_CUDA_GEMM_TUNE"); e && *e) {
      if (matmul_ != "bf16") {
        log_warn("AGPT_CUDA_GEMM_TUNE ignored: it tunes bf16 matrix products (this backend's are ", matmul_, ")");
      } else {
        gemm_tuner_ = std::make_unique<cuda::GemmTuner>(e, workspace_, kWorkspaceBytes);
        log_info("CUDA GEMM tuning: results in ", e, " (", gemm_tuner_->loaded(), " read)");
      }
    }
    if (const char* e = std::getenv("AGPT_CUDA_PROFILE"); e && std::string(e) == "1") profile_ = std::make_unique<OpProfile>();
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    profile_.reset();
    gemm_tuner_.reset();  // before the workspace they use is freed
    lt_gemm_.reset();
    host_moments_.reset();
    adamw_table_ = Tensor{};
    host_ints_.clear();
    weight_cache_.clear();  // its tensors free themselves on stream_, destroyed below
    cublasDestroy(blas_);
    cudaFree(workspace_);
    // The stream outlives tensors freed later only if they are freed before this; the model owns
    // its tensors and is destroyed before its backend.
    cudaStreamDestroy(stream_);
  }

  std::string name() const override {
    return "cuda:" + std::to_string(device_) + " (" + device_name_ + ", " + matmul_ + " matmul, " +
           dtype_name(act_) + " activations" +
           (use_cudnn_attention_ && act_ == DType::kBF16 && cuda::attention_cudnn_version() > 0
                ? (atomic_attention_ ? ", cuDNN attention (atomic dQ)" : ", cuDNN attention")
                : "") +
           (gemm_tuner_ ? ", tuned GEMMs" : "") + (own_products_ ? ", fused products" : "") + ")";
  }
  DType activation_dtype() const override { return act_; }
  int64_t peak_memory_bytes() const override {
    cudaMemPool_t pool;
    uint64_t high = 0;
    if (cudaDeviceGetDefaultMemPool(&pool, device_) != cudaSuccess ||
        cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high) != cudaSuccess)
      return 0;
    return static_cast<int64_t>(high);
  }
  int64_t device_memory_bytes() const override {
    size_t free_b = 0, total_b = 0;
    return cudaMemGetInfo(&free_b, &total_b) == cudaSuccess ? static_cast<int64_t>(total_b) : 0;
  }
  Device device() const override { return Device::kCuda; }
  void synchronize() override { AGPT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  void* native_stream() const override { return stream_; }

 protected:
  std::shared_ptr<Storage> do_allocate(size_t bytes) override {
    void* p = nullptr;
    size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
    cudaError_t err = cudaMallocAsync(&p, rounded, stream_);
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      fail("out of GPU memory allocating ", bytes, " bytes on ", name(), " (", free_b >> 20, " MiB free of ",
           total_b >> 20, " MiB): lower train.micro_batch or the sequence length");
    }
    return std::make_shared<CudaStorage>(p, rounded, stream_);
  }
  void do_zero(Tensor& t) override {
    forget_what_is_cached_of(t);
    AGPT_CUDA_CHECK(cudaMemsetAsync(t.raw(), 0, t.bytes(), stream_));
  }
  void do_copy(Tensor& dst, const Tensor& src) override {
    AGPT_PROFILE_OP("copy");
    forget_what_is_cached_of(dst);
    AGPT_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.bytes(), cudaMemcpyDeviceToDevice, stream_));
  }
  void do_cast(Tensor& dst, const Tensor& src) override {
    AGPT_PROFILE_OP("cast");
    forget_what_is_cached_of(dst);
    cuda::cast(dst.raw(), elem(dst), src.raw(), elem(src), dst.numel(), stream_);
  }
  void do_upload(Tensor& dst, const void* host) override {
    AGPT_PROFILE_OP("upload");
    forget_what_is_cached_of(dst);
    // The caller may free or reuse host memory right after upload() returns: small uploads (token
    // ids, targets, tables) go through page-locked staging and do not wait for the GPU; others
    // wait for their copy.
    if (!upload_staging_.stage(dst.raw(), host, dst.bytes(), stream_)) {
      AGPT_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), host, dst.bytes(), cudaMemcpyHostToDevice, stream_));
      AGPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    // Token ids and targets: the host keeps their values, so the checks and the embedding
    // backward's grouping need no download (which would wait for the GPU).
    if (dst.dtype() == DType::kI32 && dst.numel() <= kHostIntsMax) {
      const auto* v = static_cast<const int32_t*>(host);
      host_ints_.push_back({dst, std::vector<int32_t>(v, v + dst.numel())});
      if (host_ints_.size() > 8) host_ints_.erase(host_ints_.begin());
    }
  }
  // The values of an int32 tensor: from the host copy of its upload when it has one, else downloaded.
  std::vector<int32_t> host_ints(const Tensor& t) {
    for (const HostInts& h : host_ints_)
      if (h.tensor.same_storage(t) && h.tensor.offset() == t.offset() && h.tensor.numel() == t.numel()) return h.values;
    std::vector<int32_t> v(static_cast<size_t>(t.numel()));
    do_download(t, v.data());
    return v;
  }
  // t is about to be written: drop the weight copies and the host values of uploads it overlaps.
  void forget_what_is_cached_of(const Tensor& t) {
    invalidate_weight_copies(t);
    std::erase_if(host_ints_, [&](const HostInts& h) { return bytes_overlap(h.tensor, t); });
  }
  static bool bytes_overlap(const Tensor& a, const Tensor& b) {
    const auto *alo = static_cast<const char*>(a.raw()), *blo = static_cast<const char*>(b.raw());
    return alo < blo + b.bytes() && blo < alo + a.bytes();
  }
  void do_download(const Tensor& src, void* host) const override {
    AGPT_PROFILE_OP("download");
    AGPT_CUDA_CHECK(cudaMemcpyAsync(host, src.raw(), src.bytes(), cudaMemcpyDeviceToHost, stream_));
    AGPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void do_embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table, int64_t vocab_begin) override {
    AGPT_PROFILE_OP("embedding_forward");
    int64_t N = ids.dim(0), V = table.dim(0), D = table.dim(1);
    if (vocab_begin < 0) {  // the whole vocabulary: every id must be in the table
      std::vector<int32_t> host = host_ints(ids);
      for (int64_t n = 0; n < N; ++n)
        if (host[n] < 0 || host[n] >= V)
          fail("embedding: token id ", host[n], " at position ", n, " is outside [0, ", V, ")");
    }
    cuda::embedding_forward(out.raw(), elem(out), ids.data<int32_t>(), table.raw(), elem(table), N, D,
                            std::max<int64_t>(vocab_begin, 0), V, stream_);
  }

  // Groups positions by token on the host (a counting sort, as the CPU reference does), then one
  // block per distinct token sums its rows in position order.
  void do_embedding_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout, int64_t vocab_begin) override {
    AGPT_PROFILE_OP("embedding_backward");
    int64_t N = ids.dim(0), V = dtable.dim(0), D = dtable.dim(1);
    std::vector<int32_t> id = host_ints(ids);
    // Table rows; -1 for an id of another rank's vocabulary shard (no gradient here).
    for (int64_t n = 0; n < N; ++n) {
      if (vocab_begin < 0) {
        if (id[n] < 0 || id[n] >= V) fail("embedding: token id ", id[n], " at position ", n, " is outside [0, ", V, ")");
      } else {
        const int64_t row = static_cast<int64_t>(id[n]) - vocab_begin;
        id[n] = row >= 0 && row < V ? static_cast<int32_t>(row) : -1;
      }
    }
    std::vector<int32_t> count(static_cast<size_t>(V), 0);
    int64_t kept = 0;
    for (int64_t n = 0; n < N; ++n)
      if (id[n] >= 0) ++count[id[n]], ++kept;
    std::vector<int32_t> token, start{0}, first(static_cast<size_t>(V), -1);
    for (int64_t v = 0; v < V; ++v)
      if (count[v]) {
        first[v] = start.back();
        token.push_back(static_cast<int32_t>(v));
        start.push_back(start.back() + count[v]);
      }
    std::vector<int32_t> order(static_cast<size_t>(kept));
    for (int64_t n = 0; n < N; ++n)
      if (id[n] >= 0) order[first[id[n]]++] = static_cast<int32_t>(n);
    // One upload of [order | start | token].
    std::vector<int32_t> packed;
    packed.reserve(order.size() + start.size() + token.size());
    packed.insert(packed.end(), order.begin(), order.end());
    packed.insert(packed.end(), start.begin(), start.end());
    packed.insert(packed.end(), token.begin(), token.end());
    Tensor dev = empty({static_cast<int64_t>(packed.size())}, DType::kI32);
    do_upload(dev, packed.data());
    const int32_t* base = dev.data<int32_t>();
    cuda::embedding_backward(dtable.data<float>(), base, base + kept, base + kept + start.size(),
                             static_cast<int64_t>(token.size()), dout.raw(), elem(dout), D, stream_);
  }

  // Norm weights are D values: a bf16 one (train.param_dtype) is widened rather than given kernels.
  void do_rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& stored_w, float eps) override {
    AGPT_PROFILE_OP("rmsnorm_forward");
    const Tensor w = widened(stored_w);
    cuda::rmsnorm_forward(out.raw(), rstd.data<float>(), x.raw(), w.data<float>(), elem(x), x.dim(0), x.dim(1), eps,
                          stream_);
  }
  void do_rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x, const Tensor& stored_w,
                           const Tensor& rstd) override {
    AGPT_PROFILE_OP("rmsnorm_backward");
    const Tensor w = widened(stored_w);
    int64_t N = x.dim(0), D = x.dim(1);
    Tensor partial = empty({std::max<int64_t>(rmsnorm_dw_chunks(N), 1), D});
    cuda::rmsnorm_backward(dx.defined() ? dx.raw() : nullptr, dw.defined() ? dw.data<float>() : nullptr,
                           partial.data<float>(), dout.raw(), x.raw(), w.data<float>(), rstd.data<float>(), elem(x), N, D,
                           stream_);
  }

  // Column-major C (m×n) = op(A)·op(B) + beta·C over dense tensors (lda/ldb their row lengths).
  // fp32/tf32 modes: SGEMM. bf16 mode: fp32 operands are rounded to bf16 scratch first (weights
  // are fp32 masters), bf16 operands are used as they are, and the product accumulates in fp32
  // into C of C's own type (bf16 activations, fp32 weight gradients).
  // a_is_weight: `a` is a Linear weight, whose bf16 copy may come from (and go to) the weight cache.
  // addend: C's input when it is not c itself (c = op(A)·op(B) + beta·addend; beta must be 1).
  void gemm(cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k, const Tensor& a, int lda,
            const Tensor& b, int ldb, float beta, Tensor& c, int ldc, bool a_is_weight = false,
            const Tensor* addend = nullptr) {
    const float one = 1;
    // bf16 takes a separate addend through cuBLASLt (tuned or not); SGEMM gets it copied into c.
    const bool separate_addend = addend && addend->raw() != c.raw();
    if (separate_addend && matmul_ != "bf16") do_copy(c, *addend);
    if (matmul_ != "bf16") {  // (a bf16 weight is widened)
      AGPT_CUBLAS_CHECK(cublasSgemm(blas_, opa, opb, m, n, k, &one, widened(a).data<float>(), lda, b.data<float>(), ldb,
                                    &beta, c.data<float>(), ldc));
      return;
    }
    auto as_bf16 = [&](const Tensor& t) { return rounded_bf16(t); };
    Tensor a16 = a_is_weight ? weight_bf16(a, as_bf16) : as_bf16(a), b16 = as_bf16(b);
    const cudaDataType_t ct = c.dtype() == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
    if (gemm_tuner_ && gemm_tuner_->matmul(opa, opb, m, n, k, a16.raw(), lda, b16.raw(), ldb, beta, c.raw(),
                                           ct == CUDA_R_16BF, ldc, stream_, separate_addend ? addend->raw() : nullptr))
      return;
    if (separate_addend && !cuda::LtGemm::aligned({a16.raw(), b16.raw(), addend->raw(), c.raw()})) {
      do_copy(c, *addend);  // views off cuBLASLt's 256-byte alignment: in place instead
    } else if (separate_addend) {
      if (!lt_gemm_) lt_gemm_ = std::make_unique<cuda::LtGemm>(workspace_, kWorkspaceBytes);
      lt_gemm_->matmul(opa, opb, m, n, k, a16.raw(), lda, b16.raw(), ldb, beta, addend->raw(), c.raw(),
                       ct == CUDA_R_16BF, ldc, stream_);
      return;
    }
    AGPT_CUBLAS_CHECK(cublasGemmEx(blas_, opa, opb, m, n, k, &one, a16.raw(), CUDA_R_16BF, lda, b16.raw(), CUDA_R_16BF,
                                   ldb, &beta, c.raw(), ct, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }

  // t itself when bf16, else t rounded into bf16 scratch (fp32 master weights, fp32 operands).
  Tensor rounded_bf16(const Tensor& t) {
    if (t.dtype() == DType::kBF16) return t;
    AGPT_PROFILE_OP("(in matmul) fp32->bf16 operand " + shape_string(t.shape()));
    Tensor r = empty(t.shape(), DType::kBF16);
    cuda::cast(r.raw(), cuda::Elem::kBF16, t.raw(), cuda::Elem::kF32, t.numel(), stream_);
    return r;
  }
  Tensor weight_bf16(const Tensor& w) {
    return weight_bf16(w, [&](const Tensor& t) { return rounded_bf16(t); });
  }

  // The bf16 copy of weight w: from the cache while weights are reused (begin_weight_reuse), made
  // (and cached) by round(w) otherwise. An entry holds a reference to its weight's storage, so the
  // address cannot be reused by another tensor while the entry exists.
  template <class Round>
  Tensor weight_bf16(const Tensor& w, Round&& round) {
    if (!reuse_weights_ || w.dtype() != DType::kF32) return round(w);
    auto it = weight_cache_.find(w.raw());
    if (it != weight_cache_.end() && it->second.source.same_storage(w) && it->second.copy.numel() == w.numel())
      return it->second.copy;
    Tensor copy = round(w);
    weight_cache_.insert_or_assign(w.raw(), CachedWeight{w, copy, false});
    return copy;
  }
  // Drops the copies of weights whose bytes overlap t's (t is about to be written).
  void invalidate_weight_copies(const Tensor& t) {
    std::erase_if(weight_cache_, [&](const auto& e) { return bytes_overlap(e.second.source, t); });
  }
  void begin_weight_reuse() override {
    // A forward after a prepared update that did not follow (a skipped step): its weight copies
    // would only hold memory beside the forward's own.
    prepared_adamw_.reset();
    std::erase_if(weight_cache_, [](const auto& e) { return !e.second.from_optimizer; });
    reuse_weights_ = matmul_ == "bf16";
  }
  void end_weight_reuse() override {
    // Copies of weights updated inside the backward (update_in_backward) are the next forward's.
    std::erase_if(weight_cache_, [](const auto& e) { return !e.second.from_optimizer; });
    reuse_weights_ = false;
  }
  void reset_profile() override {
    if (profile_) profile_->clear();
  }

  static std::string shape_name(int n, int i, int o) {
    return std::to_string(n) + "x" + std::to_string(i) + "->" + std::to_string(o);
  }

  // Row-major y[N,O] = x[N,I]·wᵀ is column-major yᵀ = w'ᵀ·xᵀ where w' (= w read column-major) is I×O.
  void do_matmul_forward(Tensor& y, const Tensor& x, const Tensor& w) override {
    int N = dim32(x.dim(0)), I = dim32(x.dim(1)), O = dim32(w.dim(0));
    AGPT_PROFILE_OP("matmul_forward " + shape_name(N, I, O));
    if (N == 0 || O == 0) return;
    if (I == 0) return do_zero(y);
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, w, I, x, I, 0.0f, y, O, /*a_is_weight=*/true);
  }
  void do_matmul_add_forward(Tensor& y, const Tensor& residual, const Tensor& x, const Tensor& w) override {
    int N = dim32(x.dim(0)), I = dim32(x.dim(1)), O = dim32(w.dim(0));
    AGPT_PROFILE_OP("matmul_add_forward " + shape_name(N, I, O));
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, w, I, x, I, 1.0f, y, O, /*a_is_weight=*/true, &residual);
  }
  void do_matmul_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w, Grad dx_mode,
                          Grad dw_mode) override {
    int N = dim32(x.dim(0)), I = dim32(x.dim(1)), O = dim32(w.dim(0));
    AGPT_PROFILE_OP("matmul_backward " + shape_name(N, I, O));
    if (I == 0) return;  // dx and dw are empty
    if (dx.defined() && own_input_gradient(dx, dy, N, I, O, dx_mode)) {
      const Tensor w16 = weight_bf16(w);
      sm90::gemm_nn(dx.raw(), dy.raw(), w16.raw(), N, I, O, stream_);
    } else if (dx.defined()) {
      gemm(CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, w, I, dy, O, grad_beta(dx_mode), dx, I, true);  // dxᵀ (+)= w'·dyᵀ
    }
    if (dw.defined()) weight_gradient(dw, dy, x, w, dw_mode);
    release_weight(w);
  }
  // Whether dx [N, I] = dy [N, O]·w takes agpt's Hopper product: written (not added), whole tiles,
  // and O up to 16,384 (the attention output's input gradient: 0.83-0.97 of cuBLAS's time on an
  // H100; at the lm_head's O = 128,256 cuBLAS is 2-4% faster).
  bool own_input_gradient(const Tensor& dx, const Tensor& dy, int N, int I, int O, Grad mode) const {
    return own_products_ && mode == Grad::kWrite && dx.dtype() == DType::kBF16 && dy.dtype() == DType::kBF16 &&
           O <= 16384 && sm90::shape_ok(N, I, O) && aligned16({dx.raw(), dy.raw()});
  }
  // dw [O, I] (+)= dyᵀ·x for dy [N, O], x [N, I]: column-major dw' = xᵀ·dy; with the weight's
  // AdamW update in the product where it was arranged and pays (update_in_backward).
  void weight_gradient(Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w, Grad mode) {
    const int N = dim32(x.dim(0)), I = dim32(x.dim(1)), O = dim32(dy.dim(1));
    if (update_in_backward(dw, dy, x, w, mode)) return;
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, x, I, dy, O, grad_beta(mode), dw, I);
  }
  // The weight's last use in this step: its bf16 copy goes (freed in stream order), replaced by
  // the updated weight's where the backward updated it.
  void release_weight(const Tensor& w) {
    weight_cache_.erase(w.raw());
    if (auto it = updated_copies_.find(w.raw()); it != updated_copies_.end()) {
      weight_cache_.insert_or_assign(w.raw(), std::move(it->second));
      updated_copies_.erase(it);
    }
  }

  void arrange_update_in_backward(std::span<const AdamWItem> items, const AdamWStep& s) override {
    Backend::arrange_update_in_backward(items, s);
    arranged_.assign(items.begin(), items.end());
    arranged_done_.assign(items.size(), false);
    arranged_step_ = s;
  }
  std::vector<bool> take_updated_in_backward() override {
    Backend::take_updated_in_backward();
    std::vector<bool> done = std::move(arranged_done_);
    arranged_.clear(), arranged_done_.clear(), updated_copies_.clear();
    return done;
  }
  // The weight gradient with the weight's AdamW update in its epilogue (sm90::weight_grad_adamw):
  // where the update of this gradient was arranged, on Hopper with bf16 activations, for products of
  // at least two tiles per SM (the update of a product's last tiles cannot overlap it: with fewer
  // tiles the fused product is slower than the product and the update kernel).
  bool update_in_backward(Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w, Grad mode) {
    if (arranged_.empty() || !own_products_) return false;
    size_t i = 0;
    while (i < arranged_.size() && !(arranged_[i].grad->same_storage(dw) && !arranged_done_[i])) ++i;
    if (i == arranged_.size()) return false;
    const AdamWItem& it = arranged_[i];
    const int64_t N = x.dim(0), I = x.dim(1), O = dy.dim(1);
    if (!it.param->same_storage(w) || w.dtype() != DType::kF32 || dw.dtype() != DType::kF32 ||
        dy.dtype() != DType::kBF16 || x.dtype() != DType::kBF16 || it.m->numel() != w.numel() ||
        it.v->numel() != w.numel() || dw.numel() != w.numel() || !sm90::weight_grad_shape_ok(N, O, I) ||
        sm90::output_tiles(O, I) < 2 * sm_count() || !aligned16({dw.raw(), dy.raw(), x.raw(), w.raw(), it.m->raw(), it.v->raw()}))
      return false;
    AGPT_PROFILE_OP("weight gradient with AdamW " + shape_name(dim32(N), dim32(I), dim32(O)));
    invalidate_weight_copies(*it.param);
    Tensor copy;
    if (arranged_step_.weight_copy && matmul_ == "bf16") copy = empty(w.shape(), DType::kBF16);
    const sm90::FusedAdamW update{it.param->data<float>(), it.m->data<float>(), it.v->data<float>(),
                                  copy.defined() ? copy.raw() : nullptr, adamw_constants(arranged_step_, it.weight_decay)};
    sm90::weight_grad_adamw(dw.data<float>(), dy.raw(), x.raw(), dim32(N), dim32(O), dim32(I), mode == Grad::kAdd,
                            update, stream_);
    if (copy.defined()) updated_copies_.insert_or_assign(w.raw(), CachedWeight{*it.param, copy, true});
    arranged_done_[i] = true;
    return true;
  }
  int sm_count() {
    if (sm_count_ == 0) AGPT_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device_));
    return sm_count_;
  }

  void do_rope(Tensor& x, const Tensor& cos, const Tensor& sin, int64_t pos0, bool inverse) override {
    AGPT_PROFILE_OP("rope");
    cuda::rope(x.raw(), elem(x), cos.data<float>(), sin.data<float>(), x.dim(0), x.dim(1), x.dim(2), x.dim(3), pos0,
               inverse, stream_);
  }

  // cuDNN builds (and caches) a plan per shape, which takes about a second: worth it for training's
  // fixed sequence lengths, not for the ever-changing lengths of prompts and evaluation items,
  // which keep agpt's kernels. Training lengths are multiples of 64 in practice.
  bool cudnn_attention_for(int64_t T) const { return use_cudnn_attention_ && T % 64 == 0; }

  // Attention: bf16 activations take the tensor-core kernels (attention_mma.cu); other shapes and
  // fp32 take the fp32 kernels, with bf16 widened into fp32 scratch around them (Backend::widened).

  void do_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v) override {
    AGPT_PROFILE_OP("attention_forward");
    const int64_t B = q.dim(0), Tq = q.dim(1), Tk = k.dim(1), H = q.dim(2), KV = k.dim(2), hd = q.dim(3);
    // bf16: cuDNN's fused attention (training shapes), else agpt's tensor-core flash attention
    // (hd 64/128); otherwise fp32 kernels below.
    if (q.dtype() == DType::kBF16 && Tq == Tk && cudnn_attention_for(Tq) &&
        cuda::attention_forward_cudnn(out.raw(), lse.data<float>(), q.raw(), k.raw(), v.raw(), B, Tq, H, KV, hd,
                                      stream_))
      return;
    if (q.dtype() == DType::kBF16 && cuda::attention_forward_mma(out.raw(), lse.data<float>(), q.raw(), k.raw(), v.raw(),
                                                                 B, Tq, Tk, H, KV, hd, stream_))
      return;
    Tensor q32 = widened(q), k32 = widened(k), v32 = widened(v);
    Tensor o32 = out.dtype() == DType::kF32 ? out : empty(out.shape(), DType::kF32);
    // Tiled flash-style kernels for training-sized chunks (hd 64/128); the warp-per-row kernels
    // for decoding a few tokens and for other head sizes.
    if (!(Tq >= 16 && cuda::attention_forward_tiled(o32.data<float>(), lse.data<float>(), q32.data<float>(),
                                                    k32.data<float>(), v32.data<float>(), B, Tq, Tk, H, KV, hd, stream_)))
      cuda::attention_forward(o32.data<float>(), lse.data<float>(), q32.data<float>(), k32.data<float>(),
                              v32.data<float>(), B, Tq, Tk, H, KV, hd, stream_);
    if (!o32.same_storage(out)) cuda::cast(out.raw(), elem(out), o32.raw(), cuda::Elem::kF32, out.numel(), stream_);
  }
  void do_attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q, const Tensor& k,
                             const Tensor& v, const Tensor& out, const Tensor& lse, Grad mode) override {
    AGPT_PROFILE_OP("attention_backward");
    int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), KV = k.dim(2), hd = q.dim(3);
    const bool write = mode == Grad::kWrite;
    if (dq.dtype() == DType::kBF16 && cudnn_attention_for(T)) {
      // cuDNN writes the gradients: straight into them (kWrite), or into scratch that is added.
      Tensor gq = write ? dq : empty(dq.shape(), DType::kBF16), gk = write ? dk : empty(dk.shape(), DType::kBF16),
             gv = write ? dv : empty(dv.shape(), DType::kBF16);
      if (cuda::attention_backward_cudnn(gq.raw(), gk.raw(), gv.raw(), dout.raw(), q.raw(), k.raw(), v.raw(), out.raw(),
                                         lse.data<float>(), B, T, H, KV, hd, stream_, atomic_attention_)) {
        if (!write)
          for (auto [g, part] : {std::pair<Tensor*, Tensor*>{&dq, &gq}, {&dk, &gk}, {&dv, &gv}})
            cuda::add(g->raw(), g->raw(), part->raw(), elem(*g), g->numel(), stream_);
        return;
      }
    }
    Tensor delta = empty({B * H * T});
    const bool wide = dq.dtype() == DType::kF32;
    if (wide && write)
      for (Tensor* g : {&dq, &dk, &dv}) do_zero(*g);
    // fp32 gradients accumulate in place; bf16 ones through zeroed fp32 scratch, added (or cast) at the end.
    Tensor dq32 = wide ? dq : zeros(dq.shape()), dk32 = wide ? dk : zeros(dk.shape()), dv32 = wide ? dv : zeros(dv.shape());
    auto fold = [&] {
      if (wide) return;
      for (auto [g, g32p] : {std::pair<Tensor*, Tensor*>{&dq, &dq32}, {&dk, &dk32}, {&dv, &dv32}}) {
        if (write) cuda::cast(g->raw(), elem(*g), g32p->raw(), cuda::Elem::kF32, g->numel(), stream_);
        else cuda::add_from_f32(g->raw(), elem(*g), g32p->data<float>(), g->numel(), stream_);
      }
    };
    if (!wide && cuda::attention_backward_mma(dq32.data<float>(), dk32.data<float>(), dv32.data<float>(),
                                              delta.data<float>(), dout.raw(), q.raw(), k.raw(), v.raw(), out.raw(),
                                              lse.data<float>(), B, T, H, KV, hd, stream_))
      return fold();
    Tensor q32 = widened(q), k32 = widened(k), v32 = widened(v), o32 = widened(out), g32 = widened(dout);
    if (!cuda::attention_backward_tiled(dq32.data<float>(), dk32.data<float>(), dv32.data<float>(), delta.data<float>(),
                                        g32.data<float>(), q32.data<float>(), k32.data<float>(), v32.data<float>(),
                                        o32.data<float>(), lse.data<float>(), B, T, H, KV, hd, stream_))
      cuda::attention_backward(dq32.data<float>(), dk32.data<float>(), dv32.data<float>(), delta.data<float>(),
                               g32.data<float>(), q32.data<float>(), k32.data<float>(), v32.data<float>(),
                               o32.data<float>(), lse.data<float>(), B, T, H, KV, hd, stream_);
    fold();
  }

  void do_swiglu_forward(Tensor& out, const Tensor& gate, const Tensor& up) override {
    AGPT_PROFILE_OP("swiglu_forward");
    cuda::swiglu_forward(out.raw(), gate.raw(), up.raw(), elem(gate), gate.numel(), stream_);
  }
  void do_swiglu_backward(Tensor& dgate, Tensor& dup, const Tensor& dout, const Tensor& gate,
                          const Tensor& up) override {
    AGPT_PROFILE_OP("swiglu_backward");
    cuda::swiglu_backward(dgate.raw(), dup.raw(), dout.raw(), gate.raw(), up.raw(), elem(gate), gate.numel(), stream_);
  }
  // On Hopper with bf16 activations, agpt's own products (sm90/gemm.cuh) with the element-wise
  // work in their epilogue when the shapes are whole tiles; otherwise the separate ops.
  static bool aligned16(std::initializer_list<const void*> pointers) {
    for (const void* p : pointers)
      if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
    return true;
  }
  void do_qkv_rope_forward(Tensor& q, Tensor& k, Tensor& v, const Tensor& x, const Tensor& wq, const Tensor& wk,
                           const Tensor& wv, const Tensor& cos, const Tensor& sin, int64_t pos0) override {
    const int64_t N = x.dim(0), I = x.dim(1), T = q.dim(1), hd = q.dim(3), Nq = q.dim(2) * hd, Nkv = k.dim(2) * hd;
    if (!own_products_ || !sm90::qkv_shape_ok(N, Nq, Nkv, I, hd, T) || cos.dtype() != DType::kF32 ||
        sin.dtype() != DType::kF32 || !aligned16({q.raw(), k.raw(), v.raw(), x.raw(), cos.raw(), sin.raw()}))
      return Backend::do_qkv_rope_forward(q, k, v, x, wq, wk, wv, cos, sin, pos0);
    AGPT_PROFILE_OP("qkv_rope_forward " + shape_name(dim32(N), dim32(I), dim32(Nq + 2 * Nkv)));
    const Tensor wq16 = weight_bf16(wq), wk16 = weight_bf16(wk), wv16 = weight_bf16(wv);
    sm90::qkv_rope_forward(q.raw(), k.raw(), v.raw(), x.raw(), wq16.raw(), wk16.raw(), wv16.raw(), dim32(N), dim32(Nq),
                           dim32(Nkv), dim32(I), cos.data<float>(), sin.data<float>(), dim32(hd), dim32(T), dim32(pos0),
                           stream_);
  }
  // Layers that share an input (q, k, v; gate, up): their input gradients summed in one product
  // (written, so dx_mode kWrite), the weight gradients through cuBLAS as do_matmul_backward.
  void do_matmul_backward_shared(Tensor& dx, const Tensor& x, std::span<const LinearGrad> layers, Grad dx_mode,
                                 Grad dw_mode) override {
    const int64_t N = x.dim(0), I = x.dim(1);
    bool fused = own_products_ && dx_mode == Grad::kWrite && layers.size() >= 2 && layers.size() <= 3 &&
                 aligned16({dx.raw(), x.raw()});
    int64_t K = 0;
    for (const LinearGrad& l : layers) {
      fused = fused && l.w->dim(0) % 64 == 0 && aligned16({l.dy->raw()});
      K += l.w->dim(0);
    }
    if (!fused || !sm90::shape_ok(N, I, K)) return Backend::do_matmul_backward_shared(dx, x, layers, dx_mode, dw_mode);
    {
      AGPT_PROFILE_OP("matmul_backward_shared (input) " + shape_name(dim32(N), dim32(I), dim32(K)));
      std::vector<Tensor> w16;  // the weights' bf16 copies, alive until the product is queued
      sm90::NnTerm terms[3];
      for (size_t i = 0; i < layers.size(); ++i) {
        w16.push_back(weight_bf16(*layers[i].w));
        terms[i] = {layers[i].dy->raw(), w16.back().raw(), dim32(layers[i].w->dim(0))};
      }
      sm90::gemm_nn_sum(dx.raw(), terms, static_cast<int>(layers.size()), dim32(N), dim32(I), stream_);
    }
    for (const LinearGrad& l : layers) {
      if (l.dw && l.dw->defined()) {
        AGPT_PROFILE_OP("matmul_backward (weight) " + shape_name(dim32(N), dim32(I), dim32(l.w->dim(0))));
        weight_gradient(*l.dw, *l.dy, x, *l.w, dw_mode);
      }
      release_weight(*l.w);
    }
  }
  void do_swiglu_matmul_forward(Tensor& act, Tensor& gate, Tensor& up, const Tensor& x, const Tensor& wg,
                                const Tensor& wu) override {
    const int64_t N = x.dim(0), I = x.dim(1), F = wg.dim(0);
    if (!own_products_ || F % 128 != 0 || !sm90::shape_ok(N, 2 * F, I) ||
        !aligned16({act.raw(), gate.raw(), up.raw(), x.raw()}))
      return Backend::do_swiglu_matmul_forward(act, gate, up, x, wg, wu);
    AGPT_PROFILE_OP("swiglu_matmul_forward " + shape_name(dim32(N), dim32(I), dim32(F)));
    const Tensor wg16 = weight_bf16(wg), wu16 = weight_bf16(wu);
    sm90::swiglu_forward(act.raw(), gate.raw(), up.raw(), x.raw(), wg16.raw(), wu16.raw(), dim32(N), dim32(F),
                         dim32(I), stream_);
  }
  void do_swiglu_matmul_backward(Tensor& dgate, Tensor& dup, Tensor& dact, Tensor& dwd, const Tensor& dy,
                                 const Tensor& act, const Tensor& wd, const Tensor& gate, const Tensor& up,
                                 Grad dw_mode) override {
    const int64_t N = dy.dim(0), O = dy.dim(1), F = wd.dim(1);
    if (!own_products_ || !sm90::shape_ok(N, F, O) ||
        !aligned16({dgate.raw(), dup.raw(), dy.raw(), gate.raw(), up.raw()}))
      return Backend::do_swiglu_matmul_backward(dgate, dup, dact, dwd, dy, act, wd, gate, up, dw_mode);
    {
      AGPT_PROFILE_OP("swiglu_matmul_backward (input) " + shape_name(dim32(N), dim32(F), dim32(O)));
      const Tensor wd16 = weight_bf16(wd);
      sm90::swiglu_backward(dgate.raw(), dup.raw(), dy.raw(), wd16.raw(), gate.raw(), up.raw(), dim32(N), dim32(F),
                            dim32(O), stream_);
    }
    if (dwd.defined()) {
      AGPT_PROFILE_OP("swiglu_matmul_backward (weight) " + shape_name(dim32(N), dim32(F), dim32(O)));
      weight_gradient(dwd, dy, act, wd, dw_mode);
    }
    release_weight(wd);
  }

  void do_add(Tensor& out, const Tensor& a, const Tensor& b) override {
    AGPT_PROFILE_OP("add");
    cuda::add(out.raw(), a.raw(), b.raw(), elem(a), out.numel(), stream_);
  }
  void do_scale(Tensor& t, float s) override { cuda::scale(t.raw(), elem(t), s, t.numel(), stream_); }

  void check_targets(const Tensor& targets, int64_t V, int64_t vocab_begin) {
    if (vocab_begin >= 0) return;  // a shard of the vocabulary: any target may be another rank's
    std::vector<int32_t> y = host_ints(targets);
    for (size_t n = 0; n < y.size(); ++n)
      if (y[n] >= V) fail("cross_entropy: target ", y[n], " at position ", n, " is outside [0, ", V, ")");
  }
  void do_cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                                int64_t vocab_begin) override {
    AGPT_PROFILE_OP("cross_entropy_forward");
    check_targets(targets, logits.dim(1), vocab_begin);
    cuda::cross_entropy_forward(losses.data<float>(), lse.data<float>(), logits.raw(), elem(logits),
                                targets.data<int32_t>(), logits.dim(0), logits.dim(1), std::max<int64_t>(vocab_begin, 0),
                                stream_);
  }
  void do_cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& lse, const Tensor& targets,
                                 float scale, int64_t vocab_begin) override {
    AGPT_PROFILE_OP("cross_entropy_backward");
    check_targets(targets, logits.dim(1), vocab_begin);
    cuda::cross_entropy_backward(dlogits.raw(), logits.raw(), elem(logits), lse.data<float>(), targets.data<int32_t>(),
                                 logits.dim(0), logits.dim(1), std::max<int64_t>(vocab_begin, 0), scale, stream_);
  }

  void do_cross_entropy_forward_backward(Tensor& losses, Tensor& lse, Tensor& dlogits, const Tensor& logits,
                                         const Tensor& targets, float scale) override {
    AGPT_PROFILE_OP("cross_entropy_forward_backward");
    check_targets(targets, logits.dim(1), -1);
    cuda::cross_entropy_forward_backward(losses.data<float>(), lse.data<float>(), dlogits.raw(), logits.raw(),
                                         elem(logits), targets.data<int32_t>(), logits.dim(0), logits.dim(1), scale,
                                         stream_);
  }

  double do_sum_squares(std::span<const Tensor> tensors) override {
    AGPT_PROFILE_OP("sum_squares");
    // All tensors cut into chunks of 64Ki floats: one launch over every chunk, one for the total.
    constexpr int64_t kChunk = int64_t{1} << 16;
    std::vector<cuda::SumChunk> chunks;
    for (const Tensor& t : tensors)
      for (int64_t off = 0; off < t.numel(); off += kChunk)
        chunks.push_back({t.data<float>() + off, std::min(kChunk, t.numel() - off)});
    const auto count = static_cast<int64_t>(chunks.size());
    // Device buffers as fp32 tensors of the right byte size (tensors have no f64 or struct type).
    Tensor acc = zeros({2}, DType::kF32), partial = empty({2 * std::max<int64_t>(count, 1)}, DType::kF32);
    Tensor table = empty({4 * std::max<int64_t>(count, 1)}, DType::kF32);
    static_assert(sizeof(cuda::SumChunk) == 4 * sizeof(float));
    if (count > 0)
      AGPT_CUDA_CHECK(cudaMemcpyAsync(table.raw(), chunks.data(), chunks.size() * sizeof(cuda::SumChunk),
                                      cudaMemcpyHostToDevice, stream_));
    double* r = static_cast<double*>(acc.raw());
    cuda::sum_squares_chunks(r, static_cast<double*>(partial.raw()), static_cast<const cuda::SumChunk*>(table.raw()),
                             count, stream_);
    double host = 0;
    AGPT_CUDA_CHECK(cudaMemcpyAsync(&host, r, sizeof host, cudaMemcpyDeviceToHost, stream_));
    AGPT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host;
  }

  static AdamWConstants adamw_constants(const AdamWStep& s, double weight_decay) {
    double bias1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
    double bias2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
    AdamWConstants c{};
    c.decay = static_cast<float>(1.0 - s.lr * weight_decay);
    c.w1 = static_cast<float>(1.0 - s.beta1);
    c.b2 = static_cast<float>(s.beta2);
    c.w2 = static_cast<float>(1.0 - s.beta2);
    c.step_size = static_cast<float>(-(s.lr / bias1));
    c.bias2_sqrt = static_cast<float>(std::sqrt(bias2));
    c.eps = static_cast<float>(s.eps);
    c.grad_scale = s.grad_scale;
    return c;
  }
  void do_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) override {
    AGPT_PROFILE_OP("adamw");
    invalidate_weight_copies(param);
    Tensor copy;
    if (s.weight_copy && matmul_ == "bf16") copy = empty(param.shape(), DType::kBF16);
    cuda::adamw(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                copy.defined() ? copy.raw() : nullptr, param.numel(), adamw_constants(s, s.weight_decay), stream_);
    if (copy.defined()) weight_cache_.insert_or_assign(param.raw(), CachedWeight{param, copy, true});
  }

  // The multi-tensor update: every tensor cut into chunks of 64Ki floats, one launch over all of them.
  // Its host work (prepare_adamw: the weight copies it writes, the chunk table) may be done ahead by
  // prepare_adamw_many, before training waits for the gradient norm.
  void do_adamw_many(std::span<const AdamWItem> items, const AdamWStep& s) override {
    AGPT_PROFILE_OP("adamw");
    if (!prepared_adamw_ || !prepared_adamw_->matches(items, adamw_writes_copies(s))) {
      prepare_adamw(items, s);
    } else {
      // Copies of the items' bytes made since the preparation (a forward in between) go too.
      for (const AdamWItem& it : items) invalidate_weight_copies(*it.param);
    }
    PreparedAdamW& prepared = *prepared_adamw_;
    cuda::adamw_chunks(static_cast<const cuda::AdamWChunk*>(adamw_table_.raw()),
                       static_cast<int64_t>(adamw_table_host_.size()), adamw_constants(s, 0.0), s.lr, stream_);
    for (size_t i = 0; i < items.size(); ++i)
      if (prepared.copies[i].defined())
        weight_cache_.insert_or_assign(items[i].param->raw(), CachedWeight{*items[i].param, prepared.copies[i], true});
    prepared_adamw_.reset();
  }
  void do_prepare_adamw_many(std::span<const AdamWItem> items, const AdamWStep& s) override {
    AGPT_PROFILE_OP("adamw (host preparation)");
    prepare_adamw(items, s);
  }
  bool adamw_writes_copies(const AdamWStep& s) const { return s.weight_copy && matmul_ == "bf16"; }
  // The items' weight copies are made and the chunk table uploaded; the table is uploaded only when
  // it changes (tensors and weight copies usually come back at the same addresses every step, and
  // it holds weight decays, not the learning rate's decay factors).
  void prepare_adamw(std::span<const AdamWItem> items, const AdamWStep& s) {
    constexpr int64_t kChunk = int64_t{1} << 16;
    auto prepared = std::make_unique<PreparedAdamW>();
    prepared->copies_written = adamw_writes_copies(s);
    std::vector<cuda::AdamWChunk> chunks;
    prepared->copies.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      const AdamWItem& it = items[i];
      prepared->items.push_back(PreparedAdamW::Item::of(it));
      invalidate_weight_copies(*it.param);
      if (prepared->copies_written) prepared->copies[i] = empty(it.param->shape(), DType::kBF16);
      float *p = it.param->data<float>(), *m = it.m->data<float>(), *v = it.v->data<float>();
      const float* g = it.grad->data<float>();
      auto* copy = prepared->copies[i].defined() ? static_cast<uint16_t*>(prepared->copies[i].raw()) : nullptr;  // bf16
      const bool vec = cuda::adamw_vectorizable(p, g, m, v, copy);
      for (int64_t off = 0, n = it.param->numel(); off < n; off += kChunk)
        chunks.push_back({p + off, g + off, m + off, v + off, copy ? copy + off : nullptr, std::min(kChunk, n - off),
                          it.weight_decay, vec ? 1 : 0});
    }
    const size_t bytes = chunks.size() * sizeof(cuda::AdamWChunk);
    if (chunks.size() != adamw_table_host_.size() || !adamw_table_.defined() ||
        std::memcmp(chunks.data(), adamw_table_host_.data(), bytes) != 0) {
      adamw_table_ = empty({static_cast<int64_t>((bytes + 3) / 4) + 1}, DType::kF32);
      if (bytes)
        AGPT_CUDA_CHECK(cudaMemcpyAsync(adamw_table_.raw(), chunks.data(), bytes, cudaMemcpyHostToDevice, stream_));
      adamw_table_host_ = std::move(chunks);
    }
    prepared_adamw_ = std::move(prepared);
  }

 public:
  std::shared_ptr<float[]> allocate_host_f32(size_t count) override {
    if (count == 0) return {};
    const char* error = nullptr;
    std::shared_ptr<void> p = allocate_pinned_host(count * sizeof(float), device_, &error);
    if (!p)
      fail("cannot page-lock ", (count * sizeof(float)) >> 20, " MiB of host memory (", error,
           "): the machine needs that much free memory, or turn off what asked for it (train.optimizer_cpu_offload, "
           "train.async_checkpoint)");
    return std::shared_ptr<float[]>(p, static_cast<float*>(p.get()));  // shares p's ownership
  }

 protected:
  void do_adamw_host_moments(std::span<const HostMomentsItem> items, const AdamWStep& s) override {
    AGPT_PROFILE_OP("adamw (host moments)");
    std::vector<cuda::HostMomentsJob> jobs;
    for (const HostMomentsItem& it : items) {
      invalidate_weight_copies(*it.param);
      if (it.param->numel() == 0) continue;
      jobs.push_back({it.param->data<float>(), it.grad->data<float>(), it.m, it.v, it.param->numel(),
                      adamw_constants(s, it.weight_decay)});
    }
    if (!host_moments_) host_moments_ = std::make_unique<cuda::HostMomentsPipeline>(stream_);
    host_moments_->run(jobs);
  }

 private:
  static cuda::Elem elem(const Tensor& t) {
    if (t.dtype() == DType::kBF16) return cuda::Elem::kBF16;
    if (t.dtype() != DType::kF32) fail("CUDA backend: ", t.describe(), " where a floating-point tensor was expected");
    return cuda::Elem::kF32;
  }
  static int dim32(int64_t d) {
    if (d > INT32_MAX) fail("matmul: dimension ", d, " is above cuBLAS's 32-bit limit");
    return static_cast<int>(d);
  }

  int device_;
  std::string device_name_, matmul_;
  DType act_ = DType::kF32;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::unique_ptr<cuda::LtGemm> lt_gemm_;  // products with a separate addend (made on first use)
  static constexpr size_t kWorkspaceBytes = 64ull << 20;
  void* workspace_ = nullptr;
  std::unique_ptr<OpProfile> profile_;
  struct HostInts {
    Tensor tensor;  // holds the storage, so its address is not reused while the entry lives
    std::vector<int32_t> values;
  };
  static constexpr int64_t kHostIntsMax = int64_t{1} << 22;
  std::vector<HostInts> host_ints_;  // the last int32 uploads (ids, targets), newest last
  cuda::UploadStaging upload_staging_;
  std::unique_ptr<cuda::GemmTuner> gemm_tuner_;  // AGPT_CUDA_GEMM_TUNE: tuned bf16 products
  bool atomic_attention_ = false;  // "cudnn-atomic": cuDNN's attention backward may sum dQ with atomics
  std::unique_ptr<cuda::HostMomentsPipeline> host_moments_;  // made on first use
  Tensor adamw_table_;  // do_adamw_many's chunk table on the device, and its host copy
  std::vector<cuda::AdamWChunk> adamw_table_host_;
  // prepare_adamw's work for the next do_adamw_many: which items (by their tensors' addresses and
  // sizes, and weight decays), and the weight copies the update is to write.
  struct PreparedAdamW {
    struct Item {
      const void *param, *grad, *m, *v;
      int64_t numel;
      double weight_decay;
      bool operator==(const Item&) const = default;
      static Item of(const AdamWItem& it) {
        return {it.param->raw(), it.grad->raw(), it.m->raw(), it.v->raw(), it.param->numel(), it.weight_decay};
      }
    };
    std::vector<Item> items;
    bool copies_written = false;
    std::vector<Tensor> copies;
    bool matches(std::span<const AdamWItem> other, bool writes_copies) const {
      if (other.size() != items.size() || writes_copies != copies_written) return false;
      for (size_t i = 0; i < items.size(); ++i)
        if (!(items[i] == Item::of(other[i]))) return false;
      return true;
    }
  };
  std::unique_ptr<PreparedAdamW> prepared_adamw_;
  struct CachedWeight {
    Tensor source, copy;
    bool from_optimizer;  // written by adamw() with AdamWStep::weight_copy: survives begin_weight_reuse()
  };
  std::unordered_map<const void*, CachedWeight> weight_cache_;
  // arrange_update_in_backward's items, which of them the backward updated, their settings, and
  // the updated weights' bf16 copies until their matmul_backward ends.
  std::vector<AdamWItem> arranged_;
  std::vector<bool> arranged_done_;
  AdamWStep arranged_step_;
  std::unordered_map<const void*, CachedWeight> updated_copies_;
  int sm_count_ = 0;
  bool reuse_weights_ = false;
  bool use_cudnn_attention_ = false;
  bool own_products_ = false;  // CudaOptions::products "auto" on Hopper with bf16 activations: sm90/gemm.cuh
};

}  // namespace

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::unique_ptr<Backend> make_cuda_backend(int device_index, const CudaOptions& options) {
  CudaOptions o = options;
  if (const char* e = std::getenv("AGPT_CUDA_ATTENTION"); e && *e) o.attention = e;
  if (const char* e = std::getenv("AGPT_CUDA_PRODUCTS"); e && *e) o.products = e;
  return std::make_unique<CudaBackend>(device_index, o);
}

}  // namespace agpt::ops
