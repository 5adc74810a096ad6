// `agpt tokenizer train`: learn a byte-level BPE vocabulary from documents and save it as a
// Hugging Face tokenizer.json.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/progress.h"
#include "cli/command.h"
#include "corpus/reader.h"
#include "text/bpe_trainer.h"
#include "text/pretokenizer.h"
#include "text/tokenizer_json_writer.h"


namespace agpt::cli {
namespace {

struct TrainArgs {
  std::vector<std::string> inputs;
  size_t vocab_size = 0;
  uint64_t min_frequency = 2;
  std::vector<std::string> special_tokens;
  bool special_tokens_last = false;
  std::string pattern = "llama3";
  std::string bos;
  uint64_t max_docs = 0;
  size_t max_token_bytes = 0;
  size_t max_piece_bytes = text::BpeTrainerOptions{}.max_piece_bytes;
  int threads = 0;
  std::string output;
  std::string on_error = "skip";
  std::string tie_break = "hf";
};

std::string resolve_pattern(const std::string& p) {
  if (p == "llama3") return text::kDefaultBpeTrainPattern;
  if (p == "gpt2") return text::kGpt2Pattern;
  if (p == "cl100k") {
    // tiktoken 0.14's spelling has the possessive interval \p{N}{1,3}+, which Hugging Face
    // (Oniguruma) misreads (see hf_pattern_problem); without the '+' it is the same regex, since
    // nothing follows it in its alternative.
    std::string s = text::kCl100kPattern;
    size_t at = s.find(R"(\p{N}{1,3}+)");
    if (at != std::string::npos) s.erase(at + 10, 1);
    return s;
  }
  if (p == "o200k") return text::kO200kPattern;
  if (p.empty()) fail("--pattern is empty; give gpt2, cl100k, o200k, llama3 or a regular expression");
  return p;
}

std::string with_commas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

// Documents in batches of about this many bytes are counted in parallel while the next is read.
constexpr uint64_t kBatchBytes = 64ull << 20;
constexpr size_t kBatchDocs = 200000;

struct Batch {
  std::vector<std::string> texts;
  uint64_t bytes = 0;
};

// The documents to train on, one batch at a time.
class DocumentSource {
 public:
  explicit DocumentSource(const TrainArgs& a)
      : max_docs_(a.max_docs),
        reader_(a.inputs, a.on_error == "fail" ? corpus::OnError::kFail : corpus::OnError::kSkip),
        progress_("reading", reader_.bytes_total_compressed(), "B") {}

  Batch next_batch() {
    Batch b;
    while (b.bytes < kBatchBytes && b.texts.size() < kBatchDocs && (max_docs_ == 0 || docs_ < max_docs_)) {
      if (!reader_.next(doc_)) break;
      uint64_t now = reader_.bytes_read_compressed();
      if (now > shown_) progress_.add(now - shown_);
      shown_ = std::max(shown_, now);
      ++docs_;
      bytes_ += doc_.text.size();
      b.bytes += doc_.text.size();
      b.texts.push_back(std::move(doc_.text));
    }
    return b;
  }

  void finish() { progress_.finish(); }
  uint64_t documents() const { return docs_; }
  uint64_t bytes() const { return bytes_; }
  const corpus::ReadReport& report() const { return reader_.report(); }

