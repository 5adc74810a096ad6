#include "dist/mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include "base/error.h"
#include "dist/host_name.h"

namespace agpt::dist {
namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI ", what, " failed: ", msg);
}

// MPI counts are ints; the tensor collectives here carry host tensors of the CPU backend (GPU
// tensors go through NCCL) in pieces far below that (the checkpoint's moment gather goes bucket
// piece by piece). all_to_all, which carries curation keys of any size, runs in rounds instead.
int count_of(int64_t n, const char* what) {
  if (n < 0 || n > INT_MAX)
    fail("MPI ", what, ": ", n, " elements per rank exceed MPI's int count (", INT_MAX,
         "); use the NCCL communicator (GPU) or more ranks");
  return static_cast<int>(n);
}

void require_host_f32(const ops::Tensor& t, const char* what) {
  if (t.device() != ops::Device::kCpu || t.dtype() != ops::DType::kF32)
    fail("MPI ", what, ": needs fp32 tensors in host memory, got ", t.describe(), " on ", ops::device_name(t.device()),
         " (GPU tensors go through the NCCL communicator)");
}

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    // FUNNELED: only the main thread calls MPI (the watchdog and the data loader never do).
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("MPI could not start; run under mpirun/mpiexec with a working MPI installation (Open MPI: openmpi-bin)");
    initialised_here_ = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "Comm_size");
  MPI_Comm local;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local), "Comm_split_type");
  check(MPI_Comm_rank(local, &local_rank_), "Comm_rank(local)");
  MPI_Comm_free(&local);
  host_ = host_name();
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int local_rank, std::string host)
    : comm_(comm), owns_comm_(true), local_rank_(local_rank), host_(std::move(host)) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(comm_, &rank_), "Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "Comm_size");
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  if (color < 0) fail("split: color ", color, " is negative (every rank must join a group)");
  MPI_Comm group;
  check(MPI_Comm_split(comm_, color, key, &group), "Comm_split");
  return std::make_unique<MpiCommunicator>(group, local_rank_, host_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (owns_comm_ && !finalised && std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
  // While an error unwinds, finalising could wait forever for ranks still inside a collective; the
  // caller aborts the job instead (see abort()).
  if (initialised_here_ && !finalised && std::uncaught_exceptions() == 0) MPI_Finalize();
}

void MpiCommunicator::all_reduce_sum(ops::Tensor& t) {
  require_host_f32(t, "all_reduce");
  check(MPI_Allreduce(MPI_IN_PLACE, t.raw(), count_of(t.numel(), "all_reduce"), MPI_FLOAT, MPI_SUM, comm()),
        "Allreduce");
}

void MpiCommunicator::reduce_scatter_sum(const ops::Tensor& in, ops::Tensor& out) {
  require_host_f32(in, "reduce_scatter");
  require_host_f32(out, "reduce_scatter");
  if (in.numel() != out.numel() * size_)
    fail("reduce_scatter: input ", in.describe(), " is not ", size_, " x output ", out.describe());
  // In place (out is this rank's slice of in): MPI's buffers may not overlap, so through a copy.
  const bool overlap = out.raw() >= in.raw() && static_cast<const char*>(out.raw()) < static_cast<const char*>(in.raw()) + in.bytes();
  std::vector<float> tmp(overlap ? static_cast<size_t>(out.numel()) : 0);
  float* dst = overlap ? tmp.data() : static_cast<float*>(out.raw());
  check(MPI_Reduce_scatter_block(in.raw(), dst, count_of(out.numel(), "reduce_scatter"), MPI_FLOAT, MPI_SUM, comm()),
        "Reduce_scatter_block");
  if (overlap) std::copy(tmp.begin(), tmp.end(), static_cast<float*>(out.raw()));
}

// fp32 or bf16 (the model's bf16 parameters, train.param_dtype): a gather moves bits, whatever they mean.
void MpiCommunicator::all_gather(const ops::Tensor& in, ops::Tensor& out) {
  const bool bf16 = in.dtype() == ops::DType::kBF16 && out.dtype() == ops::DType::kBF16 &&
                    in.device() == ops::Device::kCpu && out.device() == ops::Device::kCpu;
  if (!bf16) {
    require_host_f32(in, "all_gather");
    require_host_f32(out, "all_gather");
  }
  if (out.numel() != in.numel() * size_)
    fail("all_gather: output ", out.describe(), " is not ", size_, " x input ", in.describe());
  const int n = count_of(in.numel(), "all_gather");
  const size_t element = ops::dtype_size(in.dtype());
  const bool in_place = in.raw() == static_cast<char*>(out.raw()) + static_cast<int64_t>(rank_) * n * element;
  const MPI_Datatype type = bf16 ? MPI_UINT16_T : MPI_FLOAT;
  check(MPI_Allgather(in_place ? MPI_IN_PLACE : in.raw(), n, type, out.raw(), n, type, comm()), "Allgather");
}

void MpiCommunicator::all_reduce_sum(std::span<double> values) {
  check(MPI_Allreduce(MPI_IN_PLACE, values.data(), count_of(static_cast<int64_t>(values.size()), "all_reduce"),
                      MPI_DOUBLE, MPI_SUM, comm()),
        "Allreduce");
}

std::vector<double> MpiCommunicator::all_gather(double value) {
  std::vector<double> out(static_cast<size_t>(size_));
  check(MPI_Allgather(&value, 1, MPI_DOUBLE, out.data(), 1, MPI_DOUBLE, comm()), "Allgather");
  return out;
}

std::vector<std::string> MpiCommunicator::all_gather(const std::string& value) {
  int len = count_of(static_cast<int64_t>(value.size()), "all_gather");
  std::vector<int> lens(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
  check(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, comm()), "Allgather");
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) offsets[r] = static_cast<int>(total), total += lens[r];
  std::string all(static_cast<size_t>(count_of(total, "all_gather")), '\0');
  check(MPI_Allgatherv(value.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, comm()),
        "Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < size_; ++r) out.push_back(all.substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(lens[r])));
  return out;
}

void MpiCommunicator::broadcast(std::string& value, int root) {
  int len = static_cast<int>(value.size());
  check(MPI_Bcast(&len, 1, MPI_INT, root, comm()), "Bcast");
  value.resize(static_cast<size_t>(len));
  check(MPI_Bcast(value.data(), len, MPI_CHAR, root, comm()), "Bcast");
}

std::vector<std::string> MpiCommunicator::all_to_all(const std::vector<std::string>& to_each) {
  if (to_each.size() != static_cast<size_t>(size_))
    fail("all_to_all: ", to_each.size(), " payloads for ", size_, " ranks");
  const auto n = static_cast<size_t>(size_);
  std::vector<int64_t> send_sizes(n), recv_sizes(n);
  for (size_t r = 0; r < n; ++r) send_sizes[r] = static_cast<int64_t>(to_each[r].size());
  check(MPI_Alltoall(send_sizes.data(), 1, MPI_INT64_T, recv_sizes.data(), 1, MPI_INT64_T, comm()), "Alltoall");
  std::vector<std::string> out(n);
  int64_t longest = 0;
  for (size_t r = 0; r < n; ++r) {
    out[r].resize(static_cast<size_t>(recv_sizes[r]));
    longest = std::max({longest, send_sizes[r], recv_sizes[r]});
  }
  check(MPI_Allreduce(MPI_IN_PLACE, &longest, 1, MPI_INT64_T, MPI_MAX, comm()), "Allreduce");
  // MPI counts and displacements are ints: each round moves at most `chunk` bytes per pair of ranks,
  // so one round's buffer (size x chunk) stays addressable by an int. Every rank runs the same
  // number of rounds (from the global longest payload).
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(chunk_, INT_MAX / size_));
  const int64_t rounds = (longest + chunk - 1) / chunk;
  std::vector<int> scount(n), sdispl(n), rcount(n), rdispl(n);
  std::string sendbuf, recvbuf;
  for (int64_t k = 0; k < rounds; ++k) {
    const int64_t off = k * chunk;
    int stotal = 0, rtotal = 0;
    for (size_t r = 0; r < n; ++r) {
      scount[r] = static_cast<int>(std::clamp<int64_t>(send_sizes[r] - off, 0, chunk));
      rcount[r] = static_cast<int>(std::clamp<int64_t>(recv_sizes[r] - off, 0, chunk));
      sdispl[r] = stotal, stotal += scount[r];
      rdispl[r] = rtotal, rtotal += rcount[r];
    }
    sendbuf.resize(static_cast<size_t>(stotal));
    recvbuf.resize(static_cast<size_t>(rtotal));
    for (size_t r = 0; r < n; ++r)
      if (scount[r] > 0) std::memcpy(sendbuf.data() + sdispl[r], to_each[r].data() + off, static_cast<size_t>(scount[r]));
    check(MPI_Alltoallv(sendbuf.data(), scount.data(), sdispl.data(), MPI_CHAR, recvbuf.data(), rcount.data(),
                        rdispl.data(), MPI_CHAR, comm()),
          "Alltoallv");
    for (size_t r = 0; r < n; ++r)
      if (rcount[r] > 0) std::memcpy(out[r].data() + off, recvbuf.data() + rdispl[r], static_cast<size_t>(rcount[r]));
  }
  return out;
}

void MpiCommunicator::barrier() { check(MPI_Barrier(comm()), "Barrier"); }

void MpiCommunicator::abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort should not return
}

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace agpt::dist
