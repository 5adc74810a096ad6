#include "train/memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"

namespace agpt::train {
namespace {

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

StateBytes model_state_bytes(const StateLayout& l) {
  const int64_t p = l.parameters;
  const int64_t n = l.distributed_optimizer ? std::max(1, l.data_parallel) : 1;
  StateBytes b;
  const bool bf16_params = l.bf16_params && l.distributed_optimizer;
  b.weights = (bf16_params ? 2 : 4) * p;
  b.gradients = 4 * p;
  b.master = bf16_params ? 4 * p / n : 0;
  b.moments = static_cast<int64_t>(static_cast<double>(8 * p / n) * (1.0 - l.offload_fraction));
  // Offloading keeps no copies between forward and backward; bf16 parameters need none.
  b.weight_copies = l.bf16_products && !bf16_params && l.offload_fraction == 0 ? 2 * p : 0;
  return b;
}

std::string describe(const StateLayout& l, const StateBytes& b) {
  const bool bf16_params = l.bf16_params && l.distributed_optimizer;
  std::string s = cat(fixed(gib(b.total())), " GiB: weights ", fixed(gib(b.weights)), bf16_params ? " (bf16)" : "",
                      ", gradients ", fixed(gib(b.gradients)));
  if (b.weight_copies) s += cat(", bf16 weight copies ", fixed(gib(b.weight_copies)));
  const std::string share = l.distributed_optimizer && l.data_parallel > 1 ? cat(" (1/", l.data_parallel, " each)") : "";
  if (b.master) s += cat(", master weights ", fixed(gib(b.master)), " and moments ", fixed(gib(b.moments)), share);
  else s += cat(", AdamW moments ", fixed(gib(b.moments)), share);
  if (l.offload_fraction > 0) s += cat(" (", fixed(100 * l.offload_fraction), "% of the moments in host memory)");
  return s;
}

std::string does_not_fit(const StateLayout& l, int64_t device_bytes) {
  const StateBytes b = model_state_bytes(l);
  if (device_bytes <= 0 || b.total() <= device_bytes) return "";
  std::string advice;
  auto option = [&](const char* what, StateLayout other) {
    const StateBytes o = model_state_bytes(other);
    advice += cat("\n  ", what, ": ", fixed(gib(o.total())), " GiB", o.total() <= device_bytes ? "" : " (still too much)");
  };
  if (l.distributed_optimizer && !l.bf16_params) {
    StateLayout o = l;
    o.bf16_params = true;
    option("train.param_dtype = \"bf16\"", o);
  }
  if (l.distributed_optimizer) {
    StateLayout o = l;
    o.data_parallel = std::max(2, l.data_parallel * 2);
    option(cat("twice the data-parallel ranks (", o.data_parallel, ")").c_str(), o);
  }
  {
    StateLayout o = l;
    o.parameters = l.parameters / 2;
    option("twice the tensor-parallel size (--tp; each rank holds half the weights)", o);
  }
  if (!l.distributed_optimizer) {
    StateLayout o = l;
    o.offload_fraction = 1;
    option("train.optimizer_cpu_offload = true", o);
    o = l;
    o.distributed_optimizer = o.bf16_params = true, o.data_parallel = 4;
    option("4 data-parallel ranks (mpirun -np 4) with train.param_dtype = \"bf16\"", o);
  }
  return cat("the model's state alone needs ", describe(l, b), " per GPU, more than the device's ",
             fixed(gib(device_bytes)), " GiB (before any activation). Options:", advice);
}

}  // namespace agpt::train
