// The NCCL communicator: GPU tensors through NCCL on the backend's stream (so collectives queue
// behind the kernels that produce their inputs, with no host synchronisation); host values and
// the NCCL bootstrap (its unique id, broadcast from rank 0) through a host communicator (MPI).
#pragma once
#include <memory>

#include "dist/communicator.h"
#include "ops/backend.h"

namespace agpt::dist {

// True when this binary has NCCL (built with CUDA).
bool nccl_compiled();

// A communicator over the same ranks as `host`, whose tensor collectives run on `backend`'s GPU
// stream. `host` and `backend` must outlive it. Fails when NCCL is not compiled in or cannot start.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, ops::Backend& backend);

}  // namespace agpt::dist
