// The KV cache and Llama::forward_cached: the forward of llama.cpp for a chunk of new tokens of one
// sequence, with keys and values written into (and attention reading from) the cache.
#include "model/kv_cache.h"

#include "base/error.h"
#include "model/llama.h"

namespace agpt::model {

using ops::Tensor;

namespace {
// The sizes the cache and its scratch are allocated from.
bool same_shape(const LlamaConfig& a, const LlamaConfig& b) {
  return a.num_hidden_layers == b.num_hidden_layers && a.num_key_value_heads == b.num_key_value_heads &&
         a.head_dim == b.head_dim && a.hidden_size == b.hidden_size && a.num_attention_heads == b.num_attention_heads &&
         a.intermediate_size == b.intermediate_size && a.vocab_size == b.vocab_size;
}
}  // namespace

KvCache::KvCache(const LlamaConfig& config, ops::Backend& backend, int64_t capacity)
    : config_(config), backend_(&backend), capacity_(capacity) {
  config_.fill_defaults();
  if (capacity <= 0) fail("KV cache: capacity must be positive, got ", capacity);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    keys_.push_back(backend.empty({capacity, config_.num_key_value_heads, config_.head_dim}, backend.activation_dtype()));
    values_.push_back(backend.empty({capacity, config_.num_key_value_heads, config_.head_dim}, backend.activation_dtype()));
  }
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (size_t l = 0; l < keys_.size(); ++l) total += keys_[l].bytes() + values_[l].bytes();
  return total;
}

void KvCache::ensure_scratch(int64_t rows) {
  if (scratch_.rows >= rows) return;
  const LlamaConfig& c = config_;
  ops::Backend& be = *backend_;
  Scratch s;
  s.rows = rows;
  s.ids = be.empty({rows}, ops::DType::kI32);
  s.x = be.empty({rows, c.hidden_size}, be.activation_dtype());
  s.n = be.empty({rows, c.hidden_size}, be.activation_dtype());
  s.tmp = be.empty({rows, c.hidden_size}, be.activation_dtype());
  s.rstd = be.empty({rows});
  s.q = be.empty({rows, c.q_size()}, be.activation_dtype());
  s.att = be.empty({rows, c.q_size()}, be.activation_dtype());
  s.lse = be.empty({c.num_attention_heads * rows});
  s.gate = be.empty({rows, c.intermediate_size}, be.activation_dtype());
  s.up = be.empty({rows, c.intermediate_size}, be.activation_dtype());
  s.act = be.empty({rows, c.intermediate_size}, be.activation_dtype());
  s.logits = be.empty({rows, c.vocab_size}, be.activation_dtype());
  scratch_ = std::move(s);
}

Tensor Llama::forward_cached(KvCache& cache, std::span<const int32_t> ids, int64_t pos0, bool all_logits) {
  const LlamaConfig& c = config_;
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T == 0) fail("forward_cached: no tokens");
  backend_->end_weight_reuse();  // each weight is used once here: keeping copies would only cost memory
  if (tp_) fail("forward_cached: generation under tensor parallelism is not supported; load the checkpoint without --tp");
  if (cache.backend_ != backend_) fail("forward_cached: the KV cache lives on another backend");
  if (!same_shape(cache.config_, c)) fail("forward_cached: the KV cache was made for a model of another shape");
  if (pos0 < 0 || pos0 > cache.length())
    fail("forward_cached: position ", pos0, " leaves a gap after the ", cache.length(), " cached positions");
  if (T > cache.capacity() - pos0)
    fail("forward_cached: positions ", pos0, "..", pos0 + T - 1, " do not fit a KV cache of ", cache.capacity());
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.vocab_size)
      fail("forward_cached: token id ", ids[i], " at position ", pos0 + static_cast<int64_t>(i),
           " is outside the vocabulary [0, ", c.vocab_size, ")");

  ensure_rope(pos0 + T);
  cache.ensure_scratch(T);
  ops::Backend& be = *backend_;
  KvCache::Scratch& s = cache.scratch_;
  const int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, hd = c.head_dim, Tk = pos0 + T;
  const float eps = static_cast<float>(c.rms_norm_eps);
  Tensor tok = s.ids.narrow(0, T), x = s.x.narrow(0, T), n = s.n.narrow(0, T), tmp = s.tmp.narrow(0, T),
         rstd = s.rstd.narrow(0, T), q = s.q.narrow(0, T), att = s.att.narrow(0, T),
         lse = s.lse.narrow(0, H * T).reshape({1, H, T}), gate = s.gate.narrow(0, T), up = s.up.narrow(0, T),
         act = s.act.narrow(0, T);
  Tensor q4 = q.reshape({1, T, H, hd}), att4 = att.reshape({1, T, H, hd});
  be.upload(tok, ids.data(), ids.size_bytes());

  be.embedding_forward(x, tok, embed_->value);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& P = layers_[l];
    // The new tokens' keys and values go straight into their rows of the cache.
    Tensor k_new = cache.keys_[l].narrow(pos0, T), v_new = cache.values_[l].narrow(pos0, T);
    Tensor k2 = k_new.reshape({T, KV * hd}), v2 = v_new.reshape({T, KV * hd});
    be.rmsnorm_forward(n, rstd, x, P.input_norm->value, eps);
    be.matmul_forward(q, n, P.q->value);
    be.matmul_forward(k2, n, P.k->value);
    be.matmul_forward(v2, n, P.v->value);
    be.rope_forward(q4, rope_cos_, rope_sin_, pos0);
    Tensor k4_new = k_new.reshape({1, T, KV, hd});
    be.rope_forward(k4_new, rope_cos_, rope_sin_, pos0);
    be.attention_forward(att4, lse, q4, cache.keys_[l].narrow(0, Tk).reshape({1, Tk, KV, hd}),
                         cache.values_[l].narrow(0, Tk).reshape({1, Tk, KV, hd}));
    be.matmul_forward(tmp, att, P.o->value);
    be.add(x, x, tmp);
    be.rmsnorm_forward(n, rstd, x, P.post_norm->value, eps);
    be.matmul_forward(gate, n, P.gate->value);
    be.matmul_forward(up, n, P.up->value);
    be.swiglu_forward(act, gate, up);
    be.matmul_forward(tmp, act, P.down->value);
    be.add(x, x, tmp);
  }
  cache.length_ = Tk;
  // Only the rows whose logits are wanted go through the final norm and lm_head.
  const int64_t first = all_logits ? 0 : T - 1, rows = T - first;
  Tensor xf = x.narrow(first, rows), nf = n.narrow(first, rows), rf = rstd.narrow(first, rows),
         logits = s.logits.narrow(0, rows);
  be.rmsnorm_forward(nf, rf, xf, final_norm_->value, eps);
  be.matmul_forward(logits, nf, lm_head_->value);
  return logits;
}

}  // namespace agpt::model
