// Data-parallel training throughput (weak scaling): each rank trains the same shape on its own
// random tokens, one micro-batch per step, with the distributed optimizer (ZeRO-1: reduce-scatter,
// sharded AdamW, all-gather) or plain all-reduce. Run it with 1 rank and with N ranks in the same
// call and compare tokens/s per GPU:
//
//   mpirun -np 1 train_dp_bench --shape 1B ; mpirun -np 2 train_dp_bench --shape 1B
//   train_dp_bench [--shape 124M|1B|7B] [--recompute] [--batch B] [--seq T] [--steps 10] [--precision bf16] [--allreduce]
//                  [--overlap] [--overlap-param] [--bucket ELEMENTS] [--tp K] [--bf16-params] [--json]
//
// --bf16-params (train.param_dtype = "bf16"): bf16 weights on every rank, the fp32 master weights
// sharded with the AdamW state; the parameter all-gather moves bf16.
//
// --hold-mib M: first take M MiB of device memory and keep it (a smaller card on a bigger one: on an
// H200, 143,771 MiB, --hold-mib 62212 leaves an H100 80GB's 81,559 MiB); the reported peak leaves it out.
//
// --overlap-param (with --overlap): the parameter all-gather of each bucket is queued after its
// update and the next forward waits for it only before reading that bucket (Megatron's
// --overlap-param-gather); the step time then includes the part of the gather the forward hides.
//
// --tp K: groups of K ranks split every layer (tensor parallel, Megatron's column/row-parallel
// layers); each group trains one micro-batch per step, so tokens/s per GPU is B*T / step time / K.
// The data-parallel part (ranks / K groups) is as above. With --tp the clipping norm is this
// rank's (not summed over the group): the optimizer's work is the same, only its scale differs.
//
// Step time is split into compute (forward + backward, device synchronized) and the rest (gradient
// reduction, optimizer, parameter all-gather): the communication exposed in this version, where
// without --overlap the reduction starts after the whole backward pass; with it, each gradient
// bucket (40M elements by default, Megatron's) is reduced while backward computes the earlier layers.
// MFU per GPU = tokens/s per GPU × (6·N + 12·L·d·T) / 989e12 (the CUDA issue's formula).
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "dist/communicator.h"
#include "dist/nccl_communicator.h"
#include "model/adamw.h"
#include "llama_shapes.h"
#include "model/llama.h"
#include "ops/backend_factory.h"
#include "train/distributed_optimizer.h"
#include "train/tensor_parallel_group.h"

