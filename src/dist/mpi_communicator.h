// The MPI communicator (MPI_COMM_WORLD), also the host-side half of the NCCL communicator.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dist/communicator.h"

namespace agpt::dist {

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator();  // MPI_COMM_WORLD; initialises MPI if needed
  // A group made by split(): owns `comm` (freed with it); local rank and host from the parent.
  MpiCommunicator(MPI_Comm comm, int local_rank, std::string host);
  ~MpiCommunicator() override;  // finalises MPI when it initialised it (not while unwinding an error)

  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string host() const override { return host_; }

  // Host-memory (CPU backend) tensors only.
  void all_reduce_sum(ops::Tensor& t) override;
  void reduce_scatter_sum(const ops::Tensor& in, ops::Tensor& out) override;
  void all_gather(const ops::Tensor& in, ops::Tensor& out) override;

  void all_reduce_sum(std::span<double> values) override;
  std::vector<double> all_gather(double value) override;
  std::vector<std::string> all_gather(const std::string& value) override;
  void broadcast(std::string& value, int root) override;
  void barrier() override;
  std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) override;
  std::unique_ptr<Communicator> split(int color, int key) override;
  [[noreturn]] void abort(int code) override;

  MPI_Comm comm() const { return comm_; }
  // The most bytes one all_to_all round sends to one rank (clamped so displacements fit an int);
  // tests lower it to exercise the rounds.
  void set_all_to_all_chunk(int64_t bytes) { chunk_ = bytes; }

 private:
  MPI_Comm comm_ = MPI_COMM_WORLD;
  bool owns_comm_ = false;
  bool initialised_here_ = false;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string host_;
  int64_t chunk_ = INT32_MAX;
};

}  // namespace agpt::dist
