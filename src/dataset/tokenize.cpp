#include "dataset/tokenize.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/reader.h"
#include "text/tokenizer.h"

namespace agpt::dataset {
namespace {

std::string with_commas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The pipeline: one thread reads documents into batches, in input order; `threads` encoder threads
// take documents one at a time from the oldest batch that has some left (moving on to the next batch
// without waiting for the rest of the current one); the calling thread writes each batch once all of
// its documents are encoded, in input order. So the output does not depend on the thread count, and
// no stage waits for another except through the bounded number of batches in flight.

// One batch of documents. Read-only after it is published, except the counters and ids[i], which
// only the encoder that claimed document i writes.
struct Batch {
  std::vector<std::string> texts;            // texts[0, count) are this batch's; more are spare buffers
  std::vector<std::vector<uint32_t>> ids;    // ids[i] of texts[i]
  size_t count = 0;
  uint64_t text_bytes = 0;
  uint64_t empty = 0;                        // documents with empty text, skipped
  uint64_t compressed_pos = 0;               // reader position after this batch (for progress)
  bool last = false;
  std::exception_ptr error;                  // the reader failed here; nothing more follows
  std::atomic<size_t> next{0};               // the next document to claim
  std::atomic<size_t> done{0};               // documents encoded
};

class Pipeline {
 public:
  Pipeline(corpus::DocumentReader& reader, const text::Tokenizer& tok, std::optional<uint32_t> bos,
           std::optional<uint32_t> eos, size_t batch_docs, size_t batch_bytes, int threads)
      : reader_(reader), tok_(tok), bos_(bos), eos_(eos), batch_docs_(batch_docs), batch_bytes_(batch_bytes),
        max_in_flight_(static_cast<size_t>(std::max(threads, 1)) / 8 + 3) {
    try {
      reading_ = std::thread([this] { read_loop(); });
      for (int t = 0; t < threads; ++t) encoders_.emplace_back([this] { encode_loop(); });
    } catch (...) {
      shutdown();
      throw;
    }
  }
  ~Pipeline() { shutdown(); }

  // The next batch in input order, once fully encoded; nullptr after the last. Rethrows the first
  // error of the reader or an encoder.
  std::shared_ptr<Batch> next_encoded() {
    std::unique_lock<std::mutex> lock(mu_);
    written_cv_.wait(lock, [&] {
      return error_ || (!in_flight_.empty() && in_flight_.front()->done.load() == in_flight_.front()->count);
    });
    if (error_) std::rethrow_exception(error_);
    std::shared_ptr<Batch> b = std::move(in_flight_.front());
    in_flight_.pop_front();
    space_cv_.notify_one();
    if (b->error) std::rethrow_exception(b->error);
    return b;
  }

  // Gives a written batch's buffers back to the reader for reuse.
  void recycle(std::shared_ptr<Batch> b) {
    for (auto& t : b->texts)
      if (t.capacity() > (1u << 20)) std::string().swap(t);  // keep no huge buffers
    for (auto& v : b->ids)
      if (v.capacity() > (1u << 18)) std::vector<uint32_t>().swap(v);
    std::lock_guard<std::mutex> lock(mu_);
    if (spare_texts_.size() < max_in_flight_ + 1) {
      spare_texts_.push_back(std::move(b->texts));
      spare_ids_.push_back(std::move(b->ids));
    }
  }

  // Stops every thread (a batch being read is finished first) and joins them.
  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    stopping_ = true;
    space_cv_.notify_all();
    work_cv_.notify_all();
    if (reading_.joinable()) reading_.join();
    for (auto& t : encoders_)
      if (t.joinable()) t.join();
    encoders_.clear();
  }

 private:
  void fail_with(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = e;
      stop_ = true;
    }
    stopping_ = true;
    written_cv_.notify_all();
    work_cv_.notify_all();
    space_cv_.notify_all();
  }

