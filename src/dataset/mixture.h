// A blended, deterministic, resumable sample stream over many token files (see docs/data-mixture.md).
//
// Sample i of a split is a pure function of (the plan, i): which source serves it comes from the
// blend tree (dataset/blend.h), which window of that source from a per-epoch keyed permutation
// (dataset/permutation.h). Nothing is precomputed per document or per sample, so the stream is ready
// as soon as the .idx headers are read, on every rank, from a few bytes of state.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataset/blend.h"
#include "dataset/index_header.h"
#include "dataset/permutation.h"

namespace agpt::dataset {

enum class Split : int { kTrain = 0, kValid = 1, kTest = 2 };
constexpr int kNumSplits = 3;
const char* split_name(Split s);

struct MixtureOptions {
  std::string list_path;       // ALCF data file list
  uint64_t seq_len = 0;        // a sample is seq_len + 1 tokens
  std::array<uint64_t, kNumSplits> samples{0, 0, 0};  // requested samples per split
  uint64_t seed = 1234;
  std::array<double, kNumSplits> split{1, 0, 0};      // document fractions per split (Megatron's --split)
};

// "98,1,1" or "0.98 0.01 0.01" -> normalised fractions; errors name the problem.
std::array<double, kNumSplits> parse_split(const std::string& text);

// One window of seq_len + 1 tokens of one source.
struct SampleRef {
  uint32_t source = 0;
  uint64_t source_sample = 0;  // index among this source's samples in the split (over all epochs)
  uint64_t epoch = 0;
  uint64_t start_token = 0;    // token offset in the source's .bin
};

struct SourceSplitPlan {
  uint64_t doc_begin = 0, doc_end = 0;      // documents of the split
  uint64_t token_begin = 0, token_end = 0;  // their tokens, contiguous in the .bin
  uint64_t samples_per_epoch = 0;           // (tokens - 1) / seq_len
  uint64_t samples = 0;                     // served from this source in the split
  uint64_t base = 0;                        // samples consumed before this plan (resume with a changed mixture)
  double prefix_bound = 0;                  // proven max deviation from the share over any prefix
  bool active = false;
  double epochs() const { return samples_per_epoch ? double(base + samples) / double(samples_per_epoch) : 0; }
};

struct SourcePlan {
  std::string prefix, corpus;
  double weight = 0;
  uint64_t documents = 0, tokens = 0;
  TokenDType dtype = TokenDType::kUInt16;
  uint64_t fingerprint = 0;
  std::array<SourceSplitPlan, kNumSplits> split;
};

// The consumed-sample state a trainer checkpoints: enough to continue the same stream exactly, or
// to continue each source's own sequence under a changed mixture.
struct StreamState {
  uint64_t consumed = 0;                         // samples of the split consumed so far
  std::map<std::string, uint64_t> per_source;    // prefix -> samples of that source consumed
};

class Mixture {
 public:
  // Reads the list and every .idx header, and plans the stream. Problems that leave a usable plan
  // (a source too small for one sample, a share that rounds to zero samples) become warnings.
  // resume: when given, the plan continues a previous stream at resume->consumed with each
  // remaining source picking up its own sample sequence where it stopped (see the docs).
  static Mixture plan(const MixtureOptions& options, const StreamState* resume = nullptr);
  // Opens DIR/mixture.json and every source in it; checks the fingerprints still match.
  static Mixture load(const std::string& dir);
  void save(const std::string& dir) const;  // DIR/mixture.json, atomically

  SampleRef sample(Split split, uint64_t index) const;
  // Writes the sample's seq_len + 1 tokens to out.
  void read(const SampleRef& ref, uint32_t* out) const;
  // The state after consuming the first `consumed` samples of a split.
  StreamState state_at(Split split, uint64_t consumed) const;

  const MixtureOptions& options() const { return options_; }
  const std::vector<SourcePlan>& sources() const { return sources_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  uint64_t start_index(Split s) const { return start_[static_cast<int>(s)]; }
  uint64_t end_index(Split s) const { return start_[static_cast<int>(s)] + options_.samples[static_cast<int>(s)]; }
  const IndexHeader& index(uint32_t source) const { return *indices_.at(source); }

  // Sequential reading of the stream from any index: the same samples as sample(split, i),
  // sample(split, i+1), ... at tens of millions of descriptors per second.
  class Cursor {
   public:
    Cursor(const Mixture& mixture, Split split, uint64_t index);
    SampleRef next();
    uint64_t index() const { return index_; }

   private:
    // Everything next() needs of one source, in one small record (the plans are large and
    // scattered; touching them per sample costs cache misses across thousands of sources).
    struct SourceState {
      uint32_t source = 0;
      bool started = false;
      uint64_t per_epoch = 0, token_begin = 0, base = 0;
      uint64_t epoch = 0, within = 0;  // position of the source's next sample: epoch, index in it
      Permutation order{1, 0};
      uint64_t offset = 0;
    };
    // Samples are produced a batch at a time: first the (sequential) blend walk and position
    // bookkeeping for the whole batch, then the window permutations, which are independent of
    // each other and so overlap in the CPU instead of forming one long latency chain.
    static constexpr size_t kBatch = 64;
    struct Pending {
      uint32_t leaf;
      uint64_t source_sample, within;
    };
    void fill();
    void resolve(size_t k);  // computes buf_[k] from pending_[k] with its source's current epoch

    const Mixture* mixture_;
    Split split_;
    uint64_t index_;
    BlendTree::Cursor blend_;
    std::vector<SourceState> cache_;  // per blend leaf
    std::array<SampleRef, kBatch> buf_;
    std::array<Pending, kBatch> pending_;
    std::array<bool, kBatch> resolved_{};
    size_t pos_ = kBatch;
  };
  std::string table() const;   // the plan as a human-readable table
  std::string to_json() const;

 private:
  void build_blends();
  uint64_t source_key(uint32_t source, Split split) const;
  // The order of a source's windows in one epoch, and the packing offset of that epoch.
  Permutation epoch_order(uint32_t source, Split split, uint64_t epoch, uint64_t& offset) const;
  SampleRef locate(uint32_t source, Split split, uint64_t source_sample, const Permutation& order, uint64_t offset) const;

  MixtureOptions options_;
  std::vector<SourcePlan> sources_;
  std::vector<std::string> warnings_;
  std::array<uint64_t, kNumSplits> start_{0, 0, 0};
  std::vector<std::shared_ptr<IndexHeader>> indices_;
  // Per split: the blend over that split's active sources, and blend leaf -> source index.
  std::array<std::shared_ptr<BlendTree>, kNumSplits> blends_;
  std::array<std::vector<uint32_t>, kNumSplits> active_;
};

}  // namespace agpt::dataset
