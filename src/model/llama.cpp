#include "model/llama.h"

#include <cmath>
#include <filesystem>
#include <numbers>

#include "base/error.h"
#include "base/log.h"
#include "base/parallel.h"

namespace agpt::model {

using ops::Tensor;

std::vector<int32_t> shift_targets(std::span<const int32_t> ids, int64_t B, int64_t T) {
  if (B < 0 || T < 0 || static_cast<int64_t>(ids.size()) != B * T)
    fail("shift_targets: ", ids.size(), " ids for a ", B, "x", T, " batch");
  std::vector<int32_t> targets(ids.size(), kIgnoreIndex);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) targets[b * T + t] = ids[b * T + t + 1];
  return targets;
}

int64_t parameter_count(const LlamaConfig& c) {
  int64_t per_layer = 2 * c.hidden_size + 2 * c.q_size() * c.hidden_size + 2 * c.kv_size() * c.hidden_size +
                      3 * c.intermediate_size * c.hidden_size;
  int64_t embed = c.vocab_size * c.hidden_size;
  return embed * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * per_layer + c.hidden_size;
}

int64_t matmul_parameter_count(const LlamaConfig& c) {
  int64_t per_layer = 2 * c.q_size() * c.hidden_size + 2 * c.kv_size() * c.hidden_size +
                      3 * c.intermediate_size * c.hidden_size;
  return c.num_hidden_layers * per_layer + c.vocab_size * c.hidden_size;
}

double train_flops_per_token(const LlamaConfig& c, int64_t T) {
  return 6.0 * static_cast<double>(matmul_parameter_count(c)) +
         12.0 * static_cast<double>(c.num_hidden_layers) * static_cast<double>(c.q_size()) * static_cast<double>(T);
}

MemoryEstimate estimate_memory(const LlamaConfig& c, int64_t B, int64_t T, double weight_bytes) {
  MemoryEstimate m;
  const double P = static_cast<double>(parameter_count(c)), N = static_cast<double>(B) * static_cast<double>(T);
  const double D = static_cast<double>(c.hidden_size), F = static_cast<double>(c.intermediate_size),
               Q = static_cast<double>(c.q_size()), KVs = static_cast<double>(c.kv_size()),
               H = static_cast<double>(c.num_attention_heads), L = static_cast<double>(c.num_hidden_layers),
               V = static_cast<double>(c.vocab_size);
  m.weights = P * weight_bytes;
  m.gradients = P * 4;
  m.adam_states = 2 * P * 4;
  // Per token and layer: x, n1, mid, n2 (4D), q and attention output (2Q), k and v (2KV), gate, up
  // and their product (3F), lse and two rstd; then the final norm, logits, losses and the scratch
  // gradient buffers shared by all layers.
  double per_layer = 4 * D + 2 * Q + 2 * KVs + 3 * F + H + 2;
  double once = 2 * D + V + 3 + (2 * D + 2 * Q + 2 * KVs + 3 * F);
  m.activations = N * (L * per_layer + once) * 4;
  m.kv_cache = 2 * L * KVs * N * weight_bytes;
  return m;
}

Llama::Llama(const LlamaConfig& config, ops::Backend& backend, TensorParallelGroup* tensor_parallel)
    : config_(config), backend_(&backend) {
  config_.fill_defaults();
  config_.validate();
  const LlamaConfig& c = config_;
  heads_ = c.num_attention_heads;
  kv_heads_ = c.num_key_value_heads;
  ffn_ = c.intermediate_size;
  vocab_ = Shard{0, 0, c.vocab_size, c.vocab_size};
  if (tensor_parallel && tensor_parallel->size() > 1) {
    tp_ = tensor_parallel;
    const int K = tp_->size();
    auto divisible = [&](int64_t n, const char* what) {
      if (n % K != 0)
        fail("tensor parallelism over ", K, " ranks needs ", what, " divisible by ", K, "; the model has ", n,
             " (choose a tensor-parallel size that divides it)");
      return n / K;
    };
    heads_ = divisible(c.num_attention_heads, "num_attention_heads");
    kv_heads_ = divisible(c.num_key_value_heads, "num_key_value_heads");
    ffn_ = divisible(c.intermediate_size, "intermediate_size");
    vocab_ = block_shard(0, c.vocab_size, K, tp_->rank(), "vocabulary rows");
  }
  build_parameters();
}

