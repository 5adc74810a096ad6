// KvCache: the keys and values of one sequence's past tokens, per layer, so that generating a token
// costs one token's forward instead of the whole sequence's (Llama::forward_cached).
//
//   KvCache cache(model.config(), model.backend(), 512);     // room for 512 positions
//   Tensor logits = model.forward_cached(cache, prompt, 0);  // prefill: logits of the last token
//   logits = model.forward_cached(cache, {next}, cache.length());  // then one token at a time
//
// Keys are stored after RoPE, so a cached key never changes. Everything lives on the model's
// backend and is touched only through its ops (works on any backend). One sequence (B = 1).
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "ops/backend.h"

namespace agpt::model {

class Llama;

class KvCache {
 public:
  // Room for `capacity` positions of a model with this config (2·L·capacity·KV·hd floats).
  KvCache(const LlamaConfig& config, ops::Backend& backend, int64_t capacity);
  // Not copyable: a copy would share (not duplicate) the cached tensors.
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;

  int64_t capacity() const { return capacity_; }
  // Positions 0..length()-1 hold valid keys and values.
  int64_t length() const { return length_; }
  // Forgets every position (the memory stays allocated).
  void clear() { length_ = 0; }

  // Layer l's keys or values [capacity, KV, hd]; rows past length() are undefined.
  const ops::Tensor& keys(int64_t layer) const { return keys_.at(static_cast<size_t>(layer)); }
  const ops::Tensor& values(int64_t layer) const { return values_.at(static_cast<size_t>(layer)); }

  // Bytes of keys and values (the scratch for activations is not counted).
  size_t bytes() const;

 private:
  friend class Llama;

  // Activations of a chunk of new tokens, allocated for the largest chunk seen and narrowed to
  // each call's count (prefill once, then one-token steps reuse the same memory).
  struct Scratch {
    int64_t rows = 0;
    ops::Tensor ids;                 // i32 [rows]
    ops::Tensor x, n, tmp;           // [rows, D]: residual stream, normalized input, branch output
    ops::Tensor rstd;                // [rows]
    ops::Tensor q, att;              // [rows, H·hd]
    ops::Tensor lse;                 // [H·rows]
    ops::Tensor gate, up, act;       // [rows, F]
    ops::Tensor logits;              // [rows, V]
  };
  void ensure_scratch(int64_t rows);

  LlamaConfig config_;
  ops::Backend* backend_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
  std::vector<ops::Tensor> keys_, values_;
  Scratch scratch_;
};

}  // namespace agpt::model
