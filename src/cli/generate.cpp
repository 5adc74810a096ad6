// `agpt generate --model DIR --prompt TEXT`: sample text from a Llama checkpoint with a KV cache,
// streaming it to stdout; the timing summary goes to stderr.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "cli/command.h"
#include "infer/generator.h"
#include "infer/model_dir.h"
#include "model/llama.h"
#include "ops/backend_factory.h"
#include "text/tokenizer.h"

namespace agpt::cli {
namespace {

struct Args {
  std::string model, prompt, prompt_file, tokenizer, device = "cpu";
  bool has_prompt = false;
  infer::GenerateOptions gen;
  bool ignore_eos = false;
  int threads = 0;
};

// Flag checks that need no files, so mistakes are reported before a model is loaded.
void check_args(const Args& a) {
  if (a.has_prompt == !a.prompt_file.empty())
    fail("give the prompt with exactly one of --prompt TEXT or --prompt-file FILE");
  if (a.gen.max_tokens < 0) fail("--max-tokens must be >= 0, got ", a.gen.max_tokens);
  try {
    infer::validate(a.gen.sampling);
  } catch (const Error& e) {
    fail("--", e.what());  // "--top-p must be in (0, 1], got 2"
  }
  for (const std::string& s : a.gen.stop)
    if (s.empty()) fail("--stop: a stop string is empty");
}

void run(Args& a) {
  check_args(a);
  std::string prompt = a.has_prompt ? a.prompt : read_file(a.prompt_file);
  std::string dir = infer::resolve_model_dir(a.model);
  std::string tokenizer_path = a.tokenizer;
  if (tokenizer_path.empty()) {
    tokenizer_path = (std::filesystem::path(dir) / "tokenizer.json").string();
    if (!file_exists(tokenizer_path))
      fail("no tokenizer: ", dir, " has no tokenizer.json; pass --tokenizer FILE");
  }
  std::unique_ptr<text::Tokenizer> tokenizer = text::load_tokenizer(tokenizer_path);
  std::unique_ptr<ops::Backend> backend = ops::make_backend(a.device, a.threads);
  model::Llama model = model::Llama::load(dir, *backend);
  log_info("model ", dir, ": ", model.num_parameters(), " parameters on ", backend->name(), ", tokenizer ",
           tokenizer_path);

  infer::Generator generator(model, *tokenizer);
  a.gen.stop_at_eos = !a.ignore_eos;
  infer::GenerateResult r = generator.generate(prompt, a.gen, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  // On a terminal, end the line so the summary starts on its own; piped output stays exact.
  if (isatty(fileno(stdout)) && !r.text.empty() && r.text.back() != '\n') std::fputc('\n', stdout);
  std::fflush(stdout);
  if (log_level() >= LogLevel::kInfo)
    std::fprintf(stderr,
                 "prefill: %zu tokens in %.3f s (%.1f tokens/s); decode: %zu tokens, %lld steps in %.3f s "
                 "(%.1f tokens/s); stopped: %s\n",
                 r.prompt_ids.size(), r.prefill_seconds, r.prefill_tokens_per_second(), r.tokens.size(),
                 static_cast<long long>(r.decode_steps), r.decode_seconds, r.decode_tokens_per_second(),
                 infer::stop_reason_name(r.reason));
}

void setup(CLI::App& root) {
  auto* cmd = root.add_subcommand("generate", "generate text from a Llama model (KV cache, streaming, sampling)");
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model,
                  "Hugging Face model directory (config.json + safetensors), a training run directory or its "
                  "checkpoints/ (the checkpoint that `latest` names)")
      ->required();
  cmd->add_option("--prompt", a->prompt, "the text to continue (special tokens such as <|endoftext|> are matched)")
      ->each([a](const std::string&) { a->has_prompt = true; });
  cmd->add_option("--prompt-file", a->prompt_file, "read the prompt from this file instead");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: DIR/tokenizer.json)");
  cmd->add_option("--max-tokens", a->gen.max_tokens, "new tokens at most")->capture_default_str();
  cmd->add_option("--temperature", a->gen.sampling.temperature, "softmax temperature; 0 = greedy (argmax)")
      ->capture_default_str();
  cmd->add_option("--top-k", a->gen.sampling.top_k, "sample among the k most likely tokens; 0 = all")
      ->capture_default_str();
  cmd->add_option("--top-p", a->gen.sampling.top_p,
                  "nucleus: the fewest most likely tokens whose probabilities sum to p, in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--seed", a->gen.sampling.seed, "random seed; the same seed gives the same text")
      ->capture_default_str();
  cmd->add_option("--stop", a->gen.stop, "stop when the text contains this string (not printed); repeatable");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep going past end-of-sequence tokens (for timing)");
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N")->capture_default_str();
  add_threads_flag(*cmd, a->threads);
  cmd->footer(
      "The text streams to stdout as it is generated; a summary (prefill and decode tokens/s, why it\n"
      "stopped) goes to stderr. Generation stops at --max-tokens, at an end-of-sequence token\n"
      "(config.json eos_token_id, the tokenizer's <|endoftext|> or similar; not printed), at a --stop\n"
      "string, or when the model's context (max_position_embeddings) is full.\n\n"
      "Examples:\n"
      "  agpt generate --model runs/tiny --prompt 'The protein' --max-tokens 50\n"
      "  agpt generate --model runs/tiny/checkpoints/step_0000150 --prompt 'Once' --temperature 0\n"
      "  agpt generate --model my-llama --prompt-file prompt.txt --top-p 0.9 --seed 7 --stop $'\\n\\n'");
  set_action(cmd, [a] { run(*a); });
}

AGPT_COMMAND(75, setup);

}  // namespace
}  // namespace agpt::cli