void Llama::build_parameters() {
  const LlamaConfig& c = config_;
  const int64_t D = c.hidden_size, F = c.intermediate_size, hd = c.head_dim;
  const int rank = tp_ ? tp_->rank() : 0;
  // shard: how this rank's slice is cut from the full tensor (dim -1: whole).
  auto add = [&](std::string name, ops::Shape full, Shard shard = {}) {
    Parameter p;
    p.name = std::move(name);
    p.decay = full.size() >= 2;
    p.full_shape = full;
    ops::Shape local = full;
    if (shard.split()) local[static_cast<size_t>(shard.dim)] = shard.count;
    p.shard = shard;
    p.value = backend_->zeros(local);
    params_.push_back(std::move(p));
  };
  // Column-parallel (dim 0) and row-parallel (dim 1) slices of `local` items of `size` elements.
  auto cut = [&](int dim, int64_t local, int64_t size) {
    return tp_ ? Shard{dim, rank * local * size, local * size, local * size * tp_->size()} : Shard{};
  };
  const Shard vocab = tp_ ? vocab_ : Shard{};
  add("model.embed_tokens.weight", {c.vocab_size, D}, vocab);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D});
    add(p + "self_attn.q_proj.weight", {c.q_size(), D}, cut(0, heads_, hd));
    add(p + "self_attn.k_proj.weight", {c.kv_size(), D}, cut(0, kv_heads_, hd));
    add(p + "self_attn.v_proj.weight", {c.kv_size(), D}, cut(0, kv_heads_, hd));
    add(p + "self_attn.o_proj.weight", {D, c.q_size()}, cut(1, heads_, hd));
    add(p + "post_attention_layernorm.weight", {D});
    add(p + "mlp.gate_proj.weight", {F, D}, cut(0, ffn_, 1));
    add(p + "mlp.up_proj.weight", {F, D}, cut(0, ffn_, 1));
    add(p + "mlp.down_proj.weight", {D, F}, cut(1, ffn_, 1));
  }
  add("model.norm.weight", {D});
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, D}, vocab);
  // Pointers into params_, which no longer grows.
  size_t i = 0;
  embed_ = &params_[i++];
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    Layer L;
    for (Parameter** slot : {&L.input_norm, &L.q, &L.k, &L.v, &L.o, &L.post_norm, &L.gate, &L.up, &L.down})
      *slot = &params_[i++];
    layers_.push_back(L);
  }
  final_norm_ = &params_[i++];
  lm_head_ = c.tie_word_embeddings ? embed_ : &params_[i++];
  for (const Layer& L : layers_)
    for (Parameter* w : {L.q, L.k, L.v, L.o, L.gate, L.up, L.down}) w->one_product_gradient = true;
  if (!c.tie_word_embeddings) lm_head_->one_product_gradient = true;
}

Parameter& Llama::parameter(const std::string& name) {
  for (Parameter& p : params_)
    if (p.name == name) return p;
  std::vector<std::string> names;
  for (const Parameter& p : params_) names.push_back(p.name);
  std::string near = closest_name(name, names);
  fail("model has no parameter '", name, "'", near.empty() ? "" : " (did you mean '" + near + "'?)");
}

int64_t Llama::num_parameters() const { return parameter_count(config_); }

// ---- weights ------------------------------------------------------------------------------------------

namespace {
// splitmix64: a small, well-mixed generator with a fixed definition (reproducible everywhere).
struct SplitMix {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }  // [0, 1)
  double normal() {  // Box-Muller
    double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
};
}  // namespace

