// `agpt train CONFIG.toml [--resume] [--section.key value ...]`: train a Llama model from scratch
// (or from model.init_from) on a planned mixture; see docs/training.md.
#include <cstdio>
#include <iostream>
#include <memory>

#include "base/error.h"
#include "base/log.h"
#include "base/progress.h"
#include "cli/command.h"
#include "dist/communicator.h"
#include "model/llama.h"
#include "train/config.h"
#include "train/trainer.h"

namespace agpt::cli {
namespace {

std::string key_list() {
  std::string out = "Settings (TOML keys; each also `--section.key value` on the command line):\n";
  for (const train::KeyInfo& k : train::key_table()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  %-30s %-7s ", k.name.c_str(), k.kind.c_str());
    out += buf + k.help + "\n";
  }
  return out;
}

void setup(CLI::App& root) {
  auto* cmd = root.add_subcommand("train", "train a Llama model on a token mixture (CPU or CUDA; several ranks under mpirun), with checkpoints and resume");
  struct Args {
    bool resume = false, print_config = false;
    int64_t stop_after = -1;
  };
  auto a = std::make_shared<Args>();
  cmd->add_flag("--resume", a->resume,
                "continue from the newest valid checkpoint in train.out_dir (starts afresh when there is none)");
  cmd->add_flag("--print-config", a->print_config, "print the resolved configuration (TOML) and the model size, then exit");
  cmd->add_option("--stop-after", a->stop_after, "stop (with a checkpoint) after this step; the schedule still spans train.steps");
  cmd->allow_extras();  // CONFIG.toml and --section.key value pairs
  cmd->footer(
      "Usage: agpt train CONFIG.toml [--resume] [--section.key value ...]\n\n" + key_list() +
      "\nThe run directory (train.out_dir) receives config.toml (resolved), metrics.jsonl (one JSON object per\n"
      "step: step, loss, lr, grad_norm, tokens, tokens_per_s, flops_per_s, mfu, elapsed, rss_mib; and\n"
      "val_loss/val_perplexity at validations) and checkpoints/step_NNNNNNN (HF weights + optimizer + state).\n\n"
      "Examples:\n"
      "  agpt data mix --list list.txt --seq-len 256 --samples 20000 --valid-samples 200 --split 98,2,0 --out runs/mix\n"
      "  agpt train examples/tiny.toml --data.mixture runs/mix --train.out_dir runs/tiny\n"
      "  agpt train examples/tiny.toml --train.lr 3e-4 --train.steps=2000 --resume\n"
      "  agpt train examples/tiny.toml --print-config\n"
      "  mpirun -np 2 agpt train examples/tiny.toml --train.out_dir runs/dp2      # data parallel, 2 ranks\n"
      "  mpirun -np 8 agpt train run.toml --train.device cuda                       # one GPU per rank (NCCL)\n"
      "  mpirun -np 8 agpt train run.toml --train.device cuda --tp 2                # tensor parallel 2 x data parallel 4\n"
      "  agpt train run.toml --train.checkpoint_every 500 --train.async_checkpoint true  # write checkpoints beside training\n\n"
      "Several ranks: the global batch is micro_batch x grad_accum x data-parallel ranks (ranks / --tp);\n"
      "rank 0 writes the run directory;\n"
      "checkpoints do not depend on the number of ranks (resume with another one). See docs/distributed.md.");
  set_action(cmd, [a, cmd] {
    std::string config_path;
    std::vector<std::string> rest;
    std::vector<std::string> extras = cmd->remaining();
    for (size_t i = 0; i < extras.size(); ++i) {
      const std::string& w = extras[i];
      if (w == "--tp" || w.rfind("--tp=", 0) == 0) {  // Megatron users' shorthand
        rest.push_back("--train.tensor_parallel" + w.substr(4));
        if (w == "--tp" && i + 1 < extras.size()) rest.push_back(extras[++i]);
      } else if (w.rfind("--", 0) == 0) {
        rest.push_back(w);
        if (w.find('=') == std::string::npos && i + 1 < extras.size()) rest.push_back(extras[++i]);
      } else if (config_path.empty()) {
        config_path = w;
      } else {
        fail("unexpected argument '", w, "': give one CONFIG.toml, then --section.key value settings");
      }
    }
    if (config_path.empty()) fail("give a CONFIG.toml (see examples/tiny.toml and `agpt train --help`)");
    train::TrainConfig config = train::TrainConfig::load(config_path, train::parse_overrides(rest));
    if (a->print_config) {
      std::cout << config.to_toml();
      try {
        int64_t seq = config.data.seq_len > 0 ? config.data.seq_len : 1024;
        model::LlamaConfig m = config.llama_config(seq);
        std::cout << "# model: " << model::parameter_count(m) << " parameters, "
                  << model::train_flops_per_token(m, seq) / 1e6 << " MFLOP per training token at seq_len " << seq << "\n";
      } catch (const Error& e) {
        std::cout << "# model: " << e.what() << "\n";
      }
      return;
    }
    // Under mpirun/mpiexec every process is one data-parallel rank; alone, the world is this process.
    std::unique_ptr<dist::Communicator> world = dist::make_world_communicator();
    if (world->rank() != 0) {  // rank 0 speaks for the job; the others print warnings and errors only
      set_log_level(LogLevel::kQuiet);
      Progress::set_enabled(false);
    }
    train::TrainOptions opt;
    opt.resume = a->resume;
    opt.stop_after = a->stop_after;
    opt.comm = world.get();
    std::unique_ptr<train::Trainer> trainer_ptr;
    try {
      trainer_ptr = std::make_unique<train::Trainer>(config, opt);
      trainer_ptr->run();
    } catch (const std::exception& e) {
      if (world->size() <= 1) throw;
      // The other ranks may be waiting in a collective for this one: end the whole job now.
      std::fprintf(stderr, "agpt error (rank %d of %d, host %s): %s\n", world->rank(), world->size(),
                   world->host().c_str(), e.what());
      world->abort(1);
    }
    train::Trainer& trainer = *trainer_ptr;
    if (world->rank() != 0) return;
    if (!trainer.evals().empty()) {
      const auto& e = trainer.evals().back();
      std::printf("validation at step %lld: loss %.4f, perplexity %.3f\n", static_cast<long long>(e.step), e.loss,
                  e.perplexity);
    }
    if (!trainer.last_checkpoint().empty()) std::printf("checkpoint: %s\n", trainer.last_checkpoint().c_str());
  });
}

AGPT_COMMAND(70, setup);

}  // namespace
}  // namespace agpt::cli
