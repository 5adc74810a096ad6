// The training loader: micro-batches of a planned sample stream (either order: dataset/sample_source.h)
// for one data-parallel rank, read ahead on a background thread. Every rank computes its own part of the same stream; nothing
// is shared between ranks but the plan file (or the same plan computed on each).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dataset/mixture.h"
#include "dataset/sample_source.h"

namespace agpt::dataset {

struct LoaderOptions {
  Split split = Split::kTrain;
  uint64_t micro_batch = 1;
  int rank = 0;        // data-parallel rank
  int world = 1;       // data-parallel size
  size_t prefetch = 4; // micro-batches read ahead
};

struct Batch {
  uint64_t first_index = 0;      // stream index of the first sample
  std::vector<uint32_t> tokens;  // micro_batch rows of seq_len + 1 tokens
  std::vector<SampleRef> refs;   // the windows, for the agpt order; empty for the Megatron order
};

class Loader {
 public:
  // consumed: samples of the split already consumed by all ranks together (0 for a new run, the
  // checkpointed value on resume). Must be a multiple of world * micro_batch.
  Loader(std::shared_ptr<const SampleSource> source, LoaderOptions options, uint64_t consumed);
  Loader(std::shared_ptr<const Mixture> mixture, LoaderOptions options, uint64_t consumed)
      : Loader(sample_source(std::move(mixture)), options, consumed) {}
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // The next micro-batch of this rank. Throws Error when the split's planned samples run out.
  Batch next();
  // Samples consumed by all ranks after the batches returned so far (what a checkpoint stores).
  uint64_t consumed() const { return consumed_; }
  // The checkpoint state at consumed() (for the Megatron order: consumed only).
  StreamState state() const { return source_->state_at(options_.split, consumed_); }
  const SampleSource& source() const { return *source_; }

 private:
  void produce();
  Batch make_batch(uint64_t round_start) const;

  std::shared_ptr<const SampleSource> source_;
  LoaderOptions options_;
  uint64_t consumed_;
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace agpt::dataset