void Llama::init_weights(uint64_t seed) {
  // Element j of parameter i is normal draw j of the parameter's own SplitMix stream (uniform draws
  // 2j and 2j+1). SplitMix's state after k draws is state0 + k * its increment, so any element can
  // be drawn without the ones before it: the tensors fill in parallel chunks with the same values
  // whatever the thread count, and a tensor-parallel rank draws only its own slice.
  constexpr uint64_t kIncrement = 0x9e3779b97f4a7c15ull;
  constexpr int64_t kChunk = 1 << 20;
  const int threads = default_threads();
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = params_[i];
    std::vector<float> values(static_cast<size_t>(p.value.numel()));
    if (p.full_shape.size() == 1) {
      std::fill(values.begin(), values.end(), 1.0f);
    } else {
      const uint64_t state0 = seed * 0x100000001b3ull + i;
      const int64_t cols = p.full_shape.back(), local_cols = p.value.shape().back();
      // Local element e sits at full index full_index(e) (a row block, a column block, or all).
      auto full_index = [&](int64_t e) {
        if (p.shard.dim == 0) return p.shard.begin * cols + e;
        if (p.shard.dim == 1) return (e / local_cols) * cols + p.shard.begin + e % local_cols;
        return e;
      };
      const int64_t n = static_cast<int64_t>(values.size());
      parallel_for(static_cast<size_t>((n + kChunk - 1) / kChunk), threads, [&](size_t c) {
        const int64_t begin = static_cast<int64_t>(c) * kChunk, end = std::min(n, begin + kChunk);
        for (int64_t e = begin; e < end;) {
          // A run of consecutive full indices (a row of a column block, or the whole chunk).
          const int64_t run = p.shard.dim == 1 ? std::min(end, (e / local_cols + 1) * local_cols) : end;
          SplitMix rng{state0 + 2 * static_cast<uint64_t>(full_index(e)) * kIncrement};
          for (; e < run; ++e) values[e] = static_cast<float>(rng.normal() * config_.initializer_range);
        }
      });
    }
    backend_->upload(p.value, values.data(), values.size() * sizeof(float));
  }
}

void Llama::set_value(Parameter& p, std::span<const float> local) {
  if (static_cast<int64_t>(local.size()) != p.value.numel())
    fail("parameter ", p.name, ": ", local.size(), " values for ", p.value.describe());
  if (p.value.dtype() == ops::DType::kF32) return backend_->upload(p.value, local.data(), local.size_bytes());
  backend_->copy(p.value, backend_->from_host(p.value.shape(), local, p.value.dtype()));
}

void Llama::load_weights(const WeightReader& weights) {
  for (Parameter& p : params_) {
    const StTensorInfo& info = weights.info(p.name);
    ops::Shape shape(info.shape.begin(), info.shape.end());
    if (shape != p.full_shape)
      fail(weights.dir(), ": tensor '", p.name, "' has shape ", info.shape_string(), ", the config needs ",
           ops::shape_string(p.full_shape), " (does config.json match the weights?)");
    std::vector<float> values = weights.read_f32(p.name);
    for (size_t i = 0; i < values.size(); ++i)
      if (!std::isfinite(values[i]))
        fail(weights.dir(), ": tensor '", p.name, "' holds a non-finite value (", values[i], ") at element ", i);
    if (p.shard.split()) values = slice_local(p, values);
    set_value(p, values);
  }
  std::vector<std::string> extra;
  for (const std::string& name : weights.names()) {
    bool known = false;
    for (const Parameter& p : params_) known = known || p.name == name;
    if (known) continue;
    if (name.ends_with("rotary_emb.inv_freq")) continue;  // a buffer old checkpoints saved
    if (name == "lm_head.weight" && config_.tie_word_embeddings) {
      if (slice_local(*embed_, weights.read_f32(name)) != backend_->to_host_f32(embed_->value))
        fail(weights.dir(), ": lm_head.weight differs from model.embed_tokens.weight, but config.json says ",
             "tie_word_embeddings: true");
      continue;
    }
    extra.push_back(name);
  }
  if (!extra.empty()) {
    std::string list;
    for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", " : "") + extra[i];
    if (extra.size() > 5) list += cat(", ... (", extra.size(), " in all)");
    fail(weights.dir(), ": tensors the model does not have: ", list,
         config_.tie_word_embeddings ? "" : " (wrong config.json for these weights?)");
  }
}

Llama Llama::load(const std::string& dir, ops::Backend& backend, TensorParallelGroup* tensor_parallel) {
  LlamaConfig config = LlamaConfig::load(dir);
  Llama model(config, backend, tensor_parallel);
  WeightReader weights(dir);
  model.load_weights(weights);
  return model;
}

