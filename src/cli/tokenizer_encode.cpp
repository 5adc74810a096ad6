// `agpt tokenizer encode | decode | info`: apply a tokenizer to JSONL, line for line.
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "cli/command.h"
#include "text/tokenizer.h"
#include "text/unicode_class.h"

namespace agpt::cli {
namespace {

using nlohmann::json;

// ---- line I/O: plain files or '-' for stdin/stdout -------------------------------------------

class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path) {
    if (path == "-") {
      f_ = stdin;
    } else {
      f_ = std::fopen(path.c_str(), "rb");
      if (!f_) fail("cannot open ", path, " for reading");
      owned_ = true;
    }
  }
  ~LineReader() {
    if (owned_) std::fclose(f_);
    std::free(buf_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  // Reads the next line (without its '\n'); false at the end of the input.
  bool next(std::string& line) {
    ssize_t n = getline(&buf_, &cap_, f_);
    if (n < 0) {
      if (std::ferror(f_)) fail("error reading ", path_);
      return false;
    }
    line.assign(buf_, static_cast<size_t>(n));
    if (!line.empty() && line.back() == '\n') line.pop_back();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    bytes_ += static_cast<uint64_t>(n);
    return true;
  }
  uint64_t bytes() const { return bytes_; }
  uint64_t size() const { return path_ == "-" ? 0 : file_size(path_); }

 private:
  std::string path_;
  FILE* f_ = nullptr;
  bool owned_ = false;
  uint64_t bytes_ = 0;
  char* buf_ = nullptr;
  size_t cap_ = 0;
};

class LineWriter {
 public:
  explicit LineWriter(const std::string& path) : path_(path) {
    if (path == "-") {
      f_ = stdout;
    } else {
      tmp_ = path + ".tmp";
      f_ = std::fopen(tmp_.c_str(), "wb");
      if (!f_) fail("cannot open ", tmp_, " for writing (does the directory exist?)");
    }
  }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;
  ~LineWriter() {
    if (f_ && f_ != stdout) {
      std::fclose(f_);
      std::remove(tmp_.c_str());  // not finished: leave no partial output behind
    }
  }
  void write(std::string_view s) {
    if (std::fwrite(s.data(), 1, s.size(), f_) != s.size()) fail("error writing ", path_, " (disk full?)");
  }
  // Flushes and, for a file, renames the finished temporary file into place.
  void finish() {
    if (std::fflush(f_) != 0) fail("error writing ", path_);
    if (f_ == stdout) return;
    if (std::fclose(f_) != 0) fail("error writing ", path_);
    f_ = nullptr;
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename ", tmp_, " to ", path_);
  }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
};

enum class OnError { kSkip, kFail };

OnError parse_on_error(const std::string& s) {
  if (s == "skip") return OnError::kSkip;
  if (s == "fail") return OnError::kFail;
  fail("--on-error must be skip or fail, not \"", s, "\"");
}

void append_ids(std::string& out, const std::vector<uint32_t>& ids) {
  out += '[';
  char buf[16];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    auto r = std::to_chars(buf, buf + sizeof buf, ids[i]);
    out.append(buf, r.ptr);
  }
  out += ']';
}

// Runs work(line, out, error) over the input in batches on `threads` threads and writes each
// line's output in input order. A line whose work sets `error` is reported (file:line) and, with
// --on-error skip, written as `skip_output` and counted.
struct BatchReport {
  uint64_t lines = 0, skipped = 0;
  std::string first_skip;
};

template <typename Work>
BatchReport run_lines(const std::string& in_path, const std::string& out_path, int threads, OnError on_error,
                      const std::string& skip_output, const char* label, Work work) {
  constexpr size_t kBatchLines = 4096;
  constexpr size_t kBatchBytes = 32u << 20;
  LineReader reader(in_path);
  LineWriter writer(out_path);
  Progress progress(label, reader.size(), "B");
  BatchReport report;
  std::vector<std::string> lines, outputs, errors;
  std::string joined;
  bool more = true;
  while (more) {
    lines.clear();
    size_t bytes = 0;
    std::string line;
    while (lines.size() < kBatchLines && bytes < kBatchBytes) {
      if (!reader.next(line)) {
        more = false;
        break;
      }
      bytes += line.size();
      lines.push_back(std::move(line));
    }
    if (lines.empty()) break;
    outputs.assign(lines.size(), std::string());
    errors.assign(lines.size(), std::string());
    parallel_for(lines.size(), threads, [&](size_t i) { work(lines[i], outputs[i], errors[i]); });
    joined.clear();
    for (size_t i = 0; i < lines.size(); ++i) {
      uint64_t line_no = report.lines + i + 1;
      if (!errors[i].empty()) {
        std::string where = cat(in_path == "-" ? "<stdin>" : in_path, ":", line_no, ": ", errors[i]);
        if (on_error == OnError::kFail)
          fail(where, "\n  (use --on-error skip to write ", skip_output, " for such lines and go on)");
        if (report.skipped == 0) report.first_skip = where;
        if (report.skipped < 5) log_warn(where, " (skipped)");
        ++report.skipped;
        joined += skip_output;
      } else {
        joined += outputs[i];
      }
      joined += '\n';
    }
    writer.write(joined);
    report.lines += lines.size();
    progress.add(bytes + lines.size());
  }
  writer.finish();
  progress.finish();
  return report;
}

// ---- encode ---------------------------------------------------------------------------------

struct EncodeArgs {
  std::string tokenizer, pattern, input, output, text, field = "text", on_error = "skip";
  int threads = 0;
  bool allow_special = false, with_template = false;
};

void run_encode(const EncodeArgs& a) {
  auto tok = text::load_tokenizer(a.tokenizer, a.pattern);
  log_info("tokenizer: ", tok->description());
  auto encode = [&](std::string_view s) {
    return a.with_template ? tok->encode_with_template(s, a.allow_special) : tok->encode(s, a.allow_special);
  };
  if (!a.text.empty() || (a.input.empty() && a.output.empty())) {
    if (a.text.empty()) fail("give --input and --output (JSONL files), or --text \"...\"");
    std::string out;
    append_ids(out, encode(a.text));
    std::printf("%s\n", out.c_str());
    return;
  }
  if (a.input.empty() || a.output.empty()) fail("give both --input and --output");
  OnError on_error = parse_on_error(a.on_error);
  std::atomic<uint64_t> tokens{0}, text_bytes{0};
  auto start = std::chrono::steady_clock::now();
  BatchReport r = run_lines(a.input, a.output, a.threads, on_error, "[]", "encoding",
                            [&](const std::string& line, std::string& out, std::string& error) {
                              json j;
                              try {
                                j = json::parse(line);
                              } catch (const json::exception& e) {
                                error = cat("not a JSON line (", e.what(), ")");
                                return;
                              }
                              auto it = j.is_object() ? j.find(a.field) : j.end();
                              if (it == j.end() || !it->is_string()) {
                                error = cat("no string field \"", a.field, "\"");
                                return;
                              }
                              const std::string& s = it->get_ref<const std::string&>();
                              auto ids = encode(s);
                              append_ids(out, ids);
                              tokens += ids.size();
                              text_bytes += s.size();
                            });
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("encoded ", r.lines - r.skipped, " lines (", text_bytes.load(), " bytes of text) into ", tokens.load(),
           " tokens in ", secs, " s (", text_bytes.load() / 1e6 / std::max(secs, 1e-9), " MB/s); wrote ", a.output);
  if (r.skipped)
    log_warn(r.skipped, " of ", r.lines, " lines were skipped (written as []); the first: ", r.first_skip);
}

// ---- decode ---------------------------------------------------------------------------------

struct DecodeArgs {
  std::string tokenizer, input, output, on_error = "skip";
  int threads = 0;
};

void run_decode(const DecodeArgs& a) {
  auto tok = text::load_tokenizer(a.tokenizer);
  log_info("tokenizer: ", tok->description());
  OnError on_error = parse_on_error(a.on_error);
  std::atomic<uint64_t> invalid_utf8{0};
  BatchReport r = run_lines(
      a.input, a.output, a.threads, on_error, R"({"text":""})", "decoding",
      [&](const std::string& line, std::string& out, std::string& error) {
        json j;
        try {
          j = json::parse(line);
        } catch (const json::exception& e) {
          error = cat("not a JSON line (", e.what(), ")");
          return;
        }
        const json* arr = &j;
        if (j.is_object() && j.contains("ids")) arr = &j["ids"];
        if (!arr->is_array()) {
          error = "expected a JSON array of token ids (or an object with \"ids\")";
          return;
        }
        std::vector<uint32_t> ids;
        ids.reserve(arr->size());
        for (auto& v : *arr) {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 0xFFFFFFFFll) {
            error = cat("not a token id: ", v.dump());
            return;
          }
          ids.push_back(static_cast<uint32_t>(v.get<int64_t>()));
        }
        std::string text;
        try {
          text = tok->decode(ids);
        } catch (const Error& e) {
          error = e.what();
          return;
        }
        // JSON holds text, not bytes: a decoding that is not valid UTF-8 (ids that split a
        // character) is written with U+FFFD in place of the broken bytes, and counted.
        if (text::valid_utf8_prefix(text) != text.size()) ++invalid_utf8;
        std::string dumped = json{{"text", text}}.dump(-1, ' ', false, json::error_handler_t::replace);
        out = std::move(dumped);
      });
  log_info("decoded ", r.lines - r.skipped, " lines; wrote ", a.output);
  if (invalid_utf8)
    log_warn(invalid_utf8.load(), " lines decoded to invalid UTF-8 (ids splitting a character); written with U+FFFD");
  if (r.skipped)
    log_warn(r.skipped, " of ", r.lines, R"( lines were skipped (written as {"text":""}); the first: )", r.first_skip);
}

