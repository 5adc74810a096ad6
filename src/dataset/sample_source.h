// What the training loader and the trainer read samples from: a planned stream of fixed-width
// samples (seq_len + 1 tokens) per split, in either order `agpt data mix` can plan:
//   - the agpt order (dataset/mixture.h, `--order agpt`): ready at once, resumable under a changed
//     mixture (per-source counts in the StreamState);
//   - the Megatron-LM order (dataset/megatron_order.h, `--order megatron`): the exact sample order of
//     Megatron's BlendedDataset. Resuming it needs only `consumed`; a resume under a changed mixture
//     is not supported (the order is only defined for a whole Megatron plan).
//
//   auto src = dataset::load_sample_source("runs/mix");   // DIR/mixture.json, either order
//   dataset::Loader loader(src, options, consumed);
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataset/megatron_order.h"
#include "dataset/mixture.h"

namespace agpt::dataset {

class SampleSource {
 public:
  virtual ~SampleSource() = default;

  virtual const char* order() const = 0;  // "agpt" or "megatron", as in mixture.json
  virtual uint64_t seq_len() const = 0;   // a sample is seq_len() + 1 tokens
  // The split's samples are the stream indices [start_index, end_index): start_index is 0 except
  // for an agpt plan that continues an earlier stream (a resume under a changed mixture).
  virtual uint64_t start_index(Split split) const = 0;
  virtual uint64_t end_index(Split split) const = 0;
  uint64_t size(Split split) const { return end_index(split) - start_index(split); }

  // Writes sample `index`'s seq_len + 1 tokens to out; when ref is given and the order describes
  // its samples as one window of one source (the agpt order), also that window (returns true).
  virtual bool read(Split split, uint64_t index, uint32_t* out, SampleRef* ref) const = 0;
  void read(Split split, uint64_t index, uint32_t* out) const { read(split, index, out, nullptr); }

  // The state a checkpoint stores after the first `consumed` samples of a split. For the Megatron
  // order only `consumed` is set (per_source stays empty).
  virtual StreamState state_at(Split split, uint64_t consumed) const = 0;
  // Whether per-source counts can continue under a changed mixture (Mixture::plan(options, &state)).
  virtual bool supports_changed_mixture_resume() const = 0;
  virtual const std::vector<std::string>& warnings() const = 0;
  // 64-bit FNV-1a of the plan (its mixture.json, less the paths: the same files planned the same
  // way from another directory give the same value): tells whether a checkpoint was written against
  // the same plan. Computed on first use.
  virtual uint64_t fingerprint() const = 0;
};

// Views of an order as a SampleSource (they share ownership of it).
std::shared_ptr<const SampleSource> sample_source(std::shared_ptr<const Mixture> mixture);
std::shared_ptr<const SampleSource> sample_source(std::shared_ptr<const MegatronOrder> order);

// "agpt" or "megatron": the "order" of DIR/mixture.json (a plan without one is agpt). Errors name
// the file.
std::string plan_order(const std::string& dir);
// Opens DIR/mixture.json with Mixture::load or MegatronOrder::load, as its "order" says.
std::shared_ptr<const SampleSource> load_sample_source(const std::string& dir);

// The agpt source's mixture, or null for another order.
const Mixture* as_mixture(const SampleSource& source);
// The Megatron source's order, or null for another order.
const MegatronOrder* as_megatron_order(const SampleSource& source);

}  // namespace agpt::dataset