namespace {

void save_config(const std::string& dir, const LlamaConfig& config, StDType dtype) {
  LlamaConfig c = config;
  c.torch_dtype = dtype == StDType::BF16 ? "bfloat16" : dtype == StDType::F16 ? "float16" : "float32";
  c.save((std::filesystem::path(dir) / "config.json").string());
}

}  // namespace

WrittenFiles Llama::save(const std::string& dir, StDType dtype, uint64_t max_shard_bytes, WriterShare share) const {
  // Under tensor parallelism every rank takes part in each tensor's gather, in parameter order;
  // the group's rank 0 writes.
  if (tp_ && tp_->rank() != 0) {
    for (const Parameter& p : params_) gather_full(p, p.value);
    return {};
  }
  // One tensor on the host at a time, fetched as its bytes are written (a 7B model is 32 GB in fp32).
  const std::vector<TensorSpec> specs = tensor_specs();
  // Whole fp32 tensors download into one reused buffer: a fresh vector per tensor costs a page
  // fault per 4 KiB (a 7B model's weights went to disk at 0.5 GB/s that way).
  std::vector<float> current;
  WrittenFiles written = write_weights(
      dir, specs,
      [&](size_t i) {
        const Parameter& p = params_[i];
        if ((p.shard.split() && tp_) || p.value.dtype() != ops::DType::kF32) {
          current = gather_full(p, p.value);
        } else {
          current.resize(static_cast<size_t>(p.value.numel()));
          backend_->download(p.value, current.data(), current.size() * sizeof(float));
        }
        return std::span<const float>(current);
      },
      dtype, max_shard_bytes, share);
  if (share.part == 0) save_config(dir, config_, dtype);
  return written;
}

std::vector<TensorSpec> Llama::tensor_specs() const {
  std::vector<TensorSpec> specs;
  for (const Parameter& p : params_) specs.push_back({p.name, {p.full_shape.begin(), p.full_shape.end()}});
  return specs;
}

WrittenFiles save_model(const std::string& dir, const LlamaConfig& config, const std::vector<TensorSpec>& specs,
                        const std::function<std::span<const float>(size_t)>& values, StDType dtype,
                        uint64_t max_shard_bytes, WriterShare share) {
  WrittenFiles written = write_weights(dir, specs, values, dtype, max_shard_bytes, share);
  if (share.part == 0) save_config(dir, config, dtype);
  return written;
}

WrittenFiles save_model(const std::string& dir, const LlamaConfig& config, const std::vector<NamedTensor>& tensors,
                        StDType dtype, uint64_t max_shard_bytes) {
  WrittenFiles written = write_weights(dir, tensors, dtype, max_shard_bytes);
  save_config(dir, config, dtype);
  return written;
}

// ---- forward --------------------------------------------------------------------------------------------

