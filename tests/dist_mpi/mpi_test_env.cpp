#include "mpi_test_env.h"


#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "dataset/indexed_dataset.h"
#include "dataset/mixture.h"
#include "train/trainer.h"
#include "../train/trainer_test_util.h"

namespace fs = std::filesystem;

namespace agpt::testing_mpi {

fs::path shared_dir(const std::string& name) {
  std::string dir;
  if (world().rank() == 0) dir = train::test_util::fresh_dir("dist", name).string();
  world().broadcast(dir, 0);
  return dir;
}

void on_rank_zero(const std::function<void()>& section) {
  if (world().rank() == 0) {
    try {
      section();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "rank 0: " << e.what();
    }
  }
  world().barrier();
}

MeanGradientCase::MeanGradientCase(ops::Backend& be, unsigned seed) : params(3), ref(3), g0(3), g1(3) {
  const ops::Shape shapes[] = {{7, 5}, {13}, {3, 33}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  for (int i = 0; i < 3; ++i) {
    const int64_t n = ops::shape_numel(shapes[i]);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    for (int k = 0; k < int(n); ++k) g0[i].push_back(nd(rng)), g1[i].push_back(nd(rng));
    params[i] = {"p" + std::to_string(i), be.from_host(shapes[i], v), {}, shapes[i].size() > 1, {}, shapes[i]};
    ref[i] = {"p" + std::to_string(i), be.from_host(shapes[i], v), {}, shapes[i].size() > 1, {}, shapes[i]};
    std::vector<float> mean(n);
    for (int k = 0; k < int(n); ++k) mean[k] = (g0[i][k] + g1[i][k]) * 0.5f;
    ref[i].grad = be.from_host(shapes[i], mean);
  }
}

void MeanGradientCase::upload_gradients(ops::Backend& be, int rank) {
  for (int i = 0; i < 3; ++i) {
    const auto& g = rank == 0 ? g0[i] : g1[i];
    be.upload(params[i].grad, g.data(), g.size() * sizeof(float));
  }
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
  train::TrainConfig c = train::test_util::tiny_config(mix, out, steps);  // the trainer tests' model
  c.set("train.grad_accum", std::to_string(grad_accum));
  c.set("train.eval_batches", "4");
  c.set("train.plot", "false");
  c.set("train.straggler_every", "2");
  c.set("train.bucket_size", "3000");
  // scripts/gpu-test.sh runs these tests on GPUs too (one per rank, NCCL between them).
  if (const char* device = std::getenv("AGPT_TEST_DEVICE")) c.set("train.device", device);
  return c;
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
