// `agpt model verify`: run a PyTorch reference's inputs through a checkpoint on the CPU backend and
// compare logits, loss, gradients and AdamW steps (library: model/verify.h).
#include <cstdio>
#include <memory>

#include "base/error.h"
#include "cli/command.h"
#include "model/llama.h"
#include "model/verify.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::cli {
namespace {

void setup(CLI::App& root) {
  CLI::App& group = command_group(root, "model", "Llama models: inspect, verify against PyTorch");
  auto* cmd = group.add_subcommand("verify", "compare a checkpoint on the CPU backend with a PyTorch reference");
  struct Args {
    std::string model, reference, json;
    double rel_tol = 1e-5;
    bool no_steps = false, all = false;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--model", a->model, "Hugging Face Llama directory (config.json + safetensors)")->required();
  cmd->add_option("--reference", a->reference, "reference.safetensors from tools/make_llama_reference.py")
      ->required();
  cmd->add_option("--json", a->json, "settings file (default: the .json beside the reference)");
  cmd->add_option("--rel-tol", a->rel_tol, "tolerance on ‖ours−ref‖/‖ref‖ for logits and gradients, and on "
                                           "the relative error of losses and gradient norms")
      ->capture_default_str();
  cmd->add_flag("--no-steps", a->no_steps, "skip the AdamW steps");
  cmd->add_flag("--all", a->all, "print every tensor, not only those above tolerance and a summary");
  add_threads_flag(*cmd, a->threads);
  cmd->footer(
      "Checks: logits and every gradient (‖ours−ref‖/‖ref‖ <= rel-tol and max|ours−ref| <= rel-tol·max|ref|),\n"
      "the loss, and when the JSON describes them the AdamW steps (each step's loss and gradient norm; the\n"
      "final parameters within 5·rel-tol and 100·rel-tol·max|ref|, since Adam amplifies noise in gradients\n"
      "that are nearly zero). Exits non-zero when a check is above tolerance.\n\n"
      "Examples:\n"
      "  python3 tools/make_llama_reference.py my-llama ref/ --batch 2 --seq 64\n"
      "  agpt model verify --model my-llama --reference ref/reference.safetensors\n"
      "  agpt model verify --model ../shared/testdata/llama-ref/llama-tiny/model \\\n"
      "                    --reference ../shared/testdata/llama-ref/llama-tiny/reference.safetensors --all");
  set_action(cmd, [a] {
    if (!(a->rel_tol > 0)) fail("--rel-tol must be positive");
    auto backend = ops::make_cpu_backend(a->threads);
    model::Llama m = model::Llama::load(a->model, *backend);
    model::VerifyOptions opt;
    opt.logits = opt.grads = {a->rel_tol, a->rel_tol};
    opt.final_params = {5 * a->rel_tol, 100 * a->rel_tol};
    opt.scalar_rel = a->rel_tol;
    opt.train_steps = !a->no_steps;
    model::VerifyReport r = model::verify_reference(m, a->reference, opt, a->json);

    std::printf("batch %lld x %lld tokens, %zu tensors and %zu scalars compared\n", static_cast<long long>(r.B),
                static_cast<long long>(r.T), r.tensors.size(), r.scalars.size());
    int bad = 0;
    bool any_shown = a->all;
    for (const auto& t : r.tensors) any_shown = any_shown || !t.ok;
    if (any_shown) std::printf("%-58s %10s %10s %10s\n", "tensor", "rel_l2", "max_abs", "max|ref|");
    double worst_grad = 0, worst_final = 0, logits = 0;
    for (const auto& t : r.tensors) {
      if (!t.ok) ++bad;
      if (t.name == "logits") logits = t.rel_l2;
      if (t.name.starts_with("grad.")) worst_grad = std::max(worst_grad, t.rel_l2);
      if (t.name.starts_with("final.")) worst_final = std::max(worst_final, t.rel_l2);
      if (a->all || !t.ok)
        std::printf("%-58s %10.2e %10.2e %10.2e  %s\n", t.name.c_str(), t.rel_l2, t.max_abs_err, t.ref_max_abs,
                    t.ok ? "ok" : "ABOVE TOLERANCE");
    }
    std::printf("%-30s %16s %16s %10s\n", "scalar", "agpt", "reference", "rel_err");
    for (const auto& s : r.scalars) {
      if (!s.ok) ++bad;
      std::printf("%-30s %16.9g %16.9g %10.2e  %s\n", s.name.c_str(), s.value, s.reference, s.rel_err,
                  s.ok ? "ok" : "ABOVE TOLERANCE");
    }
    for (const auto& n : r.notes) std::printf("note: %s\n", n.c_str());
    std::printf("summary: logits rel_l2 %.2e, worst gradient %.2e, worst final parameter %.2e\n", logits,
                worst_grad, worst_final);
    if (bad) fail(bad, " of ", r.tensors.size() + r.scalars.size(), " checks above tolerance");
    std::printf("all %zu checks within tolerance\n", r.tensors.size() + r.scalars.size());
  });
}

AGPT_COMMAND(60, setup);

}  // namespace
}  // namespace agpt::cli
