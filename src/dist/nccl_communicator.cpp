#include "dist/nccl_communicator.h"

#include "base/error.h"

#ifdef AGPT_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>
#include <vector>
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

void cuda_check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) fail("CUDA ", what, " failed for the NCCL communicator: ", cudaGetErrorString(rc));
}

void require_device_f32(const ops::Tensor& t, const char* what) {
  if (t.device() != ops::Device::kCuda || t.dtype() != ops::DType::kF32)
    fail("NCCL ", what, ": needs fp32 GPU tensors, got ", t.describe(), " on ", ops::device_name(t.device()));
}

// fp32 or bf16 (activations of tensor-parallel layers) GPU tensors.
ncclDataType_t device_float_type(const ops::Tensor& t, const char* what) {
  if (t.device() == ops::Device::kCuda && t.dtype() == ops::DType::kF32) return ncclFloat;
  if (t.device() == ops::Device::kCuda && t.dtype() == ops::DType::kBF16) return ncclBfloat16;
  fail("NCCL ", what, ": needs fp32 or bf16 GPU tensors, got ", t.describe(), " on ", ops::device_name(t.device()));
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
    create_stream_and_events();
  }
  // A group made by split(): its own host group (owned) and NCCL communicator.
  NcclCommunicator(std::unique_ptr<Communicator> group_host, ncclComm_t comm, cudaStream_t stream)
      : owned_host_(std::move(group_host)), host_(*owned_host_), stream_(stream), comm_(comm) {
    create_stream_and_events();
  }
  ~NcclCommunicator() override {
    if (comm_stream_) cudaStreamSynchronize(comm_stream_);
    for (auto& [ticket, event] : tickets_) cudaEventDestroy(event);
    for (cudaEvent_t event : free_events_) cudaEventDestroy(event);
    if (comm_) ncclCommDestroy(comm_);
    if (queued_) cudaEventDestroy(queued_);
    if (done_) cudaEventDestroy(done_);
    if (comm_stream_) cudaStreamDestroy(comm_stream_);
  }

  std::string name() const override { return "nccl"; }
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  int local_rank() const override { return host_.local_rank(); }
  std::string host() const override { return host_.host(); }

  // Every NCCL operation runs on one communication stream, in the order the ranks issue them (as
  // NCCL requires); events order it after the compute stream's work queued so far and, for the
  // synchronous ones, the compute stream's later work after it.
  void all_reduce_sum(ops::Tensor& t) override {
    const ncclDataType_t type = device_float_type(t, "all_reduce");
    after_compute();
    check(ncclAllReduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), type, ncclSum, comm_, comm_stream_),
          "AllReduce");
    wait_async();
  }
  void reduce_scatter_sum(const ops::Tensor& in, ops::Tensor& out) override {
    reduce_scatter_sum_async(in, out);
    wait_async();
  }
  void reduce_scatter_sum_async(const ops::Tensor& in, ops::Tensor& out) override {
    require_device_f32(in, "reduce_scatter");
    require_device_f32(out, "reduce_scatter");
    if (in.numel() != out.numel() * size())
      fail("reduce_scatter: input ", in.describe(), " is not ", size(), " x output ", out.describe());
    after_compute();
    check(ncclReduceScatter(in.raw(), out.raw(), static_cast<size_t>(out.numel()), ncclFloat, ncclSum, comm_,
                            comm_stream_),
          "ReduceScatter");
  }
  void wait_async() override {
    cuda_check(cudaEventRecord(done_, comm_stream_), "EventRecord");
    cuda_check(cudaStreamWaitEvent(stream_, done_, 0), "StreamWaitEvent");
  }
  void all_gather(const ops::Tensor& in, ops::Tensor& out) override {
    queue_all_gather(in, out);
    wait_async();
  }
  int all_gather_async(const ops::Tensor& in, ops::Tensor& out) override {
    queue_all_gather(in, out);
    cudaEvent_t done = nullptr;
    if (!free_events_.empty()) {
      done = free_events_.back();
      free_events_.pop_back();
    } else {
      cuda_check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "EventCreate");
    }
    cuda_check(cudaEventRecord(done, comm_stream_), "EventRecord");
    const int ticket = ++last_ticket_;
    tickets_[ticket] = done;
    return ticket;
  }
  void wait(int ticket) override {
    auto it = tickets_.find(ticket);
    if (it == tickets_.end()) fail("NCCL wait: no outstanding operation with ticket ", ticket);
    cuda_check(cudaStreamWaitEvent(stream_, it->second, 0), "StreamWaitEvent");
    free_events_.push_back(it->second);
    tickets_.erase(it);
  }

  void all_reduce_sum(std::span<double> values) override { host_.all_reduce_sum(values); }
  std::vector<double> all_gather(double value) override { return host_.all_gather(value); }
  std::vector<std::string> all_gather(const std::string& value) override { return host_.all_gather(value); }
  void broadcast(std::string& value, int root) override { host_.broadcast(value, root); }
  void barrier() override { host_.barrier(); }
  std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) override {
    return host_.all_to_all(to_each);
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    std::unique_ptr<Communicator> group_host = host_.split(color, key);  // fails on a negative color
    ncclComm_t group = nullptr;
    check(ncclCommSplit(comm_, color, key, &group, nullptr), "CommSplit");
    return std::make_unique<NcclCommunicator>(std::move(group_host), group, stream_);
  }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_), comm_ = nullptr;
    host_.abort(code);
    std::_Exit(code);  // host_.abort does not return
  }

 private:
  void queue_all_gather(const ops::Tensor& in, ops::Tensor& out) {
    const ncclDataType_t type = device_float_type(in, "all_gather");  // bf16: the parameters, train.param_dtype
    if (device_float_type(out, "all_gather") != type)
      fail("all_gather: input ", in.describe(), " and output ", out.describe(), " differ in type");
    if (out.numel() != in.numel() * size())
      fail("all_gather: output ", out.describe(), " is not ", size(), " x input ", in.describe());
    after_compute();
    check(ncclAllGather(in.raw(), out.raw(), static_cast<size_t>(in.numel()), type, comm_, comm_stream_), "AllGather");
  }
  void create_stream_and_events() {
    cuda_check(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking), "StreamCreate");
    cuda_check(cudaEventCreateWithFlags(&queued_, cudaEventDisableTiming), "EventCreate");
    cuda_check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "EventCreate");
  }
  void after_compute() {
    cuda_check(cudaEventRecord(queued_, stream_), "EventRecord");
    cuda_check(cudaStreamWaitEvent(comm_stream_, queued_, 0), "StreamWaitEvent");
  }

  std::unique_ptr<Communicator> owned_host_;  // a split group's host half
  Communicator& host_;
  cudaStream_t stream_ = nullptr;       // the backend's compute stream
  cudaStream_t comm_stream_ = nullptr;  // NCCL's
  cudaEvent_t queued_ = nullptr, done_ = nullptr;
  ncclComm_t comm_ = nullptr;
  // Events of the asynchronous all-gathers not waited for yet, by ticket; spent ones for reuse.
  std::map<int, cudaEvent_t> tickets_;
  std::vector<cudaEvent_t> free_events_;
  int last_ticket_ = 0;
};

}  // namespace

bool nccl_compiled() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, ops::Backend& backend) {
  return std::make_unique<NcclCommunicator>(host, backend);
}

#endif

}  // namespace agpt::dist
