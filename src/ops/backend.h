// The op interface: everything the Llama model needs from a compute backend, and nothing more.
// The model (src/model/llama.cpp) is written once against this class; ops/cpu is the readable fp32
// reference, a CUDA backend implements the same virtual functions with device memory.
//
// Conventions (docs/model.md has the full table):
//  - Tensors are row-major. N = B*T rows of activations; D = hidden size; H, KV = query and key/value
//    heads; hd = head dim; F = MLP width; V = vocabulary.
//  - Linear weights use the Hugging Face layout [out, in]: y = x · Wᵀ.
//  - Backward ops ADD into every gradient they produce (dx += ..., dw += ...), so residual branches,
//    tied weights and gradient accumulation need no extra buffers; callers zero buffers first.
//    matmul_backward and attention_backward take a Grad::kWrite to overwrite instead (a buffer's
//    first contribution: no zeroing pass). Exceptions, marked below: rope_backward works in place;
//    swiglu_backward and cross_entropy_backward write.
//  - Results do not depend on the number of threads (no order-dependent atomic float sums).
//  - The public functions check shapes, dtypes and devices, then call the backend's do_* function.
//    Shape errors are bugs in the caller and throw agpt::Error naming the op and the shapes.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ops/tensor.h"

namespace agpt::ops {

// The settings of one AdamW update (torch.optim.AdamW semantics, see adamw()). Host scalars in
// double; backends round them to the compute type where torch does (bias corrections in double).
struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled: param *= 1 - lr*weight_decay
  int64_t step = 1;           // 1 for the first update (bias corrections)
  float grad_scale = 1.0f;    // multiplies the gradient first (global-norm clipping)
  // param is a whole weight that nothing but this backend's own ops writes before its next matrix
  // product: a backend may keep the low-precision copy of the updated value for that product (see
  // begin_weight_reuse). Not for shards of flat buffers that a collective overwrites afterwards.
  bool weight_copy = false;
};

// How a backward op stores a gradient: added into the buffer, or written over it. kWrite is for a
// buffer's first contribution and saves zeroing it first (a pass over its memory).
enum class Grad { kAdd, kWrite };