  void read_loop() {
    try {
      corpus::Document doc;
      for (;;) {
        auto b = std::make_shared<Batch>();
        {
          std::unique_lock<std::mutex> lock(mu_);
          space_cv_.wait(lock, [&] { return stop_ || in_flight_.size() < max_in_flight_; });
          if (stop_) return;
          if (!spare_texts_.empty()) {
            b->texts = std::move(spare_texts_.back());
            b->ids = std::move(spare_ids_.back());
            spare_texts_.pop_back();
            spare_ids_.pop_back();
          }
        }
        while (b->count < batch_docs_ && b->text_bytes < batch_bytes_) {
          if (!reader_.next(doc)) {
            b->last = true;
            break;
          }
          if (doc.text.empty()) {
            ++b->empty;
            continue;
          }
          b->text_bytes += doc.text.size();
          if (b->count == b->texts.size()) b->texts.emplace_back();
          std::swap(b->texts[b->count++], doc.text);  // doc.text gets a spare buffer to read into
        }
        if (b->ids.size() < b->count) b->ids.resize(b->count);
        b->compressed_pos = reader_.bytes_read_compressed();
        const bool last = b->last;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stop_) return;
          in_flight_.push_back(b);
          if (b->count > 0) encoding_.push_back(b);
          if (last) reading_done_ = true;
        }
        work_cv_.notify_all();
        written_cv_.notify_one();  // an empty batch is complete at once
        if (last) return;
      }
    } catch (...) {
      auto b = std::make_shared<Batch>();
      b->error = std::current_exception();
      b->last = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        in_flight_.push_back(b);
        reading_done_ = true;
      }
      work_cv_.notify_all();
      written_cv_.notify_one();
    }
  }

  void encode_loop() {
    std::shared_ptr<Batch> cur;
    for (;;) {
      if (!cur) {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return stop_ || !encoding_.empty() || reading_done_; });
        if (stop_ || encoding_.empty()) return;  // stopped, or nothing left to read or encode
        cur = encoding_.front();
      }
      if (stopping_.load(std::memory_order_relaxed)) return;
      const size_t i = cur->next.fetch_add(1);
      if (i >= cur->count) {  // every document of this batch is taken: on to the next batch
        std::lock_guard<std::mutex> lock(mu_);
        if (!encoding_.empty() && encoding_.front() == cur) encoding_.pop_front();
        cur.reset();
        continue;
      }
      try {
        auto& v = cur->ids[i];
        v.clear();
        if (bos_) v.push_back(*bos_);
        tok_.encode_ordinary(cur->texts[i], v);
        if (eos_) v.push_back(*eos_);
      } catch (...) {
        fail_with(std::current_exception());
        return;
      }
      if (cur->done.fetch_add(1) + 1 == cur->count) {
        std::lock_guard<std::mutex> lock(mu_);  // so the writer cannot miss the wake-up
        written_cv_.notify_one();
      }
    }
  }

  corpus::DocumentReader& reader_;
  const text::Tokenizer& tok_;
  const std::optional<uint32_t> bos_, eos_;
  const size_t batch_docs_, batch_bytes_, max_in_flight_;

  std::mutex mu_;
  std::condition_variable space_cv_;    // reader: room for another batch
  std::condition_variable work_cv_;     // encoders: a batch to encode, or the end
  std::condition_variable written_cv_;  // writer: the oldest batch is complete, or an error
  std::deque<std::shared_ptr<Batch>> in_flight_;  // read, not yet written, in input order
  std::deque<std::shared_ptr<Batch>> encoding_;   // with documents not yet claimed, in input order
  std::vector<std::vector<std::string>> spare_texts_;
  std::vector<std::vector<std::vector<uint32_t>>> spare_ids_;
  bool stop_ = false, reading_done_ = false;
  std::atomic<bool> stopping_{false};  // stop_, readable without the lock
  std::exception_ptr error_;
  std::thread reading_;
  std::vector<std::thread> encoders_;
};

}  // namespace

std::optional<uint32_t> resolve_special_token(const text::Tokenizer& tok, bool wanted, const std::string& override_text,
                                              bool eos) {
  if (!wanted) return std::nullopt;
  const char* what = eos ? "EOS" : "BOS";
  const char* flag = eos ? "--eos-token" : "--bos-token";
  if (!override_text.empty()) {
    auto id = tok.token_id(override_text);
    if (!id)
      fail(flag, " \"", override_text, "\": not a token of the tokenizer (", tok.description(),
           "); give the exact text of a special token, e.g. <|endoftext|>");
    return id;
  }
  auto id = eos ? tok.eos_id() : tok.bos_id();
  if (!id)
    fail("the tokenizer (", tok.description(), ") names no ", what, " token; give one with ", flag,
         " TEXT (e.g. ", flag, " \"<|endoftext|>\")", eos ? " or pass --no-append-eos" : " or drop --prepend-bos");
  return id;
}

