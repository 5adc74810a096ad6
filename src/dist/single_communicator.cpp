// The size-1 communicator: what a process started without an MPI launcher talks to.
#include <cstdlib>
#include <cstring>

#include "base/error.h"
#include "dist/communicator.h"
#include "dist/host_name.h"

namespace agpt::dist {
namespace {

class SingleCommunicator final : public Communicator {
 public:
  std::string name() const override { return "single"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string host() const override { return host_name(); }

  void all_reduce_sum(ops::Tensor&) override {}
  void reduce_scatter_sum(const ops::Tensor& in, ops::Tensor& out) override { copy_if_distinct(in, out); }
  void all_gather(const ops::Tensor& in, ops::Tensor& out) override { copy_if_distinct(in, out); }

  void all_reduce_sum(std::span<double>) override {}
  std::vector<double> all_gather(double value) override { return {value}; }
  std::vector<std::string> all_gather(const std::string& value) override { return {value}; }
  void broadcast(std::string&, int root) override {
    if (root != 0) fail("broadcast: root ", root, " is not a rank of a single-process job");
  }
  void barrier() override {}
  std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) override {
    if (to_each.size() != 1) fail("all_to_all: ", to_each.size(), " payloads for a single-process job");
    return to_each;
  }
  std::unique_ptr<Communicator> split(int color, int) override {
    if (color < 0) fail("split: color ", color, " is negative (every rank must join a group)");
    return std::make_unique<SingleCommunicator>();
  }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  // With one rank the reduce-scatter and all-gather are copies; the caller's tensors may be the
  // same view already (in-place all-gather), then there is nothing to do.
  static void copy_if_distinct(const ops::Tensor& in, ops::Tensor& out) {
    if (in.numel() != out.numel() || in.dtype() != out.dtype())
      fail("collective on one rank: ", in.describe(), " and ", out.describe(), " differ in size or type");
    if (in.raw() == out.raw()) return;
    if (in.device() != ops::Device::kCpu)
      fail("the single-process communicator copies host tensors only; got ", in.describe(), " on ",
           ops::device_name(in.device()));
    std::memcpy(out.raw(), in.raw(), in.bytes());
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

std::unique_ptr<Communicator> make_world_communicator() {
  return launched_by_mpi() ? make_mpi_communicator() : make_single_communicator();
}

}  // namespace agpt::dist
