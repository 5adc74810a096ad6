// Llama (LlamaForCausalLM): forward, loss and backward written once over the op interface
// (ops::Backend), with parameters named and laid out as in Hugging Face checkpoints.
//
//   x = embed(ids)
//   for each layer:  x = x + o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = rmsnorm(x)
//                    x = x + down_proj(silu(gate_proj(n)) * up_proj(n)),                   n = rmsnorm(x)
//   logits = lm_head(rmsnorm(x))          (lm_head is embed_tokens when tie_word_embeddings)
//
// Typical use:
//   auto backend = ops::make_cpu_backend();
//   Llama model = Llama::load("dir", *backend);
//   float loss = model.forward(ids, targets, B, T);   // keeps activations
//   model.zero_grad(); model.backward();              // every parameter's .grad
//   (or model.backward(ops::Grad::kWrite), which needs no zero_grad)
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"
#include "model/tensor_parallel.h"
#include "ops/backend.h"

namespace agpt::model {

// One trainable tensor: its HF name, value, gradient (allocated on first backward), and whether
// AdamW decays it (tensors of 2 or more dimensions).
// Under tensor parallelism value and grad are this rank's slice of the named tensor (see shard).
struct Parameter {
  std::string name;
  ops::Tensor value;
  ops::Tensor grad;
  bool decay = true;
  Shard shard;             // whole (dim -1) without tensor parallelism
  ops::Shape full_shape;   // the shape in checkpoints (== value.shape() unless split)
  // The gradient comes from one matrix product alone (a Linear layer's weight, not the embedding
  // table, which a tied lm_head shares), so that product may apply the optimizer's update
  // (ops::Backend::arrange_update_in_backward).
  bool one_product_gradient = false;
};

// The label that means "no loss at this position" (as torch's ignore_index).
constexpr int32_t kIgnoreIndex = -100;

// ---- accounting from the config alone (no weights needed) ----------------------------------------
// Every trainable element (a tied lm_head counted once).
int64_t parameter_count(const LlamaConfig& c);
// Parameters in matrix products per token: every Linear plus lm_head (embedding lookups excluded).
int64_t matmul_parameter_count(const LlamaConfig& c);
// Training FLOPs per token at sequence length T: 6·matmul_parameter_count + 12·L·(H·hd)·T (the
// attention score and value products counted without the causal half: the usual MFU formula).
double train_flops_per_token(const LlamaConfig& c, int64_t T);

// Bytes needed, by kind, for a micro-batch of B×T tokens.
struct MemoryEstimate {
  double weights = 0;      // parameters at weight_bytes each
  double gradients = 0;    // fp32
  double adam_states = 0;  // fp32 m and v
  double activations = 0;  // what the CPU reference keeps for backward (fp32), logits included
  double kv_cache = 0;     // inference: keys and values for B sequences of T tokens at weight_bytes
  double training() const { return weights + gradients + adam_states + activations; }
  double inference() const { return weights + kv_cache; }
};
MemoryEstimate estimate_memory(const LlamaConfig& c, int64_t B, int64_t T, double weight_bytes = 4);

// HF's labels=input_ids: position t predicts ids[t+1]; the last position of each row is ignored.
std::vector<int32_t> shift_targets(std::span<const int32_t> ids, int64_t B, int64_t T);

// Writes a model directory: config.json (torch_dtype from dtype) and the tensors (full shapes),
// sharded above max_shard_bytes. What Llama::save writes. Returns the weight files written (name
// -> size and checksum).
WrittenFiles save_model(const std::string& dir, const LlamaConfig& config, const std::vector<NamedTensor>& tensors,
                        StDType dtype = StDType::F32, uint64_t max_shard_bytes = 5'000'000'000ull);
// The same with tensor i's values asked of values(i) as its bytes are written (write_weights'
// streaming form): no copy of the tensors is made.
// With a WriterShare, part 0 also writes config.json.
WrittenFiles save_model(const std::string& dir, const LlamaConfig& config, const std::vector<TensorSpec>& specs,
                        const std::function<std::span<const float>(size_t)>& values, StDType dtype = StDType::F32,
                        uint64_t max_shard_bytes = 5'000'000'000ull, WriterShare share = {});

class KvCache;  // model/kv_cache.h

class Llama {
 public:
  // Parameters allocated on `backend` and zeroed; use init_weights() or load_weights().
  // With a tensor-parallel group of K > 1 ranks (model/tensor_parallel.h) this rank holds its slice
  // of each layer; every rank of the group then calls every function below in the same order
  // (they exchange activations). The group must outlive the model. Needs heads, key/value heads
  // and the MLP width divisible by K.
  Llama(const LlamaConfig& config, ops::Backend& backend, TensorParallelGroup* tensor_parallel = nullptr);
  // config.json + weights (model.safetensors or sharded) from a Hugging Face model directory.
  // With a tensor-parallel group, each rank loads its slices.
  static Llama load(const std::string& dir, ops::Backend& backend, TensorParallelGroup* tensor_parallel = nullptr);

  Llama(Llama&&) = default;
  Llama(const Llama&) = delete;
  Llama& operator=(const Llama&) = delete;

  const LlamaConfig& config() const { return config_; }
  ops::Backend& backend() const { return *backend_; }

  // ---- parameters -------------------------------------------------------------------------------
  std::vector<Parameter>& parameters() { return params_; }
  const std::vector<Parameter>& parameters() const { return params_; }
  Parameter& parameter(const std::string& name);  // fails with the closest name
  int64_t num_parameters() const;                 // every trainable element (tied counted once)

  // Transformers-like init: normal(0, initializer_range) for matrices (std from the config),
  // ones for norm weights; deterministic for a seed, and the same values whatever the tensor
  // parallelism (each rank keeps its slice of the full tensor).
  void init_weights(uint64_t seed);
  // Copies tensors from a checkpoint. Every parameter must be present with its exact shape; extra
  // tensors are errors, except rotary inv_freq buffers and a tied lm_head equal to embed_tokens.
  // Non-finite values are errors naming the tensor.
  void load_weights(const WeightReader& weights);
  // Writes config.json and the weights (sharded above max_shard_bytes) into dir; F32, BF16 or F16.
  // Under tensor parallelism every rank of the group calls it and the group's rank 0 writes the
  // full tensors (the checkpoint does not depend on the layout). Returns the weight files written
  // (empty on the other ranks). `share`: this rank's part of the files when several ranks that
  // hold the whole model write it together (data parallelism; see write_weights).
  WrittenFiles save(const std::string& dir, StDType dtype = StDType::F32,
                    uint64_t max_shard_bytes = 5'000'000'000ull, WriterShare share = {}) const;
  // Every parameter's name and full shape (whole tensors, whatever the layout), in order.
  std::vector<TensorSpec> tensor_specs() const;

  // ---- tensor parallelism -------------------------------------------------------------------------
  TensorParallelGroup* tensor_parallel() const { return tp_; }  // nullptr: none (or a group of 1)
  // The full tensor of which `local` is p's slice on this rank (p's value, gradient or an optimizer
  // moment of the same shape), on every rank of the group: a collective. fp32.
  std::vector<float> gather_full(const Parameter& p, const ops::Tensor& local) const;
  // This rank's slice of p's full tensor `full` (numel of p.full_shape).
  std::vector<float> slice_local(const Parameter& p, std::span<const float> full) const;
  // Writes p's local values (its numel), rounded when p is bf16 (train.param_dtype).
  void set_value(Parameter& p, std::span<const float> local);

  // ---- compute ---------------------------------------------------------------------------------
  // Forward over ids [B*T] (row-major B×T); logits() then holds [B*T, V]. Activations are kept
  // for backward. Token ids are checked against the vocabulary.
  void forward(std::span<const int32_t> ids, int64_t B, int64_t T);
  // Forward plus mean cross-entropy over the targets that are not kIgnoreIndex (targets [B*T]).
  // Returns 0 when every target is ignored. for_backward: a backward() follows (training), so the
  // loss gradient is computed with the loss, in one pass over the logits, and logits() then holds
  // it instead of the logits; the gradients are the same bits either way.
  float forward(std::span<const int32_t> ids, std::span<const int32_t> targets, int64_t B, int64_t T,
                bool for_backward = false);
  const ops::Tensor& logits() const { return acts_.logits; }
  // Per-position losses [B*T] of the last forward with targets (0 where ignored).
  const ops::Tensor& losses() const { return acts_.losses; }

  // Inference with a KV cache (model/kv_cache.h), one sequence: runs the new tokens `ids`, which
  // sit at positions pos0.., attending to the cache's positions 0..pos0-1 and to each other, and
  // stores their keys and values in the cache. pos0 <= cache.length() (a smaller pos0 rewinds);
  // afterwards cache.length() == pos0 + ids.size(). Returns the logits [1, V] of the last new token,
  // or [ids.size(), V] of every new token with all_logits. The view is valid until the next call
  // with this cache. Does not touch the training activations (forward/backward are unaffected).
  ops::Tensor forward_cached(KvCache& cache, std::span<const int32_t> ids, int64_t pos0, bool all_logits = false);

  // Activation recomputation: forward keeps only each layer's input; backward re-runs the layer's
  // forward (up to its MLP activation) before the layer's backward. About one extra forward of
  // compute for activation memory of one layer instead of all; gradients are bit-identical.
  void set_recompute(bool on);
  bool recompute() const { return recompute_; }
  // Whether the backend may keep each weight's bf16 copy from the forward to the backward
  // (Backend::begin_weight_reuse; default on). Off, every product rounds its weight afresh, and no
  // copies of all the weights (2 bytes a parameter) are held at once: for the largest models.
  void set_weight_copy_reuse(bool on) { weight_copy_reuse_ = on; }

  void zero_grad();
  // Adds the gradient of the last forward's loss to every parameter's grad. Overwrites logits()
  // with the loss gradient (saving one [B*T, V] buffer). Grad::kWrite: writes the gradients
  // instead (allocating them the first time), as zero_grad() then backward() would, without the
  // pass over all the gradients that zeroing takes: the first micro-batch of a step.
  void backward(ops::Grad mode = ops::Grad::kAdd);
  // Called during backward() each time parameters [first, first + count) of parameters() have
  // received their whole gradient of this backward (last layers first, the embedding last): lets
  // data parallelism start reducing those gradients while the earlier layers still compute.
  // An empty function: no calls.
  using GradsReadyHook = std::function<void(size_t first, size_t count)>;
  void set_grads_ready_hook(GradsReadyHook hook) { grads_ready_ = std::move(hook); }
  // Called during forward() before parameters [first, first + count) are first read (the
  // embedding, then each layer, then the final norm and lm_head): lets a distributed optimizer
  // gather the updated parameters of the later layers while the earlier ones compute. Empty: none.
  using ParamsNeededHook = std::function<void(size_t first, size_t count)>;
  void set_params_needed_hook(ParamsNeededHook hook) { params_needed_ = std::move(hook); }

  // ---- accounting (see the free functions above) -----------------------------------------------
  int64_t matmul_parameters() const { return matmul_parameter_count(config_); }
  double train_flops_per_token(int64_t T) const { return model::train_flops_per_token(config_, T); }

 private:
  struct Layer {
    Parameter *input_norm, *q, *k, *v, *o, *post_norm, *gate, *up, *down;
  };
  // Saved activations of one layer for a B×T batch.
  struct LayerActs {
    ops::Tensor x;      // layer input (residual stream) [N, D]
    ops::Tensor rstd1;  // [N]
    ops::Tensor n1;     // rmsnorm(x) [N, D]
    ops::Tensor q, k, v;  // after RoPE (q, k) [B, T, heads, hd]
    ops::Tensor att;    // attention output [B, T, H, hd]
    ops::Tensor lse;    // [B, H, T]
    ops::Tensor mid;    // x + attention branch [N, D]
    ops::Tensor rstd2;  // [N]
    ops::Tensor n2;     // [N, D]
    ops::Tensor gate, up, act;  // [N, F]
  };
  struct Activations {
    int64_t B = 0, T = 0;
    std::vector<LayerActs> layers;
    ops::Tensor ids, targets;
    ops::Tensor out;    // final residual stream [N, D]
    ops::Tensor rstdf;  // [N]
    ops::Tensor nf;     // [N, D]
    ops::Tensor logits; // [N, V]
    bool logits_hold_gradient = false;  // forward(..., for_backward) computed the loss gradient already
    ops::Tensor losses, lse_ce;  // [N]
    // gradient scratch, reused across layers
    ops::Tensor dres, dn, datt, dq, dk, dv, dact, dgate, dup;
    int64_t valid_targets = -1;  // -1: the last forward had no targets
  };

  void build_parameters();
  void combine_vocab_shards(std::span<const int32_t> targets);
  int64_t vocab_begin() const { return tp_ ? vocab_.begin : -1; }  // the ops' vocabulary-parallel form
  void layer_forward(size_t l, bool full);
  void ensure_activations(int64_t B, int64_t T);
  void ensure_rope(int64_t positions);

  LlamaConfig config_;
  ops::Backend* backend_;
  std::vector<Parameter> params_;
  std::vector<Layer> layers_;
  Parameter* embed_ = nullptr;
  Parameter* final_norm_ = nullptr;
  Parameter* lm_head_ = nullptr;  // == embed_ when tied
  Activations acts_;
  ops::Tensor rope_cos_, rope_sin_;  // [P, hd/2]
  bool recompute_ = false;
  bool weight_copy_reuse_ = true;
  GradsReadyHook grads_ready_;
  ParamsNeededHook params_needed_;
  // Tensor parallelism: the group (nullptr for none) and this rank's local sizes.
  TensorParallelGroup* tp_ = nullptr;
  int64_t heads_ = 0, kv_heads_ = 0, ffn_ = 0;  // query heads, key/value heads, MLP width held here
  Shard vocab_;                                 // vocabulary rows held here
};

}  // namespace agpt::model
