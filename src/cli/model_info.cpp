// `agpt model info`: shape, parameter counts, FLOPs per token and memory estimates of a Llama
// model from its config.json (weights are listed, not loaded).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "cli/command.h"
#include "model/config.h"
#include "model/llama.h"
#include "model/safetensors.h"

namespace agpt::cli {
namespace {

std::string human(double v, const char* unit) {
  const char* prefixes[] = {"", "k", "M", "G", "T", "P"};
  int i = 0;
  while (v >= 1000 && i < 5) v /= 1000, ++i;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g %s%s", v, prefixes[i], unit);
  return buf;
}

std::string gib(double bytes) {  // binary units, 3 significant digits
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (bytes >= 1024 && i < 4) bytes /= 1024, ++i;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g %s", bytes, units[i]);
  return buf;
}

void setup(CLI::App& root) {
  CLI::App& group = command_group(root, "model", "Llama models: inspect, verify against PyTorch");
  auto* cmd = group.add_subcommand("info", "parameter counts, FLOPs per token and memory estimates of a model");
  struct Args {
    std::string dir;
    int64_t batch = 1, seq = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("dir", a->dir, "model directory or config.json")->required();
  cmd->add_option("--batch", a->batch, "micro-batch size for the memory estimates")->capture_default_str();
  cmd->add_option("--seq", a->seq, "sequence length (default: max_position_embeddings)");
  cmd->footer(
      "FLOPs per token (training) = 6·N + 12·L·(H·hd)·T with N the parameters of every matrix product\n"
      "(lm_head included, embedding lookup excluded); forward is a third of it. Training memory counts\n"
      "fp32 weights, gradients, AdamW moments and the activations the CPU reference keeps for backward.\n\n"
      "Examples:\n"
      "  agpt model info ../shared/testdata/llama-ref/llama-tiny/model\n"
      "  agpt model info my-llama --batch 4 --seq 2048");
  set_action(cmd, [a] {
    model::LlamaConfig c = model::LlamaConfig::load(a->dir);
    int64_t T = a->seq > 0 ? a->seq : c.max_position_embeddings;
    if (a->batch <= 0) fail("--batch must be positive");
    std::printf("Llama: vocab %lld, hidden %lld, %lld layers, %lld heads / %lld kv heads of %lld, ffn %lld, %s\n",
                (long long)c.vocab_size, (long long)c.hidden_size, (long long)c.num_hidden_layers,
                (long long)c.num_attention_heads, (long long)c.num_key_value_heads, (long long)c.head_dim,
                (long long)c.intermediate_size, c.tie_word_embeddings ? "tied embeddings" : "untied lm_head");
    std::printf("RoPE theta %g (%s), rms_norm_eps %g, max positions %lld\n", c.rope_theta,
                c.rope_scaling.type.c_str(), c.rms_norm_eps, (long long)c.max_position_embeddings);
    int64_t total = model::parameter_count(c), embed = c.vocab_size * c.hidden_size;
    std::printf("parameters:        %lld (%s)\n", (long long)total, human(static_cast<double>(total), "").c_str());
    std::printf("  embedding:       %lld%s\n", (long long)embed, c.tie_word_embeddings ? " (also the lm_head)" : "");
    std::printf("  non-embedding:   %lld (without embedding and lm_head)\n", (long long)(total - embed * (c.tie_word_embeddings ? 1 : 2)));
    std::printf("  in matmuls:      %lld (N in the FLOPs formula)\n", (long long)model::matmul_parameter_count(c));
    double flops = model::train_flops_per_token(c, T);
    std::printf("FLOPs per token at T=%lld: training %s, forward %s\n", (long long)T, human(flops, "FLOP").c_str(),
                human(flops / 3, "FLOP").c_str());
    model::MemoryEstimate m = model::estimate_memory(c, a->batch, T);
    std::printf("training memory, batch %lld x %lld (fp32): weights %s + gradients %s + AdamW %s + activations %s = %s\n",
                (long long)a->batch, (long long)T, gib(m.weights).c_str(), gib(m.gradients).c_str(),
                gib(m.adam_states).c_str(), gib(m.activations).c_str(), gib(m.training()).c_str());
    model::MemoryEstimate bf = model::estimate_memory(c, a->batch, T, 2);
    std::printf("inference memory, batch %lld x %lld: bf16 weights %s + KV cache %s = %s (fp32: %s)\n",
                (long long)a->batch, (long long)T, gib(bf.weights).c_str(), gib(bf.kv_cache).c_str(),
                gib(bf.inference()).c_str(), gib(m.inference()).c_str());
    if (std::filesystem::is_directory(a->dir)) {
      try {
        model::WeightReader w(a->dir);
        std::map<std::string, int64_t> by_dtype;
        double bytes = 0;
        for (const std::string& name : w.names()) {
          const auto& info = w.info(name);
          by_dtype[model::st_dtype_name(info.dtype)] += 1;
          bytes += static_cast<double>(info.end - info.begin);
        }
        std::string kinds;
        for (const auto& [k, n] : by_dtype) kinds += (kinds.empty() ? "" : ", ") + std::to_string(n) + " " + k;
        std::printf("weights on disk:   %zu tensors (%s), %s\n", w.names().size(), kinds.c_str(), gib(bytes).c_str());
      } catch (const Error& e) {
        std::printf("weights on disk:   not readable (%s)\n", e.what());
      }
    }
  });
}

AGPT_COMMAND(61, setup);

}  // namespace
}  // namespace agpt::cli
