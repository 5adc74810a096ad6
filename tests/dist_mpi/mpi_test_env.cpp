#include "mpi_test_env.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "dataset/indexed_dataset.h"
#include "dataset/mixture.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace agpt::testing_mpi {

fs::path shared_dir(const std::string& name) {
  std::string dir;
  if (world().rank() == 0) {
    fs::path d = fs::temp_directory_path() / ("agpt_dist_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    dir = d.string();
  }
  world().broadcast(dir, 0);
  return dir;
}

namespace {
const std::vector<uint32_t> kCycle = {3, 17, 42, 99, 7, 180, 255, 64, 12, 5, 200};

}  // namespace

std::string make_mixture(const fs::path& dir) {
  if (world().rank() == 0) {
    dataset::IndexedDatasetWriter w((dir / "syn").string(), dataset::TokenDType::kUInt16);
    for (size_t d = 0; d < 40; ++d) {
      std::vector<uint32_t> doc(120);
      for (size_t i = 0; i < doc.size(); ++i) doc[i] = kCycle[(i * 7 + d * 3 + i / 5) % kCycle.size()];
      w.add_document(doc);
    }
    w.finish();
    std::ofstream((dir / "list.txt").string()) << "1.0 syn synthetic\n";
    dataset::MixtureOptions o;
    o.list_path = (dir / "list.txt").string();
    o.seq_len = 16;
    o.samples = {800, 16, 0};
    o.seed = 7;
    o.split = {0.9, 0.1, 0};
    dataset::Mixture::plan(o).save((dir / "mix").string());
  }
  world().barrier();
  return (dir / "mix").string();
}

train::TrainConfig config(const std::string& mix, const fs::path& out, int64_t steps, int64_t grad_accum) {
  std::string toml = R"(
[model]
preset = "none"
vocab_size = 256
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 2
num_attention_heads = 4
num_key_value_heads = 2
[train]
micro_batch = 2
lr = 3e-3
min_lr = 3e-4
warmup = 2
weight_decay = 0.1
eval_batches = 4
log_every = 1000
threads = 1
plot = false
straggler_every = 2
bucket_size = 3000
)";
  std::vector<std::pair<std::string, std::string>> settings = {
      {"data.mixture", mix}, {"train.out_dir", out.string()}, {"train.steps", std::to_string(steps)},
      {"train.grad_accum", std::to_string(grad_accum)}};
  // scripts/gpu-test.sh runs these tests on GPUs too (one per rank, NCCL between them).
  if (const char* device = std::getenv("AGPT_TEST_DEVICE")) settings.push_back({"train.device", device});
  return train::TrainConfig::parse(toml, "test.toml", settings);
}

// Trains (with `comm`, or alone when null) and returns the per-step losses.
std::vector<double> train_run(const train::TrainConfig& c, dist::Communicator* comm, bool resume, int64_t stop_after,
                              std::vector<float>* weights) {
  train::TrainOptions o;
  o.quiet = true;
  o.comm = comm;
  o.resume = resume;
  o.stop_after = stop_after;
  train::Trainer t(c, o);
  t.run();
  std::vector<double> losses;
  for (const auto& r : t.history()) losses.push_back(r.loss);
  if (weights) {
    weights->clear();
    for (const auto& p : t.model().parameters()) {
      auto v = t.model().gather_full(p, p.value);
      weights->insert(weights->end(), v.begin(), v.end());
    }
  }
  return losses;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / den);
}

}  // namespace agpt::testing_mpi
