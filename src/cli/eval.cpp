// `agpt eval --model DIR --tasks T1,T2`: evaluate a Llama on task files (docs/eval.md): accuracy
// per shot count, reliability over prompts and few-shot samples, speed; a summary table on stdout,
// results.json and a report with plots under --out.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "cli/command.h"
#include "eval/evaluator.h"
#include "eval/results.h"
#include "eval/task.h"
#include "infer/model_dir.h"
#include "model/llama.h"
#include "ops/backend_factory.h"
#include "text/tokenizer.h"

#ifndef AGPT_VERSION
#define AGPT_VERSION "0.1.0"
#endif

namespace agpt::cli {
namespace {
namespace fs = std::filesystem;

struct Args {
  std::string model, tasks, shots, out, tokenizer, device = "cpu", prompts = "all", dump_requests;
  std::vector<std::string> task_dirs;
  eval::EvalOptions options;
  int threads = 0;
  std::string command_line;
};

std::vector<int> parse_shots(const std::string& s) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? s.size() + 1 : comma + 1;
    size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > 1000)
      fail("--shots: '", item, "' is not a shot count (write e.g. --shots 0,1,5)");
    out.push_back(v);
  }
  return out;
}

// Task directories searched for task names: --task-dir, else ./examples/tasks and the one beside
// the binary's source tree (build/agpt -> examples/tasks).
std::vector<std::string> task_search_dirs(const Args& a) {
  if (!a.task_dirs.empty()) return a.task_dirs;
  std::vector<std::string> dirs = {"examples/tasks"};
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path().parent_path() / "examples" / "tasks").string());
  return dirs;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void run(Args& a) {
  auto t0 = std::chrono::steady_clock::now();
  const std::string started = utc_now();
  if (!a.shots.empty()) a.options.shots = parse_shots(a.shots);
  if (a.prompts != "all" && a.prompts != "default") fail("--prompts must be all or default, got '", a.prompts, "'");
  a.options.only_default_prompt = a.prompts == "default";
  a.options.dump_requests = !a.dump_requests.empty();
  a.options.show_progress = log_level() >= LogLevel::kInfo;
  if (a.options.scorer.batch_size < 1) fail("--batch-size must be >= 1, got ", a.options.scorer.batch_size);
  // Tasks first: a bad task file is reported before a model is loaded.
  std::vector<eval::Task> tasks;
  for (const std::string& f : eval::resolve_task_files(a.tasks, task_search_dirs(a))) {
    tasks.push_back(eval::load_task(f));
    for (size_t i = 0; i + 1 < tasks.size(); ++i)
      if (tasks[i].name == tasks.back().name)
        fail("--tasks: the task ", tasks.back().name, " comes twice (", tasks[i].file, " and ", f, ")");
  }
  for (const eval::Task& t : tasks) eval::check_task_data(t, a.options);

  std::string dir = infer::resolve_model_dir(a.model);
  std::string tokenizer_path = a.tokenizer;
  if (tokenizer_path.empty()) {
    tokenizer_path = (fs::path(dir) / "tokenizer.json").string();
    if (!file_exists(tokenizer_path)) fail("no tokenizer: ", dir, " has no tokenizer.json; pass --tokenizer FILE");
  }
  std::unique_ptr<text::Tokenizer> tokenizer = text::load_tokenizer(tokenizer_path);
  std::unique_ptr<ops::Backend> backend = ops::make_backend(a.device, a.threads);
  model::Llama model = model::Llama::load(dir, *backend);
  log_info("model ", dir, ": ", model.num_parameters(), " parameters on ", backend->name(), "; ", tasks.size(), " task(s)");

  eval::Evaluator evaluator(model, *tokenizer, a.options);
  std::vector<eval::TaskResult> results;
  std::unique_ptr<std::ofstream> dump;
  if (!a.dump_requests.empty()) {
    dump = std::make_unique<std::ofstream>(a.dump_requests);
    if (!*dump) fail("--dump-requests: cannot write ", a.dump_requests);
  }
  for (const eval::Task& t : tasks) {
    results.push_back(evaluator.evaluate(t));
    if (dump)
      for (const eval::Json& r : results.back().requests) *dump << eval::json_text(r) << "\n";
  }
  if (dump && !dump->flush()) fail("--dump-requests: writing ", a.dump_requests, " failed");

  eval::RunInfo info;
  info.agpt_version = AGPT_VERSION;
  info.model_path = a.model;
  info.model_dir = dir;
  info.tokenizer_path = tokenizer_path;
  info.parameters = model.num_parameters();
  info.max_length = evaluator.scorer().max_length();
  info.device = backend->name();
  info.threads = a.threads;
  info.command_line = a.command_line;
  info.started = started;
  info.options = a.options;
  info.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fputs(eval::summary_table(results).c_str(), stdout);
  std::fflush(stdout);
  if (!a.out.empty()) {
    fs::create_directories(a.out);
    write_file_atomic((fs::path(a.out) / "results.json").string(), eval::json_text(eval::results_json(info, results), 2) + "\n");
    if (a.options.log_samples)
      for (const eval::TaskResult& r : results) {
        std::string lines;
        for (const eval::Json& s : r.samples) lines += eval::json_text(s) + "\n";
        write_file_atomic((fs::path(a.out) / ("samples_" + r.name + ".jsonl")).string(), lines);
      }
    eval::write_report(a.out, info, results);
    log_info("wrote ", (fs::path(a.out) / "results.json").string(), " and ", (fs::path(a.out) / "report.md").string());
  }
}