 private:
  uint64_t max_docs_, docs_ = 0, bytes_ = 0, shown_ = 0;
  corpus::DocumentReader reader_;
  corpus::Document doc_;
  Progress progress_;
};

void run_train(TrainArgs& a) {
  auto t0 = std::chrono::steady_clock::now();
  // Check everything that can be checked before reading any data.
  std::filesystem::path out(a.output);
  std::filesystem::path dir = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail("the directory of --output ", a.output, " does not exist; create it first");
  if (!a.bos.empty() &&
      std::find(a.special_tokens.begin(), a.special_tokens.end(), a.bos) == a.special_tokens.end()) {
    log_info("adding the BOS token ", a.bos, " to the special tokens");
    a.special_tokens.push_back(a.bos);
  }
  text::BpeTrainerOptions o;
  o.vocab_size = a.vocab_size;
  o.min_frequency = a.min_frequency;
  o.pattern = resolve_pattern(a.pattern);
  o.special_tokens = a.special_tokens;
  o.special_tokens_last = a.special_tokens_last;
  o.threads = a.threads;
  o.max_token_bytes = a.max_token_bytes;
  o.max_piece_bytes = a.max_piece_bytes;
  if (a.tie_break == "bytes")
    o.tie_break = text::BpeTieBreak::kSmallestBytes;
  else if (a.tie_break == "hf")
    o.tie_break = text::BpeTieBreak::kSmallestIds;
  else
    fail("--tie-break must be bytes or hf, not ", a.tie_break);
  std::string hf_problem = text::hf_pattern_problem(o.pattern);
  if (!hf_problem.empty()) log_warn(hf_problem);
  text::BpeTrainer trainer(o);
  log_info("pre-tokenizer: ", text::pattern_kind_name(text::known_pattern_kind(o.pattern)),
           " (", o.pattern, ")");

  DocumentSource source(a);
  Batch current = source.next_batch();
  while (!current.texts.empty()) {
    auto next = std::async(std::launch::async, [&source] { return source.next_batch(); });
    std::vector<std::string_view> views(current.texts.begin(), current.texts.end());
    trainer.add_texts(views);
    current = next.get();
  }
  source.finish();
  std::string report = source.report().summary();
  while (!report.empty() && report.back() == '\n') report.pop_back();
  log_info(report);
  if (source.documents() == 0) fail("the inputs hold no documents to train on");
  if (source.report().skipped > 0)
    log_warn(source.report().skipped, " input lines were skipped (see the read report above)");
  const auto& st = trainer.stats();
  if (st.long_pieces > 0)
    log_info(st.long_pieces, " pre-tokenized pieces longer than ", a.max_piece_bytes, " bytes were not counted");
  if (st.invalid_utf8_texts > 0)
    log_warn(st.invalid_utf8_texts, " documents had invalid UTF-8; the bad bytes were read as U+FFFD");

  auto t1 = std::chrono::steady_clock::now();
  text::BpeModel model = trainer.train();
  text::TokenizerJsonOptions w;
  w.bos_token = a.bos;
  text::write_tokenizer_json(a.output, model, w);
  auto t2 = std::chrono::steady_clock::now();

  double read_s = std::chrono::duration<double>(t1 - t0).count();
  double train_s = std::chrono::duration<double>(t2 - t1).count();
  size_t learned = model.tokens.size() - 256 - model.special_ids.size();
  std::printf("wrote %s: %s tokens (256 bytes, %zu special, %s learned), %s merges\n", a.output.c_str(),
              with_commas(model.tokens.size()).c_str(), model.special_ids.size(), with_commas(learned).c_str(),
              with_commas(model.merges.size()).c_str());
  std::printf("  documents      %s (%s of text)\n", with_commas(source.documents()).c_str(), megabytes(source.bytes()).c_str());
  std::printf("  pieces         %s, %s distinct words\n", with_commas(st.pieces).c_str(),
              with_commas(st.distinct_words).c_str());
  if (st.special_occurrences > 0)
    std::printf("  special tokens %s occurrences in the text (not learned from)\n",
                with_commas(st.special_occurrences).c_str());
  std::printf("  time           %.1f s reading and counting (%.1f MB/s), %.1f s merging, %.1f s total\n", read_s,
              read_s > 0 ? source.bytes() / 1e6 / read_s : 0.0, train_s, read_s + train_s);
}

void setup_train(CLI::App& root) {
  CLI::App& group = command_group(root, "tokenizer", "train, inspect and apply tokenizers");
  auto* cmd = group.add_subcommand("train", "learn a byte-level BPE tokenizer from documents; write tokenizer.json");
  auto a = std::make_shared<TrainArgs>();
  cmd->add_option("-i,--input", a->inputs,
                  "document files, directories or glob patterns (.jsonl/.jsonl.gz/.jsonl.zst, .txt/.md)")
      ->required();
  cmd->add_option("--vocab-size", a->vocab_size, "total ids: 256 bytes + special tokens + learned tokens")
      ->required();
  cmd->add_option("--min-frequency", a->min_frequency, "stop when the best pair occurs fewer times")
      ->capture_default_str();
  cmd->add_option("--special-tokens", a->special_tokens,
                  "special tokens, comma-separated or repeated; they get ids 0..k-1 in this order")
      ->delimiter(',');
  cmd->add_flag("--special-tokens-last", a->special_tokens_last,
                "give the special tokens the last ids instead (GPT-2 / Llama-3 style)");
  cmd->add_option("--pattern", a->pattern, "pre-tokenization: gpt2, cl100k, o200k, llama3, or a regular expression")
      ->capture_default_str();
  cmd->add_option("--bos", a->bos, "prepend this special token to every encoding (added to the special tokens)");
  cmd->add_option("--max-docs", a->max_docs, "read at most this many documents (0 = all)")->capture_default_str();
  cmd->add_option("--max-token-bytes", a->max_token_bytes, "longest learned token in bytes (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--max-piece-bytes", a->max_piece_bytes,
                  "pre-tokenized pieces longer than this are not counted (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--tie-break", a->tie_break,
                  "order of equally frequent pairs: hf (smallest ids first, as HF tokenizers' trainer, whose "
                  "merges it reproduces) or bytes (smallest bytes first)")
      ->capture_default_str();
  cmd->add_option("--on-error", a->on_error, "bad input lines: skip (count them in the report) or fail at the first")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  add_threads_flag(*cmd, a->threads);
  cmd->add_option("-o,--output", a->output, "the tokenizer.json to write")->required();
  cmd->footer(
      "The tokenizer is byte-level BPE (every byte sequence encodes; no unknown token) saved as a Hugging\n"
      "Face tokenizer.json (merges as pairs: HF tokenizers >= 0.20 / transformers >= 4.45). Special tokens\n"
      "in the text are cut out before counting. The result is identical for any -j and input order, and\n"
      "(with --tie-break hf, the default) has the merges and ids of HF tokenizers' BpeTrainer.\n\n"
      "Examples:\n"
      "  agpt tokenizer train --input corpus/ --vocab-size 32000 --output tokenizer.json\n"
      "  agpt tokenizer train -i 'shards/*.jsonl.zst' --vocab-size 128256 --special-tokens-last \\\n"
      "      --special-tokens '<|begin_of_text|>,<|end_of_text|>' --bos '<|begin_of_text|>' -o tok.json\n"
      "  agpt tokenizer train -i papers.jsonl --vocab-size 50257 --pattern gpt2 \\\n"
      "      --special-tokens '<|endoftext|>' --special-tokens-last --max-docs 100000 -o gpt2-like.json");
  set_action(cmd, [a] { run_train(*a); });
}

AGPT_COMMAND(20, setup_train);

}  // namespace
}  // namespace agpt::cli
