// Megatron compatibility mode (`--order megatron`): the exact sample order that Megatron-LM's
// BlendedMegatronDatasetBuilder + GPTDataset + BlendedDataset produce for the same files, weights,
// split, seed and sequence length, so a Megatron run can be reproduced or continued sample for sample.
//
// What is replicated (checked bit for bit against Megatron's own cache files in
// shared/testdata/megatron-index):
//   - weights: w / numpy.sum(w) (pairwise summation), and once more inside BlendedDataset;
//   - split: the "90,8,2" string normalised the same way, bookends, and per file the documents
//     [round(b0 * D), round(b1 * D)) with Python's round;
//   - per split and file: target = ceil(N * w), num_samples = ceil(target * (1 + surplus)); the blend
//     has sum(target) samples (slightly more than N);
//   - per GPTDataset: epochs, the separate final epoch (< 80% of an epoch), numpy RandomState(seed)
//     shuffles of the document index and the shuffle index, helpers.cpp's build_sample_idx;
//   - the blend: helpers.cpp's greedy build_blending_indices (same doubles, same ties), without its
//     scan of every file for every sample (dataset/megatron_blend.h).
// Built on all cores (the blend on one thread, the GPTDatasets on the others) in memory: nothing
// is cached on disk, every rank can build the same order on its own.
//
// Where Megatron itself gives up, this does not: if the greedy blend asks a file for more samples
// than its GPTDataset holds (Megatron: "The train blend oversamples ..."), that file's GPTDataset is
// built for exactly the samples the blend needs (as Megatron would with a larger
// mid_level_dataset_surplus for that file alone) and a warning says so. A file with no tokens in a
// split fails with a clear error (Megatron loops for ever there).
//
// Memory: the indices Megatron caches, held in RAM: per file and split 4 bytes per document and
// epoch (document index), 8 bytes per sample (sample index), 4 bytes per sample (shuffle index);
// per split 2 bytes per blended sample plus 32-bit per-dataset counts every 2^k >= 4 * files samples
// (at most 1 byte per sample; no 8-byte dataset_sample_index: it is recounted from the nearest
// checkpoint, a scan of under 2^k two-byte entries).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataset/index_header.h"
#include "dataset/mixture.h"  // Split, kNumSplits, split_name

namespace agpt::dataset {

struct MegatronOrderOptions {
  std::string list_path;              // ALCF data file list: `weight prefix [corpus]` (corpus unused, as in Megatron)
  std::vector<std::string> prefixes;  // or, with list_path empty: the prefixes and their raw weights
  std::vector<double> weights;
  uint64_t seq_len = 0;               // Megatron's --seq-length; a sample is seq_len + 1 tokens
  uint64_t seed = 1234;               // Megatron's --seed (RandomState seed: < 2^32)
  std::string split = "969,30,1";     // Megatron's --split (its default)
  std::array<uint64_t, kNumSplits> samples{0, 0, 0};  // train/valid/test samples requested (Megatron's N per split)
  double surplus = 0.005;             // Megatron's mid_level_dataset_surplus
  int threads = 0;                    // 0: all cores
};

// Megatron's split matrix for a --split string: per split [begin, end) fractions, or none.
std::array<std::optional<std::pair<double, double>>, kNumSplits> megatron_split_matrix(const std::string& split);

// One GPTDataset (a file in a split): what Megatron's description and log say about it.
struct MegatronDatasetInfo {
  uint32_t source = 0;              // index in the list
  uint64_t doc_begin = 0, doc_end = 0;  // the split's sequences of the file
  uint64_t tokens_per_epoch = 0;
  uint64_t target = 0;              // ceil(N * weight): the blend's planned share
  uint64_t num_samples = 0;         // requested of the GPTDataset: ceil(target * (1 + surplus)), or raised (warning)
  uint64_t num_epochs = 0;
  bool separate_final_epoch = false;
  uint64_t samples_sans_final_epoch = 0;  // when the final epoch is shuffled separately
  uint64_t total_samples = 0;       // samples the GPTDataset holds (sample_index rows - 1)
  uint64_t used = 0;                // samples the blend draws from it
};

// An allocator whose resize() leaves new elements uninitialised: the index arrays are written in
// full right after (no pass of zeros over gigabytes first).
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <typename T>
using IndexVector = std::vector<T, UninitializedAllocator<T>>;

// The three arrays Megatron caches per GPTDataset (document_index.npy, sample_index.npy,
// shuffle_index.npy), with the same values.
struct MegatronGptIndex {
  IndexVector<int32_t> document_index;  // epochs x documents, shuffled: sequence ids
  IndexVector<uint32_t> sample_index;   // (total_samples + 1) x 2: position in document_index, token offset
  IndexVector<uint32_t> shuffle_index;  // total_samples: a permutation
};

class MegatronOrder {
 public:
  static MegatronOrder build(const MegatronOrderOptions& options);
  // DIR/mixture.json (format agpt-mixture, "order": "megatron"): the options, the files with their
  // raw weights and fingerprints, and per split and file what Megatron's descriptions say. No index
  // is stored: load() rebuilds the order from it (seconds) after checking the files did not change.
  void save(const std::string& dir) const;
  static MegatronOrder load(const std::string& dir);
  std::string to_json() const;
  std::string table() const;  // per split and file: documents, tokens, target, num_samples, epochs, used