// ---- info -----------------------------------------------------------------------------------

void run_info(const std::string& path, const std::string& pattern) {
  auto tok = text::load_tokenizer(path, pattern);
  auto name = [&](std::optional<uint32_t> id) -> std::string {
    if (!id) return "none";
    return cat(*id, " ", json(tok->token_bytes(*id)).dump(-1, ' ', false, json::error_handler_t::replace));
  };
  std::printf("%s\n", tok->description().c_str());
  std::printf("vocab_size: %zu\nbos: %s\neos: %s\n", tok->vocab_size(), name(tok->bos_id()).c_str(),
              name(tok->eos_id()).c_str());
  std::printf("pattern: %s\n", tok->pattern().empty() ? "(none: the text is not split)" : tok->pattern().c_str());
  std::printf("added tokens: %zu\n", tok->added_tokens().size());
  size_t shown = 0;
  for (auto& t : tok->added_tokens()) {
    if (++shown > 20) {
      std::printf("  ...\n");
      break;
    }
    std::printf("  %u %s%s\n", t.id, json(t.content).dump(-1, ' ', false, json::error_handler_t::replace).c_str(),
                t.special ? " (special)" : "");
  }
}

void setup(CLI::App& root) {
  CLI::App& group = command_group(root, "tokenizer", "train, inspect and apply tokenizers");

  auto e = std::make_shared<EncodeArgs>();
  CLI::App* enc = group.add_subcommand("encode", "encode the text of each JSONL line into a JSON array of token ids");
  enc->add_option("-t,--tokenizer", e->tokenizer, "tokenizer.json, tiktoken rank file, or GPT-2 vocab+merges directory")
      ->required();
  enc->add_option("--pattern", e->pattern,
                  "pre-tokenizer pattern instead of the tokenizer's: gpt2, cl100k, o200k, llama3 or a regex "
                  "(needed for a tiktoken file not named after its encoding)");
  enc->add_option("-i,--input", e->input, "JSONL file with a text field per line ('-' = stdin)");
  enc->add_option("-o,--output", e->output, "JSONL file to write, one array of ids per input line ('-' = stdout)");
  enc->add_option("--text", e->text, "encode this text and print its ids (instead of --input/--output)");
  enc->add_option("--field", e->field, "the JSON field holding the text")->capture_default_str();
  enc->add_option("--on-error", e->on_error,
                  "a line that is not a JSON object with a string text field: fail (stop, naming file:line) or "
                  "skip (write [] for it, so output line N still matches input line N, and count it)")
      ->capture_default_str();
  enc->add_flag("--allow-special", e->allow_special,
                "match special-token text (e.g. <|endoftext|>) as the special token; by default it is plain text");
  enc->add_flag("--template", e->with_template,
                "add the tokenizer's post-processor tokens (e.g. Llama 3's <|begin_of_text|>); by default none");
  add_threads_flag(*enc, e->threads);
  enc->footer(
      "Output line N is the ids of input line N: no special tokens are added (see --template), and\n"
      "with --on-error skip a bad line becomes [] so lines stay aligned.\n"
      "Examples:\n"
      "  agpt tokenizer encode -t tokenizer.json -i docs.jsonl -o ids.jsonl -j 8\n"
      "  agpt tokenizer encode -t cl100k_base.tiktoken -i docs.jsonl -o ids.jsonl --on-error skip\n"
      "  agpt tokenizer encode -t my_ranks.tiktoken --pattern o200k --text 'Hello, world!'\n"
      "  zcat docs.jsonl.gz | agpt tokenizer encode -t gpt2_dir/ -i - -o - > ids.jsonl");
  set_action(enc, [e] { run_encode(*e); });

  auto d = std::make_shared<DecodeArgs>();
  CLI::App* dec = group.add_subcommand("decode", "decode JSON arrays of token ids (one per line) into {\"text\": ...} lines");
  dec->add_option("-t,--tokenizer", d->tokenizer, "tokenizer.json, tiktoken rank file, or GPT-2 vocab+merges directory")
      ->required();
  dec->add_option("-i,--input", d->input, "JSONL file: an array of ids (or {\"ids\": [...]}) per line ('-' = stdin)")
      ->required();
  dec->add_option("-o,--output", d->output, "JSONL file to write ('-' = stdout)")->required();
  dec->add_option("--on-error", d->on_error,
                  "a bad line (not an array of ids, or an id not in the vocabulary): fail, or skip (write "
                  "{\"text\":\"\"}, keeping lines aligned, and count it)")
      ->capture_default_str();
  add_threads_flag(*dec, d->threads);
  dec->footer(
      "Text that is not valid UTF-8 (ids that split a character) is written with U+FFFD, and counted.\n"
      "Examples:\n"
      "  agpt tokenizer decode -t tokenizer.json -i ids.jsonl -o text.jsonl\n"
      "  echo '[9906, 11, 1917, 0]' | agpt tokenizer decode -t cl100k_base.tiktoken -i - -o -");
  set_action(dec, [d] { run_decode(*d); });

  auto info_path = std::make_shared<std::string>();
  auto info_pattern = std::make_shared<std::string>();
  CLI::App* info = group.add_subcommand("info", "describe a tokenizer: size, special tokens, pattern");
  info->add_option("-t,--tokenizer", *info_path, "tokenizer.json, tiktoken rank file, or GPT-2 vocab+merges directory")
      ->required();
  info->add_option("--pattern", *info_pattern, "pre-tokenizer pattern (as for encode)");
  info->footer("Example:\n  agpt tokenizer info -t o200k_base.tiktoken");
  set_action(info, [info_path, info_pattern] { run_info(*info_path, *info_pattern); });
}

}  // namespace

AGPT_COMMAND(21, setup);

}  // namespace agpt::cli
