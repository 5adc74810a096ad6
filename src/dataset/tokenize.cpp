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

// One batch of documents, in input order, handed from the reading thread to the encoder.
struct Batch {
  std::vector<std::string> texts;
  uint64_t text_bytes = 0;
  uint64_t empty = 0;             // documents with empty text, skipped
  uint64_t compressed_pos = 0;    // reader position after this batch (for progress)
  bool last = false;
  std::exception_ptr error;       // the reader failed; nothing more follows
};

// A bounded queue between the reading thread and the encoder (two batches in flight at most).
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : capacity_(capacity) {}
  // false when the consumer gave up (the batch is dropped).
  bool push(Batch b) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < capacity_ || closed_; });
    if (closed_) return false;
    q_.push_back(std::move(b));
    not_empty_.notify_one();
    return true;
  }
  Batch pop() {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty(); });
    Batch b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return b;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_full_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Batch> q_;
  size_t capacity_;
  bool closed_ = false;
};

// Encoding threads that live for the whole run. parallel_for starts threads per call, and each new
// thread would build the tokenizer's per-thread caches (megabytes) again for every batch.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
      ++generation_;
    }
    start_.notify_all();
    for (auto& t : workers_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // fn(i) for every i in [0, n), on the workers and the calling thread; rethrows the first error.
  void run(size_t n, const std::function<void(size_t)>& fn) {
    if (workers_.empty() || n <= 1) {
      for (size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      next_ = 0;
      stop_ = false;
      error_ = nullptr;
      busy_ = workers_.size();
      ++generation_;
    }
    start_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    fn_ = nullptr;
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

 private:
  void work() {
    for (;;) {
      if (stop_) return;
      size_t i = next_.fetch_add(1);
      if (i >= n_) return;
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        stop_ = true;
      }
    }
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        start_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (quit_) return;
      }
      work();
      std::lock_guard<std::mutex> lock(mu_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_, done_;
  uint64_t generation_ = 0;
  bool quit_ = false;
  size_t busy_ = 0;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t n_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
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

  BatchQueue queue(2);
  std::thread reading([&] {
    try {
      corpus::Document doc;
      for (;;) {
        Batch b;
        while (b.texts.size() < batch_docs && b.text_bytes < batch_bytes) {
          if (!reader.next(doc)) {
            b.last = true;
            break;
          }
          if (doc.text.empty()) {
            ++b.empty;
            continue;
          }
          b.text_bytes += doc.text.size();
          b.texts.push_back(std::move(doc.text));
          doc.text = std::string();
        }
        b.compressed_pos = reader.bytes_read_compressed();
        bool last = b.last;
        if (!queue.push(std::move(b)) || last) return;
      }
    } catch (...) {
      Batch b;
      b.error = std::current_exception();
      b.last = true;
      queue.push(std::move(b));
    }
  });
  // However the loop below ends, the reading thread stops and is joined before anything else.
  struct Joiner {
    BatchQueue& q;
    std::thread& t;
    ~Joiner() {
      q.close();
      if (t.joinable()) t.join();
    }
  } joiner{queue, reading};

  WorkerPool pool(threads);
  std::vector<std::vector<uint32_t>> ids;
  uint64_t empty = 0, progress_pos = 0;
  for (;;) {
    Batch b = queue.pop();
    if (b.error) std::rethrow_exception(b.error);
    const size_t n = b.texts.size();
    if (ids.size() < n) ids.resize(n);
    pool.run(n, [&](size_t i) {
      auto& v = ids[i];
      v.clear();
      if (report.bos_id) v.push_back(*report.bos_id);
      tok.encode_ordinary(b.texts[i], v);
      if (report.eos_id) v.push_back(*report.eos_id);
    });
    for (size_t i = 0; i < n; ++i) {
      writer.add_document(ids[i]);
      if (ids[i].capacity() > (1u << 22)) std::vector<uint32_t>().swap(ids[i]);  // don't hoard huge ones
    }
    report.text_bytes += b.text_bytes;
    empty += b.empty;
    if (progress && b.compressed_pos > progress_pos) {
      progress->add(b.compressed_pos - progress_pos);
      progress_pos = b.compressed_pos;
    }
    if (b.last) break;
  }
  queue.close();
  reading.join();  // the reader is idle now; its report is final
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