  const MegatronOrderOptions& options() const { return options_; }
  // Samples of the blended split (Megatron's len(BlendedDataset)): the sum of the per-file targets,
  // which may be a few more than requested; 0 for a split that is not built.
  uint64_t size(Split split) const { return splits_[int(split)].size; }

  struct Piece {
    uint64_t document = 0;  // sequence id in the file
    uint64_t offset = 0;    // first token inside it
    uint64_t length = 0;    // tokens taken
  };
  struct Sample {
    uint32_t source = 0;          // file (index in the list) = Megatron's dataset_id
    uint64_t dataset_sample = 0;  // index into the file's GPTDataset (dataset_sample_index)
    uint64_t shuffled = 0;        // shuffle_index[dataset_sample]: the sample_index row
    std::vector<Piece> pieces;    // documents in order; lengths add up to seq_len + 1
  };
  Sample sample(Split split, uint64_t index) const;
  void sample(Split split, uint64_t index, Sample& out) const;  // reuses out's storage
  // The seq_len + 1 tokens of a sample (Megatron's `text` before the input/label shift).
  void read(Split split, uint64_t index, uint32_t* out) const;
  void read(const Sample& sample, uint32_t* out) const;

  // BlendedDataset arrays: dataset_index[i], dataset_sample_index[i].
  uint32_t dataset_index(Split split, uint64_t index) const;
  uint64_t dataset_sample_index(Split split, uint64_t index) const;
  // The weights passed to build_blending_indices (normalised twice, as BlendedDataset does).
  const std::vector<double>& blend_weights(Split split) const { return splits_[int(split)].blend_weights; }
  // Per file of the list (empty for a split that is not built).
  const std::vector<MegatronDatasetInfo>& datasets(Split split) const { return splits_[int(split)].datasets; }
  const MegatronGptIndex& gpt_index(Split split, uint32_t source) const;

  const std::vector<std::string>& prefixes() const { return prefixes_; }
  const std::vector<double>& weights() const { return weights_; }  // normalised once (Megatron's builder)
  uint64_t sequences(uint32_t source) const { return files_.at(source)->sequences; }
  // The file's index, opened on first use (thread-safe): building the order reads the .idx files
  // with pread only, so the mappings of thousands of index files never count against the resident set.
  const IndexHeader& index(uint32_t source) const;
  const std::vector<std::string>& warnings() const { return warnings_; }
  // Bytes held by the indices (the arrays above and the blend).
  uint64_t memory_bytes() const;

  // Sequential reading from any index: one checkpoint lookup at the start, then O(pieces) a sample.
  class Cursor {
   public:
    Cursor(const MegatronOrder& order, Split split, uint64_t index);
    Sample next();
    void next(Sample& out);  // reuses out's storage
    uint64_t index() const { return index_; }

   private:
    const MegatronOrder* order_;
    Split split_;
    uint64_t index_;
    std::vector<uint64_t> counts_;
  };

 private:
  struct SplitState {
    uint64_t size = 0;
    std::vector<double> blend_weights;
    std::vector<MegatronDatasetInfo> datasets;
    std::vector<MegatronGptIndex> gpt;
    std::vector<uint16_t> dataset_index;
    unsigned checkpoint_shift = 16;
    std::vector<uint32_t> checkpoints;  // counts per dataset before sample (b << shift): [b * datasets + d]
  };
  const SplitState& state(Split split) const;
  void locate(Split split, uint32_t source, uint64_t dataset_sample, Sample& out) const;

  struct File {
    double raw_weight = 0;       // as listed
    uint64_t fingerprint = 0;    // .idx header, both sizes, first and last 4 KiB of the .idx
    uint64_t sequences = 0;
    TokenDType dtype = TokenDType::kUInt16;
    std::once_flag opened;
    std::shared_ptr<IndexHeader> header;
  };

  MegatronOrderOptions options_;
  std::vector<std::string> prefixes_;
  std::vector<double> weights_;
  std::vector<std::unique_ptr<File>> files_;
  std::array<SplitState, kNumSplits> splits_;
  std::vector<std::string> warnings_;
};

}  // namespace agpt::dataset
