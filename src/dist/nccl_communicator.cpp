#include "dist/nccl_communicator.h"

#include "base/error.h"

#ifdef AGPT_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#endif

namespace agpt::dist {

#ifndef AGPT_HAVE_CUDA

bool nccl_compiled() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&, ops::Backend&) {
  fail("this agpt was built without CUDA, so without NCCL; rebuild with the CUDA toolkit (scripts/build.sh)");
}

#else

namespace {

void check(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  fail("NCCL ", what, " failed: ", ncclGetErrorString(rc), " (", ncclGetLastError(nullptr),
       "); run with NCCL_DEBUG=WARN for details");
}

void require_device_f32(const ops::Tensor& t, const char* what) {
  if (t.device() != ops::Device::kCuda || t.dtype() != ops::DType::kF32)
    fail("NCCL ", what, ": needs fp32 GPU tensors, got ", t.describe(), " on ", ops::device_name(t.device()));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, ops::Backend& backend) : host_(host) {
    if (backend.device() != ops::Device::kCuda) fail("the NCCL communicator needs a CUDA backend, got ", backend.name());
    stream_ = static_cast<cudaStream_t>(backend.native_stream());
    ncclUniqueId id;
    std::string bytes;
    if (host.rank() == 0) {
      check(ncclGetUniqueId(&id), "GetUniqueId");
      bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
    }
    host.broadcast(bytes, 0);
    if (bytes.size() != sizeof id) fail("NCCL bootstrap: received ", bytes.size(), " bytes of unique id");
    std::memcpy(&id, bytes.data(), sizeof id);
    check(ncclCommInitRank(&comm_, host.size(), id, host.rank()), "CommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  std::string name() const override { return "nccl"; }
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  int local_rank() const override { return host_.local_rank(); }
  std::string host() const override { return host_.host(); }

  void all_reduce_sum(ops::Tensor& t) override {
    require_device_f32(t, "all_reduce");
    check(ncclAllReduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), ncclFloat, ncclSum, comm_, stream_),
          "AllReduce");
  }
  void reduce_scatter_sum(const ops::Tensor& in, ops::Tensor& out) override {
    require_device_f32(in, "reduce_scatter");
    require_device_f32(out, "reduce_scatter");
    if (in.numel() != out.numel() * size())
      fail("reduce_scatter: input ", in.describe(), " is not ", size(), " x output ", out.describe());
    check(ncclReduceScatter(in.raw(), out.raw(), static_cast<size_t>(out.numel()), ncclFloat, ncclSum, comm_, stream_),
          "ReduceScatter");
  }
  void all_gather(const ops::Tensor& in, ops::Tensor& out) override {
    require_device_f32(in, "all_gather");
    require_device_f32(out, "all_gather");
    if (out.numel() != in.numel() * size())
      fail("all_gather: output ", out.describe(), " is not ", size(), " x input ", in.describe());
    check(ncclAllGather(in.raw(), out.raw(), static_cast<size_t>(in.numel()), ncclFloat, comm_, stream_), "AllGather");
  }

  void all_reduce_sum(std::span<double> values) override { host_.all_reduce_sum(values); }
  std::vector<double> all_gather(double value) override { return host_.all_gather(value); }
  std::vector<std::string> all_gather(const std::string& value) override { return host_.all_gather(value); }
  std::vector<float> gather_to_root(std::span<const float> local) override { return host_.gather_to_root(local); }
  void broadcast(std::string& value, int root) override { host_.broadcast(value, root); }
  void barrier() override { host_.barrier(); }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_), comm_ = nullptr;
    host_.abort(code);
    std::_Exit(code);  // host_.abort does not return
  }

 private:
  Communicator& host_;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool nccl_compiled() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, ops::Backend& backend) {
  return std::make_unique<NcclCommunicator>(host, backend);
}

#endif

}  // namespace agpt::dist