void Llama::ensure_rope(int64_t positions) {
  if (rope_cos_.defined() && rope_cos_.dim(0) >= positions) return;
  // Grown as sequences need it (a power of two), not sized from max_position_embeddings, which
  // may be huge or absent; positions past it work as in transformers.
  int64_t P = 64;
  while (P < positions) P *= 2;
  std::vector<float> inv = rope_inv_freq(config_);
  int64_t half = static_cast<int64_t>(inv.size());
  std::vector<float> c(static_cast<size_t>(P * half)), s(c.size());
  for (int64_t p = 0; p < P; ++p)
    for (int64_t i = 0; i < half; ++i) {
      float angle = inv[i] * static_cast<float>(p);  // float32, as transformers computes it
      c[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      s[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  rope_cos_ = backend_->from_host({P, half}, c);
  rope_sin_ = backend_->from_host({P, half}, s);
}

void Llama::ensure_activations(int64_t B, int64_t T) {
  if (acts_.B == B && acts_.T == T) return;
  const LlamaConfig& c = config_;
  // Local sizes: under tensor parallelism this rank's heads, MLP columns and vocabulary rows.
  const int64_t N = B * T, D = c.hidden_size, F = ffn_, H = heads_, KV = kv_heads_, hd = c.head_dim;
  ops::Backend& be = *backend_;
  const ops::DType act = be.activation_dtype();  // activations and their gradients
  acts_ = Activations{};
  acts_.B = B;
  acts_.T = T;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (recompute_ && l > 0) {  // every layer but its input shares layer 0's buffers
      LayerActs a = acts_.layers[0];
      a.x = be.empty({N, D}, act);
      acts_.layers.push_back(a);
      continue;
    }
    LayerActs a;
    a.x = be.empty({N, D}, act);
    a.rstd1 = be.empty({N});
    a.n1 = be.empty({N, D}, act);
    a.q = be.empty({B, T, H, hd}, act);
    a.k = be.empty({B, T, KV, hd}, act);
    a.v = be.empty({B, T, KV, hd}, act);
    a.att = be.empty({B, T, H, hd}, act);
    a.lse = be.empty({B, H, T});
    a.mid = be.empty({N, D}, act);
    a.rstd2 = be.empty({N});
    a.n2 = be.empty({N, D}, act);
    a.gate = be.empty({N, F}, act);
    a.up = be.empty({N, F}, act);
    a.act = be.empty({N, F}, act);
    acts_.layers.push_back(std::move(a));
  }
  acts_.out = be.empty({N, D}, act);
  acts_.rstdf = be.empty({N});
  acts_.nf = be.empty({N, D}, act);
  acts_.logits = be.empty({N, vocab_.count}, act);
  acts_.losses = be.empty({N});
  acts_.lse_ce = be.empty({N});
  acts_.dres = be.empty({N, D}, act);
  acts_.dn = be.empty({N, D}, act);
  acts_.datt = be.empty({N, H * hd}, act);
  acts_.dq = be.empty({B, T, H, hd}, act);
  acts_.dk = be.empty({B, T, KV, hd}, act);
  acts_.dv = be.empty({B, T, KV, hd}, act);
  acts_.dact = be.empty({N, F}, act);
  acts_.dgate = be.empty({N, F}, act);
  acts_.dup = be.empty({N, F}, act);
}

void Llama::forward(std::span<const int32_t> ids, int64_t B, int64_t T) {
  if (B <= 0 || T <= 0) fail("forward: batch ", B, "x", T, " is empty");
  if (static_cast<int64_t>(ids.size()) != B * T) fail("forward: ", ids.size(), " token ids for a ", B, "x", T, " batch");
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= config_.vocab_size)
      fail("forward: token id ", ids[i], " at position ", i, " is outside the vocabulary [0, ", config_.vocab_size, ")");
  ensure_activations(B, T);
  ensure_rope(T);
  ops::Backend& be = *backend_;
  Activations& A = acts_;
  const int64_t N = B * T;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  A.valid_targets = -1;
  A.logits_hold_gradient = false;
  A.ids = be.from_host({N}, ids);
  if (weight_copy_reuse_) be.begin_weight_reuse();  // weights stay fixed until backward() ends (or the next forward)
  else be.end_weight_reuse();

  if (params_needed_) params_needed_(static_cast<size_t>(embed_ - params_.data()), 1);
  Tensor& x0 = A.layers.empty() ? A.out : A.layers[0].x;
  be.embedding_forward(x0, A.ids, embed_->value, vocab_begin());
  if (tp_) tp_->all_reduce_sum(x0);  // each id's row comes from the rank holding it
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (params_needed_)
      params_needed_(static_cast<size_t>(layers_[l].input_norm - params_.data()), sizeof(Layer) / sizeof(Parameter*));
    layer_forward(l, true);
  }
  if (params_needed_) {
    const size_t tail = static_cast<size_t>(final_norm_ - params_.data());
    params_needed_(tail, params_.size() - tail);
  }
  be.rmsnorm_forward(A.nf, A.rstdf, A.out, final_norm_->value, eps);
  be.matmul_forward(A.logits, A.nf, lm_head_->value);
}

