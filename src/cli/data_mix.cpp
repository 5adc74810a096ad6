// `agpt data mix` and `agpt data sample`: plan a blended sample stream and look at its samples.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/log.h"
#include "cli/command.h"
#include "base/file.h"
#include "dataset/megatron_order.h"
#include "dataset/mixture.h"
#include "text/tokenizer.h"

namespace agpt::cli {
namespace {

void setup_mix(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand("mix", "plan a blended, deterministic, resumable sample stream over token files");
  struct Args {
    dataset::MixtureOptions opt;
    std::string split = "1,0,0", out, order = "agpt";
    uint64_t tokens = 0;
    double surplus = 0.005;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--list", a->opt.list_path, "data file list: lines `weight prefix [corpus]`")->required();
  cmd->add_option("--seq-len", a->opt.seq_len, "tokens per sample (each sample holds seq-len + 1)")->required();
  cmd->add_option("--samples", a->opt.samples[0], "training samples to plan");
  cmd->add_option("--tokens", a->tokens, "or: training tokens to plan (samples = tokens / seq-len)");
  cmd->add_option("--valid-samples", a->opt.samples[1], "validation samples")->capture_default_str();
  cmd->add_option("--test-samples", a->opt.samples[2], "test samples")->capture_default_str();
  cmd->add_option("--seed", a->opt.seed, "seed of the sample order")->capture_default_str();
  cmd->add_option("--split", a->split, "document split train,valid,test like Megatron's --split")->capture_default_str();
  cmd->add_option("--out", a->out, "directory for mixture.json")->required();
  cmd->add_option("--order", a->order, "agpt (ready at once, see docs/data-mixture.md) or megatron (Megatron-LM's exact order)")
      ->check(CLI::IsMember({"agpt", "megatron"}))
      ->capture_default_str();
  cmd->add_option("--megatron-surplus", a->surplus, "with --order megatron: Megatron's mid_level_dataset_surplus")
      ->capture_default_str();
  cmd->footer(
      "Weights are relative shares of samples: files blend within their corpus by weight, corpora by\n"
      "their summed weights. A sample is seq-len+1 tokens and may span documents. Sources asked for more\n"
      "samples than they hold repeat over epochs, each with its own order and packing.\n\n"
      "Examples:\n"
      "  agpt data mix --list data/list.txt --seq-len 4096 --tokens 2e12 --seed 1234 --out runs/mix\n"
      "  agpt data mix --list list.txt --seq-len 2048 --samples 100000 --valid-samples 1000 --split 98,1,1 --out mix\n"
      "  agpt data mix --list list.txt --seq-len 4096 --samples 2000 --seed 1234 --order megatron --out mix-megatron");
  set_action(cmd, [a] {
    if (a->tokens) a->opt.samples[0] = a->tokens / a->opt.seq_len;
    if (a->opt.samples[0] + a->opt.samples[1] + a->opt.samples[2] == 0)
      fail("ask for samples: --samples N (or --tokens T), --valid-samples, --test-samples");
    a->opt.split = dataset::parse_split(a->split);
    if (a->order == "megatron") {
      dataset::MegatronOrderOptions mo;
      mo.list_path = a->opt.list_path;
      mo.seq_len = a->opt.seq_len;
      mo.seed = a->opt.seed;
      mo.split = a->split;  // raw: Megatron normalises the string itself
      mo.samples = a->opt.samples;
      mo.surplus = a->surplus;
      auto order = dataset::MegatronOrder::build(mo);
      order.save(a->out);
      std::cout << order.table();
      log_info("wrote ", a->out, "/mixture.json (Megatron order; rebuilt from it on load)");
      return;
    }
    auto m = dataset::Mixture::plan(a->opt);
    m.save(a->out);
    std::cout << m.table();
    log_info("wrote ", a->out, "/mixture.json");
  });
}

struct SampleArgs {
  std::string dir, tokenizer, split = "train";
  uint64_t index = 0, count = 1;
  bool json = false;
};

// Prints one sample in the text or JSON form shared by both orders.
void print_sample(const SampleArgs& a, nlohmann::ordered_json j, const std::vector<uint32_t>& tokens,
                  const text::Tokenizer* tok) {
  if (tok) j["text"] = tok->decode(tokens);
  else j["tokens"] = tokens;
  if (a.json) {
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  std::cout << "sample " << j["index"].get<uint64_t>() << ":";
  for (auto& [k, v] : j.items())
    if (k != "index" && k != "text" && k != "tokens") std::cout << " " << k << "=" << v.dump();
  std::cout << "\n";
  if (tok) {
    std::cout << "  text: " << tok->decode(tokens) << "\n";
  } else {
    std::cout << "  tokens:";
    for (uint32_t x : tokens) std::cout << " " << x;
    std::cout << "\n";
  }
}

void show_megatron_samples(const SampleArgs& a, dataset::Split split, const text::Tokenizer* tok) {
  auto mo = dataset::MegatronOrder::load(a.dir);
  std::vector<uint32_t> tokens;
  dataset::MegatronOrder::Sample s;
  for (uint64_t i = a.index; i < a.index + a.count; ++i) {
    if (i >= mo.size(split)) fail("sample ", i, " is past the ", mo.size(split), " ", a.split, " samples of this plan");
    mo.sample(split, i, s);
    uint64_t width = 0;
    for (auto& p : s.pieces) width += p.length;
    tokens.resize(width);
    mo.read(s, tokens.data());
    nlohmann::ordered_json j;
    j["index"] = i;
    j["source"] = mo.prefixes()[s.source];
    j["dataset_id"] = s.source;
    j["dataset_sample"] = s.dataset_sample;
    j["shuffle_index"] = s.shuffled;
    nlohmann::ordered_json docs = nlohmann::json::array();
    for (auto& p : s.pieces) docs.push_back({{"document", p.document}, {"offset", p.offset}, {"tokens", p.length}});
    j["documents"] = docs;
    print_sample(a, std::move(j), tokens, tok);
  }
}

void setup_sample(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand("sample", "show samples of a planned mixture: source, documents, tokens or text");
  auto a = std::make_shared<SampleArgs>();
  cmd->add_option("dir", a->dir, "directory written by `agpt data mix`")->required();
  cmd->add_option("--index", a->index, "first sample index")->capture_default_str();
  cmd->add_option("--count", a->count, "number of samples")->capture_default_str();
  cmd->add_option("--split", a->split, "train, valid or test")->capture_default_str();
  cmd->add_flag("--json", a->json, "one JSON object per sample");
  cmd->add_option("-t,--tokenizer", a->tokenizer, "decode tokens to text with this tokenizer");
  cmd->footer(
      "Examples:\n"
      "  agpt data sample runs/mix --index 0 --count 3\n"
      "  agpt data sample runs/mix --index 123456789 --json -t tokenizer.json");
  set_action(cmd, [a] {
    dataset::Split split = a->split == "train" ? dataset::Split::kTrain
                           : a->split == "valid" ? dataset::Split::kValid
                           : a->split == "test" ? dataset::Split::kTest
                                                : (fail("--split must be train, valid or test, not ", a->split), dataset::Split::kTrain);
    std::unique_ptr<text::Tokenizer> tok;
    if (!a->tokenizer.empty()) tok = text::load_tokenizer(a->tokenizer);
    std::string plan_path = a->dir + "/mixture.json";
    nlohmann::json plan = nlohmann::json::parse(read_file(plan_path), nullptr, false);
    if (plan.is_discarded()) fail(plan_path, ": not valid JSON; re-run `agpt data mix`");
    if (plan.is_object() && plan.value("order", "agpt") == "megatron") {
      show_megatron_samples(*a, split, tok.get());
      return;
    }
    auto m = dataset::Mixture::load(a->dir);
    const uint64_t width = m.options().seq_len + 1;
    std::vector<uint32_t> tokens(width);
    for (uint64_t i = a->index; i < a->index + a->count; ++i) {
      if (i >= m.end_index(split)) fail("sample ", i, " is past the planned ", m.end_index(split), " ", a->split, " samples");
      auto ref = m.sample(split, i);
      m.read(ref, tokens.data());
      const auto& idx = m.index(ref.source);
      // Documents the window touches, with the offset of the window's start inside the first.
      nlohmann::ordered_json docs = nlohmann::json::array();
      uint64_t t = ref.start_token, end = ref.start_token + width;
      while (t < end) {
        uint64_t d = idx.sequence_at(t);
        uint64_t d_begin = idx.token_offset(d), d_end = idx.token_offset(d + 1);
        docs.push_back({{"document", d}, {"offset", t - d_begin}, {"tokens", std::min(end, d_end) - t}});
        t = std::max(d_end, t + 1);
      }
      const auto& src = m.sources()[ref.source];
      nlohmann::ordered_json j;
      j["index"] = i;
      j["source"] = src.prefix;
      j["corpus"] = src.corpus;
      j["source_sample"] = ref.source_sample;
      j["epoch"] = ref.epoch;
      j["start_token"] = ref.start_token;
      j["documents"] = docs;
      print_sample(*a, std::move(j), tokens, tok.get());
    }
  });
}

AGPT_COMMAND(45, setup_mix);
AGPT_COMMAND(46, setup_sample);

}  // namespace
}  // namespace agpt::cli