// One Linear layer of several that read the same input (q, k, v; gate, up): its output's
// gradient, its weight and its weight's gradient (null or undefined: not wanted).
struct LinearGrad {
  const Tensor* dy;
  const Tensor* w;
  Tensor* dw;
};
// The GEMM beta that stores a gradient so.
inline float grad_beta(Grad mode) { return mode == Grad::kWrite ? 0.0f : 1.0f; }

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu", "cuda:0"
  virtual Device device() const = 0;

  // ---- memory -----------------------------------------------------------------------------------
  Tensor empty(const Shape& shape, DType dtype = DType::kF32);  // contents undefined
  Tensor zeros(const Shape& shape, DType dtype = DType::kF32);
  void zero(Tensor& t);
  void copy(Tensor& dst, const Tensor& src);                // same shape and dtype
  void upload(Tensor& dst, const void* host, size_t bytes);  // bytes == dst.bytes()
  void download(const Tensor& src, void* host, size_t bytes) const;
  virtual void synchronize() {}
  // The type of activation tensors (and their gradients) this backend computes with: every
  // tensor the ops below call an activation: fp32 on the CPU; fp32 or bf16 on CUDA. Per-row
  // statistics (rstd, lse, losses), weight gradients and optimizer state are always fp32, weights
  // fp32 or bf16 (see "weights" below); kernels compute in fp32 and round activations on store.
  virtual DType activation_dtype() const { return DType::kF32; }
  // dst = src converted between fp32 and bf16 (round to nearest even); same shape.
  void cast(Tensor& dst, const Tensor& src);
  // Most device memory this backend has held at once, in bytes (0 where not tracked, e.g. CPU).
  virtual int64_t peak_memory_bytes() const { return 0; }
  // The device's memory in bytes (0 where not a fixed budget, e.g. CPU).
  virtual int64_t device_memory_bytes() const { return 0; }
  // The queue every op of this backend runs on, for libraries that join it (NCCL): a cudaStream_t
  // on CUDA; nullptr on the CPU, whose ops run before they return.
  virtual void* native_stream() const { return nullptr; }

  // Low-precision weight copies reused across products (autocast's weight cache). Between
  // begin_weight_reuse() and end_weight_reuse() the caller promises not to change any weight, so
  // a backend that rounds fp32 weights for its matrix products (CUDA, bf16) may keep the copy made
  // in the forward for the backward instead of rounding again; a weight's copy is dropped after
  // its matmul_backward (its last use in a training step). begin drops all copies except those
  // adamw() wrote with AdamWStep::weight_copy since (or an update inside the backward, which end
  // keeps too); any write to a weight through this backend (copy, upload, zero, cast) drops its
  // copy. No-ops on backends that compute in the weights' own type.
  virtual void begin_weight_reuse() {}
  virtual void end_weight_reuse() {}
  // Profiling backends (AGPT_CUDA_PROFILE=1) forget what they measured so far, e.g. after warm-up.
  virtual void reset_profile() {}

  // t itself when fp32, else a widened fp32 copy: for backends whose kernels read fp32 weights
  // only (weights may be bf16, see "weights" below).
  Tensor widened(const Tensor& t);

  // Host convenience built on upload/download.
  Tensor from_host(const Shape& shape, std::span<const float> values);
  Tensor from_host(const Shape& shape, std::span<const int32_t> values);
  // fp32 or bf16 values (converted on the host).
  Tensor from_host(const Shape& shape, std::span<const float> values, DType dtype);
  std::vector<float> to_host_f32(const Tensor& t) const;  // fp32 or bf16 tensors
  std::vector<int32_t> to_host_i32(const Tensor& t) const;

  // Weights (Linear weights, the embedding table, norm weights) are fp32, or bf16 when the model
  // keeps bf16 parameters and the fp32 master copy lives with the optimizer (train.param_dtype);
  // their gradients are fp32 either way. A bf16 weight gives the same result as an fp32 weight
  // holding the same (bf16-representable) values.

  // ---- embedding --------------------------------------------------------------------------------
  // out[n, :] = table[ids[n], :].  out [N, D], ids i32 [N] (each in [0, V)), table [V, D].
  // Vocabulary-parallel form (tensor parallelism): with vocab_begin >= 0 the table holds only the
  // vocabulary entries [vocab_begin, vocab_begin + V): an id outside them gives a zero row here
  // (another rank's shard supplies it) and no gradient below. The default -1: the whole vocabulary,
  // and an id outside [0, V) is an error.
  void embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table, int64_t vocab_begin = -1);
  // dtable[ids[n], :] += dout[n, :].
  void embedding_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout, int64_t vocab_begin = -1);

  // ---- RMSNorm (fp32 like Hugging Face: out = w * (x * rstd), rstd = 1/sqrt(mean(x²) + eps)) -----
  // out, x [N, D]; w [D]; rstd [N] saved for backward.
  void rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& w, float eps);
  // dx += ∂L/∂x, dw += ∂L/∂w.
  void rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x, const Tensor& w,
                        const Tensor& rstd);

  // ---- matrix product with a Linear weight -------------------------------------------------------
  // y [N, O] = x [N, I] · wᵀ, w [O, I].
  void matmul_forward(Tensor& y, const Tensor& x, const Tensor& w);
  // y = residual + x · wᵀ, residual [N, O] (may be y itself): a product feeding a residual stream.
  // A backend may add in the product's epilogue, one pass over memory fewer than matmul_forward
  // and add (and one rounding of bf16 activations fewer).
  void matmul_add_forward(Tensor& y, const Tensor& residual, const Tensor& x, const Tensor& w);
  // dx [N, I] += dy · w;  dw [O, I] += dyᵀ · x.  Either may be undefined (not wanted). With
  // Grad::kWrite, dx (dx_mode) or dw (dw_mode) is overwritten instead.
  void matmul_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                       Grad dx_mode = Grad::kAdd, Grad dw_mode = Grad::kAdd);

  // dx (dx_mode) = Σ dy_i·w_i and each dw_i (dw_mode) += dy_iᵀ·x, for Linear layers that share
  // the input x: as matmul_backward per layer, the first with dx_mode and the others adding. A
  // backend may sum the input gradients in one product (one rounding instead of one per layer).
  void matmul_backward_shared(Tensor& dx, const Tensor& x, std::span<const LinearGrad> layers, Grad dx_mode = Grad::kAdd,
                              Grad dw_mode = Grad::kAdd);

  // ---- rotary position embedding (HF rotate_half: dimension i pairs with i + hd/2) ---------------
  // x [B, T, heads, hd] in place; cos, sin [P, hd/2] (angle pos*inv_freq[i]); token t has position
  // pos0 + t < P.
  void rope_forward(Tensor& x, const Tensor& cos, const Tensor& sin, int64_t pos0 = 0);
  // IN PLACE: dx (the gradient w.r.t. the rotated x) becomes the gradient w.r.t. the input x.
  void rope_backward(Tensor& dx, const Tensor& cos, const Tensor& sin, int64_t pos0 = 0);

  // ---- causal self-attention with grouped-query heads --------------------------------------------
  // q [B, Tq, H, hd]; k, v [B, Tk, KV, hd] with Tk >= Tq >= 0 and H % KV == 0 (query head h reads
  // kv head h / (H/KV)). The queries are the LAST Tq of the Tk positions whose keys and values are
  // given: query t (0 <= t < Tq) sits at position p = Tk - Tq + t and attends keys 0..p inclusive.
  // Tq == Tk is ordinary causal self-attention (training); Tq < Tk is a chunk of new tokens (Tq = 1
  // when decoding one token) against a KV cache whose first Tk - Tq rows hold earlier positions.
  // For each b, h and t, with g = h / (H/KV) and scores s_j = q[b,t,h,:]·k[b,j,g,:] / sqrt(hd):
  //   out[b, t, h, :] = Σ_{j<=p} softmax_j(s) · v[b, j, g, :]      out [B, Tq, H, hd]
  //   lse[b, h, t]    = log Σ_{j<=p} exp(s_j)                       lse [B, H, Tq]
  // q, k and v may be views (Tensor::narrow) into larger buffers; out must not share storage with
  // them. The result for a query depends only on its own row and keys 0..p, so the last Tq rows of
  // a Tk-query call equal a Tq-query call against the same keys (up to float rounding).
  void attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v);
  // dq += ∂L/∂q, dk += ∂L/∂k, dv += ∂L/∂v (all three written over with Grad::kWrite). Requires
  // Tq == Tk (fails otherwise): training only.
  void attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                          const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                          Grad mode = Grad::kAdd);

  // ---- SwiGLU: out = silu(gate) * up, all [N, F] ---------------------------------------------------
  void swiglu_forward(Tensor& out, const Tensor& gate, const Tensor& up);
  // WRITES (does not add) dgate = ∂L/∂gate, dup = ∂L/∂up: the MLP's only path to gate and up, so
  // there is nothing to add to, and skipping the zeroing saves two passes over [N, F].
  void swiglu_backward(Tensor& dgate, Tensor& dup, const Tensor& dout, const Tensor& gate,
                       const Tensor& up);

  // ---- attention's input products with RoPE: one call, so a backend may run them as one product
  // with RoPE in its epilogue -------------------------------------------------------------------
  // q = rope(x·wqᵀ), k = rope(x·wkᵀ), v = x·wvᵀ: as matmul_forward three times and rope_forward on
  // q and k. x [B·T, I]; q [B, T, H, hd]; k, v [B, T, KV, hd]; wq [H·hd, I]; wk, wv [KV·hd, I].
  void qkv_rope_forward(Tensor& q, Tensor& k, Tensor& v, const Tensor& x, const Tensor& wq, const Tensor& wk,
                        const Tensor& wv, const Tensor& cos, const Tensor& sin, int64_t pos0 = 0);

  // ---- the MLP's SwiGLU with its products: one call, so a backend may run SwiGLU (and its
  // backward) in the products' epilogue instead of in passes of their own ------------------------
  // gate = x·wgᵀ, up = x·wuᵀ, act = silu(gate)·up: as matmul_forward twice and swiglu_forward.
  // x [N, I]; wg, wu [F, I]; act, gate, up [N, F].
  void swiglu_matmul_forward(Tensor& act, Tensor& gate, Tensor& up, const Tensor& x, const Tensor& wg,
                             const Tensor& wu);
  // The down product's backward and SwiGLU's: dact = dy·wd, then dgate and dup as swiglu_backward
  // (written); dwd (dw_mode) += dyᵀ·act when defined. dy [N, O]; wd [O, F]; dact [N, F] is scratch
  // that a fusing backend may leave unwritten.
  void swiglu_matmul_backward(Tensor& dgate, Tensor& dup, Tensor& dact, Tensor& dwd, const Tensor& dy,
                              const Tensor& act, const Tensor& wd, const Tensor& gate, const Tensor& up,
                              Grad dw_mode = Grad::kAdd);

  // ---- elementwise --------------------------------------------------------------------------------
  // out = a + b (same shapes); out may be a or b (residual stream updated in place).
  void add(Tensor& out, const Tensor& a, const Tensor& b);
  // t *= s.
  void scale(Tensor& t, float s);

  // ---- cross-entropy over the vocabulary ---------------------------------------------------------
  // logits [N, V]; targets i32 [N], a target < 0 (e.g. -100) means "ignored".
  // losses [N] = logsumexp(logits[n]) - logits[n, targets[n]] (0 for ignored rows); lse [N].
  // Vocabulary-parallel form: with vocab_begin >= 0 the logits are the columns of the vocabulary
  // entries [vocab_begin, vocab_begin + V) only (targets stay global ids): lse is this shard's
  // logsumexp and losses[n] = lse[n] - logit of the target when the target is in the shard, else 0.
  void cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                             int64_t vocab_begin = -1);
  // WRITES (does not add) dlogits = scale * (softmax(logits) - onehot(target)), 0 for ignored rows.
  // dlogits may be the same tensor as logits (done in place, saving N*V floats).
  // Vocabulary-parallel form: lse must be the logsumexp over the WHOLE vocabulary (all shards);
  // the one-hot term appears only where the target is in this shard.
  void cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                              const Tensor& targets, float scale, int64_t vocab_begin = -1);
  // cross_entropy_forward then cross_entropy_backward over the whole vocabulary, in one call with
  // the same results (bit for bit): training knows the loss gradient's scale at the forward, and a
  // backend can then read the logits once fewer. dlogits may be logits itself (in place).
  void cross_entropy_forward_backward(Tensor& losses, Tensor& lse, Tensor& dlogits, const Tensor& logits,
                                      const Tensor& targets, float scale);

  // ---- optimizer ----------------------------------------------------------------------------------
  // Σ t² over all elements of all tensors (for global gradient-norm clipping), accumulated in double.
  double sum_squares(std::span<const Tensor> tensors);
  // One AdamW update of param with grad (all same shape, f32), moments m and v updated in place:
  //   g = grad*grad_scale; param *= 1 - lr*wd; m = lerp(m, g, 1-beta1); v = beta2*v + (1-beta2)*g²;
  //   param -= lr/(1-beta1^step) * m / (sqrt(v)/sqrt(1-beta2^step) + eps).
  void adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s);
  // adamw() on many parameters at once (one launch on CUDA: a model has hundreds of small tensors),
  // each with its own weight decay; identical results to calling adamw() on each.
  struct AdamWItem {
    Tensor* param;
    const Tensor* grad;
    Tensor* m;
    Tensor* v;
    double weight_decay;  // replaces AdamWStep::weight_decay for this item
  };
  void adamw_many(std::span<const AdamWItem> items, const AdamWStep& s);
  // Optional: the host's share of the next adamw_many(items, s') (s' as s but for the learning rate,
  // step and gradient scale), done now while the device may still be busy. Training calls it
  // before it waits for the gradient norm (the clipping scale), so that the device does not wait
  // for that host work after the synchronization. Results are the same with or without it; a later
  // adamw_many with other items or settings simply does its own preparation, and a forward in
  // between (begin_weight_reuse: the step was skipped) drops it.
  void prepare_adamw_many(std::span<const AdamWItem> items, const AdamWStep& s);
  // The optimizer step inside the backward (as torchtune's optimizer_in_bwd): the products of the
  // next backward that compute the gradients of these items may also apply adamw_many(items, s)
  // to them from the finished gradient (the same arithmetic, the same bits for the same gradient;
  // the gradient is still written), so the update's memory traffic overlaps the product instead of
  // following the backward. take_updated_in_backward() ends the arrangement and tells which items
  // were updated; the caller updates the others. A backend without such products updates none.
  virtual void arrange_update_in_backward(std::span<const AdamWItem> items, const AdamWStep& s);
  virtual std::vector<bool> take_updated_in_backward();

  // ---- optimizer state in host memory (optimizer CPU offload) --------------------------------------
  // DeepSpeed's ZeRO-Offload and Megatron's --optimizer-cpu-offload keep the AdamW moments (8 bytes
  // a parameter: 64 GB at 8B parameters) in host memory so that a large model fits one GPU.
  // allocate_host_f32: count zero-filled floats of host memory, page-locked on CUDA (so copies run
  // at full PCIe speed beside compute); freed when the last reference goes. Safe to call from any
  // thread.
  virtual std::shared_ptr<float[]> allocate_host_f32(size_t count);
  // One parameter of adamw_host_moments: m and v point to param.numel() floats of host memory
  // (from allocate_host_f32).
  struct HostMomentsItem {
    Tensor* param;
    const Tensor* grad;
    float* m;
    float* v;
    double weight_decay;  // replaces AdamWStep::weight_decay for this item
  };
  // adamw() on every item, with the same arithmetic (bit-identical results), the moments read from
  // and written back to host memory. CUDA streams them through device staging buffers, copies in
  // both directions overlapping the updates; the call returns before that ends and the host
  // moments may be read only after synchronize(). AdamWStep::weight_copy is ignored.
  void adamw_host_moments(std::span<const HostMomentsItem> items, const AdamWStep& s);

 protected:
  size_t arranged_updates_ = 0;  // items of arrange_update_in_backward (the default updates none)
  virtual std::shared_ptr<Storage> do_allocate(size_t bytes) = 0;
  virtual void do_zero(Tensor& t) = 0;
  virtual void do_copy(Tensor& dst, const Tensor& src) = 0;
  virtual void do_upload(Tensor& dst, const void* host) = 0;
  virtual void do_download(const Tensor& src, void* host) const = 0;
  virtual void do_cast(Tensor& dst, const Tensor& src);  // default: fails (fp32-only backend)

  virtual void do_embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table, int64_t vocab_begin) = 0;
  virtual void do_embedding_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout, int64_t vocab_begin) = 0;
  virtual void do_rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& w,
                                  float eps) = 0;
  virtual void do_rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x,
                                   const Tensor& w, const Tensor& rstd) = 0;
  virtual void do_matmul_forward(Tensor& y, const Tensor& x, const Tensor& w) = 0;
  // Called with N, O and I all > 0 (the public function handles empty products).
  virtual void do_matmul_add_forward(Tensor& y, const Tensor& residual, const Tensor& x, const Tensor& w) = 0;
  // Called with N and O > 0 (the public function handles an empty dy).
  virtual void do_matmul_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x,
                                  const Tensor& w, Grad dx_mode, Grad dw_mode) = 0;
  virtual void do_rope(Tensor& x, const Tensor& cos, const Tensor& sin, int64_t pos0, bool inverse) = 0;
  virtual void do_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                                    const Tensor& v) = 0;
  virtual void do_attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout,
                                     const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& out, const Tensor& lse, Grad mode) = 0;
  virtual void do_swiglu_forward(Tensor& out, const Tensor& gate, const Tensor& up) = 0;
  virtual void do_swiglu_backward(Tensor& dgate, Tensor& dup, const Tensor& dout, const Tensor& gate,
                                  const Tensor& up) = 0;
  // Default: matmul_backward per layer. Called after the checks, with at least one layer.
  virtual void do_matmul_backward_shared(Tensor& dx, const Tensor& x, std::span<const LinearGrad> layers,
                                         Grad dx_mode, Grad dw_mode);
  // Default: the separate ops (matmul_forward, rope_forward). Called after the checks.
  virtual void do_qkv_rope_forward(Tensor& q, Tensor& k, Tensor& v, const Tensor& x, const Tensor& wq,
                                   const Tensor& wk, const Tensor& wv, const Tensor& cos, const Tensor& sin,
                                   int64_t pos0);
  // Default: the separate ops (matmul_forward, matmul_backward, swiglu_*). Called after the checks.
  virtual void do_swiglu_matmul_forward(Tensor& act, Tensor& gate, Tensor& up, const Tensor& x, const Tensor& wg,
                                        const Tensor& wu);
  virtual void do_swiglu_matmul_backward(Tensor& dgate, Tensor& dup, Tensor& dact, Tensor& dwd, const Tensor& dy,
                                         const Tensor& act, const Tensor& wd, const Tensor& gate, const Tensor& up,
                                         Grad dw_mode);
  virtual void do_add(Tensor& out, const Tensor& a, const Tensor& b) = 0;
  virtual void do_scale(Tensor& t, float s) = 0;
  virtual void do_cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits,
                                        const Tensor& targets, int64_t vocab_begin) = 0;
  virtual void do_cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                                         const Tensor& targets, float scale, int64_t vocab_begin) = 0;
  // Default: do_cross_entropy_forward, then do_cross_entropy_backward.
  virtual void do_cross_entropy_forward_backward(Tensor& losses, Tensor& lse, Tensor& dlogits, const Tensor& logits,
                                                 const Tensor& targets, float scale);
  virtual double do_sum_squares(std::span<const Tensor> tensors) = 0;
  virtual void do_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) = 0;
  // Default: do_adamw on each item.
  virtual void do_adamw_many(std::span<const AdamWItem> items, const AdamWStep& s);
  // Default: nothing (a backend that computes on the host has nothing to overlap).
  virtual void do_prepare_adamw_many(std::span<const AdamWItem> items, const AdamWStep& s);
  // Default: each item's moments uploaded into device tensors, adamw(), downloaded again.
  virtual void do_adamw_host_moments(std::span<const HostMomentsItem> items, const AdamWStep& s);

 private:
  void check_device(const char* op, const Tensor& t, const char* what) const;
  void check_devices(const char* op, std::initializer_list<const Tensor*> tensors) const;
  // adamw_many's items: all four tensors there, fp32 params, matching shapes, this backend's.
  void check_adamw_items(const char* op, std::span<const AdamWItem> items) const;
};

}  // namespace agpt::ops