void setup(CLI::App& root) {
  auto* cmd = root.add_subcommand("eval", "evaluate a Llama on task files: accuracy, shots, reliability, speed");
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "Hugging Face model directory, a training run directory or its checkpoints/")
      ->required();
  cmd->add_option("--tasks", a->tasks,
                  "comma-separated task names, task files (.yaml), directories of them, or folders of --task-dir "
                  "(e.g. science); names are looked up in --task-dir")
      ->required();
  cmd->add_option("--task-dir", a->task_dirs,
                  "where task names are looked up (repeatable; default: ./examples/tasks and the source tree's)");
  cmd->add_option("--shots", a->shots, "shot counts to sweep, e.g. 0,1,5 (default: each task's num_fewshot, else 0)");
  cmd->add_option("--out", a->out, "write results.json, report.md, report.html and plots into this directory");
  cmd->add_option("--batch-size", a->options.scorer.batch_size, "log-likelihood requests per forward (results do not depend on it)")
      ->capture_default_str();
  cmd->add_option("--limit", a->options.limit, "only the first N documents of each task (0: all)")->capture_default_str();
  cmd->add_option("--seed", a->options.seed, "seed of few-shot sampling and sampled generation")->capture_default_str();
  cmd->add_option("--fewshot-samples", a->options.fewshot_samples,
                  "few-shot draws per shot count (seeds SEED, SEED+1, ...), for the reliability report")
      ->capture_default_str();
  cmd->add_option("--prompts", a->prompts, "all: also each task's extra `prompts` (reliability); default: the task's own")
      ->capture_default_str();
  cmd->add_option("--max-length", a->options.scorer.max_length, "positions the model sees (0: max_position_embeddings)")
      ->capture_default_str();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer file (default: DIR/tokenizer.json)");
  cmd->add_flag("--log-samples", a->options.log_samples, "also write samples_TASK.jsonl: every document's prompt, scores, answer");
  cmd->add_option("--dump-requests", a->dump_requests,
                  "write every log-likelihood request (context, continuation, token ids, agpt's logprob) as JSONL, "
                  "for tools/eval_vs_transformers.py");
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N")->capture_default_str();
  add_threads_flag(*cmd, a->threads);
  cmd->footer(
      "Task files are a YAML subset of lm-evaluation-harness's (docs/eval.md); examples/tasks has science\n"
      "tasks (physics, chemistry, biology, computer science, earth science) and WordNet definitions.\n"
      "Multiple choice is scored by log-likelihood (acc, acc_norm, acc_bytes), generation by exact match\n"
      "after filters (regex, majority vote), documents by perplexity and bits per byte.\n\n"
      "Examples:\n"
      "  agpt eval --model out/demo/tiny --tasks science --shots 0,1,5 --out out/demo/eval\n"
      "  agpt eval --model my-llama --tasks physics_mc,chemistry_mc --fewshot-samples 3 --limit 50\n"
      "  agpt eval --model my-llama --tasks examples/tasks/wordnet/wordnet_science_nouns.yaml --dump-requests req.jsonl");
  set_action(cmd, [a, cmd] {
    a->command_line = "agpt eval";
    for (const auto& o : cmd->get_options())
      for (const std::string& v : o->results()) a->command_line += " " + o->get_name() + " " + v;
    run(*a);
  });
}

AGPT_COMMAND(80, setup);

}  // namespace
}  // namespace agpt::cli