std::string TokenizeReport::summary() const {
  std::string s;
  s += cat("tokenized ", with_commas(documents), " documents (", with_commas(input_files), input_files == 1 ? " input file, " : " input files, ",
           fixed(text_bytes / 1e6, 1), " MB of text) into ", with_commas(tokens), " tokens (", dtype_name(dtype),
           ") in ", fixed(seconds, 2), " s: ", fixed(mb_per_second(), 2), " MB/s, ",
           with_commas(static_cast<uint64_t>(tokens_per_second())), " tokens/s\n");
  s += cat("wrote ", output_prefix, ".bin and ", output_prefix, ".idx");
  if (documents) s += cat(" (", fixed(static_cast<double>(tokens) / documents, 1), " tokens per document)");
  s += "\n";
  if (bos_id) s += cat("BOS ", *bos_id, " starts each document\n");
  if (eos_id) s += cat("EOS ", *eos_id, " ends each document\n");
  if (skipped) {
    s += cat("skipped ", with_commas(skipped), ":\n");
    for (auto& [why, n] : skipped_by_reason) s += cat("  ", with_commas(n), "  ", why, "\n");
    if (!examples.empty()) {
      s += "first problems:\n";
      for (auto& e : examples) s += cat("  ", e, "\n");
    }
  }
  return s;
}

TokenizeReport tokenize_to_indexed_dataset(const TokenizeOptions& options) {
  if (options.tokenizer.empty()) fail("no tokenizer given; pass -t PATH (tokenizer.json, tiktoken file or GPT-2 directory)");
  auto tok = text::load_tokenizer(options.tokenizer);
  return tokenize_to_indexed_dataset(options, *tok);
}

TokenizeReport tokenize_to_indexed_dataset(const TokenizeOptions& options, const text::Tokenizer& tok) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  if (options.inputs.empty()) fail("no input given; pass --input with files, directories or glob patterns");
  if (options.output_prefix.empty()) fail("no output prefix given; pass --output-prefix PATH (writes PATH.bin, PATH.idx)");

  TokenizeReport report;
  report.output_prefix = options.output_prefix;
  report.eos_id = resolve_special_token(tok, options.append_eos, options.eos_token, true);
  report.bos_id = resolve_special_token(tok, options.prepend_bos, options.bos_token, false);
  report.dtype = options.dtype ? *options.dtype : dtype_for_vocab(tok.vocab_size());
  const size_t batch_docs = std::max<size_t>(options.batch_documents, 1);
  const size_t batch_bytes = std::max<size_t>(options.batch_bytes, 1);
  const int threads = options.threads > 0 ? options.threads : default_threads();

  corpus::DocumentReader reader(options.inputs, options.on_error);  // expands inputs: bad specs fail here
  IndexedDatasetWriter writer(options.output_prefix, report.dtype);
  std::optional<Progress> progress;
  if (options.progress) progress.emplace("tokenize", reader.bytes_total_compressed(), "B");

  uint64_t empty = 0, progress_pos = 0;
  {
    Pipeline pipeline(reader, tok, report.bos_id, report.eos_id, batch_docs, batch_bytes, threads);
    for (;;) {
      std::shared_ptr<Batch> b = pipeline.next_encoded();
      for (size_t i = 0; i < b->count; ++i) writer.add_document(b->ids[i]);
      report.text_bytes += b->text_bytes;
      empty += b->empty;
      if (progress && b->compressed_pos > progress_pos) {
        progress->add(b->compressed_pos - progress_pos);
        progress_pos = b->compressed_pos;
      }
      const bool last = b->last;
      pipeline.recycle(std::move(b));
      if (last) break;
    }
  }  // every thread joined: the reader's report is final
  writer.finish();
  if (progress) progress->finish();

  const corpus::ReadReport& rr = reader.report();
  report.documents = writer.documents();
  report.tokens = writer.tokens();
  report.input_bytes = rr.bytes;
  report.input_files = rr.files;
  report.skipped_by_reason = rr.skipped_by_reason;
  report.examples = rr.examples;
  report.skipped = rr.skipped;
  if (empty) {
    report.skipped_by_reason[kEmptyTextReason] += empty;
    report.skipped += empty;
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace agpt::dataset
