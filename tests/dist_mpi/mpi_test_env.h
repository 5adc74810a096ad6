// Shared by the multi-rank tests (tests/dist_mpi, one binary run under mpirun -np 2): the job's
// communicator, a small token mixture, a training config and a training run.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/llama.h"
#include "ops/backend.h"
#include "train/config.h"

namespace agpt::testing_mpi {

dist::Communicator& world();

// One directory name for every rank: rank 0's choice (emptied), broadcast.
std::filesystem::path shared_dir(const std::string& name);
// Rank 0 writes a 40-document dataset and plans a mixture of it (seq_len 16) under dir; every rank
// gets its path.
std::string make_mixture(const std::filesystem::path& dir);
// A 2-layer model (vocab 256, 4 heads / 2 kv heads) trained for `steps` steps on `mix`.
train::TrainConfig config(const std::string& mix, const std::filesystem::path& out, int64_t steps, int64_t grad_accum);
// Trains (with `comm`, or alone when null) and returns the per-step losses; `weights` receives
// every parameter's full value, concatenated (gathered from the tensor-parallel group).
std::vector<double> train_run(const train::TrainConfig& c, dist::Communicator* comm, bool resume = false,
                              int64_t stop_after = -1, std::vector<float>* weights = nullptr);
// Runs `section` on rank 0 only, then meets the other ranks. A failed ASSERT or an exception inside
// ends the section (reported as a failure), not the test, so the other ranks are not left waiting
// at the barrier until ctest's timeout.
void on_rank_zero(const std::function<void()>& section);
// The distributed optimizer's tests on 2 ranks: three parameters (shapes {7, 5}, {13}, {3, 33}, normal
// values drawn from `seed`), rank 0's and rank 1's gradients, and a reference copy of the parameters
// whose gradient is their mean (what one AdamW should update with).
struct MeanGradientCase {
  std::vector<model::Parameter> params, ref;
  std::vector<std::vector<float>> g0, g1;
  MeanGradientCase(ops::Backend& be, unsigned seed);
  // This rank's gradients into params' grads.
  void upload_gradients(ops::Backend& be, int rank);
};

// ‖a − b‖ / ‖b‖.
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace agpt::testing_mpi
