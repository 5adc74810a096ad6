// The model state per GPU that a training layout needs, and the early refusal (with options) of a
// layout whose state alone exceeds the device, at the 7B shape the GPU runs measured.
#include <gtest/gtest.h>

#include "train/memory_plan.h"

namespace agpt::train {
namespace {

constexpr int64_t k7B = 8'030'261'248;            // examples/llama-7b.toml
constexpr int64_t kH100 = int64_t{81'559} << 20;  // an H100 80GB's memory

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

TEST(MemoryPlan, BytesPerParameterOfEachLayout) {
  StateLayout dp4{.parameters = k7B, .data_parallel = 4, .distributed_optimizer = true, .bf16_products = true};
  // fp32 parameters: 4 + 4 + 2 (bf16 copies) + 8/4 bytes a parameter; 4x H200 measured 91.8 GiB peak.
  EXPECT_EQ(model_state_bytes(dp4).total(), 12 * k7B);
  StateLayout bf16 = dp4;
  bf16.bf16_params = true;  // 2 + 4 + 12/4; measured 74.8 GiB peak
  const StateBytes b = model_state_bytes(bf16);
  EXPECT_EQ(b.total(), 9 * k7B);
  EXPECT_EQ(b.weight_copies, 0);
  EXPECT_EQ(b.master, k7B);
  StateLayout one{.parameters = k7B, .bf16_products = true};  // one GPU: 4 + 4 + 2 + 8
  EXPECT_EQ(model_state_bytes(one).total(), 18 * k7B);
  one.offload_fraction = 1;  // moments in host memory, no copies kept
  EXPECT_EQ(model_state_bytes(one).total(), 8 * k7B);
  // bf16 parameters take the distributed optimizer: alone they change nothing.
  StateLayout alone{.parameters = k7B, .bf16_params = true, .bf16_products = true};
  EXPECT_EQ(model_state_bytes(alone).total(), 18 * k7B);
  EXPECT_NE(describe(bf16, b).find("master weights 7.5 and moments 15.0 (1/4 each)"), std::string::npos)
      << describe(bf16, b);
  EXPECT_NEAR(gib(b.total()), 67.3, 0.05);
}

TEST(MemoryPlan, AStateThatCannotFitIsRefusedWithOptions) {
  StateLayout dp4{.parameters = k7B, .data_parallel = 4, .distributed_optimizer = true, .bf16_products = true};
  const std::string why = does_not_fit(dp4, kH100);
  EXPECT_NE(why.find("more than the device's 79.6 GiB"), std::string::npos) << why;
  EXPECT_NE(why.find("train.param_dtype = \"bf16\": 67.3 GiB\n"), std::string::npos) << why;
  dp4.bf16_params = true;
  EXPECT_EQ(does_not_fit(dp4, kH100), "");
  EXPECT_EQ(does_not_fit(dp4, 0), "") << "unknown device memory: no check";
  StateLayout one{.parameters = k7B, .bf16_products = true};
  const std::string single = does_not_fit(one, kH100);
  EXPECT_NE(single.find("train.optimizer_cpu_offload = true: 59.8 GiB"), std::string::npos) << single;
  EXPECT_NE(single.find("4 data-parallel ranks (mpirun -np 4) with train.param_dtype = \"bf16\": 67.3 GiB"),
            std::string::npos)
      << single;
  EXPECT_NE(single.find("twice the tensor-parallel size (--tp; each rank holds half the weights): 67.3 GiB"),
            std::string::npos)
      << single;
}

}  // namespace
}  // namespace agpt::train
