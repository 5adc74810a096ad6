// Communicator: the one small interface the trainer talks to for everything that crosses ranks.
// Three implementations hide what carries the bytes (DESIGN.md, dist/):
//   single  one process (size 1): every collective is a copy or nothing;
//   mpi     processes started by mpirun/mpiexec (also under Slurm/PBS); tensors in host memory
//           (the CPU backend) travel through MPI, which is how CI tests multi-rank training;
//   nccl    GPU tensors travel through NCCL on the backend's stream; the host values (losses,
//           step times, checkpoint paths) still go through MPI, which also bootstraps NCCL.
//
// Collectives are called by every rank in the same order (as in MPI). The tensor collectives take
// fp32 tensors on the communicator's device (all_reduce_sum also takes bf16 activations where the
// device computes in bf16, all_gather bf16 parameters); counts are elements per rank.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ops/tensor.h"

namespace agpt::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;      // rank among the processes of this host (picks the GPU)
  virtual std::string host() const = 0;    // this process's host name (straggler and hang reports)

  // ---- tensors (the backend's memory) -----------------------------------------------------------
  // t = Σ over ranks of t.
  virtual void all_reduce_sum(ops::Tensor& t) = 0;
  // out [n] = Σ over ranks of in[rank*n, (rank+1)*n); in [size*n]. out may be exactly that slice
  // of in (in place).
  virtual void reduce_scatter_sum(const ops::Tensor& in, ops::Tensor& out) = 0;
  // out [size*n]: rank r's in [n] lands at out[r*n, (r+1)*n). in may be exactly that slice of out.
  virtual void all_gather(const ops::Tensor& in, ops::Tensor& out) = 0;
  // The reduce-scatter queued to run beside the computation that follows it (NCCL: on its own
  // stream, after the work queued so far); wait_async() makes the work queued after it wait for
  // every such reduction. `in` and `out` must stay untouched until then. Default: synchronous.
  virtual void reduce_scatter_sum_async(const ops::Tensor& in, ops::Tensor& out) { reduce_scatter_sum(in, out); }
  virtual void wait_async() {}
  // The all-gather queued beside the computation that follows it (NCCL: on its own stream, after
  // the work queued so far); returns a ticket. wait(ticket) makes the work queued after it wait
  // for that all-gather (each ticket is waited once). `in` and `out` stay untouched until then.
  // Default: synchronous (ticket 0; wait does nothing).
  virtual int all_gather_async(const ops::Tensor& in, ops::Tensor& out) {
    all_gather(in, out);
    return 0;
  }
  virtual void wait(int ticket) { (void)ticket; }

  // ---- host values (small, for control and checkpoints) -----------------------------------------
  virtual void all_reduce_sum(std::span<double> values) = 0;
  virtual std::vector<double> all_gather(double value) = 0;
  virtual std::vector<std::string> all_gather(const std::string& value) = 0;
  virtual void broadcast(std::string& value, int root) = 0;
  virtual void barrier() = 0;
  // Personalised all-to-all of bytes (curation's key exchange): to_each[r] goes to rank r
  // (to_each.size() == size()); returns what every rank sent to this one, indexed by sender. Any
  // sizes: payloads beyond MPI's int counts travel in several rounds.
  virtual std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) = 0;

  // ---- groups -------------------------------------------------------------------------------------
  // A communicator over the ranks that pass the same `color`, numbered by `key` (MPI_Comm_split):
  // the tensor-parallel and data-parallel groups of a DP x TP job. Called by every rank of this
  // communicator. The group keeps this communicator's local_rank() and host(), and abort() still
  // ends the whole job. This communicator must outlive the group.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // Ends every process of the job now with exit code `code` (a hung collective, a fatal error on
  // one rank): the job script sees a failure and can restart from the last checkpoint.
  [[noreturn]] virtual void abort(int code) = 0;
};

// size 1: no other process.
std::unique_ptr<Communicator> make_single_communicator();

// Whether this process was started by an MPI launcher (mpirun/mpiexec, srun with PMI/PMIx).
bool launched_by_mpi();

// MPI_COMM_WORLD. Initialises MPI on first use (finalised at exit); fails with advice when the MPI
// library cannot start.
std::unique_ptr<Communicator> make_mpi_communicator();

// The world this process belongs to: MPI when launched by an MPI launcher, else single.
std::unique_ptr<Communicator> make_world_communicator();

}  // namespace agpt::dist
