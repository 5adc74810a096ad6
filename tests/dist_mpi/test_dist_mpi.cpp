// Multi-rank checks, run under `mpirun -np 2` by ctest (test dist_mpi_2_ranks): the MPI
// collectives, the distributed optimizer against one AdamW on the averaged gradient, and data-parallel
// training against one process with the same global batch, including resumes that change the
// number of ranks. Every rank runs every test in the same order (collectives inside).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "base/error.h"
#include "base/file.h"
#include "dataset/indexed_dataset.h"
#include "dataset/mixture.h"
#include "dist/communicator.h"
#include "dist/mpi_communicator.h"
#include "model/adamw.h"
#include "model/llama.h"
#include "ops/backend_factory.h"
#include "train/config.h"
#include "train/distributed_optimizer.h"
#include "train/trainer.h"
#include "mpi_test_env.h"

namespace fs = std::filesystem;
using namespace agpt;

namespace {

dist::Communicator* g_comm = nullptr;
using namespace testing_mpi;

std::vector<float> host(const ops::Tensor& t) { return ops::make_backend("cpu", 1, "fp32")->to_host_f32(t); }

TEST(Collectives, TensorsAndHostValues) {
  auto be = ops::make_backend("cpu", 1, "fp32");
  const int r = g_comm->rank(), n = g_comm->size();
  ASSERT_EQ(n, 2) << "run under mpirun -np 2";
  std::vector<float> vals = {1.0f + r, 10.0f * (r + 1), -3.0f, 0.5f};
  ops::Tensor t = be->from_host({4}, vals);
  g_comm->all_reduce_sum(t);
  EXPECT_EQ(host(t), (std::vector<float>{3, 30, -6, 1}));

  // reduce-scatter: rank r gets the sum of slice r.
  ops::Tensor full = be->from_host({4}, std::vector<float>{1.0f * (r + 1), 2.0f * (r + 1), 3.0f * (r + 1), 4.0f * (r + 1)});
  ops::Tensor part = be->zeros({2});
  g_comm->reduce_scatter_sum(full, part);
  EXPECT_EQ(host(part), r == 0 ? (std::vector<float>{3, 6}) : (std::vector<float>{9, 12}));

  // all-gather, in place (the input is this rank's slice of the output) and not.
  ops::Tensor out = be->zeros({4});
  ops::Tensor mine = out.view(2 * r, {2});
  be->upload(mine, std::vector<float>{float(r), float(r) + 0.5f}.data(), 2 * sizeof(float));
  g_comm->all_gather(mine, out);
  EXPECT_EQ(host(out), (std::vector<float>{0, 0.5f, 1, 1.5f}));
  ops::Tensor src = be->from_host({2}, std::vector<float>{float(7 + r), float(8 + r)});
  ops::Tensor out2 = be->zeros({4});
  g_comm->all_gather(src, out2);
  EXPECT_EQ(host(out2), (std::vector<float>{7, 8, 8, 9}));

  double d[2] = {1.5, double(r)};
  g_comm->all_reduce_sum(d);
  EXPECT_EQ(d[0], 3.0);
  EXPECT_EQ(d[1], 1.0);
  EXPECT_EQ(g_comm->all_gather(double(r) * 2), (std::vector<double>{0, 2}));
  EXPECT_EQ(g_comm->all_gather(std::string(r + 1, 'x')), (std::vector<std::string>{"x", "xx"}));
  std::string msg = r == 0 ? "from rank 0" : "";
  g_comm->broadcast(msg, 0);
  EXPECT_EQ(msg, "from rank 0");
  // A host tensor collective of mismatched sizes fails before communicating.
  ops::Tensor bad = be->zeros({3});
  EXPECT_THROW(g_comm->reduce_scatter_sum(bad, part), agpt::Error);
}

// The personalised all-to-all of bytes (dedup's key exchange): every pair of ranks, empty
// payloads, binary bytes, and payloads split over many rounds (a tiny chunk) arrive intact.
TEST(Collectives, AllToAllBytes) {
  const int r = g_comm->rank(), n = g_comm->size();
  auto payload = [](int from, int to, size_t len) {
    std::string s(len, '\0');
    for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>((from * 31 + to * 7 + i * 13) & 0xFF);
    return s;
  };
  auto check_round = [&](auto len_of) {
    std::vector<std::string> to(static_cast<size_t>(n));
    for (int d = 0; d < n; ++d) to[d] = payload(r, d, len_of(r, d));
    auto got = g_comm->all_to_all(to);
    ASSERT_EQ(got.size(), static_cast<size_t>(n));
    for (int s = 0; s < n; ++s) EXPECT_EQ(got[s], payload(s, r, len_of(s, r))) << "from rank " << s;
  };
  check_round([](int from, int to) { return size_t(from * 10 + to * 3 + 1); });
  check_round([](int, int) { return size_t(0); });
  check_round([](int from, int to) { return from == 1 && to == 0 ? size_t(100000) : size_t(0); });  // a gather
  auto* mpi = dynamic_cast<dist::MpiCommunicator*>(g_comm);
  ASSERT_NE(mpi, nullptr);
  mpi->set_all_to_all_chunk(7);  // lengths 0..5000 in rounds of 7 bytes: counts differ per round
  check_round([](int from, int to) { return size_t(from == to ? 5000 : 13 + from); });
  mpi->set_all_to_all_chunk(INT32_MAX);
  EXPECT_THROW(g_comm->all_to_all(std::vector<std::string>(3)), agpt::Error);  // wrong count: no communication
}

// Each rank holds its own gradient; the sharded update must equal one AdamW update on their mean,
// exactly: the sum of two floats does not depend on the order, and halving is exact.
TEST(DistributedOptimizer, EqualsAdamWOnTheMeanGradient) {
  auto be = ops::make_backend("cpu", 1, "fp32");
  const int r = g_comm->rank();
  MeanGradientCase c(*be, 5);
  auto& params = c.params;
  auto& ref = c.ref;
  model::AdamWConfig cfg;
  cfg.lr = 1e-2;
  // Buckets of >= 40 elements, from the end: {p2}, {p0, p1}; reduced as backward would complete them.
  train::DistributedOptimizer opt(*g_comm, *be, params, cfg, 40);
  ASSERT_EQ(opt.layout().buckets.size(), 2u);
  model::AdamW adam(*be, ref, cfg);
  for (int step = 0; step < 3; ++step) {
    c.upload_gradients(*be, r);
    opt.grads_ready(2, 1);  // queues the last bucket's reduction
    opt.grads_ready(1, 1);
    double norm = opt.reduce_gradients(0.5f);  // reduces the first bucket, waits for both
    double ref_norm = model::global_grad_norm(*be, ref);
    EXPECT_NEAR(norm, ref_norm, 1e-9 * ref_norm);
    opt.step(1e-2, 0.9f);
    adam.step(ref, 1e-2, 0.9f);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(host(params[i].value), host(ref[i].value)) << "parameter " << i << " step " << step;
  }
  // The gathered moments are the reference's, under the parameters' own layout.
  std::vector<float> m = opt.gather_moment(0), v = opt.gather_moment(1);
  if (r == 0)
    for (size_t i = 0; i < 3; ++i) {
      auto ms = opt.param_slice(m, i), vs = opt.param_slice(v, i);
      EXPECT_EQ(std::vector<float>(ms.begin(), ms.end()), host(adam.m()[i]));
      EXPECT_EQ(std::vector<float>(vs.begin(), vs.end()), host(adam.v()[i]));
    }
}

// ---- training ---------------------------------------------------------------------------------

class DataParallel : public ::testing::TestWithParam<bool> {};

// 2 ranks x grad_accum 1 must train like 1 rank x grad_accum 2 (the same samples in each step).
TEST_P(DataParallel, TwoRanksEqualOneRankWithTheSameGlobalBatch) {
  const fs::path dir = shared_dir(GetParam() ? "zero" : "allreduce");
  const std::string mix = make_mixture(dir);
  auto c2 = config(mix, dir / "dp2", 8, 1);
  c2.train.distributed_optimizer = GetParam();
  std::vector<float> w2, w1;
  auto l2 = train_run(c2, g_comm, false, -1, &w2);
  on_rank_zero([&] {
    auto l1 = train_run(config(mix, dir / "single", 8, 2), nullptr, false, -1, &w1);
    ASSERT_EQ(l1.size(), l2.size());
    for (size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(l2[i], l1[i], 1e-5 * std::abs(l1[i])) << "step " << i + 1;
    EXPECT_LT(max_rel_diff(w2, w1), 1e-5);
    // Rank 0 wrote the run directory; the metrics name the ranks and the step-time comparison.
    std::string metrics = read_file((dir / "dp2" / "metrics.jsonl").string());
    EXPECT_NE(metrics.find("\"ranks\":2"), std::string::npos);
    EXPECT_NE(metrics.find("rank_compute_s"), std::string::npos);
    // The distributed optimizer's ranks each wrote their moment shard; the all-reduce one, whole moments.
    const fs::path ck = dir / "dp2" / "checkpoints" / "step_0000008";
    if (GetParam()) {
      EXPECT_TRUE(fs::exists(ck / "optimizer-00001-of-00002.safetensors"));
      EXPECT_TRUE(fs::exists(ck / "optimizer-00002-of-00002.safetensors"));
      EXPECT_FALSE(fs::exists(ck / "optimizer.safetensors"));
    } else {
      EXPECT_TRUE(fs::exists(ck / "optimizer.safetensors"));
    }
  });
}
INSTANTIATE_TEST_SUITE_P(Optimizer, DataParallel, ::testing::Values(true, false));

// Optimizer CPU offload with the all-reduce optimizer: every rank keeps its moments in host memory
// and trains bit for bit as without offloading. With the distributed optimizer it is refused
// clearly (the state is divided among the ranks already).
TEST(DataParallel, OptimizerCpuOffload) {
  const fs::path dir = shared_dir("offload");
  const std::string mix = make_mixture(dir);
  auto plain = config(mix, dir / "plain", 4, 1);
  plain.train.distributed_optimizer = 0;
  auto offload = config(mix, dir / "offload", 4, 1);
  offload.train.distributed_optimizer = 0;
  offload.train.optimizer_cpu_offload = 1;
  std::vector<float> wp, wo;
  auto lp = train_run(plain, g_comm, false, -1, &wp);
  auto lo = train_run(offload, g_comm, false, -1, &wo);
  EXPECT_EQ(lo, lp);
  EXPECT_EQ(wo, wp);
  auto sharded = config(mix, dir / "sharded", 4, 1);
  sharded.train.optimizer_cpu_offload = 1;
  try {
    train_run(sharded, g_comm, false, -1, nullptr);
    ADD_FAILURE() << "offload with the distributed optimizer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("distributed_optimizer"), std::string::npos) << e.what();
  }
  g_comm->barrier();
}

// Same layout: stop at step 3, resume to 6: bit-identical to an uninterrupted run. Other layouts:
// the 2-rank checkpoint resumed by 1 rank (grad_accum 2 keeps the global batch) and a 1-rank
// checkpoint resumed by 2 ranks continue the same trajectory up to float rounding.
TEST(DataParallel, ResumeWithTheSameOrAnotherNumberOfRanks) {
  const fs::path dir = shared_dir("resume");
  const std::string mix = make_mixture(dir);
  std::vector<float> w_full, w_resumed, w_to1, w_to2;
  auto full = train_run(config(mix, dir / "full", 6, 1), g_comm, false, -1, &w_full);
  train_run(config(mix, dir / "part", 6, 1), g_comm, false, 3);
  auto rest = train_run(config(mix, dir / "part", 6, 1), g_comm, true, -1, &w_resumed);
  ASSERT_EQ(rest.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rest[i], full[3 + i]) << "step " << 4 + i;
  EXPECT_EQ(w_resumed, w_full);

  // 2 ranks -> 1 rank: rank 0 copies the 2-rank checkpoint of step 3 and resumes it alone.
  train_run(config(mix, dir / "two", 6, 1), g_comm, false, 3);
  on_rank_zero([&] {
    fs::copy(dir / "two", dir / "to1", fs::copy_options::recursive);
    auto one = train_run(config(mix, dir / "to1", 6, 2), nullptr, true, -1, &w_to1);
    ASSERT_EQ(one.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(one[i], full[3 + i], 1e-5 * full[3 + i]) << "step " << 4 + i;
    EXPECT_LT(max_rel_diff(w_to1, w_full), 1e-5);
    // 1 rank -> 2 ranks: a single-process run of 3 steps, then both ranks resume it.
    train_run(config(mix, dir / "to2", 6, 2), nullptr, false, 3);
  });
  auto two = train_run(config(mix, dir / "to2", 6, 1), g_comm, true, -1, &w_to2);
  ASSERT_EQ(two.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(two[i], full[3 + i], 1e-5 * full[3 + i]) << "step " << 4 + i;
  EXPECT_LT(max_rel_diff(w_to2, w_full), 1e-5);
}

}  // namespace

dist::Communicator& testing_mpi::world() { return *g_comm; }

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto comm = dist::make_mpi_communicator();
  g_comm = comm.get();
  // Only rank 0 prints the test report; a failure on any rank still fails the job's exit code.
  if (comm->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  double failed[1] = {double(rc != 0)};
  comm->all_reduce_sum(failed);
  return failed[0] > 0 ? 1 : 0;
}

// A sharded checkpoint that cannot be written fails on every rank with the reason, instead of
// leaving a rank waiting for another: here checkpoints/ is a file, so rank 0 cannot begin one.
TEST(DataParallel, ShardedCheckpointFailureReachesEveryRank) {
  const fs::path dir = shared_dir("ck_fails");
  const std::string mix = make_mixture(dir);
  for (bool async : {false, true}) {
    const fs::path out = dir / (async ? "async" : "sync");
    on_rank_zero([&] {
      fs::create_directories(out);
      std::ofstream((out / "checkpoints").string()) << "not a directory\n";
    });
    auto c = config(mix, out, 2, 1);
    c.train.async_checkpoint = async;
    try {
      train_run(c, g_comm);
      ADD_FAILURE() << "rank " << g_comm->rank() << ": the run ended without its checkpoint";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("could not be written: rank 0"), std::string::npos) << e.what();
    }
  }
  g_comm->barrier();
}

// train.async_checkpoint over 2 ranks: the sharded moments (ZeRO-1) and the tensor-parallel slices
// are copied to rank 0's memory and written in the background: the same files as a synchronous
// checkpoint, bit for bit.
TEST(DataParallel, AsyncCheckpointWritesTheSameFiles) {
  if (g_comm->size() != 2) GTEST_SKIP() << "a 2-rank test";
  const fs::path dir = shared_dir("async_ck");
  const std::string mix = make_mixture(dir);
  for (int tp : {1, 2}) {
    auto run = [&](const std::string& out, bool async, bool resume = false, std::vector<float>* weights = nullptr) {
      auto c = config(mix, dir / out, 4, 1);
      c.train.checkpoint_every = 2;
      c.train.tensor_parallel = tp;
      c.train.async_checkpoint = async;
      return train_run(c, g_comm, resume, -1, weights);
    };
    const std::string tag = "tp" + std::to_string(tp);
    std::vector<float> w_async, w_resumed;
    auto sync_losses = run(tag + "_sync", false);
    auto async_losses = run(tag + "_async", true, false, &w_async);
    EXPECT_EQ(async_losses, sync_losses) << tag;
    // The background checkpoint of step 2 (committed while step 3 trained) resumes exactly.
    on_rank_zero([&] {
      const fs::path copy = dir / (tag + "_resumed");
      fs::copy(dir / (tag + "_async"), copy, fs::copy_options::recursive);
      fs::remove_all(copy / "checkpoints" / "step_0000004");
      fs::remove(copy / "checkpoints" / "latest");
    });
    auto rest = run(tag + "_resumed", true, true, &w_resumed);
    ASSERT_EQ(rest.size(), 2u) << tag;
    EXPECT_EQ(rest[0], async_losses[2]) << tag;
    EXPECT_EQ(rest[1], async_losses[3]) << tag;
    EXPECT_EQ(w_resumed, w_async) << tag;
    if (g_comm->rank() == 0)
      for (const char* step : {"step_0000002", "step_0000004"}) {
        // ZeRO-1: one moment shard per rank (each rank writes its own, in the background too);
        // tensor parallelism: whole moments.
        std::vector<std::string> files = {"model.safetensors"};
        if (tp == 1) files.insert(files.end(), {"optimizer-00001-of-00002.safetensors", "optimizer-00002-of-00002.safetensors"});
        else files.push_back("optimizer.safetensors");
        for (const std::string& file : files) {
          const fs::path a = dir / (tag + "_sync") / "checkpoints" / step / file;
          const fs::path b = dir / (tag + "_async") / "checkpoints" / step / file;
          if (!fs::exists(a) || !fs::exists(b)) {  // no ASSERT: rank 0 must still reach the barrier
            ADD_FAILURE() << tag << " " << step << ": no " << file;
            continue;
          }
          EXPECT_TRUE(read_file(a.string()) == read_file(b.string())) << tag << " " << step << " " << file;
        }
      }
  }
  g_comm->barrier();
}