namespace {

using agpt::fail;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The benchmark table's shape, with --batch/--seq overriding its micro-batch.
agpt::model::LlamaConfig shape_config(const std::string& name, int& B, int& T) {
  agpt::bench::Shape s = agpt::bench::make_shape(name);
  if (!B) B = s.batch;
  if (!T) T = s.seq;
  s.config.max_position_embeddings = T;
  return s.config;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string shape = "1B", precision = "bf16";
  int B = 0, T = 0, steps = 10, tp = 1;
  bool allreduce = false, json = false, overlap = false, recompute = false, overlap_param = false, bf16_params = false;
  int64_t bucket = 40'000'000, hold_mib = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) fail(a, " needs a value");
      return argv[++i];
    };
    if (a == "--shape") shape = next();
    else if (a == "--batch") B = std::stoi(next());
    else if (a == "--seq") T = std::stoi(next());
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--precision") precision = next();
    else if (a == "--allreduce") allreduce = true;
    else if (a == "--json") json = true;
    else if (a == "--overlap") overlap = true;
    else if (a == "--overlap-param") overlap_param = true;
    else if (a == "--recompute") recompute = true;
    else if (a == "--bucket") bucket = std::stoll(next());
    else if (a == "--tp") tp = std::stoi(next());
    else if (a == "--bf16-params") bf16_params = true;
    else if (a == "--hold-mib") hold_mib = std::stoll(next());
    else fail("unknown option ", a, " (see the comment at the top of bench/train_dp_bench.cpp)");
  }
  auto host = agpt::dist::make_world_communicator();
  const int world = host->size(), rank = host->rank();
  agpt::model::LlamaConfig c = shape_config(shape, B, T);
  auto backend = agpt::ops::make_backend("cuda:" + std::to_string(host->local_rank()), 0, precision);
  const agpt::ops::Tensor held = hold_mib > 0 ? backend->empty({hold_mib << 18}) : agpt::ops::Tensor{};  // 2^18 floats a MiB
  std::unique_ptr<agpt::dist::Communicator> nccl;
  agpt::dist::Communicator* comm = host.get();
  if (world > 1) nccl = agpt::dist::make_nccl_communicator(*host, *backend), comm = nccl.get();
  agpt::train::ParallelGroups groups;
  std::unique_ptr<agpt::train::CommTensorParallel> tp_group;
  agpt::dist::Communicator* dp = comm;
  if (tp > 1) {
    groups = agpt::train::make_parallel_groups(*comm, tp);
    tp_group = std::make_unique<agpt::train::CommTensorParallel>(*groups.tp);
    dp = groups.dp.get();
  }
  const int dp_size = dp->size();

  agpt::model::Llama model(c, *backend, tp_group.get());
  model.init_weights(1234);
  model.set_recompute(recompute);
  agpt::model::AdamWConfig ac{.lr = 1e-4};
  std::unique_ptr<agpt::train::DistributedOptimizer> zero;
  std::unique_ptr<agpt::model::AdamW> adam;
  if (!allreduce && dp_size > 1) {
    zero = std::make_unique<agpt::train::DistributedOptimizer>(*dp, *backend, model.parameters(), ac, overlap ? bucket : 0,
                                                                bf16_params);
    if (bf16_params) zero->shard_master_weights();
  }
  if (zero && overlap)
    model.set_grads_ready_hook([&](size_t first, size_t count) { zero->grads_ready(first, count); });
  if (zero && overlap_param) {
    zero->set_overlap_param_gather(true);
    model.set_params_needed_hook([&](size_t first, size_t count) { zero->wait_params(first, count); });
  }
  if (!zero) adam = std::make_unique<agpt::model::AdamW>(*backend, model.parameters(), ac);

  std::mt19937 rng(7 + dp->rank());  // the ranks of a tensor-parallel group share their batch
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.vocab_size - 1));
  std::vector<int32_t> ids(static_cast<size_t>(B) * T);
  for (auto& t : ids) t = tok(rng);
  std::vector<int32_t> targets = agpt::model::shift_targets(ids, B, T);
  double compute_s = 0, rest_s = 0;
  float loss = 0;
  auto step = [&](bool timed) {
    const double t0 = now();
    loss = model.forward(ids, targets, B, T, /*for_backward=*/true);
    model.backward(agpt::ops::Grad::kWrite);  // as the trainer's first micro-batch: no zero_grad
    backend->synchronize();  // with --overlap this also waits for the buckets queued so far
    const double t1 = now();
    if (zero) {
      double norm = zero->reduce_gradients(1.0f / static_cast<float>(dp_size));
      zero->step(-1.0, agpt::model::clip_coefficient(norm, 1.0));
    } else {
      auto& params = model.parameters();
      if (dp_size > 1)
        for (auto& p : params) dp->all_reduce_sum(p.grad), backend->scale(p.grad, 1.0f / static_cast<float>(dp_size));
      double norm = agpt::model::global_grad_norm(*backend, params);
      adam->step(params, -1.0, agpt::model::clip_coefficient(norm, 1.0));
    }
    backend->synchronize();
    if (timed) compute_s += t1 - t0, rest_s += now() - t1;
  };
  for (int i = 0; i < 2; ++i) step(false);
  host->barrier();
  const double t0 = now();
  for (int i = 0; i < steps; ++i) step(true);
  if (zero) zero->wait_all_params();  // the last step's queued gathers count too
  backend->synchronize();
  const double dt = (now() - t0) / steps;
  const double tps_gpu = B * T / dt / tp;
  const double mfu = tps_gpu * model.train_flops_per_token(T) / 989e12;
  const double mem_gib = static_cast<double>(backend->peak_memory_bytes() - (hold_mib << 20)) / (1ull << 30);
  // Every rank's numbers meet on rank 0 (the slowest decides the job's speed).
  std::vector<double> all_dt = host->all_gather(dt);
  double worst = 0;
  for (double d : all_dt) worst = std::max(worst, d);
  if (rank == 0) {
    std::string mode = dp_size == 1 ? "single" : (zero ? (overlap ? "zero1_overlap" : "zero1") : "allreduce");
    if (zero && overlap_param) mode += "_param";
    if (zero && bf16_params) mode += "_bf16p";
    if (tp > 1) mode = "tp" + std::to_string(tp) + (dp_size > 1 ? "_dp" + std::to_string(dp_size) + "_" + mode : "");
    if (json)
      std::printf("{\"engine\":\"agpt\",\"model\":\"%s\",\"ranks\":%d,\"mode\":\"%s\",\"B\":%d,\"T\":%d,\"precision\":\"%s\","
                  "\"ms_per_step\":%.2f,\"slowest_rank_ms\":%.2f,\"compute_ms\":%.2f,\"exposed_comm_and_update_ms\":%.2f,"
                  "\"tokens_per_s_per_gpu\":%.0f,\"mfu_989\":%.4f,\"max_mem_gib\":%.2f,\"loss\":%.4f}\n",
                  shape.c_str(), world, mode.c_str(), B, T, precision.c_str(), dt * 1e3, worst * 1e3, compute_s / steps * 1e3,
                  rest_s / steps * 1e3, tps_gpu, mfu, mem_gib, loss);
    else
      std::printf("%-5s %d rank(s) %-9s B=%d T=%d %s: %8.1f ms/step (compute %.1f, reduce+update %.1f)  %9.0f tok/s/GPU  "
                  "MFU %5.1f%%  peak %.1f GiB\n",
                  shape.c_str(), world, mode.c_str(), B, T, precision.c_str(), dt * 1e3, compute_s / steps * 1e3,
                  rest_s / steps * 1e3, tps_gpu, 100 * mfu, mem_gib);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "train_dp_bench: %s\n", e.what());
  return 1;
}