// One layer from its input A.layers[l].x. full: also the MLP's down projection and the residual
// add into the next layer's input (or A.out); recomputation in backward stops before them, since
// the layer's backward needs only what comes earlier.
void Llama::layer_forward(size_t l, bool full) {
  ops::Backend& be = *backend_;
  Activations& A = acts_;
  const int64_t N = A.B * A.T, H = heads_, hd = config_.head_dim;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  Tensor& tmp = A.dn;  // [N, D] scratch
  const Layer& P = layers_[l];
  LayerActs& a = A.layers[l];
  // attention block
  be.rmsnorm_forward(a.n1, a.rstd1, a.x, P.input_norm->value, eps);
  be.qkv_rope_forward(a.q, a.k, a.v, a.n1, P.q->value, P.k->value, P.v->value, rope_cos_, rope_sin_);
  be.attention_forward(a.att, a.lse, a.q, a.k, a.v);
  // Row-parallel under tensor parallelism: each rank's heads add their share, summed before the
  // residual add; otherwise the add happens in the product.
  if (tp_) {
    be.matmul_forward(tmp, a.att.reshape({N, H * hd}), P.o->value);
    tp_->all_reduce_sum(tmp);
    be.add(a.mid, a.x, tmp);
  } else {
    be.matmul_add_forward(a.mid, a.x, a.att.reshape({N, H * hd}), P.o->value);
  }
  // MLP block
  be.rmsnorm_forward(a.n2, a.rstd2, a.mid, P.post_norm->value, eps);
  be.swiglu_matmul_forward(a.act, a.gate, a.up, a.n2, P.gate->value, P.up->value);
  if (!full) return;
  Tensor& next = l + 1 < layers_.size() ? A.layers[l + 1].x : A.out;
  if (tp_) {
    be.matmul_forward(tmp, a.act, P.down->value);
    tp_->all_reduce_sum(tmp);
    be.add(next, a.mid, tmp);
  } else {
    be.matmul_add_forward(next, a.mid, a.act, P.down->value);
  }
}

void Llama::set_recompute(bool on) {
  if (on == recompute_) return;
  recompute_ = on;
  acts_ = Activations{};  // reallocated with the new layout at the next forward
}

float Llama::forward(std::span<const int32_t> ids, std::span<const int32_t> targets, int64_t B, int64_t T,
                     bool for_backward) {
  if (targets.size() != ids.size()) fail("forward: ", targets.size(), " targets for ", ids.size(), " token ids");
  int64_t valid = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] == kIgnoreIndex) continue;
    if (targets[i] < 0 || targets[i] >= config_.vocab_size)
      fail("forward: target ", targets[i], " at position ", i, " is outside the vocabulary [0, ",
           config_.vocab_size, ") and is not the ignore index ", kIgnoreIndex);
    ++valid;
  }
  forward(ids, B, T);
  ops::Backend& be = *backend_;
  acts_.targets = be.from_host({B * T}, targets);
  // The vocabulary-parallel loss needs every shard's logsumexp before its gradient: not fused.
  acts_.logits_hold_gradient = for_backward && !tp_;
  if (acts_.logits_hold_gradient) {
    const float scale = valid > 0 ? 1.0f / static_cast<float>(valid) : 0.0f;
    be.cross_entropy_forward_backward(acts_.losses, acts_.lse_ce, acts_.logits, acts_.logits, acts_.targets, scale);
  } else {
    be.cross_entropy_forward(acts_.losses, acts_.lse_ce, acts_.logits, acts_.targets, vocab_begin());
  }
  if (tp_) combine_vocab_shards(targets);
  acts_.valid_targets = valid;
  if (valid == 0) return 0.0f;
  double sum = 0;
  for (float l : be.to_host_f32(acts_.losses)) sum += l;
  return static_cast<float>(sum / static_cast<double>(valid));
}

// ---- backward ---------------------------------------------------------------------------------------------

void Llama::zero_grad() {
  for (Parameter& p : params_) {
    if (!p.grad.defined()) p.grad = backend_->empty(p.value.shape());
    backend_->zero(p.grad);
  }
}

