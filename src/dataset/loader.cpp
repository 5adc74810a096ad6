#include "dataset/loader.h"

#include "base/error.h"

namespace agpt::dataset {

Loader::Loader(std::shared_ptr<const SampleSource> source, LoaderOptions options, uint64_t consumed)
    : source_(std::move(source)), options_(options), consumed_(consumed) {
  if (!source_) fail("the loader needs a sample source");
  if (options_.micro_batch == 0) fail("micro-batch size must be at least 1");
  if (options_.world < 1 || options_.rank < 0 || options_.rank >= options_.world)
    fail("data-parallel rank ", options_.rank, " is not in [0, ", options_.world, ")");
  const uint64_t round = options_.micro_batch * static_cast<uint64_t>(options_.world);
  if (consumed_ % round != 0)
    fail("consumed samples ", consumed_, " is not a multiple of micro-batch x data-parallel size (", round,
         "); resume with the layout the checkpoint was written with, or a compatible one");
  if (consumed_ < source_->start_index(options_.split))
    fail("consumed samples ", consumed_, " is before the plan's start index ", source_->start_index(options_.split));
  if (options_.prefetch == 0) options_.prefetch = 1;
  worker_ = std::thread([this] { produce(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Batch Loader::make_batch(uint64_t round_start) const {
  const uint64_t width = source_->seq_len() + 1;
  Batch b;
  b.first_index = round_start + static_cast<uint64_t>(options_.rank) * options_.micro_batch;
  if (b.first_index + options_.micro_batch > source_->end_index(options_.split))
    fail("the ", split_name(options_.split), " stream is exhausted: it was planned for ",
         source_->end_index(options_.split), " samples; plan more with `agpt data mix --samples`");
  b.tokens.resize(options_.micro_batch * width);
  b.refs.resize(options_.micro_batch);
  bool have_refs = true;
  for (uint64_t k = 0; k < options_.micro_batch; ++k)
    have_refs &= source_->read(options_.split, b.first_index + k, b.tokens.data() + k * width, &b.refs[k]);
  if (!have_refs) b.refs.clear();
  return b;
}

void Loader::produce() {
  const uint64_t round = options_.micro_batch * static_cast<uint64_t>(options_.world);
  uint64_t next_round = consumed_;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || queue_.size() < options_.prefetch; });
      if (stop_) return;
    }
    try {
      Batch b = make_batch(next_round);
      next_round += round;
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    cv_.notify_all();
  }
}

Batch Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !queue_.empty() || error_; });
  if (queue_.empty()) std::rethrow_exception(error_);
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  consumed_ += options_.micro_batch * static_cast<uint64_t>(options_.world);
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace agpt::dataset