void Llama::backward(ops::Grad mode) {
  Activations& A = acts_;
  if (A.valid_targets < 0) fail("backward: call forward with targets first (each forward allows one backward)");
  ops::Backend& be = *backend_;
  const bool write = mode == ops::Grad::kWrite;
  for (Parameter& p : params_) {
    if (p.grad.defined()) continue;
    if (!write) fail("backward: call zero_grad() before the first backward (or backward with Grad::kWrite)");
    p.grad = be.empty(p.value.shape());
  }
  // Written gradients: the products write theirs; the norms' and an untied embedding's, which
  // their ops add to, are zeroed first (small, or scattered into).
  auto start = [&](Parameter* p) {
    if (write) be.zero(p->grad);
  };
  const int64_t N = A.B * A.T, H = heads_, hd = config_.head_dim;
  const float scale = A.valid_targets > 0 ? 1.0f / static_cast<float>(A.valid_targets) : 0.0f;
  A.valid_targets = -1;  // logits become the loss gradient below

  if (!A.logits_hold_gradient) be.cross_entropy_backward(A.logits, A.logits, A.lse_ce, A.targets, scale, vocab_begin());
  A.logits_hold_gradient = false;
  be.matmul_backward(A.dn, lm_head_->grad, A.logits, A.nf, lm_head_->value, ops::Grad::kWrite, mode);
  // Under tensor parallelism the input gradients of the column-parallel products (lm_head over
  // the vocabulary shard, q/k/v, gate/up) are partial sums over this rank's share: summed here.
  if (tp_) tp_->all_reduce_sum(A.dn);
  be.zero(A.dres);
  start(final_norm_);
  be.rmsnorm_backward(A.dres, final_norm_->grad, A.dn, A.out, final_norm_->value, A.rstdf);
  // The parameters after the last layer (final norm, an untied lm_head) are complete; a tied
  // lm_head is the embedding, complete only at the end.
  const size_t tail = static_cast<size_t>(final_norm_ - params_.data());
  if (grads_ready_) grads_ready_(tail, params_.size() - tail);
  // A.dres now holds the gradient of the residual stream; each block adds its branch's share.
  for (size_t l = layers_.size(); l-- > 0;) {
    if (recompute_) layer_forward(l, false);  // refill the shared buffers from this layer's input
    const Layer& P = layers_[l];
    LayerActs& a = A.layers[l];
    // MLP block: out = mid + down(swiglu(gate(n2), up(n2)))
    be.swiglu_matmul_backward(A.dgate, A.dup, A.dact, P.down->grad, A.dres, a.act, P.down->value, a.gate, a.up, mode);
    const ops::LinearGrad gate_up[] = {{&A.dgate, &P.gate->value, &P.gate->grad}, {&A.dup, &P.up->value, &P.up->grad}};
    be.matmul_backward_shared(A.dn, a.n2, gate_up, ops::Grad::kWrite, mode);
    if (tp_) tp_->all_reduce_sum(A.dn);
    start(P.post_norm);
    be.rmsnorm_backward(A.dres, P.post_norm->grad, A.dn, a.mid, P.post_norm->value, a.rstd2);
    // attention block: mid = x + o(attention(rope(q(n1)), rope(k(n1)), v(n1)))
    be.matmul_backward(A.datt, P.o->grad, A.dres, a.att.reshape({N, H * hd}), P.o->value, ops::Grad::kWrite, mode);
    be.attention_backward(A.dq, A.dk, A.dv, A.datt.reshape(a.att.shape()), a.q, a.k, a.v, a.att, a.lse,
                          ops::Grad::kWrite);
    be.rope_backward(A.dq, rope_cos_, rope_sin_);
    be.rope_backward(A.dk, rope_cos_, rope_sin_);
    Tensor dq2 = A.dq.reshape({N, H * hd}), dk2 = A.dk.reshape({N, kv_heads_ * hd}),
           dv2 = A.dv.reshape({N, kv_heads_ * hd});
    const ops::LinearGrad qkv[] = {{&dq2, &P.q->value, &P.q->grad}, {&dk2, &P.k->value, &P.k->grad},
                                   {&dv2, &P.v->value, &P.v->grad}};
    be.matmul_backward_shared(A.dn, a.n1, qkv, ops::Grad::kWrite, mode);
    if (tp_) tp_->all_reduce_sum(A.dn);
    start(P.input_norm);
    be.rmsnorm_backward(A.dres, P.input_norm->grad, A.dn, a.x, P.input_norm->value, a.rstd1);
    if (grads_ready_) grads_ready_(static_cast<size_t>(P.input_norm - params_.data()), sizeof(Layer) / sizeof(Parameter*));
  }
  if (embed_ != lm_head_) start(embed_);  // a tied one holds lm_head's gradient already
  be.embedding_backward(embed_->grad, A.ids, A.dres, vocab_begin());
  if (grads_ready_) grads_ready_(static_cast<size_t>(embed_ - params_.data()), 1);
  be.end_weight_reuse();
}

}  // namespace agpt::model
